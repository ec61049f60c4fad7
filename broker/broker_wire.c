/*  broker_wire.c - everything the broker sends: commands to workers, REQUESTs,
    replies and partials to clients in the framing they asked in (framing_t),
    and the one builder of error replies (mdp.error JSON and its counter).
    Nothing here changes the broker's tables; the message path (broker.c)
    decides what goes out, this file only puts it on the wire.
*/
#include "broker_impl.h"
#include <string.h>

//  ROUTER sends do not block (unknown peers are dropped by libzmq); a frame
//  that fails to go is closed so nothing leaks.
static void s_send_msg (broker_t *self, zmq_msg_t *msg, int flags)
{
    if (zmq_msg_send (msg, self->router, flags) < 0)
        zmq_msg_close (msg);
}

static void s_send_mem (broker_t *self, const void *data, size_t size, int flags)
{
    zmq_send (self->router, data, size, flags);
}

static void s_send_const (broker_t *self, const void *data, size_t size, int flags)
{
    zmq_send_const (self->router, data, size, flags);
}

void broker_wire_command (broker_t *self, const unsigned char *id, size_t idlen, uint8_t version,
                          bool bare, uint8_t command)
{
    static const uint8_t commands[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    s_send_mem (self, id, idlen, ZMQ_SNDMORE);
    if (!bare)
        s_send_const (self, "", 0, ZMQ_SNDMORE);
    s_send_const (self, version == 2 ? MDPW02 : MDPW01, MDP_PROTO_LEN, ZMQ_SNDMORE);
    s_send_const (self, &commands[command & 7], 1, 0);
}

void broker_wire_request (broker_t *self, const worker_t *worker, request_t *request)
{
    static const uint8_t request_cmd = MDPW01_REQUEST; //  0x02 in both versions
    s_send_mem (self, worker->identity, worker->idlen, ZMQ_SNDMORE);
    if (!worker->bare)
        s_send_const (self, "", 0, ZMQ_SNDMORE);
    s_send_const (self, worker->proto == 2 ? MDPW02 : MDPW01, MDP_PROTO_LEN, ZMQ_SNDMORE);
    s_send_const (self, &request_cmd, 1, ZMQ_SNDMORE);
    s_send_mem (self, &request->token, sizeof request->token, ZMQ_SNDMORE);
    s_send_const (self, "", 0, ZMQ_SNDMORE);
    zmq_msg_t *body = request->frames + request->nenv;
    for (size_t i = 0; i < request->nbody; i++)
        s_send_msg (self, &body[i], i + 1 < request->nbody ? ZMQ_SNDMORE : 0);
    request->nbody = 0;
}

//  The head of every message to a client: [env...][""]["MDPC01"][service]
//  for MDP/0.1, [env...][""]["MDPC02"][command][service] for MDP/0.2 (no ""
//  in the bare form). majortomo's dialect numbers PARTIAL 0x03 and FINAL 0x04
//  and has no service frame. With keep_env the envelope is copied, not moved.
static void s_client_head (broker_t *self, zmq_msg_t *env, size_t nenv, framing_t framing,
                           uint8_t command, const char *service, size_t namelen, bool keep_env)
{
    static const uint8_t commands[5] = {0, 1, 2, 3, 4};
    if (framing.majortomo)
        command = command == MDPC02_FINAL ? MDPC02_MAJORTOMO_FINAL : MDPC02_MAJORTOMO_PARTIAL;
    for (size_t i = 0; i < nenv; i++) {
        zmq_msg_t copy;
        zmq_msg_init (&copy);
        if (keep_env)
            zmq_msg_copy (&copy, &env[i]);
        s_send_msg (self, keep_env ? &copy : &env[i], ZMQ_SNDMORE);
    }
    if (!framing.bare)
        s_send_const (self, "", 0, ZMQ_SNDMORE);
    if (framing.version == 2) {
        s_send_const (self, MDPC02, MDP_PROTO_LEN, ZMQ_SNDMORE);
        s_send_const (self, &commands[command <= 4 ? command : 0], 1, ZMQ_SNDMORE);
    } else {
        s_send_const (self, MDPC01, MDP_PROTO_LEN, ZMQ_SNDMORE);
    }
    if (!framing.majortomo)
        s_send_mem (self, service, namelen, ZMQ_SNDMORE);
}

void broker_wire_reply (broker_t *self, request_t *request, zmq_msg_t *body, size_t nbody,
                        bool final)
{
    if (!final && request->framing.version != 2)
        return;
    s_client_head (self, request->frames, request->nenv, request->framing,
                   final ? MDPC02_FINAL : MDPC02_PARTIAL, request->service->name,
                   request->service->namelen, !final);
    for (size_t i = 0; i < nbody; i++)
        s_send_msg (self, &body[i], i + 1 < nbody ? ZMQ_SNDMORE : 0);
}

void broker_wire_strs (broker_t *self, zmq_msg_t *env, size_t nenv, framing_t framing,
                       const char *service, size_t namelen, const char *frame1, const char *frame2)
{
    s_client_head (self, env, nenv, framing, MDPC02_FINAL, service, namelen, false);
    s_send_mem (self, frame1, strlen (frame1), frame2 ? ZMQ_SNDMORE : 0);
    if (frame2)
        s_send_mem (self, frame2, strlen (frame2), 0);
}

//  Where an error code is counted in broker_stats_t.errors.
static int s_error_index (int code)
{
    switch (code) {
    case 400:
        return 0;
    case 403:
        return 1;
    case 429:
        return 2;
    case 502:
        return 3;
    case 503:
        return 4;
    default:
        return 5;
    }
}

void broker_wire_error (broker_t *self, zmq_msg_t *env, size_t nenv, framing_t framing,
                        const char *service, size_t namelen, int code, const char *reason)
{
    char json[320];
    snprintf (json, sizeof json, "{\"code\": %d, \"reason\": \"%s\"}", code, reason);
    broker_wire_strs (self, env, nenv, framing, service, namelen, MDP_ERROR_ACTION_WIRE, json);
    self->stats.errors[s_error_index (code)]++;
}
