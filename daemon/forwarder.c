/*  forwarder.c - the XSUB/XPUB event forwarder (see forwarder.h). A loop of
    our own rather than zmq_proxy, so that each publication is checked before
    it reaches a subscriber (exactly [topic][json], a well-formed topic, not in
    the reserved namespace; anything else is counted and dropped) and so that
    it can answer subscribers' sync probes. Subscriptions arriving on the XPUB
    side are normal traffic: counted, never logged as errors.
    With CURVE (forwarder_new_secure) both sides authenticate through ZAP;
    publications are checked against the publish rules by the sender's key
    (the frame's "User-Id"), and the XPUB is manual: each subscription is
    applied to its subscriber only if the subscribe rules allow it.

    The XSUB side subscribes to everything at start, the way Domogik's own
    forwarder did, so publishers send every event here and filtering happens
    once, at the XPUB side: that is what lets a subscriber know, from one sync
    round trip, that every later event reaches it (spec/pubsub.md section 5).
*/
#include "forwarder.h"
#include "access.h"
#include "mdp_topic.h"
#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 256          //  messages per socket per turn, for fairness
#define WARN_INTERVAL 1000 //  msecs between two warnings about drops

struct forwarder_t {
    pthread_t thread;           //  runs s_forwarder_thread; joined on destroy
    bool started;               //  thread is running
    zsock_t *pipe;              //  our end of the control pipe ("$TERM")
    zsock_t *thread_pipe;       //  the thread's end
    zsock_t *xsub;              //  publisher side; only the thread uses it while it runs
    zsock_t *xpub;              //  subscriber side; likewise
    char *pub_endpoint;         //  XSUB endpoint as bound, owned
    char *sub_endpoint;         //  XPUB endpoint as bound, owned
    atomic_bool verbose;        //  log every message
    bool secure;                //  CURVE on both sides, subscriptions applied by hand
    pthread_mutex_t lock;       //  guards access
    access_t *access;           //  publish/subscribe rules, NULL: everything allowed
    _Atomic uint64_t forwarded; //  see forwarder_stats_t
    _Atomic uint64_t dropped[FWD_DROP_REASONS]; //  likewise
    _Atomic uint64_t subscribes;                //  likewise
    _Atomic uint64_t unsubscribes;              //  likewise
    _Atomic uint64_t syncs;                     //  likewise
    int64_t last_warning;                       //  thread only: when the last drop warning went out
    uint64_t unwarned;                          //  thread only: drops since then not warned about
};

static const char *s_drop_reason[FWD_DROP_REASONS] = {
    "a publication not of 2 frames", "a publication with a malformed topic",
    "a publication in the reserved mdp.sync namespace",
    "a message from the subscriber side that is not a subscription",
    "a publication or subscription the access rules refuse"};

static void s_count (_Atomic uint64_t *counter)
{
    atomic_fetch_add_explicit (counter, 1, memory_order_relaxed);
}

//  Count a drop and warn about it, at most once a second.
static void s_drop (forwarder_t *self, forwarder_drop_t reason)
{
    s_count (&self->dropped[reason]);
    int64_t now = zclock_mono ();
    if (now - self->last_warning < WARN_INTERVAL) {
        self->unwarned++;
        return;
    }
    if (self->unwarned)
        zsys_warning ("forwarder: dropped a message: %s (and %" PRIu64 " since the last warning)",
                      s_drop_reason[reason], self->unwarned);
    else
        zsys_warning ("forwarder: dropped a message: %s", s_drop_reason[reason]);
    self->last_warning = now;
    self->unwarned = 0;
}

