/*  mdp_worker.c - mdp_worker_t, an MDPW01 or MDPW02 worker. The DEALER to the
    broker lives in a background agent (a zactor) that sends READY, heartbeats
    on time even while the hook is busy, notices a silent broker and reconnects
    with back-off. Requests cross the actor pipe to the caller's thread, which
    runs the hook and hands partial and final replies back the same way.
    Nothing the broker sends can assert.
*/
#include "mdp_curve.h"
#include "mdp.h"
#include "mdp_proto.h"
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

//  The actor pipe carries, besides czmq's $TERM and the start-up signals:
//    caller -> agent   ["REPLY"][address...][""][body...]     (REPLY or FINAL)
//                      ["PARTIAL"][address...][""][body...]   (MDPW02 only)
//                      ["SET"][heartbeat][liveness][initial][max]
//    agent -> caller   ["REQUEST"][address...][""][body...]

#define DISCONNECT_LINGER 100 //  msecs a final DISCONNECT may take to get out

//  The worker commands of both protocols; s_code gives each one's byte.
typedef enum {
    CMD_READY,
    CMD_REQUEST,
    CMD_PARTIAL,
    CMD_FINAL,
    CMD_HEARTBEAT,
    CMD_DISCONNECT
} cmd_t;
static const byte s_codes[2][6] = {
    {MDPW01_READY, MDPW01_REQUEST, 0, MDPW01_REPLY, MDPW01_HEARTBEAT, MDPW01_DISCONNECT},
    {MDPW02_READY, MDPW02_REQUEST, MDPW02_PARTIAL, MDPW02_FINAL, MDPW02_HEARTBEAT,
     MDPW02_DISCONNECT}};

static int s_code (int protocol, cmd_t command)
{
    return s_codes[protocol == 2][command];
}

struct _mdp_worker_t {
    char *endpoint;           //  broker endpoint, owned
    char *service;            //  service name, owned
    mdp_worker_fn *handler;   //  on_request hook, or NULL
    void *handler_arg;        //  the hook's argument
    int heartbeat;            //  msecs between HEARTBEATs
    int liveness;             //  silent heartbeats before the broker is gone
    int reconnect_initial;    //  first reconnect wait, msecs
    int reconnect_max;        //  cap on the reconnect wait, msecs
    int protocol;             //  1 (MDPW01) or 2 (MDPW02)
    mdp_curve_t curve;        //  CURVE keys, when set
    zmsg_t *current;          //  while the hook runs: ["REPLY"][address...][""]
    zactor_t *actor;          //  the agent; NULL until first needed
    zsock_t *wakeup;          //  PULL that mdp_worker_stop pokes, polled by run
    char wakeup_endpoint[64]; //  its inproc endpoint
    atomic_bool stopping;     //  set by mdp_worker_stop, cleared when run returns
};

typedef struct {
    zsock_t *pipe;         //  to the caller's thread
    zpoller_t *poller;     //  the pipe, plus the dealer while connected
    zsock_t *dealer;       //  to the broker; NULL while waiting to reconnect
    char *endpoint;        //  broker endpoint, owned
    char *service;         //  service name, owned
    int heartbeat;         //  msecs between HEARTBEATs
    int liveness;          //  silent heartbeats before the broker is gone
    int reconnect_initial; //  first reconnect wait, msecs
    int reconnect_max;     //  cap on the reconnect wait, msecs
    int protocol;          //  1 (MDPW01) or 2 (MDPW02), fixed
    mdp_curve_t curve;     //  CURVE keys, applied to each new socket
    int backoff;           //  next reconnect wait, before jitter
    int64_t heartbeat_at;  //  when the next HEARTBEAT is due
    int64_t expiry_at;     //  the broker is gone if silent until then
    int64_t reconnect_at;  //  when to reconnect, while dealer is NULL
    unsigned int seed;     //  rand_r state for the jitter
    bool heard;            //  this socket got HEARTBEAT or REQUEST: we were registered
    bool terminated;       //  $TERM received
} agent_t;

