/*  mdp_pubsub.c - mdp_publisher_t and mdp_subscriber_t: Domogik events
    [category.timestamp.0_1][json] through the broker's forwarder. Both close
    the slow-joiner gap with a handshake instead of a sleep: the publisher
    waits until the forwarder's catch-all subscription reaches it, and a
    subscribe waits until the forwarder answers a probe sent after it
    (spec/pubsub.md section 5 says why that is enough).
*/
#include "mdp.h"
#include "mdp_curve.h"
#include "mdp_topic.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct _mdp_publisher_t {
    zsock_t *sock;    //  XPUB, connected to the forwarder's XSUB side
    char *endpoint;   //  where it connects, owned
    int sync_timeout; //  msecs the first send may wait for the forwarder
    bool synced;      //  the forwarder's catch-all subscription is in
    bool waited;      //  the first send has had its wait
};

typedef struct {
    char *category; //  owned, without timestamp and version
    cJSON *data;    //  owned
} event_t;

struct _mdp_subscriber_t {
    zsock_t *sock;              //  SUB, connected to the forwarder's XPUB side
    char *endpoint;             //  where it connects, owned
    zlist_t *queue;             //  event_t *, read while waiting for a sync answer
    int sync_timeout;           //  msecs a subscribe waits for the forwarder
    mdp_subscriber_fn *handler; //  hook for mdp_subscriber_process, or NULL
    void *handler_arg;          //  its argument
    uint64_t dropped;           //  malformed events dropped
};

//  ---------------------------------------------------------------------------
//  Publisher

mdp_publisher_t *mdp_publisher_new (const char *endpoint)
{
    mdp_publisher_t *self = endpoint && *endpoint ? calloc (1, sizeof (mdp_publisher_t)) : NULL;
    if (!self) {
        errno = EINVAL;
        return NULL;
    }
    self->sync_timeout = MDP_DEFAULT_SYNC_TIMEOUT;
    self->sock = zsock_new (ZMQ_XPUB);
    self->endpoint = strdup (endpoint);
    if (!self->sock || !self->endpoint || zsock_connect (self->sock, "%s", endpoint) != 0) {
        mdp_publisher_destroy (&self);
        errno = EINVAL;
    }
    return self;
}

void mdp_publisher_destroy (mdp_publisher_t **self_p)
{
    mdp_publisher_t *self = self_p ? *self_p : NULL;
    if (!self)
        return;
    if (self->sock)
        zsock_set_linger (self->sock, 1000);
    zsock_destroy (&self->sock);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}

//  Load the keys, then connect sock again as a CURVE client with them.
static int s_set_curve (zsock_t *sock, const char *endpoint, const char *server_key,
                        const char *cert_path)
{
    mdp_curve_t curve = {0};
    if (mdp_curve_load (&curve, server_key, cert_path) != 0)
        return -1;
    zsock_disconnect (sock, "%s", endpoint);
    mdp_curve_apply (&curve, sock);
    memset (&curve, 0, sizeof curve);
    return zsock_connect (sock, "%s", endpoint) == 0 ? 0 : -1;
}

int mdp_publisher_set_curve (mdp_publisher_t *self, const char *server_key, const char *cert_path)
{
    if (!self) {
        errno = EINVAL;
        return -1;
    }
    return s_set_curve (self->sock, self->endpoint, server_key, cert_path);
}

void mdp_publisher_set_sync_timeout (mdp_publisher_t *self, int msecs)
{
    self->sync_timeout = msecs < 0 ? 0 : msecs;
}

//  Read what the forwarder sent up: its catch-all subscription "\x01", or
//  "\x00" if it was ever withdrawn; anything else is not for us. Waits at
//  most msecs for the subscription.
static void s_publisher_drain (mdp_publisher_t *self, int msecs)
{
    void *sock = zsock_resolve (self->sock);
    int64_t deadline = zclock_mono () + msecs;
    while (true) {
        zmq_msg_t msg;
        zmq_msg_init (&msg);
        int size = zmq_msg_recv (&msg, sock, ZMQ_DONTWAIT);
        char byte = size == 1 ? *(char *)zmq_msg_data (&msg) : 2;
        if (byte == 0 || byte == 1)
            self->synced = byte == 1;
        zmq_msg_close (&msg);
        if (size >= 0)
            continue;
        int64_t left = deadline - zclock_mono ();
        if (self->synced || left <= 0 || errno != EAGAIN)
            return;
        zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll (&item, 1, (long)left) < 0)
            return;
    }
}

