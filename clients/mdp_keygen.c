/*  mdp_keygen.c - mdp-keygen NAME: write a CURVE key pair in czmq's
    certificate format, NAME (public, to hand to the broker's allowed-keys
    directory) and NAME_secret (readable by its owner only).
*/
#include <czmq.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

int main (int argc, char *argv[])
{
    if (argc != 2 || argv[1][0] == '-') {
        fprintf (argc == 2 && streq (argv[1], "-h") ? stdout : stderr,
                 "usage: mdp-keygen NAME\n"
                 "  writes NAME (public certificate) and NAME_secret (mode 0600)\n");
        return argc == 2 && streq (argv[1], "-h") ? 0 : 2;
    }
    const char *name = argv[1];
    char secret[4096];
    snprintf (secret, sizeof secret, "%s_secret", name);
    struct stat st;
    if (stat (name, &st) == 0 || stat (secret, &st) == 0) {
        fprintf (stderr, "mdp-keygen: '%s' or '%s' exists already; not overwriting\n", name,
                 secret);
        return 1;
    }
    zcert_t *cert = zcert_new ();
    if (!cert) {
        fprintf (stderr, "mdp-keygen: cannot make a key pair\n");
        return 1;
    }
    zcert_set_meta (cert, "name", "%s", name);
    //  Create the secret file with owner-only rights before any key is in it.
    mode_t old = umask (077);
    int rc = zcert_save (cert, name);
    umask (old);
    if (rc == 0)
        rc = chmod (secret, 0600) || chmod (name, 0644);
    if (rc != 0) {
        fprintf (stderr, "mdp-keygen: cannot write '%s': %s\n", name, strerror (errno));
        zcert_destroy (&cert);
        return 1;
    }
    printf ("%s\n", zcert_public_txt (cert));
    zcert_destroy (&cert);
    return 0;
}
