/*  mdp_engine.c - the worker side of MDP/0.1 and MDP/0.2 once, for every
    owner: READY, heartbeats both ways, broker-silence detection, reconnect
    with back-off and jitter, DISCONNECT, and the header checks. No threads,
    no clock: the owner passes "now" and polls the socket. A REQUEST is held
    until the owner takes it, so an owner with several engines (one per
    broker) can serve one request at a time without losing the others.
*/
#include "mdp_engine.h"
#include "mdp_msg_private.h"
#include "mdp_proto.h"
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#define DISCONNECT_LINGER 100 //  msecs a final DISCONNECT may take to get out

//  A list of frames as libzmq hands them over: receiving into it and moving
//  frames between lists allocates nothing once the array has grown, so the
//  receive path builds no zmsg or zframe per message (issue 14).
typedef struct {
    zmq_msg_t *part; //  the frames, owned; part[0..size) are initialised
    size_t size;     //  frames held
    size_t max;      //  room in part
} frames_t;

//  Close every frame; the array stays for reuse.
static void s_frames_clear (frames_t *list)
{
    for (size_t index = 0; index < list->size; index++)
        zmq_msg_close (&list->part[index]);
    list->size = 0;
}

static void s_frames_destroy (frames_t *list)
{
    s_frames_clear (list);
    free (list->part);
    list->part = NULL;
    list->max = 0;
}

//  A new, empty frame at the end of list; NULL if out of memory.
static zmq_msg_t *s_frames_add (frames_t *list)
{
    if (list->size == list->max) {
        size_t max = list->max ? list->max * 2 : 8;
        zmq_msg_t *part = realloc (list->part, max * sizeof (zmq_msg_t));
        if (!part)
            return NULL;
        list->part = part;
        list->max = max;
    }
    zmq_msg_t *frame = &list->part[list->size++];
    zmq_msg_init (frame);
    return frame;
}

//  Move from's frames [first, from->size) to the end of to, in order; from
//  keeps its frames before first. -1 if out of memory (nothing lost: the
//  frames not moved stay in from).
static int s_frames_move (frames_t *to, frames_t *from, size_t first)
{
    size_t index;
    for (index = first; index < from->size; index++) {
        zmq_msg_t *frame = s_frames_add (to);
        if (!frame)
            break;
        zmq_msg_move (frame, &from->part[index]);
        zmq_msg_close (&from->part[index]);
    }
    if (index < from->size) { //  out of memory: drop the rest
        for (; index < from->size; index++)
            zmq_msg_close (&from->part[index]);
        from->size = first;
        return -1;
    }
    from->size = first;
    return 0;
}

//  Read one whole message into list (emptied first) without blocking. 0, or
//  -1 if none waits (or out of memory: the message is dropped).
static int s_frames_recv (frames_t *list, void *handle)
{
    s_frames_clear (list);
    int more = 1;
    while (more) {
        zmq_msg_t *frame = s_frames_add (list);
        if (!frame) {
            zmq_msg_t skip; //  out of memory: read and drop the rest
            zmq_msg_init (&skip);
            while (zmq_msg_more (&list->part[list->size - 1]) &&
                   zmq_msg_recv (&skip, handle, ZMQ_DONTWAIT) >= 0 && zmq_msg_more (&skip))
                ;
            zmq_msg_close (&skip);
            s_frames_clear (list);
            return -1;
        }
        if (zmq_msg_recv (frame, handle, list->size == 1 ? ZMQ_DONTWAIT : 0) < 0) {
            s_frames_clear (list);
            return -1;
        }
        more = zmq_msg_more (frame);
    }
    return 0;
}

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
    frames_t in;           //  the message being read, reused from message to message
    frames_t held;         //  a REQUEST not yet taken: [address...][""][body...]
    frames_t current;      //  the taken request's envelope [address...][""]
    bool busy;             //  current holds a request not yet finished
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
    self->seed = (unsigned int)(zclock_usecs () ^ (int64_t)getpid () ^ (intptr_t)self);
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
    s_frames_destroy (&self->in);
    s_frames_destroy (&self->held);
    s_frames_destroy (&self->current);
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
        self->expiry_at = now + (int64_t)self->heartbeat * self->liveness;
    }
}

void mdp_engine_set_reconnect (mdp_engine_t *self, int initial_msecs, int max_msecs)
{
    self->reconnect_initial = initial_msecs > 0 ? initial_msecs : 1;
    self->reconnect_max = max_msecs > self->reconnect_initial ? max_msecs : self->reconnect_initial;
    self->backoff = self->reconnect_initial;
}

void mdp_engine_set_curve (mdp_engine_t *self, const mdp_curve_t *curve)
{
    self->curve = *curve;
}

