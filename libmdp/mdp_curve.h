/*  mdp_curve.h - CURVE settings shared by libmdp's client, async client and
    worker: the broker's public key and our own key pair, loaded once and
    applied to every socket before it connects. Private to libmdp.
*/
#ifndef MDP_CURVE_H_INCLUDED
#define MDP_CURVE_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>

typedef struct {
    bool on;             //  false: plain connections
    byte server[32];     //  the broker's public key
    byte public_key[32]; //  our public key
    byte secret_key[32]; //  our secret key
} mdp_curve_t;

//  Load server_key (40-char Z85) and our certificate (czmq format, with its
//  "_secret" file), strictly (mdp_certfile.h). Returns 0, or -1 with errno
//  EINVAL (a key that does not decode, or a pair that does not match), ENOENT
//  (no readable certificate with a secret key) or EACCES (the secret file is
//  readable by group or others), logged with the file's name; *self is then
//  unchanged.
int mdp_curve_load (mdp_curve_t *self, const char *server_key, const char *cert_path);

//  Make sock a CURVE client with these keys (nothing when off). Call before
//  connecting.
void mdp_curve_apply (const mdp_curve_t *self, zsock_t *sock);

#endif
