/*  mdp_worker.c - mdp_worker_t, an MDPW01 or MDPW02 worker on the protocol
    engine (mdp_engine.c). The caller's thread owns the broker socket while it
    serves (mdp_worker_run, mdp_worker_process): requests and replies take no
    inproc hop and no thread wake-up. A helper thread keeps the connection
    alive when the caller is not using it: while a hook runs it ticks the
    engine on time (HEARTBEATs out, broker heartbeats in), and between calls
    it polls the socket and tells mdp_worker_socket's readers about requests.
    A worker may serve several brokers (issue 15): one engine per broker, each
    with its own heartbeating and reconnect, all polled together; a request
    from one broker waits, held by its engine, while the hook serves another.
*/
#include "mdp.h"
#include "mdp_curve.h"
#include "mdp_engine.h"
#include "mdp_proto.h"
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

//  Who may use the engine: whoever holds sock_lock, never two at once. The
//  caller holds it while it serves (also while blocked in zmq_poll) and lets
//  go of it only while the hook runs. The helper thread, while some caller
//  serves ("owners" > 0), sleeps until the engine's next timeout and then
//  only tries the lock: it gets it only while a hook runs, and ticks. With
//  no owner it holds the lock and polls the socket itself; a caller that
//  wants the socket pokes it out of that poll (one message on "control").
//  The mutex is the full barrier libzmq asks for when a socket changes thread.

#define MDP_WORKER_MAX_BROKERS 16 //  endpoints one worker may serve

struct _mdp_worker_t {
    char *endpoints[MDP_WORKER_MAX_BROKERS];       //  broker endpoints, owned
    int nbrokers;                                  //  how many endpoints (and engines once started)
    char *service;                                 //  service name, owned
    mdp_worker_fn *handler;                        //  on_request hook, or NULL
    void *handler_arg;                             //  the hook's argument
    int heartbeat;                                 //  msecs between HEARTBEATs
    int liveness;                                  //  silent heartbeats before the broker is gone
    int reconnect_initial;                         //  first reconnect wait, msecs
    int reconnect_max;                             //  cap on the reconnect wait, msecs
    int protocol;                                  //  1 (MDPW01) or 2 (MDPW02)
    mdp_curve_t curve;                             //  CURVE keys, when set
    mdp_engine_t *engines[MDP_WORKER_MAX_BROKERS]; //  one per broker; NULL until started
    int current;                                   //  the engine whose request the hook serves
    int next;                                      //  where the search for a held request starts
    bool started;                                  //  engine and helper exist
    bool in_hook;                                  //  the caller's thread is inside the hook
    bool notified;                                 //  a note went to "notify" for the held request
    pthread_t helper;                              //  the helper thread
    pthread_mutex_t sock_lock;  //  held by whoever uses the engine and its socket
    pthread_mutex_t state_lock; //  guards owners, quit and poke
    pthread_cond_t state_cond;  //  the helper sleeps on it while owned
    int owners;                 //  callers serving (they want the socket)
    bool quit;                  //  the helper must end
    _Atomic int64_t next_at;    //  when the engine next needs a tick (mono msecs)
    zsock_t *control;           //  PULL: the helper polls it with the socket
    zsock_t *poke;              //  PUSH to control, used under state_lock
    zsock_t *notify;            //  PULL: mdp_worker_socket, readable when a request waits
    zsock_t *notify_out;        //  PUSH to notify, used under sock_lock
    zsock_t *wakeup;            //  PULL that mdp_worker_stop pokes, polled by run
    char wakeup_endpoint[64];   //  its inproc endpoint
    atomic_bool stopping;       //  set by mdp_worker_stop, cleared when run returns
};

//  ---------------------------------------------------------------------------
//  The socket hand-over.

//  Msecs until some engine needs a tick, or -1 if none ever does.
static int s_timeout (mdp_worker_t *self, int64_t now)
{
    int timeout = -1;
    for (int index = 0; index < self->nbrokers; index++) {
        int next = mdp_engine_timeout (self->engines[index], now);
        if (next >= 0 && (timeout < 0 || next < timeout))
            timeout = next;
    }
    return timeout;
}

