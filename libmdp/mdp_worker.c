/*  mdp_worker.c - mdp_worker_t, an MDP/0.1 worker. The DEALER to the broker
    lives in a background agent (a zactor) that sends READY, heartbeats on time
    even while the hook is busy, notices a silent broker and reconnects with
    back-off. Requests cross the actor pipe to the caller's thread, which runs
    the hook and hands the reply back. Nothing the broker sends can assert.
*/
#include "mdp.h"
#include "mdp_proto.h"
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

//  The actor pipe carries, besides czmq's $TERM and the start-up signals:
//    caller -> agent   ["REPLY"][address...][""][body...]
//                      ["SET"][heartbeat][liveness][initial][max]
//    agent -> caller   ["REQUEST"][address...][""][body...]

#define DISCONNECT_LINGER 100 //  msecs a final DISCONNECT may take to get out

struct _mdp_worker_t {
    char *endpoint;           //  broker endpoint, owned
    char *service;            //  service name, owned
    mdp_worker_fn *handler;   //  on_request hook, or NULL
    void *handler_arg;        //  the hook's argument
    int heartbeat;            //  msecs between HEARTBEATs
    int liveness;             //  silent heartbeats before the broker is gone
    int reconnect_initial;    //  first reconnect wait, msecs
    int reconnect_max;        //  cap on the reconnect wait, msecs
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
    int backoff;           //  next reconnect wait, before jitter
    int64_t heartbeat_at;  //  when the next HEARTBEAT is due
    int64_t expiry_at;     //  the broker is gone if silent until then
    int64_t reconnect_at;  //  when to reconnect, while dealer is NULL
    unsigned int seed;     //  rand_r state for the jitter
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

//  Send [""]["MDPW01"][command][frames...] to the broker, taking frames (may
//  be NULL). Never blocks; drops the message if it cannot go out now.
static void s_agent_send (agent_t *self, byte command, zmsg_t *frames)
{
    zmsg_t *msg = frames ? frames : zmsg_new ();
    if (self->dealer && msg && zmsg_pushmem (msg, &command, 1) == 0 &&
        zmsg_pushstr (msg, MDPW01) == 0 && zmsg_pushmem (msg, NULL, 0) == 0 &&
        zmsg_send (&msg, self->dealer) == 0)
        return;
    zsys_warning ("mdp_worker: could not send command 0x%02x to the broker", command);
    zmsg_destroy (&msg);
}

//  Drop the connection and schedule the next one after the back-off, plus
//  up to 25% jitter so that workers do not all come back at once.
static void s_agent_disconnect (agent_t *self)
{
    if (self->dealer) {
        zpoller_remove (self->poller, self->dealer);
        zsock_destroy (&self->dealer);
    }
    int jitter = self->backoff / 4 > 0 ? (int)(rand_r (&self->seed) % (self->backoff / 4 + 1)) : 0;
    self->reconnect_at = zclock_mono () + self->backoff + jitter;
    self->backoff =
        self->backoff > self->reconnect_max / 2 ? self->reconnect_max : self->backoff * 2;
}

//  Open a new DEALER, send READY and restart the heartbeat clocks.
static int s_agent_connect (agent_t *self)
{
    self->dealer = zsock_new (ZMQ_DEALER);
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
    s_agent_send (self, MDPW01_READY, ready);
    int64_t now = zclock_mono ();
    self->heartbeat_at = now + self->heartbeat;
    self->expiry_at = now + (int64_t)self->heartbeat * self->liveness;
    return 0;
}

//  Strip and check the header [""]["MDPW01"][command]. Returns the command
//  byte, or -1 if the message does not start with a valid header.
static int s_agent_header (zmsg_t *msg)
{
    if (zmsg_size (msg) < 3)
        return -1;
    zframe_t *empty = zmsg_pop (msg);
    zframe_t *protocol = zmsg_pop (msg);
    zframe_t *command = zmsg_pop (msg);
    int rc = -1;
    if (zframe_size (empty) == 0 && zframe_streq (protocol, MDPW01) && zframe_size (command) == 1)
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
    int command = s_agent_header (msg);
    if (command == MDPW01_HEARTBEAT)
        self->backoff = self->reconnect_initial;
    else if (command == MDPW01_REQUEST && s_has_envelope (msg)) {
        self->backoff = self->reconnect_initial;
        if (zmsg_pushstr (msg, "REQUEST") == 0 && zmsg_send (&msg, self->pipe) != 0)
            zsys_warning ("mdp_worker: request dropped, the caller is not reading");
    } else if (command == MDPW01_DISCONNECT) {
        zsys_info ("mdp_worker: broker sent DISCONNECT, reconnecting");
        s_agent_disconnect (self);
    } else if (command == MDPW01_REQUEST)
        zsys_warning ("mdp_worker: dropped a REQUEST without [address...][\"\"]");
    else if (command >= 0)
        zsys_warning ("mdp_worker: dropped unknown command 0x%02x", command);
    else
        zsys_warning ("mdp_worker: dropped a message without [\"\"][\"MDPW01\"][command]");
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
            s_agent_send (self, MDPW01_DISCONNECT, NULL);
            zsock_set_linger (self->dealer, DISCONNECT_LINGER);
        }
    } else if (streq (command, "REPLY")) {
        s_agent_send (self, MDPW01_REPLY, msg);
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
        s_agent_send (self, MDPW01_HEARTBEAT, NULL);
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
    mdp_msg_t *answer = s_answer (self, msg);
    zmsg_destroy (&msg);
    if (answer && mdp_msg_encode (answer, reply) == 0)
        zmsg_send (&reply, self->actor);
    mdp_msg_destroy (&answer);
    zmsg_destroy (&reply);
    return 0;
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
    while (!atomic_load (&self->stopping)) {
        void *which = zpoller_wait (poller, -1);
        if (which == self->actor)
            mdp_worker_process (self);
        else if (which == self->wakeup) {
            zframe_t *poke = zframe_recv (self->wakeup);
            zframe_destroy (&poke);
        } else
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
