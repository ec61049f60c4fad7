/*  mdp_client.c - mdp_client_t, the blocking client (the "lazy pirate": send,
    wait with a deadline, and on silence throw the socket away and try again on
    a fresh one). A fresh socket per attempt is what makes a late reply to an
    old attempt impossible to mistake for the answer: MDP replies carry no
    request id. Requests carry Domogik's in-band timeout frame after the service.
    mdp_client_request speaks MDPC01; mdp_client_request_stream MDPC02.
*/
#include "mdp_curve.h"
#include "mdp.h"
#include "mdp_client_private.h"
#include "mdp_proto.h"
#include <errno.h>
#include <string.h>

struct _mdp_client_t {
    char *endpoint;  //  broker endpoint, owned
    zsock_t *dealer; //  socket for the next attempt; NULL after a failed one
    int timeout;     //  msecs to wait for each attempt's reply
    int retries;     //  attempts in all, at least 1
    mdp_curve_t curve; //  CURVE keys, when set
};

//  Create a DEALER connected to endpoint. Linger 0: nothing of a dead attempt
//  may hold up destroy. NULL with errno EINVAL on a bad endpoint.
static zsock_t *s_connect (const char *endpoint, const mdp_curve_t *curve)
{
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    if (!dealer) {
        errno = ENOMEM;
        return NULL;
    }
    zsock_set_linger (dealer, 0);
    mdp_curve_apply (curve, dealer);
    if (zsock_connect (dealer, "%s", endpoint) != 0) {
        zsock_destroy (&dealer);
        errno = EINVAL;
    }
    return dealer;
}

int mdp_client_set_curve (mdp_client_t *self, const char *server_key, const char *cert_path)
{
    if (mdp_curve_load (&self->curve, server_key, cert_path) != 0)
        return -1;
    zsock_destroy (&self->dealer);   //  the next attempt connects with the keys
    return 0;
}

mdp_client_t *mdp_client_new (const char *endpoint)
{
    if (!endpoint || !*endpoint) {
        errno = EINVAL;
        return NULL;
    }
    mdp_client_t *self = calloc (1, sizeof (mdp_client_t));
    if (!self) {
        errno = ENOMEM;
        return NULL;
    }
    self->timeout = MDP_DEFAULT_TIMEOUT;
    self->retries = MDP_DEFAULT_RETRIES;
    self->endpoint = strdup (endpoint);
    if (self->endpoint)
        self->dealer = s_connect (endpoint, &self->curve);
    else
        errno = ENOMEM;
    if (!self->dealer)
        mdp_client_destroy (&self);
    return self;
}

void mdp_client_destroy (mdp_client_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    mdp_client_t *self = *self_p;
    int saved = errno; //  keep the errno of a failed new
    zsock_destroy (&self->dealer);
    free (self->endpoint);
    free (self);
    errno = saved;
    *self_p = NULL;
}

void mdp_client_set_timeout (mdp_client_t *self, int msecs)
{
    self->timeout = msecs > 0 ? msecs : 1;
}

void mdp_client_set_retries (mdp_client_t *self, int retries)
{
    self->retries = retries > 0 ? retries : 1;
}

void mdp_client_timeout_text (int msecs, char *buf, size_t size)
{
    if (msecs % 1000 == 0) {
        snprintf (buf, size, "%d", msecs / 1000);
        return;
    }
    snprintf (buf, size, "%d.%03d", msecs / 1000, msecs % 1000);
    char *end = buf + strlen (buf) - 1;
    while (*end == '0') //  "2.500" -> "2.5"; a '.' is always left of it
        *end-- = '\0';
}

//  A streaming call's state; NULL for an MDP/0.1 call.
typedef struct {
    mdp_client_stream_fn *fn; //  called with each partial, or NULL
    void *arg;                //  its argument
    bool partial_seen;        //  a partial came: the request is never sent again
} stream_t;

