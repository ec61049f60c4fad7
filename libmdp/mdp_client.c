/*  mdp_client.c - mdp_client_t, the blocking client (the "lazy pirate": send,
    wait with a deadline, and on silence throw the socket away and try again on
    a fresh one). A fresh socket per attempt is what makes a late reply to an
    old attempt impossible to mistake for the answer: MDP replies carry no
    request id. Requests carry Domogik's in-band timeout frame after the service.
    mdp_client_request speaks MDPC01; mdp_client_request_stream MDPC02.
    With several brokers (spec/ha.md) each attempt goes to the live broker that
    answered last; a silent or 503 broker is marked dead, the request moves on,
    and the dead one is probed (mmi.service) with back-off during later waits.
*/
#include "mdp.h"
#include "mdp_client_private.h"
#include "mdp_curve.h"
#include "mdp_proto.h"
#include <errno.h>
#include <string.h>

#define MAX_PEERS 16          //  brokers one client may know
#define PROBE_FIRST 250       //  msecs before a dead broker's first probe
#define PROBE_MAX 5000        //  back-off cap between probes, msecs
#define PROBE_NAME "mmi.ping" //  what a probe asks mmi.service about

//  One broker the client knows.
typedef struct {
    char *endpoint;      //  owned
    zsock_t *dealer;     //  socket for the next attempt; NULL after a failed one
    zsock_t *probe;      //  socket of the probe in flight, or NULL
    bool dead;           //  its last attempt went unanswered (or 503)
    int backoff;         //  msecs between probes while dead
    int64_t probe_at;    //  zclock_mono time of the next probe (dead only)
    int64_t probe_until; //  when the probe in flight counts as lost
    int64_t answered_at; //  zclock_mono time of its last answer, 0 never
} peer_t;

