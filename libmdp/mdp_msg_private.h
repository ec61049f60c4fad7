/*  mdp_msg_private.h - the message codec straight on libzmq frames, for the
    worker engine's hot path: a request body decoded from the zmq_msg_t frames
    it arrived in, without a zmsg or a copy of them first. Private to libmdp.
*/
#ifndef MDP_MSG_PRIVATE_H_INCLUDED
#define MDP_MSG_PRIVATE_H_INCLUDED

#include "mdp.h"

//  Decode parts body frames [action][json] (or [action]) exactly as
//  mdp_msg_decode does; the frames stay the caller's. A new message, or NULL
//  with errno EPROTO (not a valid body) or ENOMEM.
mdp_msg_t *mdp_msg_decode_parts (zmq_msg_t *part, size_t parts);

#endif