//  The engine holding a request, the one after the last served first (so
//  that no broker starves another), or -1 if none holds one.
static int s_held (mdp_worker_t *self)
{
    for (int step = 0; step < self->nbrokers; step++) {
        int index = (self->next + step) % self->nbrokers;
        if (mdp_engine_held (self->engines[index]))
            return index;
    }
    return -1;
}

//  Fill items[first...] with the engines' sockets; returns how many.
static int s_poll_items (mdp_worker_t *self, zmq_pollitem_t *items)
{
    int count = 0;
    for (int index = 0; index < self->nbrokers; index++) {
        zsock_t *dealer = mdp_engine_socket (self->engines[index]);
        if (dealer)
            items[count++] = (zmq_pollitem_t){zsock_resolve (dealer), 0, ZMQ_POLLIN, 0};
    }
    return count;
}

//  Remember when the engines next need a tick (sock_lock held).
static void s_mark (mdp_worker_t *self, int64_t now)
{
    int timeout = s_timeout (self, now);
    atomic_store (&self->next_at, timeout < 0 ? now + self->heartbeat : now + timeout);
}

//  Read what waits and do what is due (sock_lock held).
static void s_service (mdp_worker_t *self)
{
    int64_t now = zclock_mono ();
    for (int index = 0; index < self->nbrokers; index++) {
        mdp_engine_recv (self->engines[index], now);
        mdp_engine_tick (self->engines[index], now);
    }
    s_mark (self, now);
}

//  Become an owner of the socket: poke the helper out of its poll, then lock.
static void s_acquire (mdp_worker_t *self)
{
    pthread_mutex_lock (&self->state_lock);
    if (self->owners++ == 0)
        zstr_send (self->poke, "");
    pthread_mutex_unlock (&self->state_lock);
    pthread_mutex_lock (&self->sock_lock);
}

static void s_release (mdp_worker_t *self)
{
    s_mark (self, zclock_mono ());
    pthread_mutex_unlock (&self->sock_lock);
    pthread_mutex_lock (&self->state_lock);
    self->owners--;
    pthread_cond_signal (&self->state_cond);
    pthread_mutex_unlock (&self->state_lock);
}

//  With no owner: poll the socket and the control PULL until something
//  happens or a tick is due; tell "notify" about a request (sock_lock held).
static void s_helper_poll (mdp_worker_t *self)
{
    if (s_held (self) >= 0 && !self->notified) {
        zstr_send (self->notify_out, "");
        self->notified = true;
    }
    zmq_pollitem_t items[MDP_WORKER_MAX_BROKERS + 1] = {
        {zsock_resolve (self->control), 0, ZMQ_POLLIN, 0}};
    int count = 1 + s_poll_items (self, items + 1);
    zmq_poll (items, count, s_timeout (self, zclock_mono ()));
    while (zsock_events (self->control) & ZMQ_POLLIN) {
        zframe_t *poke = zframe_recv (self->control);
        zframe_destroy (&poke);
    }
    s_service (self);
    if (s_held (self) >= 0 && !self->notified) {
        zstr_send (self->notify_out, "");
        self->notified = true;
    }
}

//  Sleep on state_cond until abs_msecs (zclock_mono time; state_lock held).
static void s_sleep_until (mdp_worker_t *self, int64_t abs_msecs)
{
    struct timespec until = {.tv_sec = (time_t)(abs_msecs / 1000),
                             .tv_nsec = (long)(abs_msecs % 1000) * 1000000};
    pthread_cond_timedwait (&self->state_cond, &self->state_lock, &until);
}