//  Receive one whole message without waiting: the first two frames into
//  frames[] (initialised either way), the rest read and closed. Returns the
//  frame count, 0 if nothing was waiting.
static size_t s_recv (void *socket, zmq_msg_t frames[2])
{
    zmq_msg_init (&frames[0]);
    zmq_msg_init (&frames[1]);
    if (zmq_msg_recv (&frames[0], socket, ZMQ_DONTWAIT) < 0)
        return 0;
    size_t count = 1;
    bool more = zmq_msg_more (&frames[0]);
    while (more) {
        zmq_msg_t scratch, *frame = &frames[1];
        if (count >= 2) {
            zmq_msg_init (&scratch);
            frame = &scratch;
        }
        int rc = zmq_msg_recv (frame, socket, 0);
        more = rc >= 0 && zmq_msg_more (frame);
        if (frame == &scratch)
            zmq_msg_close (&scratch);
        if (rc < 0)
            break; //  only when the context is ending
        count++;
    }
    return count;
}

//  True when the rules let the sender of frame (its CURVE key from ZAP, ""
//  when plain) publish topic / subscribe to the prefix text (size bytes).
static bool s_allowed (forwarder_t *self, zmq_msg_t *frame, const char *text, size_t size,
                       bool publish)
{
    pthread_mutex_lock (&self->lock);
    bool allowed = true;
    if (self->access) {
        const char *user = zmq_msg_gets (frame, "User-Id");
        user = user ? user : "";
        allowed = publish ? access_may_publish (self->access, user, text, size)
                          : access_may_subscribe (self->access, user, text, size);
        if (!allowed && atomic_load_explicit (&self->verbose, memory_order_relaxed))
            zsys_debug ("forwarder: %s '%.*s' refused to key '%s'",
                        publish ? "publication" : "subscription", (int)size, text,
                        *user ? user : "(none)");
    }
    pthread_mutex_unlock (&self->lock);
    return allowed;
}

//  One publication from the XSUB side: forward it to subscribers, or drop it.
static void s_publication (forwarder_t *self, void *xpub, zmq_msg_t frames[2], size_t count)
{
    const char *topic = zmq_msg_data (&frames[0]);
    size_t size = zmq_msg_size (&frames[0]);
    size_t category = count == 2 ? mdp_topic_parse (topic, size) : 0;
    if (count != 2)
        s_drop (self, FWD_DROP_FRAMES);
    else if (category == 0)
        s_drop (self, FWD_DROP_TOPIC);
    else if (mdp_topic_reserved (topic, category))
        s_drop (self, FWD_DROP_RESERVED);
    else if (!s_allowed (self, &frames[0], topic, size, true))
        s_drop (self, FWD_DROP_DENIED);
    else {
        if (atomic_load_explicit (&self->verbose, memory_order_relaxed))
            zsys_debug ("forwarder: event %.*s (%zu bytes of JSON)", (int)size, topic,
                        zmq_msg_size (&frames[1]));
        //  Counted first, so a subscriber that has the event sees the count.
        //  XPUB never blocks: a subscriber at its high-water mark loses it.
        s_count (&self->forwarded);
        if (zmq_msg_send (&frames[0], xpub, ZMQ_SNDMORE) >= 0)
            zmq_msg_send (&frames[1], xpub, 0);
    }
    zmq_msg_close (&frames[0]);
    zmq_msg_close (&frames[1]);
}

//  Answer a sync probe "mdp.sync.<nonce>." with the event
//  [mdp.sync.<nonce>.<timestamp>.0_1]["{}"], which only matches that prober
//  (and catch-all subscribers). Every subscription this prober sent before
//  the probe is in the XPUB's table by now: the pipe is read in order.
static void s_answer_sync (forwarder_t *self, void *xpub, const char *probe, size_t size)
{
    char stamp[32], topic[MDP_TOPIC_MAX + 1];
    size_t stamp_len = mdp_topic_timestamp (stamp, sizeof stamp);
    int len =
        snprintf (topic, sizeof topic, "%.*s%s.%s", (int)size, probe, stamp, MDP_TOPIC_VERSION);
    if (stamp_len == 0 || len <= 0 || (size_t)len >= sizeof topic)
        return;
    s_count (&self->syncs);
    if (zmq_send (xpub, topic, (size_t)len, ZMQ_SNDMORE) >= 0)
        zmq_send (xpub, "{}", 2, 0);
}

