/*  broker_loop.c - the broker's clock and event loop: the one tick function
    (worker expiry, heartbeats, request deadlines), the poll loop that feeds
    broker_handle, the graceful goodbye, and an actor wrapper for tests.
*/
#include "broker_impl.h"
#include "broker_metrics.h"
#include <errno.h>
#include <string.h>

int64_t broker_tick (broker_t *self, int64_t now)
{
    //  Workers silent too long; the list is ordered by last contact.
    while (!dlist_empty (&self->by_expiry)) {
        worker_t *worker = DLIST_ITEM (self->by_expiry.next, worker_t, expiry_link);
        if (worker->expiry > now)
            break;
        zsys_warning ("broker: worker of '%s' expired", worker->service->name);
        self->stats.workers_expired++;
        broker_worker_delete (self, worker, true, 502, "worker expired");
    }
    //  HEARTBEATs owed: each worker gets one a heartbeat after the last thing
    //  we sent it, so a busy broker sends few and none go out in one burst.
    while (!dlist_empty (&self->by_beat)) {
        worker_t *worker = DLIST_ITEM (self->by_beat.next, worker_t, beat_link);
        if (worker->beat_at > now)
            break;
        broker_send_command (self, worker->identity, worker->idlen, worker->proto, worker->bare,
                             MDP_CMD_HEARTBEAT (worker->proto));
        broker_worker_beaten (self, worker, now);
    }
    //  Requests past their deadline. A worker holding one may never answer
    //  (Domogik workers ignore unknown actions): the client hears 504 and the
    //  worker is taken as idle again; a reply it sends later is stale.
    request_t *request;
    while ((request = broker_heap_top (self)) && request->deadline <= now) {
        worker_t *worker = request->worker;
        if (worker) {
            broker_request_fail (self, request, 504, "worker did not answer in time");
            dlist_append (&worker->service->idle, &worker->idle_link);
            broker_dispatch (self, worker->service);
        }
        else
            broker_request_fail (self, request, 504,
                                 request->service->nworkers ? "deadline passed while queued"
                                                            : "no worker for service");
    }
    broker_metrics_tick (self, now);
    int64_t next = now + self->cfg.heartbeat;   //  periodic work (stats) at the latest
    if (!dlist_empty (&self->by_beat)) {
        worker_t *worker = DLIST_ITEM (self->by_beat.next, worker_t, beat_link);
        if (worker->beat_at < next)
            next = worker->beat_at;
    }
    if (!dlist_empty (&self->by_expiry)) {
        worker_t *worker = DLIST_ITEM (self->by_expiry.next, worker_t, expiry_link);
        if (worker->expiry < next)
            next = worker->expiry;
    }
    if ((request = broker_heap_top (self)) && request->deadline < next)
        next = request->deadline;
    int64_t due = broker_metrics_due (self);   //  the next stats log line
    if (due && due < next)
        next = due;
    return next;
}