//  The helper thread: see the comment on top.
static void *s_helper (void *arg)
{
    mdp_worker_t *self = arg;
    pthread_mutex_lock (&self->state_lock);
    while (!self->quit) {
        if (self->owners > 0) {
            int64_t now = zclock_mono ();
            int64_t due = atomic_load (&self->next_at);
            int pause = self->heartbeat / 10 > 0 ? self->heartbeat / 10 : 1;
            s_sleep_until (self, due > now ? due : now + pause);
            if (self->quit || self->owners == 0 || zclock_mono () < atomic_load (&self->next_at))
                continue;
            pthread_mutex_unlock (&self->state_lock);
            if (pthread_mutex_trylock (&self->sock_lock) == 0) {
                s_service (self); //  a hook runs: keep the connection alive
                pthread_mutex_unlock (&self->sock_lock);
            }
            pthread_mutex_lock (&self->state_lock);
        } else {
            pthread_mutex_unlock (&self->state_lock);
            pthread_mutex_lock (&self->sock_lock);
            s_helper_poll (self);
            pthread_mutex_unlock (&self->sock_lock);
            pthread_mutex_lock (&self->state_lock);
        }
    }
    pthread_mutex_unlock (&self->state_lock);
    return NULL;
}

//  ---------------------------------------------------------------------------
//  The worker.

//  Add each endpoint of a comma-separated list (spaces around items are
//  ignored). 0, or -1 with EINVAL on an empty item, a duplicate, or more
//  than MDP_WORKER_MAX_BROKERS in all (then nothing is added).
static int s_add_endpoints (mdp_worker_t *self, const char *list)
{
    int before = self->nbrokers;
    const char *item = list;
    while (item) {
        const char *comma = strchr (item, ',');
        size_t size = comma ? (size_t)(comma - item) : strlen (item);
        while (size > 0 && *item == ' ') {
            item++;
            size--;
        }
        while (size > 0 && item[size - 1] == ' ')
            size--;
        bool duplicate = false;
        for (int index = 0; index < self->nbrokers; index++)
            if (strlen (self->endpoints[index]) == size &&
                memcmp (self->endpoints[index], item, size) == 0)
                duplicate = true;
        char *endpoint = size > 0 && !duplicate && self->nbrokers < MDP_WORKER_MAX_BROKERS
                             ? strndup (item, size)
                             : NULL;
        if (!endpoint) {
            while (self->nbrokers > before)
                free (self->endpoints[--self->nbrokers]);
            errno = EINVAL;
            return -1;
        }
        self->endpoints[self->nbrokers++] = endpoint;
        item = comma ? comma + 1 : NULL;
    }
    return 0;
}