//  One message from the XPUB side: a subscription or a cancel (in the form
//  0x01 prefix / 0x00 prefix), which XPUB has already applied to its table.
static void s_subscription (forwarder_t *self, void *xpub, zmq_msg_t frames[2], size_t count)
{
    const char *data = zmq_msg_data (&frames[0]);
    size_t size = zmq_msg_size (&frames[0]);
    bool verbose = atomic_load_explicit (&self->verbose, memory_order_relaxed);
    if (count != 1 || size == 0 || (data[0] != 0 && data[0] != 1))
        s_drop (self, FWD_DROP_UPSTREAM);
    else if (mdp_topic_is_sync_probe (data + 1, size - 1)) {
        //  Secure: applied by hand, as every subscription; probes always are.
        if (self->secure)
            zmq_setsockopt (xpub, data[0] == 1 ? ZMQ_SUBSCRIBE : ZMQ_UNSUBSCRIBE, data + 1,
                            size - 1);
        if (data[0] == 1)
            s_answer_sync (self, xpub, data + 1, size - 1);
    } else if (self->secure && data[0] == 1 &&
               !s_allowed (self, &frames[0], data + 1, size - 1, false))
        s_drop (self, FWD_DROP_DENIED);
    else {
        if (self->secure)
            zmq_setsockopt (xpub, data[0] == 1 ? ZMQ_SUBSCRIBE : ZMQ_UNSUBSCRIBE, data + 1,
                            size - 1);
        s_count (data[0] == 1 ? &self->subscribes : &self->unsubscribes);
        if (verbose)
            zsys_debug ("forwarder: %s '%.*s'", data[0] == 1 ? "subscribe" : "cancel",
                        (int)size - 1, data + 1);
    }
    zmq_msg_close (&frames[0]);
    zmq_msg_close (&frames[1]);
}

