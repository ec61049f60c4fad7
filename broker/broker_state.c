/*  broker_state.c - the broker's tables: services by name, workers by routing
    id with their expiry and heartbeat lists, requests with their queues and
    the deadline heap (queued and in-flight requests alike). Nothing here
    sends: answering a request or telling a worker to go is broker.c's.
*/
#include "broker_impl.h"
#include <errno.h>
#include <string.h>

//  ---------------------------------------------------------------------------
//  Services

service_t *broker_service_lookup (broker_t *self, const char *name, size_t len)
{
    hnode_t *node = htab_find (&self->services, name, len, htab_hash (name, len));
    return node ? HTAB_ITEM (node, service_t, hnode) : NULL;
}

service_t *broker_service_require (broker_t *self, const char *name, size_t len)
{
    uint64_t hash = htab_hash (name, len);
    hnode_t *node = htab_find (&self->services, name, len, hash);
    if (node)
        return HTAB_ITEM (node, service_t, hnode);
    service_t *service = malloc (sizeof (service_t) + len + 1);
    if (!service)
        return NULL;
    memcpy (service->name, name, len);
    service->name[len] = 0;
    service->namelen = len;
    service->nqueued = 0;
    service->nworkers = 0;
    dlist_init (&service->requests);
    dlist_init (&service->idle);
    service->hnode.key = service->name;
    service->hnode.keylen = len;
    service->hnode.hash = hash;
    htab_insert (&self->services, &service->hnode);
    return service;
}

//  Free the service once nothing refers to it (no worker, nothing queued,
//  nothing in flight: in-flight requests have a worker, so nworkers covers them).
void broker_service_release (broker_t *self, service_t *service)
{
    if (service->nworkers == 0 && service->nqueued == 0) {
        htab_remove (&self->services, &service->hnode);
        free (service);
    }
}

//  ---------------------------------------------------------------------------
//  Deadline heap: every request, queued or in flight; earliest at heap[0].

static void s_heap_set (broker_t *self, size_t index, request_t *request)
{
    self->heap[index] = request;
    request->heap_index = index;
}

static void s_heap_up (broker_t *self, size_t index)
{
    request_t *request = self->heap[index];
    while (index > 0) {
        size_t parent = (index - 1) / 2;
        if (self->heap[parent]->deadline <= request->deadline)
            break;
        s_heap_set (self, index, self->heap[parent]);
        index = parent;
    }
    s_heap_set (self, index, request);
}

static void s_heap_down (broker_t *self, size_t index)
{
    request_t *request = self->heap[index];
    while (true) {
        size_t child = index * 2 + 1;
        if (child >= self->heap_size)
            break;
        if (child + 1 < self->heap_size &&
            self->heap[child + 1]->deadline < self->heap[child]->deadline)
            child++;
        if (request->deadline <= self->heap[child]->deadline)
            break;
        s_heap_set (self, index, self->heap[child]);
        index = child;
    }
    s_heap_set (self, index, request);
}

static int s_heap_push (broker_t *self, request_t *request)
{
    if (self->heap_size == self->heap_cap) {
        size_t cap = self->heap_cap ? self->heap_cap * 2 : 256;
        request_t **heap = realloc (self->heap, cap * sizeof (request_t *));
        if (!heap)
            return -1;
        self->heap = heap;
        self->heap_cap = cap;
    }
    s_heap_set (self, self->heap_size++, request);
    s_heap_up (self, self->heap_size - 1);
    return 0;
}

void broker_heap_remove (broker_t *self, request_t *request)
{
    size_t index = request->heap_index;
    if (index == SIZE_MAX)
        return;
    request->heap_index = SIZE_MAX;
    request_t *last = self->heap[--self->heap_size];
    if (index == self->heap_size)
        return;
    s_heap_set (self, index, last);
    s_heap_up (self, index);
    s_heap_down (self, last->heap_index);
}

//  A partial reply proves the request alive: its deadline moves to now plus
//  the span it was given, the way a streaming client restarts its wait.
void broker_request_extend (broker_t *self, request_t *request, int64_t now)
{
    if (request->heap_index == SIZE_MAX)
        return;
    request->deadline = now + request->span;
    s_heap_down (self, request->heap_index); //  a later deadline only sinks
}

request_t *broker_heap_top (broker_t *self)
{
    return self->heap_size ? self->heap[0] : NULL;
}

//  ---------------------------------------------------------------------------
//  Requests

request_t *broker_request_new (broker_t *self, service_t *service, size_t nenv, size_t nbody,
                               int64_t span)
{
    request_t *request = malloc (sizeof (request_t) + (nenv + nbody) * sizeof (zmq_msg_t));
    if (!request)
        return NULL;
    request->service = service;
    request->worker = NULL;
    request->client = NULL;
    request->heap_index = SIZE_MAX;
    request->nenv = (uint8_t)nenv;
    request->nbody = (uint8_t)nbody;
    request->token = self->next_token++;
    request->span = span;
    request->deadline = broker_now () + span;
    dlist_init (&request->link);
    return request;
}

void broker_request_destroy (broker_t *self, request_t **request_p)
{
    request_t *request = *request_p;
    if (!request)
        return;
    client_t *client = request->client;
    if (client && --client->pending == 0) {
        htab_remove (&self->clients, &client->hnode);
        free (client);
    }
    for (size_t i = 0; i < (size_t)request->nenv + request->nbody; i++)
        zmq_msg_close (&request->frames[i]);
    free (request);
    *request_p = NULL;
}

