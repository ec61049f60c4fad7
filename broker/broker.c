/*  broker.c - the Majordomo routing engine: reads the ROUTER socket, classifies
    each message and hands it to one handler per command. Frames are zmq_msg_t
    moved from socket to socket; bodies are never copied or parsed here.

    What arrives ([<id>] is the ROUTER routing id, "" an empty frame):
      client 0.1   [<id>][env...][""]["MDPC01"][service][timeout?][body...]
      client 0.2   [<id>][env...][""]["MDPC02"][0x01][service][timeout?][body...]
      majortomo    [<id>][env...][""]["MDPC02"][0x02][service][timeout?][body...]
      READY        [<id>][""]["MDPW01"][0x01][service]
      REPLY        [<id>][""]["MDPW01"][0x03][token][""][body...]
      HEARTBEAT    [<id>][""]["MDPW01"][0x04]
      DISCONNECT   [<id>][""]["MDPW01"][0x05]
    What leaves:
      to a client  [<id>][env...][""]["MDPC01"][service][body...]
                   [<id>][env...][""]["MDPC02"][0x02 | 0x03][service][body...]
      majortomo    [<id>][env...][""]["MDPC02"][0x03 | 0x04][body...]
      REQUEST      [<wid>][""]["MDPW01"][0x02][token][""][body...]
      HEARTBEAT / DISCONNECT as above, to a worker
*/
#include "access.h"
#include "broker_impl.h"
#include <errno.h>
#include <stdarg.h>
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
    if (!self->router || htab_init (&self->services) || htab_init (&self->workers)
        || htab_init (&self->clients)) {
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

static void s_delete_service (hnode_t *node, void *arg)
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
        broker_worker_delete (self, worker, false, 0, NULL);
    }
    if (self->services.buckets)
        htab_foreach (&self->services, s_delete_service, NULL);
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

//  Count a dropped message and log why, at most ten lines a second.
void broker_drop (broker_t *self, broker_drop_t reason, const char *fmt, ...)
{
    self->stats.dropped[reason]++;
    int64_t now = broker_now ();
    if (now - self->log_window >= 1000) {
        if (self->log_suppressed)
            zsys_warning ("broker: %" PRIu64 " more dropped messages not logged",
                          self->log_suppressed);
        self->log_window = now;
        self->log_budget = 10;
        self->log_suppressed = 0;
    }
    if (self->log_budget-- <= 0) {
        self->log_suppressed++;
        return;
    }
    char line[256];
    va_list args;
    va_start (args, fmt);
    vsnprintf (line, sizeof line, fmt, args);
    va_end (args);
    zsys_warning ("broker: dropped: %s", line);
}

//  ---------------------------------------------------------------------------
//  Sending. ROUTER sends do not block (unknown peers are dropped by libzmq);
//  a frame that fails to go is closed so nothing leaks.

static void s_send_msg (broker_t *self, zmq_msg_t *msg, int flags)
{
    if (zmq_msg_send (msg, self->router, flags) < 0)
        zmq_msg_close (msg);
}

static void s_send_mem (broker_t *self, const void *data, size_t size, int flags)
{
    zmq_send (self->router, data, size, flags);
}

static void s_send_const (broker_t *self, const void *data, size_t size, int flags)
{
    zmq_send_const (self->router, data, size, flags);
}