int mdp_publisher_send (mdp_publisher_t *self, const char *category, const cJSON *data)
{
    char topic[MDP_TOPIC_MAX + 1];
    size_t len = self && category ? mdp_topic_format (topic, sizeof topic, category) : 0;
    if (len == 0 || mdp_topic_reserved (category, strlen (category))) {
        errno = EINVAL;
        return -1;
    }
    s_publisher_drain (self, self->synced || self->waited ? 0 : self->sync_timeout);
    self->waited = true;
    if (!self->synced) {
        errno = EAGAIN;
        return -1;
    }
    char *json = data ? mdp_json_print (data) : NULL;
    if (data && !json) {
        errno = ENOMEM;
        return -1;
    }
    const char *text = json ? json : "{}";
    void *sock = zsock_resolve (self->sock);
    int rc = zmq_send (sock, topic, len, ZMQ_SNDMORE) >= 0 &&
                     zmq_send (sock, text, strlen (text), 0) >= 0
                 ? 0
                 : -1;
    cJSON_free (json);
    return rc;
}

//  ---------------------------------------------------------------------------
//  Subscriber

static void s_event_destroy (event_t **event_p)
{
    if (*event_p) {
        free ((*event_p)->category);
        cJSON_Delete ((*event_p)->data);
        free (*event_p);
        *event_p = NULL;
    }
}

mdp_subscriber_t *mdp_subscriber_new (const char *endpoint)
{
    mdp_subscriber_t *self = endpoint && *endpoint ? calloc (1, sizeof (mdp_subscriber_t)) : NULL;
    if (!self) {
        errno = EINVAL;
        return NULL;
    }
    self->sync_timeout = MDP_DEFAULT_SYNC_TIMEOUT;
    self->queue = zlist_new ();
    //  Connect before any subscription, so that subscriptions and probes
    //  leave in the order they are made (at connect time libzmq would send
    //  the ones already made in its own order).
    self->sock = zsock_new (ZMQ_SUB);
    self->endpoint = strdup (endpoint);
    if (!self->queue || !self->sock || !self->endpoint ||
        zsock_connect (self->sock, "%s", endpoint) != 0) {
        mdp_subscriber_destroy (&self);
        errno = EINVAL;
    }
    return self;
}

void mdp_subscriber_destroy (mdp_subscriber_t **self_p)
{
    mdp_subscriber_t *self = self_p ? *self_p : NULL;
    if (!self)
        return;
    event_t *event;
    while (self->queue && (event = zlist_pop (self->queue)))
        s_event_destroy (&event);
    zlist_destroy (&self->queue);
    zsock_destroy (&self->sock);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}

int mdp_subscriber_set_curve (mdp_subscriber_t *self, const char *server_key, const char *cert_path)
{
    if (!self) {
        errno = EINVAL;
        return -1;
    }
    return s_set_curve (self->sock, self->endpoint, server_key, cert_path);
}

void mdp_subscriber_set_sync_timeout (mdp_subscriber_t *self, int msecs)
{
    self->sync_timeout = msecs < 0 ? 0 : msecs;
}

//  Turn [topic][json] into an event, or return NULL and count a drop.
//  Reserved categories (sync answers) give NULL without a drop; if the
//  topic answers our own probe, *synced is set.
static event_t *s_decode (mdp_subscriber_t *self, zmq_msg_t frames[2], size_t count,
                          const char *probe, bool *synced)
{
    const char *topic = zmq_msg_data (&frames[0]);
    size_t category = count == 2 ? mdp_topic_parse (topic, zmq_msg_size (&frames[0])) : 0;
    if (category && mdp_topic_reserved (topic, category)) {
        if (probe && strncmp (topic, probe, strlen (probe)) == 0)
            *synced = true;
        return NULL;
    }
    cJSON *data =
        category ? mdp_json_parse (zmq_msg_data (&frames[1]), zmq_msg_size (&frames[1])) : NULL;
    event_t *event = data ? calloc (1, sizeof (event_t)) : NULL;
    if (event && (event->category = strndup (topic, category)))
        event->data = data;
    else {
        free (event);
        cJSON_Delete (data);
        self->dropped++;
        return NULL;
    }
    return event;
}

//  Read one message without waiting. Returns 1 and an event, 0 when a
//  message was read but gave no event, -1 when nothing was waiting.
static int s_read (mdp_subscriber_t *self, const char *probe, bool *synced, event_t **event_p)
{
    void *sock = zsock_resolve (self->sock);
    zmq_msg_t frames[2];
    zmq_msg_init (&frames[0]);
    zmq_msg_init (&frames[1]);
    if (zmq_msg_recv (&frames[0], sock, ZMQ_DONTWAIT) < 0)
        return -1;
    size_t count = 1;
    bool more = zmq_msg_more (&frames[0]);
    //  Frames past the second replace it (zmq_msg_recv releases the old
    //  content): such a message is dropped by s_decode anyway.
    for (; more; count++)
        more = zmq_msg_recv (&frames[1], sock, 0) >= 0 && zmq_msg_more (&frames[1]);
    *event_p = s_decode (self, frames, count, probe, synced);
    zmq_msg_close (&frames[0]);
    zmq_msg_close (&frames[1]);
    return *event_p ? 1 : 0;
}