//  The thread: poll the control pipe and both sides until $TERM.
static void *s_forwarder_thread (void *arg)
{
    forwarder_t *self = arg;
    void *xsub = zsock_resolve (self->xsub);
    void *xpub = zsock_resolve (self->xpub);
    zmq_pollitem_t items[] = {{zsock_resolve (self->thread_pipe), 0, ZMQ_POLLIN, 0},
                              {xsub, 0, ZMQ_POLLIN, 0},
                              {xpub, 0, ZMQ_POLLIN, 0}};
    while (true) {
        if (zmq_poll (items, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            break; //  ETERM: the context is going away
        }
        if (items[0].revents & ZMQ_POLLIN) {
            char *command = zstr_recv (self->thread_pipe);
            bool stop = !command || streq (command, "$TERM");
            zstr_free (&command);
            if (stop)
                break;
        }
        zmq_msg_t frames[2];
        size_t count;
        for (int i = 0; i < BATCH && (count = s_recv (xsub, frames)) > 0; i++)
            s_publication (self, xpub, frames, count);
        for (int i = 0; i < BATCH && (count = s_recv (xpub, frames)) > 0; i++)
            s_subscription (self, xpub, frames, count);
    }
    return NULL;
}

//  Start the thread, with every signal blocked in it so that SIGINT and
//  SIGTERM go to the caller's threads. Returns 0, or -1 with errno.
static int s_start (forwarder_t *self)
{
    self->pipe = zsys_create_pipe (&self->thread_pipe);
    if (!self->pipe) {
        errno = ENOMEM;
        return -1;
    }
    sigset_t all, old;
    sigfillset (&all);
    pthread_sigmask (SIG_BLOCK, &all, &old);
    int rc = pthread_create (&self->thread, NULL, s_forwarder_thread, self);
    pthread_sigmask (SIG_SETMASK, &old, NULL);
    self->started = rc == 0;
    errno = rc;
    return rc == 0 ? 0 : -1;
}

//  Create and bind one side (a CURVE server with secret_key unless NULL);
//  *endpoint_p gets the bound endpoint.
static zsock_t *s_side (int type, const char *endpoint, char **endpoint_p,
                        const uint8_t *secret_key)
{
    zsock_t *sock = zsock_new (type);
    if (!sock) {
        errno = ENOMEM;
        return NULL;
    }
    if (secret_key) {
        zsock_set_curve_server (sock, 1);
        zsock_set_curve_secretkey_bin (sock, secret_key);
        zsock_set_zap_domain (sock, "mdp");
        if (type == ZMQ_XPUB)
            zsock_set_xpub_manual (sock, 1);
    }
    if (zsock_bind (sock, "%s", endpoint) < 0) {
        int saved = errno;
        zsock_destroy (&sock);
        errno = saved ? saved : EINVAL;
        return NULL;
    }
    *endpoint_p = zsock_last_endpoint (sock);
    return sock;
}

forwarder_t *forwarder_new (const char *pub_endpoint, const char *sub_endpoint)
{
    return forwarder_new_secure (pub_endpoint, sub_endpoint, NULL);
}

forwarder_t *forwarder_new_secure (const char *pub_endpoint, const char *sub_endpoint,
                                   const uint8_t *secret_key)
{
    if (!pub_endpoint || !sub_endpoint || !*pub_endpoint || !*sub_endpoint) {
        errno = EINVAL;
        return NULL;
    }
    forwarder_t *self = calloc (1, sizeof (forwarder_t));
    if (!self) {
        errno = ENOMEM;
        return NULL;
    }
    pthread_mutex_init (&self->lock, NULL);
    self->secure = secret_key != NULL;
    self->xsub = s_side (ZMQ_XSUB, pub_endpoint, &self->pub_endpoint, secret_key);
    self->xpub =
        self->xsub ? s_side (ZMQ_XPUB, sub_endpoint, &self->sub_endpoint, secret_key) : NULL;
    //  Everything, from every publisher, present and future (XSUB replays it
    //  to each new connection).
    if (!self->xpub || zmq_send (zsock_resolve (self->xsub), "\x01", 1, 0) != 1 ||
        s_start (self) != 0) {
        int saved = errno ? errno : ENOMEM;
        forwarder_destroy (&self);
        errno = saved;
    }
    return self;
}

void forwarder_destroy (forwarder_t **self_p)
{
    forwarder_t *self = self_p ? *self_p : NULL;
    if (!self)
        return;
    if (self->started) {
        //  Joined, not just signalled: nothing of the thread outlives this.
        zstr_send (self->pipe, "$TERM");
        pthread_join (self->thread, NULL);
    }
    zsock_destroy (&self->pipe);
    zsock_destroy (&self->thread_pipe);
    zsock_destroy (&self->xsub);
    zsock_destroy (&self->xpub);
    zstr_free (&self->pub_endpoint);
    zstr_free (&self->sub_endpoint);
    access_destroy (&self->access);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

const char *forwarder_pub_endpoint (forwarder_t *self)
{
    return self->pub_endpoint;
}

const char *forwarder_sub_endpoint (forwarder_t *self)
{
    return self->sub_endpoint;
}

void forwarder_set_verbose (forwarder_t *self, bool verbose)
{
    atomic_store (&self->verbose, verbose);
}

void forwarder_set_access (forwarder_t *self, access_t **access_p)
{
    pthread_mutex_lock (&self->lock);
    access_destroy (&self->access);
    self->access = *access_p;
    *access_p = NULL;
    pthread_mutex_unlock (&self->lock);
}

void forwarder_stats (forwarder_t *self, forwarder_stats_t *stats)
{
    memset (stats, 0, sizeof *stats);
    stats->forwarded = atomic_load (&self->forwarded);
    for (int i = 0; i < FWD_DROP_REASONS; i++)
        stats->dropped[i] = atomic_load (&self->dropped[i]);
    stats->subscribes = atomic_load (&self->subscribes);
    stats->unsubscribes = atomic_load (&self->unsubscribes);
    stats->syncs = atomic_load (&self->syncs);
}