int mdp_worker_add_endpoint (mdp_worker_t *self, const char *endpoint)
{
    if (!self || !endpoint || self->started) {
        errno = EINVAL;
        return -1;
    }
    return s_add_endpoints (self, endpoint);
}

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
    if (s_add_endpoints (self, endpoint) != 0) {
        free (self);
        errno = EINVAL;
        return NULL;
    }
    self->service = strdup (service);
    self->heartbeat = MDP_DEFAULT_HEARTBEAT;
    self->liveness = MDP_DEFAULT_LIVENESS;
    self->reconnect_initial = 250;
    self->reconnect_max = 5000;
    self->protocol = 1;
    atomic_init (&self->stopping, false);
    atomic_init (&self->next_at, 0);
    pthread_mutex_init (&self->sock_lock, NULL);
    pthread_mutex_init (&self->state_lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init (&attr);
    pthread_condattr_setclock (&attr, CLOCK_MONOTONIC); //  zclock_mono's clock
    pthread_cond_init (&self->state_cond, &attr);
    pthread_condattr_destroy (&attr);
    char endpoint_of[3][64];
    const char *names[3] = {"wakeup", "control", "notify"};
    for (int index = 0; index < 3; index++)
        snprintf (endpoint_of[index], sizeof endpoint_of[index], "inproc://mdp-worker-%s-%p",
                  names[index], (void *)self);
    snprintf (self->wakeup_endpoint, sizeof self->wakeup_endpoint, "%s", endpoint_of[0]);
    self->wakeup = zsock_new_pull (endpoint_of[0]);
    self->control = zsock_new_pull (endpoint_of[1]);
    self->poke = zsock_new_push (endpoint_of[1]);
    self->notify = zsock_new_pull (endpoint_of[2]);
    self->notify_out = zsock_new_push (endpoint_of[2]);
    if (!self->service || !self->wakeup || !self->control || !self->poke || !self->notify ||
        !self->notify_out) {
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
    if (self->started) {
        pthread_mutex_lock (&self->state_lock);
        self->quit = true;
        zstr_send (self->poke, "");
        pthread_cond_signal (&self->state_cond);
        pthread_mutex_unlock (&self->state_lock);
        pthread_join (self->helper, NULL);
    }
    for (int index = 0; index < self->nbrokers; index++) {
        mdp_engine_destroy (&self->engines[index]); //  sends DISCONNECT
        free (self->endpoints[index]);
    }
    zsock_destroy (&self->wakeup);
    zsock_destroy (&self->control);
    zsock_destroy (&self->poke);
    zsock_destroy (&self->notify);
    zsock_destroy (&self->notify_out);
    pthread_cond_destroy (&self->state_cond);
    pthread_mutex_destroy (&self->state_lock);
    pthread_mutex_destroy (&self->sock_lock);
    free (self->service);
    free (self);
    *self_p = NULL;
}

void mdp_worker_set_handler (mdp_worker_t *self, mdp_worker_fn *fn, void *arg)
{
    self->handler = fn;
    self->handler_arg = arg;
}

void mdp_worker_set_heartbeat (mdp_worker_t *self, int msecs, int liveness)
{
    self->heartbeat = msecs > 0 ? msecs : 1;
    self->liveness = liveness > 0 ? liveness : 1;
    if (!self->started)
        return;
    s_acquire (self);
    for (int index = 0; index < self->nbrokers; index++)
        mdp_engine_set_heartbeat (self->engines[index], self->heartbeat, self->liveness,
                                  zclock_mono ());
    s_release (self);
}

void mdp_worker_set_reconnect (mdp_worker_t *self, int initial_msecs, int max_msecs)
{
    self->reconnect_initial = initial_msecs > 0 ? initial_msecs : 1;
    self->reconnect_max = max_msecs > self->reconnect_initial ? max_msecs : self->reconnect_initial;
    if (!self->started)
        return;
    s_acquire (self);
    for (int index = 0; index < self->nbrokers; index++)
        mdp_engine_set_reconnect (self->engines[index], self->reconnect_initial,
                                  self->reconnect_max);
    s_release (self);
}

//  Connect and start the helper if not done yet. Signals are blocked while
//  the helper is created so that SIGINT/SIGTERM land in the caller's
//  threads, where mdp_worker_run can see them.
//  Create and connect engine index; with several brokers its log lines
//  name its endpoint. 0, or -1.
static int s_engine_start (mdp_worker_t *self, int index, int64_t now)
{
    char name[300] = "mdp_worker";
    if (self->nbrokers > 1)
        snprintf (name, sizeof name, "mdp_worker %s", self->endpoints[index]);
    mdp_engine_t *engine =
        mdp_engine_new (self->endpoints[index], self->service, self->protocol, name);
    self->engines[index] = engine;
    if (!engine)
        return -1;
    mdp_engine_set_heartbeat (engine, self->heartbeat, self->liveness, now);
    mdp_engine_set_reconnect (engine, self->reconnect_initial, self->reconnect_max);
    mdp_engine_set_curve (engine, &self->curve);
    return mdp_engine_connect (engine, now);
}

static void s_engines_destroy (mdp_worker_t *self)
{
    for (int index = 0; index < self->nbrokers; index++)
        mdp_engine_destroy (&self->engines[index]);
}

static int s_start (mdp_worker_t *self)
{
    if (self->started)
        return 0;
    int64_t now = zclock_mono ();
    for (int index = 0; index < self->nbrokers; index++)
        if (s_engine_start (self, index, now) != 0) {
            s_engines_destroy (self);
            errno = EINVAL;
            return -1;
        }
    s_mark (self, now);
    sigset_t all, old;
    sigfillset (&all);
    pthread_sigmask (SIG_BLOCK, &all, &old);
    int rc = pthread_create (&self->helper, NULL, s_helper, self);
    pthread_sigmask (SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        s_engines_destroy (self);
        errno = rc;
        return -1;
    }
    self->started = true;
    return 0;
}

zsock_t *mdp_worker_socket (mdp_worker_t *self)
{
    return s_start (self) == 0 ? self->notify : NULL;
}

const char *mdp_worker_service (mdp_worker_t *self)
{
    return self->service;
}

//  The answer to one request body: the hook's, or an mdp.error of our own.
//  The hook runs without sock_lock, so that the helper can keep heartbeating.
static mdp_msg_t *s_answer (mdp_worker_t *self, mdp_msg_t *request)
{
    if (!request)
        return mdp_msg_new_error (400, "invalid request body: expected [action][json]");
    if (!self->handler) {
        mdp_msg_destroy (&request);
        return mdp_msg_new_error (501, "no handler for this service");
    }
    self->in_hook = true;
    s_mark (self, zclock_mono ());
    pthread_mutex_unlock (&self->sock_lock);
    mdp_msg_t *reply = self->handler (self, request, self->handler_arg);
    pthread_mutex_lock (&self->sock_lock);
    self->in_hook = false;
    mdp_msg_destroy (&request);
    return reply;
}

//  Serve the held request, if any (the caller owns the socket). 0, or -1
//  with errno EAGAIN when none is held.
static int s_serve (mdp_worker_t *self)
{
    int index = s_held (self);
    //  NULL with a request held: not a valid body (answered 400 below)
    mdp_msg_t *request = index >= 0 ? mdp_engine_take_msg (self->engines[index]) : NULL;
    self->notified = false;
    if (index < 0) {
        errno = EAGAIN;
        return -1;
    }
    self->current = index;
    self->next = (index + 1) % self->nbrokers;
    mdp_msg_t *answer = s_answer (self, request);
    if (answer)
        mdp_engine_reply_msg (self->engines[index], answer, true); //  EINVAL: connection gone
    mdp_msg_destroy (&answer);
    return 0;
}

int mdp_worker_process (mdp_worker_t *self)
{
    if (s_start (self) != 0)
        return -1;
    while (zsock_events (self->notify) & ZMQ_POLLIN) {
        zframe_t *note = zframe_recv (self->notify);
        zframe_destroy (&note);
    }
    s_acquire (self);
    s_service (self);
    int rc = s_serve (self);
    s_release (self);
    return rc;
}

int mdp_worker_set_protocol (mdp_worker_t *self, int version)
{
    if (!self || (version != 1 && version != 2) || self->started) {
        errno = EINVAL;
        return -1;
    }
    self->protocol = version;
    return 0;
}

int mdp_worker_set_curve (mdp_worker_t *self, const char *server_key, const char *cert_path)
{
    if (!self || self->started) {
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
    int error = !self || !msg ? EINVAL : self->protocol != 2 ? EPROTO : !self->in_hook ? EINVAL : 0;
    zmsg_t *body = error ? NULL : zmsg_new ();
    if (!error && (!body || mdp_msg_encode (msg, body) != 0))
        error = ENOMEM;
    mdp_msg_destroy (&msg);
    if (!error) {
        pthread_mutex_lock (&self->sock_lock);
        if (mdp_engine_reply (self->engines[self->current], &body, false) != 0)
            error = errno;
        pthread_mutex_unlock (&self->sock_lock);
    }
    zmsg_destroy (&body);
    if (!error)
        return 0;
    errno = error;
    return -1;
}

//  Wait for a broker socket or the stop poke, at most until the next tick
//  is due (and at most 500 msecs, so that a signal is seen soon).
static void s_wait (mdp_worker_t *self)
{
    zmq_pollitem_t items[MDP_WORKER_MAX_BROKERS + 1] = {
        {zsock_resolve (self->wakeup), 0, ZMQ_POLLIN, 0}};
    int count = 1 + s_poll_items (self, items + 1);
    int timeout = s_timeout (self, zclock_mono ());
    zmq_poll (items, count, timeout < 0 || timeout > 500 ? 500 : timeout);
    if (items[0].revents & ZMQ_POLLIN) {
        zframe_t *poke = zframe_recv (self->wakeup);
        zframe_destroy (&poke);
    }
}

int mdp_worker_run (mdp_worker_t *self)
{
    if (s_start (self) != 0)
        return -1;
    s_acquire (self);
    while (!atomic_load (&self->stopping) && !zsys_interrupted) {
        if (s_held (self) >= 0)
            s_serve (self);
        else
            s_wait (self);
        s_service (self);
    }
    s_release (self);
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
