/*  mdp_engine.c - the worker side of MDP/0.1 and MDP/0.2 once, for every
    owner: READY, heartbeats both ways, broker-silence detection, reconnect
    with back-off and jitter, DISCONNECT, and the header checks. No threads,
    no clock: the owner passes "now" and polls the socket. A REQUEST is held
    until the owner takes it, so an owner with several engines (one per
    broker) can serve one request at a time without losing the others.
*/
#include "mdp_engine.h"
#include "mdp_proto.h"
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#define DISCONNECT_LINGER 100 //  msecs a final DISCONNECT may take to get out

struct _mdp_engine_t {
    char *endpoint;        //  broker endpoint, owned
    char *service;         //  service name, owned
    char *name;            //  log prefix, owned
    int version;           //  1 (MDPW01) or 2 (MDPW02)
    int heartbeat;         //  msecs between HEARTBEATs
    int liveness;          //  silent heartbeats before the broker is gone
    int reconnect_initial; //  first reconnect wait, msecs
    int reconnect_max;     //  cap on the reconnect wait, msecs
    mdp_curve_t curve;     //  CURVE keys, applied to each new socket
    zsock_t *dealer;       //  to the broker; NULL while closed or waiting
    bool parked;           //  closed by the owner: no reconnecting
    int backoff;           //  next reconnect wait, before jitter
    int64_t heartbeat_at;  //  when the next HEARTBEAT is due
    int64_t expiry_at;     //  the broker is gone if silent until then
    int64_t reconnect_at;  //  when to reconnect, while dealer is NULL
    unsigned int seed;     //  rand_r state for the jitter
    bool heard;            //  this socket got HEARTBEAT or REQUEST: we were registered
    zmsg_t *held;          //  a REQUEST not yet taken: [address...][""][body...]
    zmsg_t *current;       //  the taken request's envelope [address...][""], or NULL
    uint64_t generation;   //  bumps per connection and per request taken
};

mdp_engine_t *mdp_engine_new (const char *endpoint, const char *service, int version,
                              const char *name)
{
    if (!endpoint || !service || (version != 1 && version != 2)) {
        errno = EINVAL;
        return NULL;
    }
    mdp_engine_t *self = calloc (1, sizeof (mdp_engine_t));
    if (!self) {
        errno = ENOMEM;
        return NULL;
    }
    self->endpoint = strdup (endpoint);
    self->service = strdup (service);
    self->name = strdup (name ? name : "mdp_worker");
    self->version = version;
    self->heartbeat = 2500;
    self->liveness = 3;
    self->reconnect_initial = 250;
    self->reconnect_max = 5000;
    self->backoff = self->reconnect_initial;
    self->parked = true;
    self->seed = (unsigned int) (zclock_usecs () ^ (int64_t) getpid () ^ (intptr_t) self);
    if (!self->endpoint || !self->service || !self->name) {
        mdp_engine_destroy (&self);
        errno = ENOMEM;
    }
    return self;
}

void mdp_engine_destroy (mdp_engine_t **self_p)
{
    mdp_engine_t *self = self_p ? *self_p : NULL;
    if (!self)
        return;
    mdp_engine_close (self, true);
    free (self->endpoint);
    free (self->service);
    free (self->name);
    free (self);
    *self_p = NULL;
}

void mdp_engine_set_heartbeat (mdp_engine_t *self, int msecs, int liveness, int64_t now)
{
    self->heartbeat = msecs > 0 ? msecs : 1;
    self->liveness = liveness > 0 ? liveness : 1;
    if (self->dealer) {
        if (self->heartbeat_at > now + self->heartbeat)
            self->heartbeat_at = now + self->heartbeat;
        self->expiry_at = now + (int64_t) self->heartbeat * self->liveness;
    }
}

void mdp_engine_set_reconnect (mdp_engine_t *self, int initial_msecs, int max_msecs)
{
    self->reconnect_initial = initial_msecs > 0 ? initial_msecs : 1;
    self->reconnect_max =
        max_msecs > self->reconnect_initial ? max_msecs : self->reconnect_initial;
    self->backoff = self->reconnect_initial;
}

void mdp_engine_set_curve (mdp_engine_t *self, const mdp_curve_t *curve)
{
    self->curve = *curve;
}

