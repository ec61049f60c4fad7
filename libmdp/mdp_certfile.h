/*  mdp_certfile.h - read a CURVE certificate (czmq's format: NAME holds the
    public key, NAME_secret both keys) strictly: every Z85 group must decode,
    the public key must be the one the secret key derives (zmq_curve_public),
    and the secret file must not be readable by group or others (as OpenSSH
    insists). zcert_load ignores a garbled group, and the peer then fails
    every handshake without a word. Header-only and private, because libmdp
    and the broker both load certificates and the broker does not link libmdp.
*/
#ifndef MDP_CERTFILE_H_INCLUDED
#define MDP_CERTFILE_H_INCLUDED

#include <czmq.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

//  Put a message in err (long paths are cut, not refused).
static inline void mdp_certfile_error (char *err, size_t errlen, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
static inline void mdp_certfile_error (char *err, size_t errlen, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    vsnprintf (err, errlen, fmt, args);
    va_end (args);
}

//  Decode 40 characters of Z85 into 32 bytes; false unless all of it decodes.
static inline bool mdp_certfile_z85 (uint8_t key[32], const char *text)
{
    return text && strlen (text) == 40 && zmq_z85_decode (key, text) != NULL;
}

//  Read the public key of the certificate file at path (either half).
//  Returns 0, or -1 with errno (ENOENT unreadable, EINVAL no valid key) and
//  a message naming the file in err.
static inline int mdp_certfile_public (const char *path, uint8_t public_key[32], char *err,
                                       size_t errlen)
{
    zconfig_t *root = zconfig_load (path);
    if (!root) {
        mdp_certfile_error (err, errlen, "'%s': cannot read it as a certificate", path);
        errno = ENOENT;
        return -1;
    }
    bool ok = mdp_certfile_z85 (public_key, zconfig_get (root, "/curve/public-key", NULL));
    zconfig_destroy (&root);
    if (!ok) {
        mdp_certfile_error (err, errlen, "'%s': curve/public-key is not a 40-character Z85 key",
                            path);
        errno = EINVAL;
        return -1;
    }
    return 0;
}

//  Load the key pair of the certificate at path from "<path>_secret".
//  Returns 0, or -1 with errno and a message naming the file in err: ENOENT
//  (no readable secret file), EACCES (readable by group or others), EINVAL
//  (a key that does not decode, or a public key the secret does not derive).
static inline int mdp_certfile_load (const char *path, uint8_t public_key[32],
                                     uint8_t secret_key[32], char *err, size_t errlen)
{
    char secret_path[4200];
    snprintf (secret_path, sizeof secret_path, "%s_secret", path);
    struct stat info;
    if (stat (secret_path, &info) != 0) {
        mdp_certfile_error (err, errlen, "'%s': cannot read the secret key: %s", secret_path,
                            strerror (errno));
        errno = ENOENT;
        return -1;
    }
    if (info.st_mode & (S_IRWXG | S_IRWXO)) {
        mdp_certfile_error (err, errlen,
                            "'%s': mode %04o lets group or others at the secret key "
                            "(chmod 600 it)",
                            secret_path, (unsigned)(info.st_mode & 07777));
        errno = EACCES;
        return -1;
    }
    zconfig_t *root = zconfig_load (secret_path);
    if (!root) {
        mdp_certfile_error (err, errlen, "'%s': cannot read it as a certificate", secret_path);
        errno = ENOENT;
        return -1;
    }
    const char *public_txt = zconfig_get (root, "/curve/public-key", NULL);
    const char *secret_txt = zconfig_get (root, "/curve/secret-key", NULL);
    char derived[41] = "";
    uint8_t derived_key[32];
    int rc = -1;
    if (!mdp_certfile_z85 (secret_key, secret_txt))
        mdp_certfile_error (err, errlen, "'%s': curve/secret-key is not a 40-character Z85 key",
                            secret_path);
    else if (!mdp_certfile_z85 (public_key, public_txt))
        mdp_certfile_error (err, errlen, "'%s': curve/public-key is not a 40-character Z85 key",
                            secret_path);
    else if (zmq_curve_public (derived, secret_txt) != 0 ||
             !zmq_z85_decode (derived_key, derived) || memcmp (derived_key, public_key, 32) != 0)
        mdp_certfile_error (err, errlen, "'%s': the public key is not the one the secret key gives",
                            secret_path);
    else
        rc = 0;
    zconfig_destroy (&root);
    //  The public half, where peers take the key from, must agree too.
    uint8_t published[32];
    if (rc == 0 && stat (path, &info) == 0) {
        if (mdp_certfile_public (path, published, err, errlen) != 0)
            rc = -1;
        else if (memcmp (published, public_key, 32) != 0) {
            mdp_certfile_error (err, errlen, "'%s': its public key is not the one in '%s'", path,
                                secret_path);
            rc = -1;
        }
    }
    if (rc != 0) {
        memset (secret_key, 0, 32);
        errno = EINVAL;
    }
    return rc;
}

#endif