//  Read one whole message. Returns its frame count, 0 when nothing waits.
//  A message of more than BROKER_MAX_FRAMES frames is read and dropped.
static size_t s_recv (broker_t *self, zmq_msg_t *frames)
{
    size_t count = 0;
    bool more = true;
    while (more) {
        zmq_msg_t *frame = &frames[count < BROKER_MAX_FRAMES ? count : BROKER_MAX_FRAMES];
        zmq_msg_init (frame);
        if (zmq_msg_recv (frame, self->router, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (frame);
            break;   //  EAGAIN before the first frame; nothing else can happen mid-message
        }
        more = zmq_msg_more (frame);
        if (count < BROKER_MAX_FRAMES)
            count++;
        else {
            zmq_msg_close (frame);
            count = BROKER_MAX_FRAMES + 1;
        }
    }
    if (count > BROKER_MAX_FRAMES) {
        for (size_t i = 0; i < BROKER_MAX_FRAMES; i++)
            zmq_msg_close (&frames[i]);
        broker_drop (self, DROP_TOO_MANY_FRAMES, "over %d frames", BROKER_MAX_FRAMES);
        return SIZE_MAX;
    }
    return count;
}

//  Handle every message waiting on the socket, up to a batch limit so timers
//  still run under load.
static void s_drain (broker_t *self)
{
    zmq_msg_t frames[BROKER_MAX_FRAMES + 1];
    for (int batch = 0; batch < 1000; batch++) {
        size_t count = s_recv (self, frames);
        if (count == 0)
            break;
        if (count != SIZE_MAX)
            broker_handle (self, frames, count);
    }
}

void broker_poll (broker_t *self, int msecs)
{
    zmq_pollitem_t item = {self->router, 0, ZMQ_POLLIN, 0};
    int64_t wait = broker_tick (self, broker_now ()) - broker_now ();
    if (wait > msecs)
        wait = msecs;
    if (zmq_poll (&item, 1, wait < 0 ? 0 : (long) wait) > 0)
        s_drain (self);
    broker_tick (self, broker_now ());
}

int broker_run (broker_t *self, zsock_t *ctl_sock, int ctl_fd, broker_ctl_fn *on_ctl, void *arg)
{
    zmq_pollitem_t items[3] = {{self->router, 0, ZMQ_POLLIN, 0}};
    int nitems = 1, sock_item = -1, fd_item = -1;
    if (ctl_sock) {
        items[nitems] = (zmq_pollitem_t){zsock_resolve (ctl_sock), 0, ZMQ_POLLIN, 0};
        sock_item = nitems++;
    }
    if (ctl_fd >= 0) {
        items[nitems] = (zmq_pollitem_t){NULL, ctl_fd, ZMQ_POLLIN, 0};
        fd_item = nitems++;
    }
    int64_t next = broker_tick (self, broker_now ());
    int failed = 0;   //  errno of a fatal poll error
    while (!self->stopping && !zsys_interrupted) {
        int64_t wait = next - broker_now ();
        int rc = zmq_poll (items, nitems, wait < 0 ? 0 : (long) wait);
        if (rc < 0 && errno != EINTR) {
            failed = errno;
            zsys_error ("broker: poll failed: %s", zmq_strerror (failed));
            break;
        }
        if (rc > 0 && (items[0].revents & ZMQ_POLLIN))
            s_drain (self);
        if (rc > 0 && sock_item >= 0 && (items[sock_item].revents & ZMQ_POLLIN)) {
            char *command = zstr_recv (ctl_sock);
            if (!command || streq (command, "$TERM"))
                self->stopping = true;
            else
            if (streq (command, "ENDPOINT"))
                zstr_send (ctl_sock, self->endpoint);
            zstr_free (&command);
        }
        if (rc > 0 && fd_item >= 0 && (items[fd_item].revents & ZMQ_POLLIN) && on_ctl)
            on_ctl (self, arg);
        int64_t now = broker_now ();
        if (now >= next || rc > 0)
            next = broker_tick (self, now);
    }
    broker_shutdown (self);
    if (!failed)
        return 0;
    errno = failed;
    return -1;
}

void broker_shutdown (broker_t *self)
{
    size_t failed = self->heap_size;
    while (self->heap_size)
        broker_request_fail (self, self->heap[0], 503, "broker shutting down");
    while (!dlist_empty (&self->by_expiry)) {
        worker_t *worker = DLIST_ITEM (self->by_expiry.next, worker_t, expiry_link);
        if (worker->request)
            failed++;
        broker_worker_delete (self, worker, true, 503, "broker shutting down");
    }
    if (failed)
        zsys_info ("broker: answered %zu pending requests with 503 at shutdown", failed);
}

void broker_actor (zsock_t *pipe, void *args)
{
    broker_actor_args_t *actor_args = args;
    broker_t *self = broker_new (actor_args ? actor_args->cfg : NULL);
    const char *endpoint = actor_args && actor_args->endpoint ? actor_args->endpoint
                                                              : "tcp://127.0.0.1:*";
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