//  Send [""][protocol][command][envelope...][body...] to the broker, the
//  envelope's frames copied, body (may be NULL) taken. Straight to libzmq,
//  without building a zmsg. Never blocks: 0, or -1 with errno EAGAIN when
//  the message could not go (libzmq takes all parts once it took the first).
static int s_send (mdp_engine_t *self, mdp_proto_cmd_t cmd, zmsg_t *envelope, zmsg_t *body)
{
    const byte *command = &mdp_proto_codes[self->version == 2][cmd]; //  static: sent as is
    void *handle = self->dealer ? zsock_resolve (self->dealer) : NULL;
    size_t frames = (envelope ? zmsg_size (envelope) : 0) + (body ? zmsg_size (body) : 0);
    int more = frames ? ZMQ_SNDMORE : 0;
    if (!handle || zmq_send_const (handle, "", 0, ZMQ_SNDMORE) != 0) {
        zsys_warning ("%s: could not send command 0x%02x to the broker", self->name, *command);
        zmsg_destroy (&body);
        errno = EAGAIN;
        return -1;
    }
    zmq_send_const (handle, mdp_proto_worker (self->version), MDP_PROTO_LEN, ZMQ_SNDMORE);
    zmq_send_const (handle, command, 1, more);
    for (zframe_t *frame = envelope ? zmsg_first (envelope) : NULL; frame;
         frame = zmsg_next (envelope))
        zmq_send (handle, zframe_data (frame), zframe_size (frame), --frames ? ZMQ_SNDMORE : 0);
    zframe_t *frame;
    while (body && (frame = zmsg_pop (body)))
        zframe_send (&frame, self->dealer, --frames ? ZFRAME_MORE : 0);
    zmsg_destroy (&body);
    return 0;
}

//  Forget the held and the current request: they came on a connection that
//  is gone, their answers could not reach anyone.
static void s_forget (mdp_engine_t *self)
{
    zmsg_destroy (&self->held);
    zmsg_destroy (&self->current);
}

void mdp_engine_close (mdp_engine_t *self, bool goodbye)
{
    if (self->dealer && goodbye) {
        s_send (self, MDP_PROTO_DISCONNECT, NULL, NULL);
        zsock_set_linger (self->dealer, DISCONNECT_LINGER);
    }
    zsock_destroy (&self->dealer);
    s_forget (self);
    self->parked = true;
}

//  Drop the connection and schedule the next one. Losing a broker we were
//  registered with is a first failure: reconnect at once (plus jitter of up
//  to a quarter of the initial wait), so a restarted broker has its workers
//  back within a heartbeat or two. Later failures back off, doubling, capped
//  at one heartbeat (and at the configured maximum), plus up to 25% jitter so
//  that workers do not all come back at once.
static void s_disconnect (mdp_engine_t *self, int64_t now)
{
    zsock_destroy (&self->dealer);
    s_forget (self);
    int cap = self->heartbeat < self->reconnect_max ? self->heartbeat : self->reconnect_max;
    int wait = self->heard ? 0 : self->backoff < cap ? self->backoff : cap;
    int spread = (self->heard ? self->reconnect_initial : wait) / 4;
    int jitter = spread > 0 ? (int) (rand_r (&self->seed) % (unsigned) (spread + 1)) : 0;
    self->reconnect_at = now + wait + jitter;
    if (!self->heard)
        self->backoff = self->backoff > cap / 2 ? cap : self->backoff * 2;
    self->heard = false;
}

int mdp_engine_connect (mdp_engine_t *self, int64_t now)
{
    self->parked = false;
    if (self->dealer)
        return 0;
    self->dealer = zsock_new (ZMQ_DEALER);
    if (self->dealer)
        mdp_curve_apply (&self->curve, self->dealer);
    if (!self->dealer || zsock_connect (self->dealer, "%s", self->endpoint) != 0) {
        zsys_error ("%s: cannot connect to '%s'", self->name, self->endpoint);
        s_disconnect (self, now);
        errno = EINVAL;
        return -1;
    }
    zsock_set_linger (self->dealer, 0);
    zsock_set_sndtimeo (self->dealer, 0);
    zmsg_t *ready = zmsg_new ();
    if (ready)
        zmsg_addstr (ready, self->service);
    s_send (self, MDP_PROTO_READY, NULL, ready);
    self->heard = false;
    self->generation++;
    self->heartbeat_at = now + self->heartbeat;
    self->expiry_at = now + (int64_t) self->heartbeat * self->liveness;
    return 0;
}

zsock_t *mdp_engine_socket (mdp_engine_t *self)
{
    return self->dealer;
}

int mdp_engine_timeout (mdp_engine_t *self, int64_t now)
{
    int64_t next;
    if (self->dealer)
        next = self->heartbeat_at < self->expiry_at ? self->heartbeat_at : self->expiry_at;
    else if (!self->parked)
        next = self->reconnect_at;
    else
        return -1;
    int64_t left = next - now;
    return left < 0 ? 0 : left > INT_MAX ? INT_MAX : (int) left;
}

void mdp_engine_tick (mdp_engine_t *self, int64_t now)
{
    if (self->dealer && now >= self->expiry_at) {
        zsys_warning ("%s: broker silent for %d msecs, reconnecting", self->name,
                      self->heartbeat * self->liveness);
        s_disconnect (self, now);
    }
    if (self->dealer && now >= self->heartbeat_at) {
        s_send (self, MDP_PROTO_HEARTBEAT, NULL, NULL);
        self->heartbeat_at = now + self->heartbeat;
    }
    if (!self->dealer && !self->parked && now >= self->reconnect_at)
        mdp_engine_connect (self, now);
}