//  Send [""][protocol][command][envelope...] to the broker, the envelope's
//  frames copied, with MORE on the last when body_frames are to follow.
//  Straight to libzmq, without building a zmsg. Never blocks: the socket's
//  handle for the body frames, or NULL with errno EAGAIN when the message
//  could not go (libzmq takes all parts once it took the first).
static void *s_send_head (mdp_engine_t *self, mdp_proto_cmd_t cmd, frames_t *envelope,
                          size_t body_frames)
{
    const byte *command = &mdp_proto_codes[self->version == 2][cmd]; //  static: sent as is
    void *handle = self->dealer ? zsock_resolve (self->dealer) : NULL;
    size_t frames = (envelope ? envelope->size : 0) + body_frames;
    int more = frames ? ZMQ_SNDMORE : 0;
    if (!handle || zmq_send_const (handle, "", 0, ZMQ_SNDMORE) != 0) {
        zsys_warning ("%s: could not send command 0x%02x to the broker", self->name, *command);
        errno = EAGAIN;
        return NULL;
    }
    zmq_send_const (handle, mdp_proto_worker (self->version), MDP_PROTO_LEN, ZMQ_SNDMORE);
    zmq_send_const (handle, command, 1, more);
    for (size_t index = 0; envelope && index < envelope->size; index++)
        zmq_send (handle, zmq_msg_data (&envelope->part[index]),
                  zmq_msg_size (&envelope->part[index]), --frames ? ZMQ_SNDMORE : 0);
    return handle;
}

//  Send [""][protocol][command][envelope...][body...], body (may be NULL)
//  taken. 0, or -1 with errno EAGAIN (see s_send_head).
static int s_send (mdp_engine_t *self, mdp_proto_cmd_t cmd, frames_t *envelope, zmsg_t *body)
{
    size_t frames = body ? zmsg_size (body) : 0;
    void *handle = s_send_head (self, cmd, envelope, frames);
    zframe_t *frame;
    while (handle && body && (frame = zmsg_pop (body)))
        zframe_send (&frame, self->dealer, --frames ? ZFRAME_MORE : 0);
    zmsg_destroy (&body);
    return handle ? 0 : -1;
}

