/*  mdp_curve.c - see mdp_curve.h. */
#include "mdp_curve.h"
#include "mdp_certfile.h"
#include <errno.h>
#include <string.h>

int mdp_curve_load (mdp_curve_t *self, const char *server_key, const char *cert_path)
{
    byte server[32];
    if (!server_key || strlen (server_key) != 40 || !zmq_z85_decode (server, server_key)) {
        errno = EINVAL;
        return -1;
    }
    byte public_key[32], secret_key[32];
    char error[512];
    if (!cert_path) {
        errno = ENOENT;
        return -1;
    }
    if (mdp_certfile_load (cert_path, public_key, secret_key, error, sizeof error) != 0) {
        int saved = errno;
        zsys_error ("libmdp: CURVE certificate %s", error);
        errno = saved;
        return -1;
    }
    memcpy (self->server, server, 32);
    memcpy (self->public_key, public_key, 32);
    memcpy (self->secret_key, secret_key, 32);
    memset (secret_key, 0, sizeof secret_key);
    self->on = true;
    return 0;
}

void mdp_curve_apply (const mdp_curve_t *self, zsock_t *sock)
{
    if (!self->on)
        return;
    zsock_set_curve_serverkey_bin (sock, self->server);
    zsock_set_curve_publickey_bin (sock, self->public_key);
    zsock_set_curve_secretkey_bin (sock, self->secret_key);
}
