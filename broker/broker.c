/*  broker.c - the Majordomo routing engine, the message path top to bottom:
    receive (read the ROUTER socket), classify (broker_handle), one handler per
    command, dispatch, the tick, then run / poll / shutdown. Frames are zmq_msg_t
    moved from socket to socket; bodies are never copied or parsed here. What
    goes out is built in broker_wire.c; the tables live in broker_state.c.

    What arrives ([<id>] is the ROUTER routing id, "" an empty frame, [..?]
    an optional frame, [env...] any routing frames a DEALER/ROUTER chain adds):
      client, MDP/0.1     [<id>][env...][""]["MDPC01"][service][timeout?][body...]
      client, MDP/0.2     [<id>][env...][""]["MDPC02"][0x01][service][timeout?][body...]
        bare form         [<id>]["MDPC02"][0x01][service][timeout?][body...]
      client, majortomo   [<id>][env...][""]["MDPC02"][0x02][service][timeout?][body...]
                          (and bare: [<id>]["MDPC02"][0x02]...)
      worker, MDP/0.1     [<id>][""]["MDPW01"][command][args...]
        READY 0x01 [service]   REPLY 0x03 [token][""][body...]
        HEARTBEAT 0x04         DISCONNECT 0x05
      worker, MDP/0.2     [<id>][""]["MDPW02"][command][args...], bare: [<id>]["MDPW02"]...
        READY 0x01 [service]   PARTIAL 0x03 / FINAL 0x04 [token][""][body...]
        HEARTBEAT 0x05         DISCONNECT 0x06
    What leaves, a client's in the framing it came in (framing_t):
      client, MDP/0.1     [<id>][env...][""]["MDPC01"][service][body...]
      client, MDP/0.2     [<id>][env...][""]["MDPC02"][0x02 PARTIAL | 0x03 FINAL][service][body...]
        bare form         [<id>]["MDPC02"][0x02 | 0x03][service][body...]
      client, majortomo   [<id>][env...][""]["MDPC02"][0x03 PARTIAL | 0x04 FINAL][body...]
      errors, MMI         a FINAL with body ["mdp.error"][{"code": N, "reason": "..."}]
                          or the MMI answer; an MDP/0.1 client gets finals only
      REQUEST             [<wid>][""]["MDPW0v"][0x02][token][""][body...] (bare: no "")
      HEARTBEAT           [<wid>][""]["MDPW0v"][0x04 (0.1) | 0x05 (0.2)]
      DISCONNECT          [<wid>][""]["MDPW0v"][0x05 (0.1) | 0x06 (0.2)]
    The token is the broker's own 8 bytes; a worker echoes it in its reply.
*/
#include "access.h"
#include "broker_impl.h"
#include "broker_metrics.h"
#include <errno.h>
#include <string.h>