//  Send one attempt: [""]["MDPC01"][service][timeout][body...], or with a
//  stream [""]["MDPC02"][0x01][service][timeout][body...]. 0 or -1.
static int s_send (mdp_client_t *self, const char *service, zmsg_t *body, stream_t *stream)
{
    char timeout[32];
    mdp_client_timeout_text (self->timeout, timeout, sizeof timeout);
    byte command = MDPC02_REQUEST;
    zmsg_t *msg = zmsg_dup (body);
    if (!msg || zmsg_pushstr (msg, timeout) || zmsg_pushstr (msg, service) ||
        (stream && zmsg_pushmem (msg, &command, 1)) ||
        zmsg_pushstr (msg, stream ? MDPC02 : MDPC01) || zmsg_pushmem (msg, NULL, 0)) {
        zmsg_destroy (&msg);
        errno = ENOMEM;
        return -1;
    }
    if (zmsg_send (&msg, self->dealer) == 0)
        return 0;
    zmsg_destroy (&msg);
    return -1;
}

//  Check a reply's header and strip it, leaving the body: [""]["MDPC01"]
//  [service], or with a stream also [""]["MDPC02"][0x02|0x03][service].
//  Returns MDPC02_PARTIAL or MDPC02_FINAL (an MDPC01 reply is final), or -1
//  if it is not a reply to service (the caller then destroys it).
static int s_reply_header (zmsg_t *msg, const char *service, bool stream)
{
    zframe_t *empty = zmsg_first (msg);
    zframe_t *protocol = zmsg_next (msg);
    int command = -1, header = 3;
    if (empty && zframe_size (empty) == 0 && protocol && zframe_streq (protocol, MDPC01))
        command = MDPC02_FINAL;
    else if (stream && empty && zframe_size (empty) == 0 && protocol &&
             zframe_streq (protocol, MDPC02)) {
        zframe_t *code = zmsg_next (msg);
        if (code && zframe_size (code) == 1 &&
            (*zframe_data (code) == MDPC02_PARTIAL || *zframe_data (code) == MDPC02_FINAL))
            command = *zframe_data (code);
        header = 4;
    }
    zframe_t *name = command < 0 ? NULL : zmsg_next (msg);
    if (!name || !zframe_streq (name, service)) {
        zsys_warning ("mdp_client: dropped a malformed reply (%zu frames)", zmsg_size (msg));
        return -1;
    }
    for (int index = 0; index < header; index++) {
        zframe_t *frame = zmsg_pop (msg);
        zframe_destroy (&frame);
    }
    return command;
}

//  Hand one partial body to the stream's callback.
static void s_partial (stream_t *stream, zmsg_t *body)
{
    stream->partial_seen = true;
    mdp_msg_t *partial = mdp_msg_decode (body);
    if (!partial)
        zsys_warning ("mdp_client: dropped a partial reply with a malformed body");
    else if (stream->fn)
        stream->fn (partial, stream->arg);
    mdp_msg_destroy (&partial);
}

//  Wait on the current socket for the final reply, dropping anything else;
//  each partial goes to the stream and restarts the wait. Returns the final
//  reply's body, or NULL with EAGAIN or EINTR.
static zmsg_t *s_wait (mdp_client_t *self, const char *service, stream_t *stream)
{
    zpoller_t *poller = zpoller_new (self->dealer, NULL);
    int64_t deadline = zclock_mono () + self->timeout;
    zmsg_t *body = NULL;
    errno = EAGAIN;
    while (poller && !body) {
        int64_t left = deadline - zclock_mono ();
        if (left <= 0)
            break;
        if (!zpoller_wait (poller, (int)left)) {
            if (zpoller_terminated (poller))
                errno = EINTR;
            break;
        }
        zmsg_t *msg = zmsg_recv (self->dealer);
        if (!msg) {
            errno = EINTR;
            break;
        }
        int command = s_reply_header (msg, service, stream != NULL);
        if (command == MDPC02_FINAL)
            body = msg;
        else if (command == MDPC02_PARTIAL) {
            s_partial (stream, msg);
            deadline = zclock_mono () + self->timeout;
        }
        if (!body)
            zmsg_destroy (&msg);
    }
    zpoller_destroy (&poller);
    return body;
}