//  Forget the held and the current request: they came on a connection that
//  is gone, their answers could not reach anyone.
static void s_forget (mdp_engine_t *self)
{
    s_frames_clear (&self->held);
    s_frames_clear (&self->current);
    self->busy = false;
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
    int jitter = spread > 0 ? (int)(rand_r (&self->seed) % (unsigned)(spread + 1)) : 0;
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
    self->expiry_at = now + (int64_t)self->heartbeat * self->liveness;
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
    return left < 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
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

//  Check the header [""][protocol][command] of msg, protocol being ours.
//  Returns the command's meaning, -2 for an unknown command byte, or -1 if
//  the message has no such header; *code is the command byte or -1.
static int s_header (mdp_engine_t *self, frames_t *msg, int *code)
{
    *code = -1;
    if (msg->size < 3)
        return -1;
    zmq_msg_t *part = msg->part;
    if (zmq_msg_size (&part[0]) == 0 && zmq_msg_size (&part[1]) == MDP_PROTO_LEN &&
        memcmp (zmq_msg_data (&part[1]), mdp_proto_worker (self->version), MDP_PROTO_LEN) == 0 &&
        zmq_msg_size (&part[2]) == 1)
        *code = *(byte *)zmq_msg_data (&part[2]);
    if (*code < 0)
        return -1;
    int meaning = mdp_proto_command (self->version, *code);
    return meaning < 0 ? -2 : meaning;
}

//  The number of frames [address...][""] that msg's frames from first on
//  start with, at least one address; 0 if there is no such envelope.
static size_t s_envelope_size (frames_t *msg, size_t first)
{
    for (size_t index = first; index < msg->size; index++)
        if (zmq_msg_size (&msg->part[index]) == 0)
            return index > first ? index - first + 1 : 0;
    return 0;
}

//  A valid REQUEST in self->in: hold it (its frames after the header). One
//  not taken yet means the broker gave up on it (a broker sends the next
//  only after a reply or its deadline): the newer one replaces it.
static void s_hold (mdp_engine_t *self)
{
    if (self->held.size)
        zsys_warning ("%s: a request not yet served was replaced by a newer one", self->name);
    s_frames_clear (&self->held);
    if (s_frames_move (&self->held, &self->in, 3) != 0) {
        zsys_error ("%s: out of memory, dropped a REQUEST", self->name);
        s_frames_clear (&self->held);
    }
}

//  Handle the message in self->in, then empty it. True if a request is held.
static bool s_handle (mdp_engine_t *self, int64_t now)
{
    self->expiry_at =
        now + (int64_t)self->heartbeat * self->liveness; //  any message proves it alive
    int code;
    int command = s_header (self, &self->in, &code);
    if (command == MDP_PROTO_HEARTBEAT || command == MDP_PROTO_REQUEST) {
        self->heard = true;
        self->backoff = self->reconnect_initial;
    }
    if (command == MDP_PROTO_REQUEST && s_envelope_size (&self->in, 3))
        s_hold (self);
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
    s_frames_clear (&self->in);
    return self->held.size > 0;
}

bool mdp_engine_handle (mdp_engine_t *self, zmsg_t **msg_p, int64_t now)
{
    zmsg_t *msg = *msg_p;
    if (!msg)
        return self->held.size > 0;
    s_frames_clear (&self->in);
    zframe_t *frame;
    while ((frame = zmsg_pop (msg))) { //  copied: this path is not the hot one
        zmq_msg_t *part = s_frames_add (&self->in);
        if (!part || zmq_msg_init_size (part, zframe_size (frame)) != 0) {
            if (part)
                zmq_msg_init (part); //  keep it closable
            zframe_destroy (&frame);
            zsys_error ("%s: out of memory, dropped a message", self->name);
            s_frames_clear (&self->in);
            zmsg_destroy (msg_p);
            return self->held.size > 0;
        }
        memcpy (zmq_msg_data (part), zframe_data (frame), zframe_size (frame));
        zframe_destroy (&frame);
    }
    zmsg_destroy (msg_p);
    return s_handle (self, now);
}

bool mdp_engine_recv (mdp_engine_t *self, int64_t now)
{
    //  self->dealer is checked each time: a DISCONNECT closes it
    while (self->dealer && s_frames_recv (&self->in, zsock_resolve (self->dealer)) == 0)
        s_handle (self, now);
    return self->held.size > 0;
}

bool mdp_engine_held (mdp_engine_t *self)
{
    return self->held.size > 0;
}

zmsg_t *mdp_engine_take (mdp_engine_t *self)
{
    if (!self->held.size)
        return NULL;
    s_frames_clear (&self->current);
    zmsg_t *body = zmsg_new ();
    size_t envelope = s_envelope_size (&self->held, 0);
    for (size_t index = envelope; body && index < self->held.size; index++) {
        zmq_msg_t *part = &self->held.part[index];
        zframe_t *frame = zframe_new (zmq_msg_data (part), zmq_msg_size (part));
        if (!frame || zmsg_append (body, &frame) != 0) {
            zframe_destroy (&frame);
            zmsg_destroy (&body);
        }
    }
    for (size_t index = envelope; index < self->held.size; index++)
        zmq_msg_close (&self->held.part[index]);
    self->held.size = envelope;
    self->busy = body && s_frames_move (&self->current, &self->held, 0) == 0;
    s_frames_clear (&self->held);
    self->generation++;
    if (!self->busy) {
        zsys_error ("%s: out of memory, dropped a REQUEST", self->name);
        s_frames_clear (&self->current);
        zmsg_destroy (&body);
    }
    return body;
}

mdp_msg_t *mdp_engine_take_msg (mdp_engine_t *self)
{
    if (!self->held.size) {
        errno = EAGAIN;
        return NULL;
    }
    s_frames_clear (&self->current);
    size_t envelope = s_envelope_size (&self->held, 0);
    mdp_msg_t *msg = mdp_msg_decode_parts (self->held.part + envelope, self->held.size - envelope);
    int error = msg ? 0 : errno;
    for (size_t index = envelope; index < self->held.size; index++)
        zmq_msg_close (&self->held.part[index]);
    self->held.size = envelope;
    self->busy = s_frames_move (&self->current, &self->held, 0) == 0;
    self->generation++;
    if (!self->busy) {
        zsys_error ("%s: out of memory, dropped a REQUEST", self->name);
        mdp_msg_destroy (&msg);
        error = ENOMEM;
    }
    errno = error ? error : errno;
    return msg;
}

bool mdp_engine_busy (mdp_engine_t *self)
{
    return self->busy;
}

int mdp_engine_reply (mdp_engine_t *self, zmsg_t **body_p, bool final)
{
    zmsg_t *body = body_p ? *body_p : NULL;
    if (body_p)
        *body_p = NULL;
    int error = !self->busy ? EINVAL : !final && self->version != 2 ? EPROTO : 0;
    if (error) {
        zmsg_destroy (&body);
        errno = error;
        return -1;
    }
    int rc = s_send (self, final ? MDP_PROTO_FINAL : MDP_PROTO_PARTIAL, &self->current, body);
    if (final) {
        s_frames_clear (&self->current);
        self->busy = false;
    }
    return rc;
}

int mdp_engine_reply_msg (mdp_engine_t *self, const mdp_msg_t *msg, bool final)
{
    int error = !self->busy ? EINVAL : !final && self->version != 2 ? EPROTO : !msg ? EINVAL : 0;
    char *json = error ? NULL : mdp_json_print (mdp_msg_data (msg));
    if (!error && !json)
        error = ENOMEM;
    if (error) {
        errno = error;
        return -1;
    }
    const char *action = mdp_msg_action (msg);
    void *handle =
        s_send_head (self, final ? MDP_PROTO_FINAL : MDP_PROTO_PARTIAL, &self->current, 2);
    if (handle) {
        zmq_send (handle, action, strlen (action), ZMQ_SNDMORE);
        zmq_send (handle, json, strlen (json), 0);
    }
    cJSON_free (json);
    if (final) {
        s_frames_clear (&self->current);
        self->busy = false;
    }
    return handle ? 0 : -1;
}

uint64_t mdp_engine_generation (mdp_engine_t *self)
{
    return self->generation;
}

int mdp_engine_version (mdp_engine_t *self)
{
    return self->version;
}