//  ---------------------------------------------------------------------------
//  Receive. broker_handle classifies each message (below).

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
            break; //  EAGAIN before the first frame; nothing else can happen mid-message
        }
        more = zmq_msg_more (frame);
        if (count < BROKER_MAX_FRAMES) {
            count++;
        } else {
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

static void s_client_request (broker_t *self, zmq_msg_t *frames, size_t count, size_t nenv,
                              size_t service_i, framing_t framing);
static void s_worker_message (broker_t *self, zmq_msg_t *frames, size_t count, size_t proto_i,
                              uint8_t version, bool bare);
static void s_route (broker_t *self, request_t *request);
static void s_send_request (broker_t *self, worker_t *worker, request_t *request);

//  ---------------------------------------------------------------------------
//  Classify: sort a message by its protocol frame, found after the routing id
//  (the bare MDP/0.2 form) or after the first empty frame (every other form),
//  and hand it to its handler. Every frame is closed here afterwards (those a
//  handler moved out close as no-ops).
void broker_handle (broker_t *self, zmq_msg_t *frames, size_t count)
{
    if (self->cfg.verbose)
        broker_log_message (frames, count);
    bool bare = count > 1 && (broker_frame_is (&frames[1], MDPC02, MDP_PROTO_LEN) ||
                              broker_frame_is (&frames[1], MDPW02, MDP_PROTO_LEN));
    size_t delim = 1;
    if (bare)
        delim = 0; //  no delimiter: the protocol frame is frame 1
    else
        while (delim < count && zmq_msg_size (&frames[delim]) != 0)
            delim++;
    size_t proto_i = bare ? 1 : delim + 1, nenv = bare ? 1 : delim;
    zmq_msg_t *proto = proto_i + 1 < count ? &frames[proto_i] : NULL;
    if (!proto) {
        broker_drop (self, DROP_MALFORMED, "%zu frames, no delimiter, protocol and command", count);
    } else if (broker_frame_is (proto, MDPC01, MDP_PROTO_LEN)) {
        s_client_request (self, frames, count, nenv, proto_i + 1, (framing_t){1, false, false});
    } else if (broker_frame_is (proto, MDPC02, MDP_PROTO_LEN)) {
        //  RFC 18's REQUEST is 0x01. A client never sends 0x02 (PARTIAL goes
        //  broker to client), except majortomo's, whose REQUEST it is.
        zmq_msg_t *command = &frames[proto_i + 1];
        uint8_t code = zmq_msg_size (command) == 1 ? *(uint8_t *)zmq_msg_data (command) : 0;
        if (code == MDPC02_REQUEST || code == MDPC02_MAJORTOMO_REQUEST)
            s_client_request (self, frames, count, nenv, proto_i + 2,
                              (framing_t){2, bare, code == MDPC02_MAJORTOMO_REQUEST});
        else
            broker_drop (self, DROP_MALFORMED, "MDPC02 message that is not a REQUEST");
    } else if (broker_frame_is (proto, MDPW01, MDP_PROTO_LEN)) {
        s_worker_message (self, frames, count, proto_i, 1, false);
    } else if (broker_frame_is (proto, MDPW02, MDP_PROTO_LEN)) {
        s_worker_message (self, frames, count, proto_i, 2, bare);
    } else {
        broker_drop (self, DROP_MALFORMED, "unknown protocol frame of %zu bytes",
                     zmq_msg_size (proto));
    }
    for (size_t i = 0; i < count; i++)
        zmq_msg_close (&frames[i]);
}

//  ---------------------------------------------------------------------------
//  Handlers, one per command.

//  DISCONNECT to the sender of frames[0] (a worker not in our tables).
static void s_disconnect_peer (broker_t *self, zmq_msg_t *frames, uint8_t version, bool bare)
{
    broker_wire_command (self, zmq_msg_data (&frames[0]), zmq_msg_size (&frames[0]), version, bare,
                         mdp_proto_code (version, MDP_PROTO_DISCONNECT));
}

//  Msecs until a request's deadline. A client's own timeout gets a small
//  margin (5%, at most 100 ms) so that our 504 reaches it before it gives up.
static int64_t s_deadline_in (broker_t *self, int64_t timeout)
{
    if (timeout <= 0)
        return self->cfg.request_timeout;
    int64_t margin = timeout / 20 < 100 ? timeout / 20 : 100;
    return timeout - margin;
}

//  True when the access rules let user call the service (name is not
//  NUL-terminated in its frame).
static bool s_may_call (broker_t *self, const char *user, const char *name, size_t namelen)
{
    if (!self->access)
        return true;
    char service[MDP_MAX_SERVICE_NAME + 1];
    memcpy (service, name, namelen);
    service[namelen] = 0;
    return access_may_call (self->access, user, service);
}

//  Answer a request the broker will not take (403, 429, 503) at once, to the
//  client whose envelope is env (moved out); user is the peer's key, for the
//  refusal log.
static void s_refuse (broker_t *self, zmq_msg_t *env, size_t nenv, framing_t framing,
                      const char *name, size_t namelen, int code, const char *reason,
                      const char *user)
{
    broker_log_refusal (self, "%d (%s) for '%.*s' to key '%s'", code, reason, (int)namelen, name,
                        *user ? user : "(none)");
    broker_wire_error (self, env, nenv, framing, name, namelen, code, reason);
}

//  Make a request of a client message: env frames [0, nenv) and body frames
//  [body, count) move into it, counted against its client's cap. NULL when
//  refused (answered 429 or 503 here); the frames left behind are the
//  caller's to close.
static request_t *s_request_take (broker_t *self, zmq_msg_t *frames, size_t count, size_t nenv,
                                  size_t body, framing_t framing, service_t *service,
                                  int64_t timeout, const char *user)
{
    size_t nbody = count - body;
    request_t *request =
        broker_request_new (self, service, nenv, nbody, s_deadline_in (self, timeout));
    if (!request) {
        s_refuse (self, frames, nenv, framing, service->name, service->namelen, 503,
                  "out of memory", user);
        broker_service_release (self, service);
        return NULL;
    }
    request->framing = framing;
    //  Move the envelope and body frames in; the emptied originals close as no-ops.
    memcpy (request->frames, frames, nenv * sizeof (zmq_msg_t));
    memcpy (request->frames + nenv, frames + body, nbody * sizeof (zmq_msg_t));
    for (size_t i = 0; i < nenv; i++)
        zmq_msg_init (&frames[i]);
    for (size_t i = body; i < count; i++)
        zmq_msg_init (&frames[i]);
    if (broker_client_admit (self, request, &request->frames[0], user) != 0) {
        bool at_cap = errno == EBUSY; //  else out of memory: never a 429
        s_refuse (self, request->frames, nenv, framing, service->name, service->namelen,
                  at_cap ? 429 : 503, at_cap ? "too many requests" : "out of memory", user);
        broker_request_destroy (self, &request);
        broker_service_release (self, service);
    }
    return request;
}

//  A client request. env frames [0, nenv) are its envelope; the service frame
//  is at index service_i and the body follows it. Replies go out in framing.
static void s_client_request (broker_t *self, zmq_msg_t *frames, size_t count, size_t nenv,
                              size_t service_i, framing_t framing)
{
    if (count <= service_i + 1) {
        broker_drop (self, DROP_MALFORMED, "client request without a service and a body");
        return;
    }
    zmq_msg_t *service = &frames[service_i];
    size_t body = service_i + 1, namelen = zmq_msg_size (service);
    if (namelen == 0 || namelen > MDP_MAX_SERVICE_NAME) {
        broker_drop (self, DROP_BAD_SERVICE, "client request with a %zu-byte service name",
                     namelen);
        return;
    }
    int64_t timeout = 0;
    if (count - body >= 2 && broker_parse_timeout (&frames[body], &timeout))
        body++; //  the timeout frame stays behind and is closed with the rest
    const char *name = zmq_msg_data (service);
    if (namelen >= 4 && memcmp (name, MDP_MMI_PREFIX, 4) == 0) {
        self->stats.requests++;
        broker_mmi (self, framing, frames, nenv, name, namelen, frames + body, count - body);
        return;
    }
    //  The peer's key is a metadata lookup: only when rules or CURVE need it
    //  (with CURVE, the per-client cap counts per key).
    const char *user = self->access || self->keys ? broker_peer_user (&frames[1]) : "";
    if (!broker_peer_allowed (self, user) || !s_may_call (self, user, name, namelen)) {
        s_refuse (self, frames, nenv, framing, name, namelen, 403, "not allowed", user);
        return;
    }
    service_t *srv = broker_service_require (self, name, namelen);
    if (!srv) {
        s_refuse (self, frames, nenv, framing, name, namelen, 503, "out of memory", user);
        return;
    }
    request_t *request =
        s_request_take (self, frames, count, nenv, body, framing, srv, timeout, user);
    if (!request)
        return;
    self->stats.requests++;
    broker_metrics_request (self, srv);
    s_route (self, request);
}

//  READY from a worker not yet known (or, a protocol error, from one that is).
static void s_worker_ready (broker_t *self, worker_t *worker, zmq_msg_t *frames,
                            zmq_msg_t *name_frame, uint8_t version, bool bare)
{
    if (worker) {
        broker_drop (self, DROP_UNEXPECTED, "second READY from a worker of '%s'",
                     worker->service->name);
        broker_worker_remove (self, worker, true, 502, "worker sent READY twice");
        return;
    }
    size_t namelen = zmq_msg_size (name_frame);
    const char *name = zmq_msg_data (name_frame);
    if (namelen == 0 || namelen > MDP_MAX_SERVICE_NAME) {
        broker_drop (self, DROP_BAD_SERVICE, "READY with a %zu-byte service name", namelen);
        return;
    }
    if (namelen >= 4 && memcmp (name, MDP_MMI_PREFIX, 4) == 0) {
        broker_drop (self, DROP_UNEXPECTED, "READY for reserved service %.*s", (int)namelen, name);
        s_disconnect_peer (self, frames, version, bare);
        return;
    }
    const char *user = broker_peer_user (&frames[1]);
    char wanted[MDP_MAX_SERVICE_NAME + 1];
    memcpy (wanted, name, namelen);
    wanted[namelen] = 0;
    if (!broker_peer_allowed (self, user) || !access_may_offer (self->access, user, wanted)) {
        self->stats.dropped[DROP_REFUSED]++;
        broker_log_refusal (self, "READY for '%s' to key '%s'", wanted, *user ? user : "(none)");
        s_disconnect_peer (self, frames, version, bare);
        return;
    }
    service_t *service = broker_service_require (self, name, namelen);
    worker = service ? broker_worker_new (self, &frames[0], service, version, bare) : NULL;
    if (!worker) {
        if (service)
            broker_service_release (self, service);
        return;
    }
    snprintf (worker->user, sizeof worker->user, "%s", user);
    if (self->cfg.verbose)
        zsys_info ("broker: worker ready for '%s' (MDP/0.%d)", service->name, version);
    dlist_append (&service->idle, &worker->idle_link);
    broker_dispatch (self, service);
    //  A worker that sent READY while we were down counts our silence from
    //  then: a first sign of life now, not an interval later, or it gives up
    //  and registers again while this registration lingers as a ghost.
    if (!worker->request) {
        broker_wire_command (self, worker->identity, worker->idlen, version, bare,
                             mdp_proto_code (version, MDP_PROTO_HEARTBEAT));
        broker_worker_beaten (self, worker, broker_now ());
    }
}

//  REPLY (0.1), FINAL or PARTIAL (0.2): args are [token][""][body...].
static void s_worker_reply (broker_t *self, worker_t *worker, zmq_msg_t *args, size_t nargs,
                            bool final)
{
    request_t *request = worker->request;
    if (nargs < 3 || zmq_msg_size (&args[1]) != 0) {
        broker_drop (self, DROP_MALFORMED, "reply without [token][\"\"][body]");
        return;
    }
    if (!request || zmq_msg_size (&args[0]) != sizeof request->token ||
        memcmp (zmq_msg_data (&args[0]), &request->token, sizeof request->token) != 0) {
        broker_drop (self, DROP_STALE_REPLY, "reply for a request not outstanding on '%s'",
                     worker->service->name);
        return;
    }
    broker_wire_reply (self, request, args + 2, nargs - 2, final);
    if (!final) {
        broker_request_extend (self, request, broker_now ());
        return;
    }
    self->stats.replies++;
    broker_metrics_reply (self, worker->service, broker_now () - request->dispatched);
    worker->request = NULL;
    broker_heap_remove (self, request);
    broker_request_destroy (self, &request);
    dlist_append (&worker->service->idle, &worker->idle_link);
    broker_dispatch (self, worker->service);
}

//  A worker command; its protocol frame is at proto_i (1 bare, 2 delimited).
static void s_worker_message (broker_t *self, zmq_msg_t *frames, size_t count, size_t proto_i,
                              uint8_t version, bool bare)
{
    size_t cmd_i = proto_i + 1;
    if (proto_i != (bare ? 1u : 2u) || count <= cmd_i || zmq_msg_size (&frames[cmd_i]) != 1) {
        broker_drop (self, DROP_MALFORMED, "worker message of %zu frames, protocol at %zu", count,
                     proto_i);
        return;
    }
    uint8_t code = *(uint8_t *)zmq_msg_data (&frames[cmd_i]);
    int op = mdp_proto_command (version, code); //  MDP_PROTO_*, -1 if none
    zmq_msg_t *args = frames + cmd_i + 1;
    size_t nargs = count - cmd_i - 1;
    worker_t *worker = broker_worker_lookup (self, &frames[0]);
    if (worker && (worker->proto != version || worker->bare != bare)) {
        broker_drop (self, DROP_MALFORMED, "MDP/0.%d command from an MDP/0.%d worker", version,
                     worker->proto);
        return;
    }
    if (worker)
        broker_worker_touch (self, worker, broker_now ());
    if (op == MDP_PROTO_READY && nargs == 1) {
        s_worker_ready (self, worker, frames, &args[0], version, bare);
    } else if (op == MDP_PROTO_DISCONNECT && nargs == 0) {
        if (worker)
            broker_worker_remove (self, worker, false, 502, "worker disconnected");
    } else if (!worker &&
               (op == MDP_PROTO_FINAL || op == MDP_PROTO_PARTIAL || op == MDP_PROTO_HEARTBEAT)) {
        //  Typically a worker of a broker that restarted: tell it to READY again.
        broker_drop (self, DROP_UNEXPECTED, "command %d from an unregistered worker", code);
        s_disconnect_peer (self, frames, version, bare);
    } else if (op == MDP_PROTO_FINAL || op == MDP_PROTO_PARTIAL) {
        s_worker_reply (self, worker, args, nargs, op == MDP_PROTO_FINAL);
    } else if (op != MDP_PROTO_HEARTBEAT || nargs != 0) {
        broker_drop (self, DROP_MALFORMED, "worker command %d with %zu frames", code, count);
    }
}

//  ---------------------------------------------------------------------------
//  Dispatch: a request to a worker.

//  REQUEST to a worker; the body frames move out and the worker holds it.
static void s_send_request (broker_t *self, worker_t *worker, request_t *request)
{
    broker_wire_request (self, worker, request);
    request->dispatched = broker_now ();
    broker_worker_beaten (self, worker, request->dispatched); //  a REQUEST is a heartbeat
    request->worker = worker;
    worker->request = request;
}

//  Give queued requests to idle workers, oldest request to longest-idle worker.
void broker_dispatch (broker_t *self, service_t *service)
{
    while (!dlist_empty (&service->requests) && !dlist_empty (&service->idle)) {
        worker_t *worker = DLIST_ITEM (dlist_pop (&service->idle), worker_t, idle_link);
        request_t *request = DLIST_ITEM (service->requests.next, request_t, link);
        broker_request_unqueue (self, request);
        s_send_request (self, worker, request);
    }
}

//  A new request: straight to an idle worker when none waits before it,
//  else to the back of its service's queue. Failing that, it is answered 503.
static void s_route (broker_t *self, request_t *request)
{
    service_t *service = request->service;
    if (service->nqueued == 0 && !dlist_empty (&service->idle)) {
        if (broker_request_track (self, request) != 0) {
            broker_request_fail (self, request, 503, "out of memory");
            return;
        }
        worker_t *worker = DLIST_ITEM (dlist_pop (&service->idle), worker_t, idle_link);
        s_send_request (self, worker, request);
    } else if (broker_request_enqueue (self, request) == 0) {
        broker_dispatch (self, service);
    } else {
        broker_request_fail (self, request, 503, errno == EBUSY ? "queue full" : "out of memory");
    }
}

//  ---------------------------------------------------------------------------
//  Ending requests and workers: the two places where state changes answer a
//  peer. The tables are broker_state.c's; the frames are broker_wire.c's.

void broker_request_fail (broker_t *self, request_t *request, int code, const char *reason)
{
    service_t *service = request->service;
    broker_request_detach (self, request);
    if (code) {
        broker_wire_error (self, request->frames, request->nenv, request->framing, service->name,
                           service->namelen, code, reason);
        if (self->cfg.verbose)
            zsys_info ("broker: answered %d (%s) for '%s'", code, reason, service->name);
    }
    broker_request_destroy (self, &request);
    broker_service_release (self, service);
}

void broker_worker_remove (broker_t *self, worker_t *worker, bool disconnect, int code,
                           const char *reason)
{
    if (disconnect)
        broker_wire_command (self, worker->identity, worker->idlen, worker->proto, worker->bare,
                             mdp_proto_code (worker->proto, MDP_PROTO_DISCONNECT));
    if (worker->request)
        broker_request_fail (self, worker->request, code, reason);
    broker_worker_destroy (self, &worker);
}

//  ---------------------------------------------------------------------------
//  The tick: all time-driven work (worker expiry, heartbeats, request
//  deadlines, stats). Returns when it is next due.

int64_t broker_tick (broker_t *self, int64_t now)
{
    //  Workers silent too long; the list is ordered by last contact.
    while (!dlist_empty (&self->by_expiry)) {
        worker_t *worker = DLIST_ITEM (self->by_expiry.next, worker_t, expiry_link);
        if (worker->expiry > now)
            break;
        zsys_warning ("broker: worker of '%s' expired", worker->service->name);
        self->stats.workers_expired++;
        broker_worker_remove (self, worker, true, 502, "worker expired");
    }
    //  HEARTBEATs owed: each worker gets one a heartbeat after the last thing
    //  we sent it, so a busy broker sends few and none go out in one burst.
    while (!dlist_empty (&self->by_beat)) {
        worker_t *worker = DLIST_ITEM (self->by_beat.next, worker_t, beat_link);
        if (worker->beat_at > now)
            break;
        broker_wire_command (self, worker->identity, worker->idlen, worker->proto, worker->bare,
                             mdp_proto_code (worker->proto, MDP_PROTO_HEARTBEAT));
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
        } else
            broker_request_fail (self, request, 504,
                                 request->service->nworkers ? "deadline passed while queued"
                                                            : "no worker for service");
    }
    broker_metrics_tick (self, now);
    int64_t next = now + self->cfg.heartbeat; //  periodic work (stats) at the latest
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
    int64_t due = broker_metrics_due (self); //  the next stats log line
    if (due && due < next)
        next = due;
    return next;
}

//  ---------------------------------------------------------------------------
//  Run, poll, shutdown.

void broker_poll (broker_t *self, int msecs)
{
    zmq_pollitem_t item = {self->router, 0, ZMQ_POLLIN, 0};
    int64_t wait = broker_tick (self, broker_now ()) - broker_now ();
    if (wait > msecs)
        wait = msecs;
    if (zmq_poll (&item, 1, wait < 0 ? 0 : (long)wait) > 0)
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
    int failed = 0; //  errno of a fatal poll error
    while (!self->stopping && !zsys_interrupted) {
        int64_t wait = next - broker_now ();
        int rc = zmq_poll (items, nitems, wait < 0 ? 0 : (long)wait);
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
            else if (streq (command, "ENDPOINT"))
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
        broker_worker_remove (self, worker, true, 503, "broker shutting down");
    }
    if (failed)
        zsys_info ("broker: answered %zu pending requests with 503 at shutdown", failed);
}