//  The lazy pirate: attempts on fresh sockets until a final reply comes, the
//  attempts run out, or (streaming) an attempt saw a partial and went silent.
static zmsg_t *s_call (mdp_client_t *self, const char *service, zmsg_t *body, stream_t *stream)
{
    if (!self || !service || !*service || strlen (service) > MDP_MAX_SERVICE_NAME || !body) {
        errno = EINVAL;
        return NULL;
    }
    for (int attempt = 0; attempt < self->retries; attempt++) {
        if (!self->dealer && !(self->dealer = s_connect (self->endpoint, &self->curve)))
            return NULL;
        zmsg_t *reply = NULL;
        if (s_send (self, service, body, stream) == 0)
            reply = s_wait (self, service, stream);
        if (reply)
            return reply;
        //  The old socket may still get this attempt's reply: never reuse it
        int saved = errno;
        zsock_destroy (&self->dealer);
        if (saved == EINTR || zsys_interrupted) {
            errno = EINTR;
            return NULL;
        }
        if (stream && stream->partial_seen)
            break; //  a retry would make the worker start over
    }
    errno = EAGAIN;
    return NULL;
}

zmsg_t *mdp_client_call (mdp_client_t *self, const char *service, zmsg_t *body)
{
    return s_call (self, service, body, NULL);
}

//  Encode the request, call, and decode the final reply.
static mdp_msg_t *s_request (mdp_client_t *self, const char *service, mdp_msg_t **request_p,
                             stream_t *stream)
{
    mdp_msg_t *request = request_p ? *request_p : NULL;
    if (request_p)
        *request_p = NULL;
    if (!self || !request) {
        mdp_msg_destroy (&request);
        errno = EINVAL;
        return NULL;
    }
    zmsg_t *body = zmsg_new ();
    int rc = body ? mdp_msg_encode (request, body) : -1;
    mdp_msg_destroy (&request);
    zmsg_t *reply = NULL;
    if (rc == 0)
        reply = s_call (self, service, body, stream);
    else
        errno = ENOMEM;
    zmsg_destroy (&body);
    if (!reply)
        return NULL;
    mdp_msg_t *msg = mdp_msg_decode (reply); //  EPROTO if it is not a body
    int saved = errno;
    zmsg_destroy (&reply);
    errno = saved;
    return msg;
}

mdp_msg_t *mdp_client_request (mdp_client_t *self, const char *service, mdp_msg_t **request_p)
{
    return s_request (self, service, request_p, NULL);
}

mdp_msg_t *mdp_client_request_stream (mdp_client_t *self, const char *service,
                                      mdp_msg_t **request_p, mdp_client_stream_fn *fn, void *arg)
{
    stream_t stream = {fn, arg, false};
    return s_request (self, service, request_p, &stream);
}

char *mdp_client_mmi (mdp_client_t *self, const char *service, const char *arg)
{
    if (!self || !service || strncmp (service, "mmi.", 4) != 0 || !arg) {
        errno = EINVAL;
        return NULL;
    }
    zmsg_t *body = zmsg_new ();
    if (!body || zmsg_addstr (body, arg)) {
        zmsg_destroy (&body);
        errno = ENOMEM;
        return NULL;
    }
    zmsg_t *reply = mdp_client_call (self, service, body);
    zmsg_destroy (&body);
    if (!reply)
        return NULL;
    char *answer = zmsg_size (reply) == 1 ? zframe_strdup (zmsg_first (reply)) : NULL;
    zmsg_destroy (&reply);
    if (!answer)
        errno = EPROTO;
    return answer;
}

int mdp_client_has_service (mdp_client_t *self, const char *service)
{
    if (!service || !*service) {
        errno = EINVAL;
        return -1;
    }
    char *answer = mdp_client_mmi (self, "mmi.service", service);
    if (!answer)
        return -1;
    int rc = streq (answer, "200") ? 1 : 0;
    zstr_free (&answer);
    return rc;
}