//  Wait until the socket is readable, at most until deadline (-1: forever).
//  Returns 0, or -1 with errno EAGAIN or EINTR. A signal caught by czmq's
//  handler just before the poll would not interrupt it, so the poll wakes
//  up every SIGNAL_SLICE msecs to look at zsys_interrupted.
#define SIGNAL_SLICE 200
static int s_wait (mdp_subscriber_t *self, int64_t deadline)
{
    if (zsys_interrupted) {
        errno = EINTR;
        return -1;
    }
    long left = deadline < 0 ? SIGNAL_SLICE : (long)(deadline - zclock_mono ());
    if (left <= 0) {
        errno = EAGAIN;
        return -1;
    }
    zmq_pollitem_t item = {zsock_resolve (self->sock), 0, ZMQ_POLLIN, 0};
    int rc = zmq_poll (&item, 1, left < SIGNAL_SLICE ? left : SIGNAL_SLICE);
    if (rc < 0)
        errno = errno == ETERM ? EINTR : errno;
    return rc < 0 ? -1 : 0;
}

//  Send a probe after every subscription made so far and wait for the
//  forwarder's answer, queueing the events read meanwhile.
static int s_sync (mdp_subscriber_t *self)
{
    zuuid_t *uuid = zuuid_new ();
    if (!uuid) {
        errno = ENOMEM;
        return -1;
    }
    char probe[80];
    snprintf (probe, sizeof probe, "%s.%s.", MDP_TOPIC_SYNC, zuuid_str (uuid));
    zuuid_destroy (&uuid);
    zsock_set_subscribe (self->sock, probe);
    bool synced = false;
    int64_t deadline = zclock_mono () + self->sync_timeout;
    int rc = 0;
    while (!synced && rc == 0) {
        event_t *event = NULL;
        int got = s_read (self, probe, &synced, &event);
        if (got == 1 && zlist_append (self->queue, event) != 0)
            s_event_destroy (&event);
        if (got < 0)
            rc = s_wait (self, deadline);
    }
    int saved = errno;
    zsock_set_unsubscribe (self->sock, probe);
    errno = saved;
    return synced ? 0 : -1;
}

int mdp_subscriber_subscribe (mdp_subscriber_t *self, const char *prefix)
{
    if (!self || !prefix) {
        errno = EINVAL;
        return -1;
    }
    zsock_set_subscribe (self->sock, prefix);
    return s_sync (self);
}

int mdp_subscriber_unsubscribe (mdp_subscriber_t *self, const char *prefix)
{
    if (!self || !prefix) {
        errno = EINVAL;
        return -1;
    }
    zsock_set_unsubscribe (self->sock, prefix);
    return 0;
}

//  The next event, queued or waiting on the socket, waiting until deadline
//  (zclock_mono time; -1: forever). NULL with errno EAGAIN or EINTR.
static event_t *s_next (mdp_subscriber_t *self, int64_t deadline)
{
    event_t *event = zlist_pop (self->queue);
    bool synced = false;
    while (!event)
        if (s_read (self, NULL, &synced, &event) < 0 && s_wait (self, deadline) != 0)
            return NULL;
    return event;
}

int mdp_subscriber_recv (mdp_subscriber_t *self, char **category_p, cJSON **data_p, int msecs)
{
    if (!self || !category_p || !data_p) {
        errno = EINVAL;
        return -1;
    }
    event_t *event = s_next (self, msecs < 0 ? -1 : zclock_mono () + msecs);
    if (!event)
        return -1;
    *category_p = event->category;
    *data_p = event->data;
    free (event);
    return 0;
}

void mdp_subscriber_set_handler (mdp_subscriber_t *self, mdp_subscriber_fn *fn, void *arg)
{
    self->handler = fn;
    self->handler_arg = arg;
}

zsock_t *mdp_subscriber_socket (mdp_subscriber_t *self)
{
    return self->sock;
}

int mdp_subscriber_process (mdp_subscriber_t *self)
{
    if (!self || !self->handler) {
        errno = EINVAL;
        return -1;
    }
    int calls = 0;
    event_t *event;
    while ((event = s_next (self, zclock_mono ()))) {
        self->handler (self, event->category, event->data, self->handler_arg);
        s_event_destroy (&event);
        calls++;
    }
    return calls;
}

uint64_t mdp_subscriber_dropped (mdp_subscriber_t *self)
{
    return self->dropped;
}