int broker_request_enqueue (broker_t *self, request_t *request)
{
    service_t *service = request->service;
    if (service->nqueued >= self->cfg.max_queue ||
        self->queued_total >= self->cfg.max_queued_total) {
        errno = EBUSY;
        return -1;
    }
    if (broker_request_track (self, request) != 0)
        return -1;
    dlist_append (&service->requests, &request->link);
    service->nqueued++;
    self->queued_total++;
    return 0;
}

int broker_request_track (broker_t *self, request_t *request)
{
    if (s_heap_push (self, request) != 0) {
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

//  Take a request off its service's queue (it stays under its deadline).
void broker_request_unqueue (broker_t *self, request_t *request)
{
    if (dlist_linked (&request->link)) {
        dlist_remove (&request->link);
        request->service->nqueued--;
        self->queued_total--;
    }
}

void broker_request_detach (broker_t *self, request_t *request)
{
    broker_request_unqueue (self, request);
    broker_heap_remove (self, request);
    if (request->worker) {
        request->worker->request = NULL;
        request->worker = NULL;
    }
}

//  ---------------------------------------------------------------------------
//  Workers

worker_t *broker_worker_lookup (broker_t *self, const zmq_msg_t *id)
{
    const void *key = zmq_msg_data ((zmq_msg_t *)id);
    size_t len = zmq_msg_size ((zmq_msg_t *)id);
    hnode_t *node = htab_find (&self->workers, key, len, htab_hash (key, len));
    return node ? HTAB_ITEM (node, worker_t, hnode) : NULL;
}

worker_t *broker_worker_new (broker_t *self, const zmq_msg_t *id, service_t *service, uint8_t proto,
                             bool bare)
{
    size_t len = zmq_msg_size ((zmq_msg_t *)id);
    worker_t *worker = malloc (sizeof (worker_t) + len);
    if (!worker || len > 255) {
        free (worker);
        return NULL;
    }
    memcpy (worker->identity, zmq_msg_data ((zmq_msg_t *)id), len);
    worker->idlen = (uint8_t)len;
    worker->service = service;
    worker->request = NULL;
    worker->proto = proto;
    worker->bare = bare;
    worker->user[0] = 0;
    worker->hnode.key = worker->identity;
    worker->hnode.keylen = len;
    worker->hnode.hash = htab_hash (worker->identity, len);
    dlist_init (&worker->idle_link);
    dlist_init (&worker->expiry_link);
    dlist_init (&worker->beat_link);
    htab_insert (&self->workers, &worker->hnode);
    service->nworkers++;
    broker_worker_touch (self, worker, broker_now ());
    broker_worker_beaten (self, worker, broker_now ());
    return worker;
}

//  Any message from a worker proves it alive: it moves to the tail of the
//  expiry list, which so stays sorted by expiry without a scan.
void broker_worker_touch (broker_t *self, worker_t *worker, int64_t now)
{
    worker->expiry = now + (int64_t)self->cfg.heartbeat * self->cfg.liveness;
    if (dlist_linked (&worker->expiry_link))
        dlist_remove (&worker->expiry_link);
    dlist_append (&self->by_expiry, &worker->expiry_link);
}

//  We just sent the worker something: its next HEARTBEAT is due a full
//  interval from now. The list stays sorted by beat_at, so the tick only
//  looks at the workers actually due, spread over the interval.
void broker_worker_beaten (broker_t *self, worker_t *worker, int64_t now)
{
    worker->beat_at = now + self->cfg.heartbeat;
    if (dlist_linked (&worker->beat_link))
        dlist_remove (&worker->beat_link);
    dlist_append (&self->by_beat, &worker->beat_link);
}

//  New heartbeat settings (broker_configure, from old): a shorter interval
//  brings every HEARTBEAT we owe forward, so no worker waits out the old,
//  longer one; a longer silence allowance pushes every expiry back by the
//  difference. Both keep the lists sorted.
void broker_workers_retime (broker_t *self, const broker_config_t *old, int64_t now)
{
    int64_t beat_by = now + self->cfg.heartbeat;
    for (dlink_t *link = self->by_beat.next; link != &self->by_beat; link = link->next) {
        worker_t *worker = DLIST_ITEM (link, worker_t, beat_link);
        if (worker->beat_at > beat_by)
            worker->beat_at = beat_by;
    }
    int64_t grace =
        (int64_t)self->cfg.heartbeat * self->cfg.liveness - (int64_t)old->heartbeat * old->liveness;
    for (dlink_t *link = self->by_expiry.next; grace > 0 && link != &self->by_expiry;
         link = link->next)
        DLIST_ITEM (link, worker_t, expiry_link)->expiry += grace;
}

void broker_worker_destroy (broker_t *self, worker_t **worker_p)
{
    worker_t *worker = *worker_p;
    if (!worker)
        return;
    service_t *service = worker->service;
    if (dlist_linked (&worker->idle_link))
        dlist_remove (&worker->idle_link);
    dlist_remove (&worker->expiry_link);
    dlist_remove (&worker->beat_link);
    htab_remove (&self->workers, &worker->hnode);
    free (worker);
    *worker_p = NULL;
    service->nworkers--;
    broker_service_release (self, service);
}
