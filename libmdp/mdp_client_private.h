/*  mdp_client_private.h - the raw request under mdp_client_request, for the
    tools in this tree that speak MMI (whose bodies are bare frames, not an
    action plus JSON). Not exported from libmdp.so; link libmdp.a to use it.
*/
#ifndef MDP_CLIENT_PRIVATE_H_INCLUDED
#define MDP_CLIENT_PRIVATE_H_INCLUDED

#include "mdp.h"

//  Send body frames to service, as [""]["MDPC01"][service][timeout][body...],
//  retrying as mdp_client_request does, and wait for the reply. The caller
//  keeps body. Returns the reply's body frames (the caller owns them), or NULL
//  with errno EAGAIN, EINTR or EINVAL as mdp_client_request.
zmsg_t *mdp_client_call (mdp_client_t *self, const char *service, zmsg_t *body);

//  Format msecs as the in-band timeout frame: seconds as a plain decimal
//  ("3", "2.5", "0.25"). buf must hold at least 32 bytes.
void mdp_client_timeout_text (int msecs, char *buf, size_t size);

#endif