//  ---------------------------------------------------------------------------
//  The agent: runs in the actor thread and owns the broker socket.

static agent_t *s_agent_new (zsock_t *pipe, mdp_worker_t *worker)
{
    agent_t *self = calloc (1, sizeof (agent_t));
    if (!self)
        return NULL;
    self->pipe = pipe;
    self->poller = zpoller_new (pipe, NULL);
    self->endpoint = strdup (worker->endpoint);
    self->service = strdup (worker->service);
    self->heartbeat = worker->heartbeat;
    self->liveness = worker->liveness;
    self->reconnect_initial = worker->reconnect_initial;
    self->reconnect_max = worker->reconnect_max;
    self->protocol = worker->protocol;
    self->curve = worker->curve;
    self->backoff = self->reconnect_initial;
    self->seed = (unsigned int)(zclock_usecs () ^ (int64_t)getpid () ^ (intptr_t)self);
    if (!self->poller || !self->endpoint || !self->service) {
        zpoller_destroy (&self->poller);
        free (self->endpoint);
        free (self->service);
        free (self);
        return NULL;
    }
    zpoller_set_nonstop (self->poller, true); //  only $TERM ends the agent
    zsock_set_sndtimeo (pipe, 0);             //  a caller that does not read never blocks us
    return self;
}

static void s_agent_destroy (agent_t **self_p)
{
    agent_t *self = *self_p;
    if (!self)
        return;
    zsock_set_sndtimeo (self->pipe, -1);
    zpoller_destroy (&self->poller);
    zsock_destroy (&self->dealer);
    free (self->endpoint);
    free (self->service);
    free (self);
    *self_p = NULL;
}

//  Send [""][protocol][command][frames...] to the broker, taking frames (may
//  be NULL). Never blocks; drops the message if it cannot go out now.
static void s_agent_send (agent_t *self, cmd_t cmd, zmsg_t *frames)
{
    zmsg_t *msg = frames ? frames : zmsg_new ();
    byte command = (byte)s_code (self->protocol, cmd);
    const char *protocol = self->protocol == 2 ? MDPW02 : MDPW01;
    if (self->dealer && msg && zmsg_pushmem (msg, &command, 1) == 0 &&
        zmsg_pushstr (msg, protocol) == 0 && zmsg_pushmem (msg, NULL, 0) == 0 &&
        zmsg_send (&msg, self->dealer) == 0)
        return;
    zsys_warning ("mdp_worker: could not send command 0x%02x to the broker", command);
    zmsg_destroy (&msg);
}

//  Drop the connection and schedule the next one. Losing a broker we were
//  registered with is a first failure: reconnect at once (plus jitter of up
//  to a quarter of the initial wait), so a restarted broker has its workers
//  back within a heartbeat or two. Later failures back off, doubling, capped
//  at one heartbeat (and at the configured maximum), plus up to 25% jitter so
//  that workers do not all come back at once.
static void s_agent_disconnect (agent_t *self)
{
    if (self->dealer) {
        zpoller_remove (self->poller, self->dealer);
        zsock_destroy (&self->dealer);
    }
    int cap = self->heartbeat < self->reconnect_max ? self->heartbeat : self->reconnect_max;
    int wait = self->heard ? 0 : self->backoff < cap ? self->backoff : cap;
    int spread = (self->heard ? self->reconnect_initial : wait) / 4;
    int jitter = spread > 0 ? (int) (rand_r (&self->seed) % (spread + 1)) : 0;
    self->reconnect_at = zclock_mono () + wait + jitter;
    if (!self->heard)
        self->backoff = self->backoff > cap / 2 ? cap : self->backoff * 2;
    self->heard = false;
}

