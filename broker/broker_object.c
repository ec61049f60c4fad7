/*  broker_object.c - the broker as an object: its settings, the ROUTER socket
    and binding, counters for callers, teardown, and an actor wrapper for
    tests. The message path that runs inside it is broker.c.
*/
#include "broker_impl.h"
#include <errno.h>
#include <string.h>

void broker_config_defaults (broker_config_t *cfg)
{
    cfg->heartbeat = 2500;
    cfg->liveness = 3;
    cfg->request_timeout = 30000;
    cfg->max_queue = 10000;
    cfg->max_queued_total = 1000000;
    cfg->max_msg_size = -1;
    cfg->verbose = false;
    cfg->stats_interval = 0;
    cfg->max_client_requests = 0;
}

int64_t broker_now (void)
{
    return zclock_mono ();
}

broker_t *broker_new (const broker_config_t *cfg)
{
    broker_t *self = calloc (1, sizeof (broker_t));
    if (!self)
        return NULL;
    if (cfg)
        self->cfg = *cfg;
    else
        broker_config_defaults (&self->cfg);
    self->router = zmq_socket (zsys_init (), ZMQ_ROUTER);
    if (!self->router || htab_init (&self->services) || htab_init (&self->workers) ||
        htab_init (&self->clients)) {
        broker_destroy (&self);
        return NULL;
    }
    int linger = 1000, hwm = 0;
    zmq_setsockopt (self->router, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (self->router, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt (self->router, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt (self->router, ZMQ_MAXMSGSIZE, &self->cfg.max_msg_size, sizeof (int64_t));
    dlist_init (&self->by_expiry);
    self->next_token = 1;
    self->started = broker_now ();
    dlist_init (&self->by_beat);
    return self;
}

static void s_destroy_service (hnode_t *node, void *arg)
{
    free (HTAB_ITEM (node, service_t, hnode));
}

void broker_destroy (broker_t **self_p)
{
    broker_t *self = self_p ? *self_p : NULL;
    if (!self)
        return;
    //  Requests first (they point at workers and services), then workers.
    while (self->heap_size)
        broker_request_fail (self, self->heap[0], 0, NULL);
    while (!dlist_empty (&self->by_expiry)) {
        worker_t *worker = DLIST_ITEM (self->by_expiry.next, worker_t, expiry_link);
        broker_worker_remove (self, worker, false, 0, NULL);
    }
    if (self->services.buckets)
        htab_foreach (&self->services, s_destroy_service, NULL);
    htab_fini (&self->services);
    htab_fini (&self->workers);
    htab_fini (&self->clients);
    broker_metrics_destroy (self);
    broker_security_destroy (self);
    free (self->heap);
    if (self->router)
        zmq_close (self->router);
    free (self);
    *self_p = NULL;
}

int broker_bind (broker_t *self, const char *endpoint)
{
    if (zmq_bind (self->router, endpoint) != 0)
        return -1;
    size_t size = sizeof self->endpoint;
    if (zmq_getsockopt (self->router, ZMQ_LAST_ENDPOINT, self->endpoint, &size) != 0)
        snprintf (self->endpoint, sizeof self->endpoint, "%s", endpoint);
    return 0;
}

const char *broker_endpoint (broker_t *self)
{
    return self->endpoint;
}

void broker_configure (broker_t *self, const broker_config_t *cfg)
{
    broker_config_t old = self->cfg;
    self->cfg = *cfg;
    broker_workers_retime (self, &old, broker_now ());
    zmq_setsockopt (self->router, ZMQ_MAXMSGSIZE, &self->cfg.max_msg_size, sizeof (int64_t));
}

const broker_stats_t *broker_stats (broker_t *self)
{
    return &self->stats;
}

void broker_counts (broker_t *self, size_t *services, size_t *workers, size_t *queued)
{
    *services = self->services.count;
    *workers = self->workers.count;
    *queued = self->queued_total;
}

void broker_stop (broker_t *self)
{
    self->stopping = true;
}

//  A broker in a zactor: binds args->endpoint (tcp://127.0.0.1:* by default),
//  signals 0 (or 1 when it cannot bind) and runs until $TERM.
void broker_actor (zsock_t *pipe, void *args)
{
    broker_actor_args_t *actor_args = args;
    broker_t *self = broker_new (actor_args ? actor_args->cfg : NULL);
    const char *endpoint =
        actor_args && actor_args->endpoint ? actor_args->endpoint : "tcp://127.0.0.1:*";
    //  A port that an in-process broker has just closed is released by
    //  libzmq's I/O thread a moment later: allow it up to two seconds.
    int64_t until = zclock_mono () + 2000;
    int rc = self ? broker_bind (self, endpoint) : -1;
    while (self && rc != 0 && errno == EADDRINUSE && zclock_mono () < until) {
        zclock_sleep (10);
        rc = broker_bind (self, endpoint);
    }
    if (!self || rc != 0) {
        zsys_error ("broker: cannot bind %s: %s", endpoint, zmq_strerror (errno));
        broker_destroy (&self);
        zsock_signal (pipe, 1);
        return;
    }
    zsock_signal (pipe, 0);
    broker_run (self, pipe, -1, NULL, NULL);
    broker_destroy (&self);
}