//  Strip and check the header [""][protocol][command], protocol being ours.
//  Returns the command's meaning, -2 for an unknown command byte, or -1 if
//  the message has no such header.
static int s_header (mdp_engine_t *self, zmsg_t *msg, int *code)
{
    *code = -1;
    if (zmsg_size (msg) < 3)
        return -1;
    zframe_t *empty = zmsg_pop (msg);
    zframe_t *protocol = zmsg_pop (msg);
    zframe_t *command = zmsg_pop (msg);
    if (zframe_size (empty) == 0 && zframe_streq (protocol, mdp_proto_worker (self->version)) &&
        zframe_size (command) == 1)
        *code = *zframe_data (command);
    zframe_destroy (&empty);
    zframe_destroy (&protocol);
    zframe_destroy (&command);
    if (*code < 0)
        return -1;
    int meaning = mdp_proto_command (self->version, *code);
    return meaning < 0 ? -2 : meaning;
}

//  True if msg starts [address...][""] with at least one address frame.
static bool s_has_envelope (zmsg_t *msg)
{
    size_t addresses = 0;
    for (zframe_t *frame = zmsg_first (msg); frame; frame = zmsg_next (msg)) {
        if (zframe_size (frame) == 0)
            return addresses > 0;
        addresses++;
    }
    return false;
}

//  A valid REQUEST: hold it. One not taken yet means the broker gave up on
//  it (a broker sends the next only after a reply or its deadline): the
//  newer one replaces it.
static void s_hold (mdp_engine_t *self, zmsg_t **msg_p)
{
    if (self->held)
        zsys_warning ("%s: a request not yet served was replaced by a newer one", self->name);
    zmsg_destroy (&self->held);
    self->held = *msg_p;
    *msg_p = NULL;
}

bool mdp_engine_handle (mdp_engine_t *self, zmsg_t **msg_p, int64_t now)
{
    zmsg_t *msg = *msg_p;
    if (!msg)
        return self->held != NULL;
    self->expiry_at = now + (int64_t) self->heartbeat * self->liveness; //  any message proves it alive
    int code;
    int command = s_header (self, msg, &code);
    if (command == MDP_PROTO_HEARTBEAT || command == MDP_PROTO_REQUEST) {
        self->heard = true;
        self->backoff = self->reconnect_initial;
    }
    if (command == MDP_PROTO_REQUEST && s_has_envelope (msg))
        s_hold (self, msg_p);
    else if (command == MDP_PROTO_DISCONNECT) {
        zsys_info ("%s: broker sent DISCONNECT, reconnecting", self->name);
        s_disconnect (self, now);
    } else if (command == MDP_PROTO_REQUEST)
        zsys_warning ("%s: dropped a REQUEST without [address...][\"\"]", self->name);
    else if (command != MDP_PROTO_HEARTBEAT && code >= 0)
        zsys_warning ("%s: dropped command 0x%02x, not one a broker sends", self->name, code);
    else if (command == -1)
        zsys_warning ("%s: dropped a message without [\"\"][\"%s\"][command]", self->name,
                      mdp_proto_worker (self->version));
    zmsg_destroy (msg_p);
    return self->held != NULL;
}

bool mdp_engine_recv (mdp_engine_t *self, int64_t now)
{
    while (self->dealer && (zsock_events (self->dealer) & ZMQ_POLLIN)) {
        zmsg_t *msg = zmsg_recv (self->dealer);
        if (!msg)
            break;
        mdp_engine_handle (self, &msg, now);
    }
    return self->held != NULL;
}

bool mdp_engine_held (mdp_engine_t *self)
{
    return self->held != NULL;
}

zmsg_t *mdp_engine_take (mdp_engine_t *self)
{
    zmsg_t *body = self->held;
    if (!body)
        return NULL;
    self->held = NULL;
    zmsg_destroy (&self->current);
    zmsg_t *envelope = zmsg_new ();
    while (envelope && zmsg_size (body) > 0) {
        zframe_t *frame = zmsg_pop (body);
        bool delimiter = zframe_size (frame) == 0;
        zmsg_append (envelope, &frame);
        if (delimiter)
            break;
    }
    self->current = envelope;
    self->generation++;
    return body;
}

bool mdp_engine_busy (mdp_engine_t *self)
{
    return self->current != NULL;
}

int mdp_engine_reply (mdp_engine_t *self, zmsg_t **body_p, bool final)
{
    zmsg_t *body = body_p ? *body_p : NULL;
    if (body_p)
        *body_p = NULL;
    int error = !self->current ? EINVAL : !final && self->version != 2 ? EPROTO : 0;
    if (error) {
        zmsg_destroy (&body);
        errno = error;
        return -1;
    }
    int rc = s_send (self, final ? MDP_PROTO_FINAL : MDP_PROTO_PARTIAL, self->current, body);
    if (final)
        zmsg_destroy (&self->current);
    return rc;
}

uint64_t mdp_engine_generation (mdp_engine_t *self)
{
    return self->generation;
}

int mdp_engine_version (mdp_engine_t *self)
{
    return self->version;
}