//  Open a new DEALER, send READY and restart the heartbeat clocks.
static int s_agent_connect (agent_t *self)
{
    self->dealer = zsock_new (ZMQ_DEALER);
    if (self->dealer)
        mdp_curve_apply (&self->curve, self->dealer);
    if (!self->dealer || zsock_connect (self->dealer, "%s", self->endpoint) != 0) {
        zsys_error ("mdp_worker: cannot connect to '%s'", self->endpoint);
        zsock_destroy (&self->dealer);
        s_agent_disconnect (self);
        return -1;
    }
    zsock_set_linger (self->dealer, 0);
    zsock_set_sndtimeo (self->dealer, 0);
    zpoller_add (self->poller, self->dealer);
    zmsg_t *ready = zmsg_new ();
    if (ready)
        zmsg_addstr (ready, self->service);
    s_agent_send (self, CMD_READY, ready);
    self->heard = false;
    int64_t now = zclock_mono ();
    self->heartbeat_at = now + self->heartbeat;
    self->expiry_at = now + (int64_t)self->heartbeat * self->liveness;
    return 0;
}

//  Strip and check the header [""][protocol][command], protocol being ours.
//  Returns the command byte, or -1 if the message has no such header.
static int s_agent_header (agent_t *self, zmsg_t *msg)
{
    if (zmsg_size (msg) < 3)
        return -1;
    zframe_t *empty = zmsg_pop (msg);
    zframe_t *protocol = zmsg_pop (msg);
    zframe_t *command = zmsg_pop (msg);
    int rc = -1;
    if (zframe_size (empty) == 0 &&
        zframe_streq (protocol, self->protocol == 2 ? MDPW02 : MDPW01) &&
        zframe_size (command) == 1)
        rc = *zframe_data (command);
    zframe_destroy (&empty);
    zframe_destroy (&protocol);
    zframe_destroy (&command);
    return rc;
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

//  One message from the broker: any message at all proves it alive.
static void s_agent_recv_broker (agent_t *self)
{
    zmsg_t *msg = zmsg_recv (self->dealer);
    if (!msg)
        return;
    self->expiry_at = zclock_mono () + (int64_t)self->heartbeat * self->liveness;
    int command = s_agent_header (self, msg);
    if (command == s_code (self->protocol, CMD_HEARTBEAT)
        || command == s_code (self->protocol, CMD_REQUEST))
        self->heard = true;
    if (command == s_code (self->protocol, CMD_HEARTBEAT))
        self->backoff = self->reconnect_initial;
    else if (command == s_code (self->protocol, CMD_REQUEST) && s_has_envelope (msg)) {
        self->backoff = self->reconnect_initial;
        if (zmsg_pushstr (msg, "REQUEST") == 0 && zmsg_send (&msg, self->pipe) != 0)
            zsys_warning ("mdp_worker: request dropped, the caller is not reading");
    } else if (command == s_code (self->protocol, CMD_DISCONNECT)) {
        zsys_info ("mdp_worker: broker sent DISCONNECT, reconnecting");
        s_agent_disconnect (self);
    } else if (command == s_code (self->protocol, CMD_REQUEST))
        zsys_warning ("mdp_worker: dropped a REQUEST without [address...][\"\"]");
    else if (command >= 0)
        zsys_warning ("mdp_worker: dropped unknown command 0x%02x", command);
    else
        zsys_warning ("mdp_worker: dropped a message without [\"\"][\"MDPW0%d\"][command]",
                      self->protocol);
    zmsg_destroy (&msg);
}

//  ["SET"][heartbeat][liveness][initial][max]: settings changed after start.
static void s_agent_set (agent_t *self, zmsg_t *msg)
{
    int values[4];
    for (int index = 0; index < 4; index++) {
        char *text = zmsg_popstr (msg);
        values[index] = text ? atoi (text) : 0;
        zstr_free (&text);
    }
    self->heartbeat = values[0];
    self->liveness = values[1];
    self->reconnect_initial = values[2];
    self->reconnect_max = values[3];
    self->backoff = self->reconnect_initial;
    int64_t now = zclock_mono ();
    if (self->heartbeat_at > now + self->heartbeat)
        self->heartbeat_at = now + self->heartbeat;
    self->expiry_at = now + (int64_t)self->heartbeat * self->liveness;
}

//  One command from the caller's thread.
static void s_agent_recv_api (agent_t *self)
{
    zmsg_t *msg = zmsg_recv (self->pipe);
    char *command = msg ? zmsg_popstr (msg) : NULL;
    if (!command || streq (command, "$TERM")) {
        self->terminated = true;
        if (self->dealer) { //  best effort: tell the broker we go
            s_agent_send (self, CMD_DISCONNECT, NULL);
            zsock_set_linger (self->dealer, DISCONNECT_LINGER);
        }
    } else if (streq (command, "REPLY") || streq (command, "PARTIAL")) {
        s_agent_send (self, streq (command, "REPLY") ? CMD_FINAL : CMD_PARTIAL, msg);
        msg = NULL;
    } else if (streq (command, "SET"))
        s_agent_set (self, msg);
    zstr_free (&command);
    zmsg_destroy (&msg);
}

//  All time-driven work: broker expiry, heartbeats, reconnecting.
static void s_agent_tick (agent_t *self)
{
    int64_t now = zclock_mono ();
    if (self->dealer && now >= self->expiry_at) {
        zsys_warning ("mdp_worker: broker silent for %d msecs, reconnecting",
                      self->heartbeat * self->liveness);
        s_agent_disconnect (self);
    }
    if (self->dealer && now >= self->heartbeat_at) {
        s_agent_send (self, CMD_HEARTBEAT, NULL);
        self->heartbeat_at = now + self->heartbeat;
    }
    if (!self->dealer && now >= self->reconnect_at)
        s_agent_connect (self);
}

//  Msecs until s_agent_tick has something to do.
static int s_agent_timeout (agent_t *self)
{
    int64_t next = self->reconnect_at;
    if (self->dealer)
        next = self->heartbeat_at < self->expiry_at ? self->heartbeat_at : self->expiry_at;
    int64_t left = next - zclock_mono ();
    return left < 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
}

//  The actor. After czmq's start-up signal it sends a second one: 0 when it
//  connected, 1 when it could not (then it only waits for $TERM).
static void s_agent_actor (zsock_t *pipe, void *args)
{
    agent_t *self = s_agent_new (pipe, (mdp_worker_t *)args);
    zsock_signal (pipe, 0);
    bool ok = self && s_agent_connect (self) == 0;
    zsock_signal (pipe, ok ? 0 : 1);
    if (!ok) {
        zsock_set_sndtimeo (pipe, -1);
        while (true) {
            char *command = zstr_recv (pipe);
            bool term = !command || streq (command, "$TERM");
            zstr_free (&command);
            if (term)
                break;
        }
    }
    while (ok && !self->terminated) {
        void *which = zpoller_wait (self->poller, s_agent_timeout (self));
        if (which == self->pipe)
            s_agent_recv_api (self);
        else if (which && which == self->dealer)
            s_agent_recv_broker (self);
        else if (zpoller_terminated (self->poller))
            break; //  the context is going away
        s_agent_tick (self);
    }
    s_agent_destroy (&self);
}

//  ---------------------------------------------------------------------------
//  The worker: runs in the caller's thread.

mdp_worker_t *mdp_worker_new (const char *endpoint, const char *service)
{
    if (!endpoint || !*endpoint || !service || !*service ||
        strlen (service) > MDP_MAX_SERVICE_NAME ||
        strncmp (service, MDP_MMI_PREFIX, strlen (MDP_MMI_PREFIX)) == 0) {
        errno = EINVAL;
        return NULL;
    }
    mdp_worker_t *self = calloc (1, sizeof (mdp_worker_t));
    if (!self) {
        errno = ENOMEM;
        return NULL;
    }
    self->endpoint = strdup (endpoint);
    self->service = strdup (service);
    self->heartbeat = MDP_DEFAULT_HEARTBEAT;
    self->liveness = MDP_DEFAULT_LIVENESS;
    self->reconnect_initial = 250;
    self->reconnect_max = 5000;
    self->protocol = 1;
    atomic_init (&self->stopping, false);
    snprintf (self->wakeup_endpoint, sizeof self->wakeup_endpoint, "inproc://mdp-worker-%p",
              (void *)self);
    self->wakeup = zsock_new (ZMQ_PULL);
    if (!self->endpoint || !self->service || !self->wakeup ||
        zsock_bind (self->wakeup, "%s", self->wakeup_endpoint) != 0) {
        mdp_worker_destroy (&self);
        errno = ENOMEM;
    }
    return self;
}

void mdp_worker_destroy (mdp_worker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    mdp_worker_t *self = *self_p;
    zactor_destroy (&self->actor); //  the agent sends DISCONNECT on $TERM
    zsock_destroy (&self->wakeup);
    free (self->endpoint);
    free (self->service);
    free (self);
    *self_p = NULL;
}

void mdp_worker_set_handler (mdp_worker_t *self, mdp_worker_fn *fn, void *arg)
{
    self->handler = fn;
    self->handler_arg = arg;
}

//  Settings changed after the agent started go to it over the pipe.
static void s_push_settings (mdp_worker_t *self)
{
    if (self->actor)
        zsock_send (self->actor, "siiii", "SET", self->heartbeat, self->liveness,
                    self->reconnect_initial, self->reconnect_max);
}

void mdp_worker_set_heartbeat (mdp_worker_t *self, int msecs, int liveness)
{
    self->heartbeat = msecs > 0 ? msecs : 1;
    self->liveness = liveness > 0 ? liveness : 1;
    s_push_settings (self);
}

void mdp_worker_set_reconnect (mdp_worker_t *self, int initial_msecs, int max_msecs)
{
    self->reconnect_initial = initial_msecs > 0 ? initial_msecs : 1;
    self->reconnect_max = max_msecs > self->reconnect_initial ? max_msecs : self->reconnect_initial;
    s_push_settings (self);
}

//  Start the agent if it is not running. Signals are blocked while it is
//  created so that SIGINT/SIGTERM land in the caller's threads, where
//  mdp_worker_run can see them, and never in the agent.
static int s_start (mdp_worker_t *self)
{
    if (self->actor)
        return 0;
    sigset_t all, old;
    sigfillset (&all);
    pthread_sigmask (SIG_BLOCK, &all, &old);
    self->actor = zactor_new (s_agent_actor, self);
    pthread_sigmask (SIG_SETMASK, &old, NULL);
    if (self->actor && zsock_wait (self->actor) == 0)
        return 0;
    zactor_destroy (&self->actor);
    errno = EINVAL;
    return -1;
}

zsock_t *mdp_worker_socket (mdp_worker_t *self)
{
    return s_start (self) == 0 ? zactor_sock (self->actor) : NULL;
}

const char *mdp_worker_service (mdp_worker_t *self)
{
    return self->service;
}

//  Turn ["REQUEST"][address...][""][body...] into the reply's envelope
//  ["REPLY"][address...][""], leaving just the body in request.
static zmsg_t *s_reply_envelope (zmsg_t *request)
{
    char *command = zmsg_popstr (request);
    bool valid = command && streq (command, "REQUEST");
    zstr_free (&command);
    zmsg_t *reply = valid ? zmsg_new () : NULL;
    if (!reply || zmsg_addstr (reply, "REPLY") != 0) {
        zmsg_destroy (&reply);
        return NULL;
    }
    while (zmsg_size (request) > 0) {
        zframe_t *frame = zmsg_pop (request);
        bool delimiter = zframe_size (frame) == 0;
        zmsg_append (reply, &frame);
        if (delimiter)
            break;
    }
    return reply;
}

//  The answer to one request body: the hook's, or an mdp.error of our own.
static mdp_msg_t *s_answer (mdp_worker_t *self, zmsg_t *body)
{
    mdp_msg_t *request = mdp_msg_decode (body);
    if (!request)
        return mdp_msg_new_error (400, "invalid request body: expected [action][json]");
    if (!self->handler) {
        mdp_msg_destroy (&request);
        return mdp_msg_new_error (501, "no handler for this service");
    }
    mdp_msg_t *reply = self->handler (self, request, self->handler_arg);
    mdp_msg_destroy (&request);
    return reply;
}

int mdp_worker_process (mdp_worker_t *self)
{
    if (s_start (self) != 0)
        return -1;
    if (!(zsock_events (self->actor) & ZMQ_POLLIN)) {
        errno = EAGAIN;
        return -1;
    }
    zmsg_t *msg = zmsg_recv (self->actor);
    zmsg_t *reply = msg ? s_reply_envelope (msg) : NULL;
    if (!reply) {
        errno = msg ? ENOMEM : EINTR;
        zmsg_destroy (&msg);
        return -1;
    }
    self->current = reply; //  for mdp_worker_send_partial
    mdp_msg_t *answer = s_answer (self, msg);
    self->current = NULL;
    zmsg_destroy (&msg);
    if (answer && mdp_msg_encode (answer, reply) == 0)
        zmsg_send (&reply, self->actor);
    mdp_msg_destroy (&answer);
    zmsg_destroy (&reply);
    return 0;
}

int mdp_worker_set_protocol (mdp_worker_t *self, int version)
{
    if (!self || (version != 1 && version != 2) || self->actor) {
        errno = EINVAL;
        return -1;
    }
    self->protocol = version;
    return 0;
}

int mdp_worker_set_curve (mdp_worker_t *self, const char *server_key, const char *cert_path)
{
    if (!self || self->actor) {
        errno = EINVAL;
        return -1;
    }
    return mdp_curve_load (&self->curve, server_key, cert_path);
}

int mdp_worker_send_partial (mdp_worker_t *self, mdp_msg_t **msg_p)
{
    mdp_msg_t *msg = msg_p ? *msg_p : NULL;
    if (msg_p)
        *msg_p = NULL;
    int error = !self || !msg ? EINVAL : self->protocol != 2 ? EPROTO : !self->current ? EINVAL : 0;
    //  ["REPLY"][address...][""] becomes ["PARTIAL"][address...][""][body...]
    zmsg_t *partial = error ? NULL : zmsg_dup (self->current);
    zframe_t *command = partial ? zmsg_pop (partial) : NULL;
    zframe_destroy (&command);
    if (!error && (!partial || zmsg_pushstr (partial, "PARTIAL") || mdp_msg_encode (msg, partial) ||
                   zmsg_send (&partial, self->actor)))
        error = ENOMEM;
    zmsg_destroy (&partial);
    mdp_msg_destroy (&msg);
    if (!error)
        return 0;
    errno = error;
    return -1;
}

int mdp_worker_run (mdp_worker_t *self)
{
    if (s_start (self) != 0)
        return -1;
    zpoller_t *poller = zpoller_new (self->actor, self->wakeup, NULL);
    if (!poller) {
        errno = ENOMEM;
        return -1;
    }
    //  The wait is bounded: a signal that lands between the check of
    //  zsys_interrupted and the wait is seen at the next round.
    while (!atomic_load (&self->stopping) && !zsys_interrupted) {
        void *which = zpoller_wait (poller, 500);
        if (which == self->actor)
            mdp_worker_process (self);
        else if (which == self->wakeup) {
            zframe_t *poke = zframe_recv (self->wakeup);
            zframe_destroy (&poke);
        } else if (zpoller_terminated (poller))
            break; //  interrupted (SIGINT/SIGTERM) or terminated
    }
    zpoller_destroy (&poller);
    atomic_store (&self->stopping, false);
    return 0;
}

void mdp_worker_stop (mdp_worker_t *self)
{
    atomic_store (&self->stopping, true);
    //  Wake mdp_worker_run: sockets are not thread-safe, so each call uses
    //  its own short-lived PUSH to the worker's inproc PULL.
    zsock_t *poke = zsock_new (ZMQ_PUSH);
    if (!poke)
        return;
    zsock_set_sndtimeo (poke, 0);
    if (zsock_connect (poke, "%s", self->wakeup_endpoint) == 0)
        zstr_send (poke, "stop");
    zsock_destroy (&poke);
}
