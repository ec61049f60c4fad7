/*  mdp_curve.c - see mdp_curve.h. */
#include "mdp_curve.h"
#include <errno.h>
#include <string.h>

int mdp_curve_load (mdp_curve_t *self, const char *server_key, const char *cert_path)
{
    byte server[32];
    if (!server_key || strlen (server_key) != 40 || !zmq_z85_decode (server, server_key)) {
        errno = EINVAL;
        return -1;
    }
    zcert_t *cert = cert_path ? zcert_load (cert_path) : NULL;
    static const byte zero[32] = {0};
    if (!cert || memcmp (zcert_secret_key (cert), zero, 32) == 0) {
        zcert_destroy (&cert);
        errno = ENOENT;
        return -1;
    }
    memcpy (self->server, server, 32);
    memcpy (self->public_key, zcert_public_key (cert), 32);
    memcpy (self->secret_key, zcert_secret_key (cert), 32);
    self->on = true;
    zcert_destroy (&cert);
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