struct _mdp_client_t {
    peer_t peers[MAX_PEERS]; //  brokers, in the order given
    size_t npeers;           //  brokers in use, at least 1
    int timeout;             //  msecs to wait for each attempt's reply
    int retries;             //  attempts in all, at least 1
    mdp_curve_t curve;       //  CURVE keys, when set
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

//  Add one broker, endpoint being the first size bytes of text. Connects at
//  once, so that a bad endpoint fails here. 0, or -1 with EINVAL or ENOMEM.
static int s_add (mdp_client_t *self, const char *text, size_t size)
{
    if (size == 0 || self->npeers == MAX_PEERS) {
        errno = EINVAL;
        return -1;
    }
    peer_t *peer = &self->peers[self->npeers];
    *peer = (peer_t){.endpoint = strndup (text, size)};
    if (!peer->endpoint) {
        errno = ENOMEM;
        return -1;
    }
    peer->dealer = s_connect (peer->endpoint, &self->curve);
    if (!peer->dealer) {
        free (peer->endpoint);
        peer->endpoint = NULL;
        return -1;
    }
    self->npeers++;
    return 0;
}

int mdp_client_add_endpoint (mdp_client_t *self, const char *endpoint)
{
    if (!self || !endpoint || !*endpoint || strchr (endpoint, ',')) {
        errno = EINVAL;
        return -1;
    }
    return s_add (self, endpoint, strlen (endpoint));
}

int mdp_client_set_curve (mdp_client_t *self, const char *server_key, const char *cert_path)
{
    if (mdp_curve_load (&self->curve, server_key, cert_path) != 0)
        return -1;
    for (size_t index = 0; index < self->npeers; index++) {
        zsock_destroy (&self->peers[index].dealer); //  the next attempt connects with the keys
        zsock_destroy (&self->peers[index].probe);
    }
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
    //  "tcp://a:5555,tcp://b:5555": one broker per comma-separated item
    for (const char *item = endpoint; self && *item;) {
        size_t size = strcspn (item, ",");
        if (s_add (self, item, size) != 0)
            mdp_client_destroy (&self);
        item += size;
        if (*item == ',' && !*++item && self) { //  a trailing comma
            errno = EINVAL;
            mdp_client_destroy (&self);
        }
    }
    return self;
}

void mdp_client_destroy (mdp_client_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    mdp_client_t *self = *self_p;
    int saved = errno; //  keep the errno of a failed new
    for (size_t index = 0; index < self->npeers; index++) {
        zsock_destroy (&self->peers[index].dealer);
        zsock_destroy (&self->peers[index].probe);
        free (self->peers[index].endpoint);
    }
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

//  Send one attempt on sock: [""]["MDPC01"][service][timeout][body...], or
//  with a stream [""]["MDPC02"][0x01][service][timeout][body...]. 0 or -1.
static int s_send (mdp_client_t *self, zsock_t *sock, const char *service, zmsg_t *body,
                   stream_t *stream)
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
    if (zmsg_send (&msg, sock) == 0)
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

//  ---------------------------------------------------------------------------
//  Dead brokers and their probes (only ever with several brokers)

//  The attempt on peer went unanswered: no more attempts there until a probe
//  (or a call with nowhere else to go) finds it alive.
static void s_mark_dead (peer_t *peer)
{
    if (!peer->dead) {
        peer->dead = true;
        peer->backoff = PROBE_FIRST;
        peer->probe_at = zclock_mono () + PROBE_FIRST;
    }
}

static void s_mark_alive (peer_t *peer)
{
    peer->dead = false;
    peer->answered_at = zclock_mono ();
    zsock_destroy (&peer->probe);
}

//  Send the probes that are due and give up on those lost, doubling their
//  back-off. A probe is mmi.service, which every MDP/0.1 broker answers.
static void s_probe_tick (mdp_client_t *self)
{
    int64_t now = zclock_mono ();
    for (size_t index = 0; index < self->npeers; index++) {
        peer_t *peer = &self->peers[index];
        if (!peer->dead)
            continue;
        if (peer->probe && now >= peer->probe_until) {
            zsock_destroy (&peer->probe);
            peer->backoff = peer->backoff * 2 < PROBE_MAX ? peer->backoff * 2 : PROBE_MAX;
            peer->probe_at = now + peer->backoff;
        }
        if (peer->probe || now < peer->probe_at)
            continue;
        zmsg_t *body = zmsg_new ();
        if (body && zmsg_addstr (body, PROBE_NAME) == 0 &&
            (peer->probe = s_connect (peer->endpoint, &self->curve)) &&
            s_send (self, peer->probe, "mmi.service", body, NULL) != 0)
            zsock_destroy (&peer->probe);
        zmsg_destroy (&body);
        peer->probe_until = now + self->timeout;
        if (!peer->probe) //  try again after the back-off
            peer->probe_at = now + peer->backoff;
    }
}

//  Msecs until s_probe_tick has something to do, at most limit.
static int64_t s_probe_wait (mdp_client_t *self, int64_t limit)
{
    int64_t now = zclock_mono ();
    for (size_t index = 0; index < self->npeers; index++) {
        peer_t *peer = &self->peers[index];
        int64_t at = peer->probe ? peer->probe_until : peer->probe_at;
        if (peer->dead && at - now < limit)
            limit = at > now ? at - now : 0;
    }
    return limit;
}

//  Choose the broker for the next attempt: one not tried in this call if any,
//  live before dead, then the one that answered last, then the first given.
static peer_t *s_pick (mdp_client_t *self, const bool *tried)
{
    peer_t *best = NULL;
    for (size_t index = 0; index < self->npeers; index++) {
        peer_t *peer = &self->peers[index];
        bool untried = !tried[index], alive = !peer->dead;
        if (!best) {
            best = peer;
            continue;
        }
        bool best_untried = !tried[best - self->peers], best_alive = !best->dead;
        if (untried != best_untried ? untried
            : alive != best_alive   ? alive
                                    : peer->answered_at > best->answered_at)
            best = peer;
    }
    return best;
}

//  True when body is an "mdp.error" 503 (unavailable: shutting down or full):
//  the broker never gave the request to a worker, so another broker may.
static bool s_unavailable (zmsg_t *body)
{
    mdp_msg_t *msg = zmsg_size (body) == 2 ? mdp_msg_decode (body) : NULL;
    bool unavailable = msg && mdp_msg_error_code (msg) == 503;
    mdp_msg_destroy (&msg);
    return unavailable;
}

//  ---------------------------------------------------------------------------
//  Requests

//  Wait on peer's socket for the final reply, dropping anything else; each
//  partial goes to the stream and restarts the wait. Probes of dead brokers
//  are answered and sent meanwhile. Returns the final reply's body, or NULL
//  with EAGAIN or EINTR.
static zmsg_t *s_wait (mdp_client_t *self, peer_t *peer, const char *service, stream_t *stream)
{
    int64_t deadline = zclock_mono () + self->timeout;
    zmsg_t *body = NULL;
    errno = EAGAIN;
    while (!body) {
        s_probe_tick (self);
        int64_t left = deadline - zclock_mono ();
        if (left <= 0)
            break;
        zmq_pollitem_t items[MAX_PEERS + 1] = {{zsock_resolve (peer->dealer), 0, ZMQ_POLLIN, 0}};
        peer_t *probed[MAX_PEERS + 1] = {peer};
        int count = 1;
        for (size_t index = 0; index < self->npeers; index++)
            if (self->peers[index].probe) {
                probed[count] = &self->peers[index];
                items[count] =
                    (zmq_pollitem_t){zsock_resolve (probed[count]->probe), 0, ZMQ_POLLIN, 0};
                count++;
            }
        if (zmq_poll (items, count, s_probe_wait (self, left)) < 0 || zsys_interrupted) {
            errno = EINTR;
            break;
        }
        for (int index = 1; index < count; index++)
            if (items[index].revents & ZMQ_POLLIN)
                s_mark_alive (probed[index]); //  any answer will do
        if (!(items[0].revents & ZMQ_POLLIN))
            continue;
        zmsg_t *msg = zmsg_recv (peer->dealer);
        if (!msg) {
            errno = EINTR;
            break;
        }
        int command = s_reply_header (msg, service, stream != NULL);
        if (command >= 0)
            s_mark_alive (peer);
        if (command == MDPC02_FINAL)
            body = msg;
        else if (command == MDPC02_PARTIAL) {
            s_partial (stream, msg);
            deadline = zclock_mono () + self->timeout;
        }
        if (!body)
            zmsg_destroy (&msg);
    }
    return body;
}

//  The lazy pirate: attempts on fresh sockets until a final reply comes, the
//  attempts run out, or (streaming) an attempt saw a partial and went silent.
//  With several brokers each attempt goes to the next (s_pick), there are at
//  least as many attempts as brokers, and a 503 moves on too.
static zmsg_t *s_call (mdp_client_t *self, const char *service, zmsg_t *body, stream_t *stream)
{
    if (!self || !service || !*service || strlen (service) > MDP_MAX_SERVICE_NAME || !body) {
        errno = EINVAL;
        return NULL;
    }
    bool several = self->npeers > 1, tried[MAX_PEERS] = {false};
    int attempts = several && self->retries < (int)self->npeers ? (int)self->npeers : self->retries;
    zmsg_t *unavailable = NULL; //  the last 503, answered if nothing better comes
    for (int attempt = 0; attempt < attempts; attempt++) {
        peer_t *peer = s_pick (self, tried);
        tried[peer - self->peers] = true;
        if (!peer->dealer && !(peer->dealer = s_connect (peer->endpoint, &self->curve)))
            break;
        zmsg_t *reply = NULL;
        if (s_send (self, peer->dealer, service, body, stream) == 0)
            reply = s_wait (self, peer, service, stream);
        bool partial_seen = stream && stream->partial_seen;
        if (reply && several && !partial_seen && s_unavailable (reply)) {
            zmsg_destroy (&unavailable);
            unavailable = reply;
            s_mark_dead (peer);
            continue;
        }
        if (reply) {
            zmsg_destroy (&unavailable);
            return reply;
        }
        //  The old socket may still get this attempt's reply: never reuse it
        int saved = errno;
        zsock_destroy (&peer->dealer);
        if (saved == EINTR || zsys_interrupted) {
            zmsg_destroy (&unavailable);
            errno = EINTR;
            return NULL;
        }
        if (several)
            s_mark_dead (peer);
        if (partial_seen)
            break; //  a retry would make the worker start over
    }
    errno = EAGAIN;
    return unavailable;
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