void broker_send_command (broker_t *self, const unsigned char *id, size_t idlen, uint8_t version,
                          bool bare, uint8_t command)
{
    static const uint8_t commands[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    s_send_mem (self, id, idlen, ZMQ_SNDMORE);
    if (!bare)
        s_send_const (self, "", 0, ZMQ_SNDMORE);
    s_send_const (self, version == 2 ? MDPW02 : MDPW01, MDP_PROTO_LEN, ZMQ_SNDMORE);
    s_send_const (self, &commands[command & 7], 1, 0);
}

//  The head of every message to a client: [env...][""]["MDPC01"][service]
//  for MDP/0.1, [env...][""]["MDPC02"][command][service] for MDP/0.2 (no ""
//  in the bare form). majortomo's dialect numbers PARTIAL 0x03 and FINAL 0x04
//  and has no service frame. With keep_env the envelope is copied, not moved.
static void s_send_client_head (broker_t *self, zmq_msg_t *env, size_t nenv, uint8_t version,
                                bool bare, bool majortomo, uint8_t command, const char *service,
                                size_t namelen, bool keep_env)
{
    static const uint8_t commands[5] = {0, 1, 2, 3, 4};
    if (majortomo)
        command = command == MDPC02_FINAL ? MDPC02_MAJORTOMO_FINAL : MDPC02_MAJORTOMO_PARTIAL;
    for (size_t i = 0; i < nenv; i++) {
        zmq_msg_t copy;
        zmq_msg_init (&copy);
        if (keep_env)
            zmq_msg_copy (&copy, &env[i]);
        s_send_msg (self, keep_env ? &copy : &env[i], ZMQ_SNDMORE);
    }
    if (!bare)
        s_send_const (self, "", 0, ZMQ_SNDMORE);
    if (version == 2) {
        s_send_const (self, MDPC02, MDP_PROTO_LEN, ZMQ_SNDMORE);
        s_send_const (self, &commands[command <= 4 ? command : 0], 1, ZMQ_SNDMORE);
    }
    else
        s_send_const (self, MDPC01, MDP_PROTO_LEN, ZMQ_SNDMORE);
    if (!majortomo)
        s_send_mem (self, service, namelen, ZMQ_SNDMORE);
}

//  A worker's reply (final) or partial reply to the request's client. An
//  MDP/0.1 client never sees partials: they are dropped here.
void broker_send_to_client (broker_t *self, request_t *request, zmq_msg_t *body, size_t nbody,
                            bool final)
{
    if (!final && request->client_proto != 2)
        return;
    s_send_client_head (self, request->frames, request->nenv, request->client_proto,
                        request->client_bare, request->client_majortomo,
                        final ? MDPC02_FINAL : MDPC02_PARTIAL,
                        request->service->name, request->service->namelen, !final);
    for (size_t i = 0; i < nbody; i++)
        s_send_msg (self, &body[i], i + 1 < nbody ? ZMQ_SNDMORE : 0);
}

static void s_send_strs (broker_t *self, const char *frame1, const char *frame2)
{
    s_send_mem (self, frame1, strlen (frame1), frame2 ? ZMQ_SNDMORE : 0);
    if (frame2)
        s_send_mem (self, frame2, strlen (frame2), 0);
}

void broker_send_client_str (broker_t *self, zmq_msg_t *env, size_t nenv, const char *service,
                             size_t namelen, const char *frame1, const char *frame2)
{
    s_send_client_head (self, env, nenv, self->reply_version, self->reply_bare,
                        self->reply_majortomo, MDPC02_FINAL, service, namelen, false);
    s_send_strs (self, frame1, frame2);
}

void broker_send_request_str (broker_t *self, request_t *request, const char *frame1,
                              const char *frame2)
{
    s_send_client_head (self, request->frames, request->nenv, request->client_proto,
                        request->client_bare, request->client_majortomo, MDPC02_FINAL,
                        request->service->name, request->service->namelen, false);
    s_send_strs (self, frame1, frame2);
}

//  REQUEST to a worker; the body frames move out of the request.
static void s_send_request (broker_t *self, worker_t *worker, request_t *request)
{
    static const uint8_t request_cmd = MDPW01_REQUEST;   //  0x02 in both versions
    s_send_mem (self, worker->identity, worker->idlen, ZMQ_SNDMORE);
    if (!worker->bare)
        s_send_const (self, "", 0, ZMQ_SNDMORE);
    s_send_const (self, worker->proto == 2 ? MDPW02 : MDPW01, MDP_PROTO_LEN, ZMQ_SNDMORE);
    s_send_const (self, &request_cmd, 1, ZMQ_SNDMORE);
    s_send_mem (self, &request->token, sizeof request->token, ZMQ_SNDMORE);
    s_send_const (self, "", 0, ZMQ_SNDMORE);
    zmq_msg_t *body = request->frames + request->nenv;
    for (size_t i = 0; i < request->nbody; i++)
        s_send_msg (self, &body[i], i + 1 < request->nbody ? ZMQ_SNDMORE : 0);
    request->nbody = 0;
    request->dispatched = broker_now ();
    broker_worker_beaten (self, worker, request->dispatched);   //  a REQUEST is a heartbeat
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

//  ---------------------------------------------------------------------------
//  Handlers, one per command.

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

//  Answer a request the broker will not take (403, 429, 503) at once; user is
//  the peer's key, for the refusal log.
static void s_refuse (broker_t *self, zmq_msg_t *env, size_t nenv, const char *name,
                      size_t namelen, int code, const char *reason, const char *user)
{
    broker_log_refusal (self, "%d (%s) for '%.*s' to key '%s'", code, reason, (int) namelen, name,
                        *user ? user : "(none)");
    char json[128];
    snprintf (json, sizeof json, "{\"code\": %d, \"reason\": \"%s\"}", code, reason);
    broker_send_client_str (self, env, nenv, name, namelen, MDP_ERROR_ACTION_WIRE, json);
    self->stats.errors[code == 403 ? 1 : code == 429 ? 2 : 4]++;
}

//  A client request. env frames [0, nenv) are its envelope; the service frame
//  is at index service_i and the body follows it. Replies go out in the
//  framing it came in: version, bare, majortomo (remembered in the request).
static void s_client_request (broker_t *self, zmq_msg_t *frames, size_t count, size_t nenv,
                              size_t service_i, uint8_t version, bool bare, bool majortomo)
{
    self->reply_version = version;
    self->reply_bare = bare;
    self->reply_majortomo = majortomo;
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
        body++;   //  the timeout frame stays behind and is closed with the rest
    const char *name = zmq_msg_data (service);
    if (namelen >= 4 && memcmp (name, MDP_MMI_PREFIX, 4) == 0) {
        self->stats.requests++;
        broker_mmi (self, frames, nenv, name, namelen, frames + body, count - body);
        return;
    }
    //  The peer's key is a metadata lookup: only when rules or CURVE need it
    //  (with CURVE, the per-client cap counts per key).
    const char *user = self->access || self->keys ? broker_peer_user (&frames[1]) : "";
    if (!broker_peer_allowed (self, user) || !s_may_call (self, user, name, namelen)) {
        s_refuse (self, frames, nenv, name, namelen, 403, "not allowed", user);
        return;
    }
    service_t *srv = broker_service_require (self, name, namelen);
    size_t nbody = count - body;
    request_t *request =
        srv ? malloc (sizeof (request_t) + (nenv + nbody) * sizeof (zmq_msg_t)) : NULL;
    if (!request) {
        if (srv)
            broker_service_release (self, srv);
        s_refuse (self, frames, nenv, name, namelen, 503, "out of memory", user);
        return;
    }
    request->service = srv;
    request->worker = NULL;
    request->client = NULL;
    request->heap_index = SIZE_MAX;
    request->client_proto = version;
    request->client_bare = bare;
    request->client_majortomo = majortomo;
    request->nenv = (uint8_t) nenv;
    request->nbody = (uint8_t) nbody;
    request->token = self->next_token++;
    request->span = s_deadline_in (self, timeout);
    request->deadline = broker_now () + request->span;
    dlist_init (&request->link);
    if (broker_client_admit (self, request, &frames[0], user) != 0) {
        bool at_cap = errno == EBUSY;   //  else out of memory: never a 429
        free (request);
        broker_service_release (self, srv);
        s_refuse (self, frames, nenv, name, namelen, at_cap ? 429 : 503,
                  at_cap ? "too many requests" : "out of memory", user);
        return;
    }
    //  Move the envelope and body frames in; the emptied originals close as no-ops.
    memcpy (request->frames, frames, nenv * sizeof (zmq_msg_t));
    memcpy (request->frames + nenv, frames + body, nbody * sizeof (zmq_msg_t));
    for (size_t i = 0; i < nenv; i++)
        zmq_msg_init (&frames[i]);
    for (size_t i = body; i < count; i++)
        zmq_msg_init (&frames[i]);
    self->stats.requests++;
    broker_metrics_request (self, srv);

    if (srv->nqueued == 0 && !dlist_empty (&srv->idle)) {
        if (broker_request_track (self, request) != 0)
            return;
        worker_t *worker = DLIST_ITEM (dlist_pop (&srv->idle), worker_t, idle_link);
        s_send_request (self, worker, request);
    }
    else
    if (broker_request_enqueue (self, request) == 0)
        broker_dispatch (self, srv);
}

static void s_worker_ready (broker_t *self, worker_t *worker, zmq_msg_t *frames,
                            zmq_msg_t *name_frame, uint8_t version, bool bare)
{
    if (worker) {
        broker_drop (self, DROP_UNEXPECTED, "second READY from a worker of '%s'",
                     worker->service->name);
        broker_worker_delete (self, worker, true, 502, "worker sent READY twice");
        return;
    }
    size_t namelen = zmq_msg_size (name_frame);
    const char *name = zmq_msg_data (name_frame);
    if (namelen == 0 || namelen > MDP_MAX_SERVICE_NAME) {
        broker_drop (self, DROP_BAD_SERVICE, "READY with a %zu-byte service name", namelen);
        return;
    }
    if (namelen >= 4 && memcmp (name, MDP_MMI_PREFIX, 4) == 0) {
        broker_drop (self, DROP_UNEXPECTED, "READY for reserved service %.*s", (int) namelen,
                     name);
        broker_send_command (self, zmq_msg_data (&frames[0]), zmq_msg_size (&frames[0]), version,
                             bare, MDP_CMD_DISCONNECT (version));
        return;
    }
    const char *user = broker_peer_user (&frames[1]);
    char wanted[MDP_MAX_SERVICE_NAME + 1];
    memcpy (wanted, name, namelen);
    wanted[namelen] = 0;
    if (!broker_peer_allowed (self, user) || !access_may_offer (self->access, user, wanted)) {
        self->stats.dropped[DROP_REFUSED]++;
        broker_log_refusal (self, "READY for '%s' to key '%s'", wanted, *user ? user : "(none)");
        broker_send_command (self, zmq_msg_data (&frames[0]), zmq_msg_size (&frames[0]), version,
                             bare, MDP_CMD_DISCONNECT (version));
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
        broker_send_command (self, worker->identity, worker->idlen, version, bare,
                             MDP_CMD_HEARTBEAT (version));
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
    if (!request || zmq_msg_size (&args[0]) != sizeof request->token
        || memcmp (zmq_msg_data (&args[0]), &request->token, sizeof request->token) != 0) {
        broker_drop (self, DROP_STALE_REPLY, "reply for a request not outstanding on '%s'",
                     worker->service->name);
        return;
    }
    broker_send_to_client (self, request, args + 2, nargs - 2, final);
    if (!final) {
        broker_request_extend (self, request, broker_now ());
        return;
    }
    self->stats.replies++;
    broker_metrics_reply (self, worker->service, broker_now () - request->dispatched);
    worker->request = NULL;
    broker_heap_remove (self, request);
    broker_request_free (self, request);
    dlist_append (&worker->service->idle, &worker->idle_link);
    broker_dispatch (self, worker->service);
}

typedef enum { OP_INVALID, OP_READY, OP_FINAL, OP_PARTIAL, OP_HEARTBEAT, OP_DISCONNECT } op_t;

//  A worker command code of either version, as one of the operations above.
static op_t s_worker_op (uint8_t version, uint8_t code)
{
    static const op_t v1[] = {OP_INVALID, OP_READY, OP_INVALID, OP_FINAL, OP_HEARTBEAT,
                              OP_DISCONNECT};
    static const op_t v2[] = {OP_INVALID, OP_READY,     OP_INVALID,  OP_PARTIAL,
                              OP_FINAL,   OP_HEARTBEAT, OP_DISCONNECT};
    if (version == 1)
        return code < 6 ? v1[code] : OP_INVALID;
    return code < 7 ? v2[code] : OP_INVALID;
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
    uint8_t code = *(uint8_t *) zmq_msg_data (&frames[cmd_i]);
    op_t op = s_worker_op (version, code);
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
    if (op == OP_READY && nargs == 1)
        s_worker_ready (self, worker, frames, &args[0], version, bare);
    else
    if (op == OP_DISCONNECT && nargs == 0) {
        if (worker)
            broker_worker_delete (self, worker, false, 502, "worker disconnected");
    }
    else
    if (!worker && (op == OP_FINAL || op == OP_PARTIAL || op == OP_HEARTBEAT)) {
        //  Typically a worker of a broker that restarted: tell it to READY again.
        broker_drop (self, DROP_UNEXPECTED, "command %d from an unregistered worker", code);
        broker_send_command (self, zmq_msg_data (&frames[0]), zmq_msg_size (&frames[0]), version,
                             bare, MDP_CMD_DISCONNECT (version));
    }
    else
    if (op == OP_FINAL || op == OP_PARTIAL)
        s_worker_reply (self, worker, args, nargs, op == OP_FINAL);
    else
    if (op != OP_HEARTBEAT || nargs != 0)
        broker_drop (self, DROP_MALFORMED, "worker command %d with %zu frames", code, count);
}

//  Sort a message by its protocol frame: after the routing id (the bare
//  MDP/0.2 form) or after the first empty frame (every other form).
void broker_handle (broker_t *self, zmq_msg_t *frames, size_t count)
{
    if (self->cfg.verbose)
        broker_log_message (frames, count);
    bool bare = count > 1 && (broker_frame_is (&frames[1], MDPC02, MDP_PROTO_LEN)
                              || broker_frame_is (&frames[1], MDPW02, MDP_PROTO_LEN));
    size_t delim = 1;
    if (bare)
        delim = 0;   //  no delimiter: the protocol frame is frame 1
    else
        while (delim < count && zmq_msg_size (&frames[delim]) != 0)
            delim++;
    size_t proto_i = bare ? 1 : delim + 1, nenv = bare ? 1 : delim;
    zmq_msg_t *proto = proto_i + 1 < count ? &frames[proto_i] : NULL;
    if (!proto)
        broker_drop (self, DROP_MALFORMED, "%zu frames, no delimiter, protocol and command",
                     count);
    else
    if (broker_frame_is (proto, MDPC01, MDP_PROTO_LEN))
        s_client_request (self, frames, count, nenv, proto_i + 1, 1, false, false);
    else
    if (broker_frame_is (proto, MDPC02, MDP_PROTO_LEN)) {
        //  RFC 18's REQUEST is 0x01. A client never sends 0x02 (PARTIAL goes
        //  broker to client), except majortomo's, whose REQUEST it is.
        zmq_msg_t *command = &frames[proto_i + 1];
        uint8_t code = zmq_msg_size (command) == 1 ? *(uint8_t *) zmq_msg_data (command) : 0;
        if (code == MDPC02_REQUEST || code == MDPC02_MAJORTOMO_REQUEST)
            s_client_request (self, frames, count, nenv, proto_i + 2, 2, bare,
                              code == MDPC02_MAJORTOMO_REQUEST);
        else
            broker_drop (self, DROP_MALFORMED, "MDPC02 message that is not a REQUEST");
    }
    else
    if (broker_frame_is (proto, MDPW01, MDP_PROTO_LEN))
        s_worker_message (self, frames, count, proto_i, 1, false);
    else
    if (broker_frame_is (proto, MDPW02, MDP_PROTO_LEN))
        s_worker_message (self, frames, count, proto_i, 2, bare);
    else
        broker_drop (self, DROP_MALFORMED, "unknown protocol frame of %zu bytes",
                     zmq_msg_size (proto));
    for (size_t i = 0; i < count; i++)
        zmq_msg_close (&frames[i]);
}
