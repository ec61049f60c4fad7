/*  mdp_async.c - mdp_async_t, the asynchronous MDP/0.2 client. Any number of
    requests share one DEALER; each carries its id as an 8-byte big-endian
    correlation frame before the delimiter, which the broker hands back on every
    PARTIAL and FINAL, so replies are matched to requests whatever their order.
    A hash finds a request by id; a min-heap on deadlines finds the next timeout.
    Events go through one FIFO, drained by mdp_async_recv or a handler.
    With several brokers (spec/ha.md) the socket is a ROUTER that names each
    broker's connection, every request keeps a copy of itself, and a request
    whose broker is silent for its timeout, or answers 503, is sent again to
    the next broker; replies from any broker but its current one are dropped.
    Which broker, failover and probes live in mdp_async_brokers.c.
*/
#include "mdp.h"
#include "mdp_async_brokers.h"
#include "mdp_client_private.h"
#include "mdp_proto.h"
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <string.h>

#define ID_SIZE 8             //  bytes in the correlation frame
#define MAX_READS 1000        //  messages read per call before timers get a turn
#define PROBE_ID 0            //  correlation id of probes (requests start at 1)
#define PROBE_NAME "mmi.ping" //  what a probe asks mmi.service about

//  One request in flight.
typedef struct {
    uint64_t id;       //  request id; the hash's key points here
    char *service;     //  service asked, owned; its replies must name it
    int timeout;       //  msecs; restarted by each partial
    int64_t deadline;  //  zclock_mono time it times out
    size_t slot;       //  its index in the deadline heap
    zmsg_t *msg;       //  copy of what was sent, to send again (several brokers)
    size_t peer;       //  the broker it was sent to last
    uint32_t tried;    //  bit per broker it was sent to
    bool partial_seen; //  a partial came: never sent again
} request_t;

//  One thing to tell the application: a reply, or the end of a request.
typedef struct {
    uint64_t id;      //  the request it is about
    mdp_msg_t *reply; //  owned; NULL when the request timed out or broke
    bool final;       //  the request's last event
    int status;       //  0, ETIMEDOUT or EPROTO
} event_t;

struct _mdp_async_t {
    zsock_t *dealer;             //  the one socket to the broker
    mdp_async_fn *handler;       //  callback for process and the zloop driver
    void *handler_arg;           //  its argument
    int timeout;                 //  msecs, for requests sent from now on
    uint64_t last_id;            //  id of the latest request sent
    zhashx_t *requests;          //  id -> request_t, owns them
    request_t **heap;            //  min-heap of requests by deadline
    size_t heap_size;            //  requests in the heap
    size_t heap_max;             //  slots allocated
    zlistx_t *events;            //  FIFO of event_t waiting for the application
    zloop_t *loop;               //  the loop we are attached to, or NULL
    int timer_id;                //  our armed zloop timer, or -1
    int64_t timer_at;            //  when that timer fires
    uint64_t discarded;          //  replies for no request in flight, and garbage
    mdp_async_brokers_t brokers; //  the brokers, in the order given
    mdp_curve_t curve;           //  CURVE keys, when set
};

//  ---------------------------------------------------------------------------
//  Requests by id (a zhashx keyed by the uint64 inside each request)

static size_t s_id_hash (const void *key)
{
    uint64_t id = *(const uint64_t *)key;
    return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 17);
}

static int s_id_compare (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void s_request_destroy (void **item)
{
    request_t *request = *item;
    if (request) {
        zmsg_destroy (&request->msg);
        free (request->service);
        free (request);
    }
    *item = NULL;
}

static void s_event_destroy (void **item)
{
    event_t *event = *item;
    if (event) {
        mdp_msg_destroy (&event->reply);
        free (event);
    }
    *item = NULL;
}

//  ---------------------------------------------------------------------------
//  The deadline heap: heap[0] is the request that times out first

static void s_heap_swap (mdp_async_t *self, size_t a, size_t b)
{
    request_t *tmp = self->heap[a];
    self->heap[a] = self->heap[b];
    self->heap[b] = tmp;
    self->heap[a]->slot = a;
    self->heap[b]->slot = b;
}

//  True if request a times out before b; equal deadlines go by id, so that
//  requests sent together time out in the order they were sent.
static bool s_before (const request_t *a, const request_t *b)
{
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->id < b->id);
}

//  Restore the heap order around slot after its deadline changed.
static void s_heap_fix (mdp_async_t *self, size_t slot)
{
    while (slot > 0 && s_before (self->heap[slot], self->heap[(slot - 1) / 2])) {
        s_heap_swap (self, slot, (slot - 1) / 2);
        slot = (slot - 1) / 2;
    }
    while (true) {
        size_t least = slot, left = 2 * slot + 1, right = left + 1;
        if (left < self->heap_size && s_before (self->heap[left], self->heap[least]))
            least = left;
        if (right < self->heap_size && s_before (self->heap[right], self->heap[least]))
            least = right;
        if (least == slot)
            break;
        s_heap_swap (self, slot, least);
        slot = least;
    }
}

static int s_heap_push (mdp_async_t *self, request_t *request)
{
    if (self->heap_size == self->heap_max) {
        size_t max = self->heap_max ? self->heap_max * 2 : 64;
        request_t **heap = realloc (self->heap, max * sizeof (request_t *));
        if (!heap)
            return -1;
        self->heap = heap;
        self->heap_max = max;
    }
    request->slot = self->heap_size++;
    self->heap[request->slot] = request;
    s_heap_fix (self, request->slot);
    return 0;
}

static void s_heap_remove (mdp_async_t *self, request_t *request)
{
    size_t slot = request->slot;
    self->heap_size--;
    if (slot == self->heap_size)
        return;
    self->heap[slot] = self->heap[self->heap_size];
    self->heap[slot]->slot = slot;
    s_heap_fix (self, slot);
}

//  Forget a request: out of the heap, out of the hash (which frees it).
static void s_forget (mdp_async_t *self, request_t *request)
{
    uint64_t id = request->id;
    s_heap_remove (self, request);
    zhashx_delete (self->requests, &id);
}

//  ---------------------------------------------------------------------------
//  Construction

static int s_on_readable (zloop_t *loop, zsock_t *sock, void *arg);

//  Replace the socket (after a new broker or new keys), moving the zloop
//  reader over when attached. 0, or -1 with errno (the old socket stays).
static int s_socket_renew (mdp_async_t *self)
{
    zsock_t *sock = mdp_async_brokers_socket_new (&self->brokers, &self->curve);
    if (!sock)
        return -1;
    if (self->loop) {
        zloop_reader_end (self->loop, self->dealer);
        zloop_reader (self->loop, sock, s_on_readable, self);
    }
    zsock_destroy (&self->dealer);
    self->dealer = sock;
    return 0;
}

mdp_async_t *mdp_async_new (const char *endpoint)
{
    if (!endpoint || !*endpoint) {
        errno = EINVAL;
        return NULL;
    }
    mdp_async_t *self = calloc (1, sizeof (mdp_async_t));
    if (!self) {
        errno = ENOMEM;
        return NULL;
    }
    self->timeout = MDP_DEFAULT_TIMEOUT;
    self->timer_id = -1;
    self->requests = zhashx_new ();
    self->events = zlistx_new ();
    if (!self->requests || !self->events) {
        mdp_async_destroy (&self);
        errno = ENOMEM;
        return NULL;
    }
    zhashx_set_key_hasher (self->requests, s_id_hash);
    zhashx_set_key_comparator (self->requests, s_id_compare);
    zhashx_set_key_duplicator (self->requests, NULL); //  the key lives in the request
    zhashx_set_key_destructor (self->requests, NULL);
    zhashx_set_destructor (self->requests, s_request_destroy);
    zlistx_set_destructor (self->events, s_event_destroy);
    //  "tcp://a:5555,tcp://b:5555": one broker per comma-separated item
    for (const char *item = endpoint; *item;) {
        size_t size = strcspn (item, ",");
        if (mdp_async_brokers_add (&self->brokers, item, size) != 0 ||
            (item[size] == ',' && !item[size + 1])) {
            errno = errno == ENOMEM ? ENOMEM : EINVAL;
            mdp_async_destroy (&self);
            return NULL;
        }
        item += item[size] ? size + 1 : size;
    }
    self->dealer = mdp_async_brokers_socket_new (&self->brokers, &self->curve);
    if (!self->dealer)
        mdp_async_destroy (&self);
    return self;
}

int mdp_async_add_endpoint (mdp_async_t *self, const char *endpoint)
{
    if (!self || !endpoint || !*endpoint || strchr (endpoint, ',') ||
        zhashx_size (self->requests) > 0) {
        errno = EINVAL;
        return -1;
    }
    if (mdp_async_brokers_add (&self->brokers, endpoint, strlen (endpoint)) != 0)
        return -1;
    if (s_socket_renew (self) == 0)
        return 0;
    int saved = errno;
    mdp_async_brokers_drop_last (&self->brokers); //  the endpoint was bad: keep the old socket
    errno = saved;
    return -1;
}

int mdp_async_set_curve (mdp_async_t *self, const char *server_key, const char *cert_path)
{
    if (mdp_curve_load (&self->curve, server_key, cert_path) != 0)
        return -1;
    return s_socket_renew (self); //  connect again, with the keys
}

void mdp_async_destroy (mdp_async_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    mdp_async_t *self = *self_p;
    int saved = errno; //  keep the errno of a failed new
    if (self->loop) {
        zloop_reader_end (self->loop, self->dealer);
        if (self->timer_id >= 0)
            zloop_timer_end (self->loop, self->timer_id);
    }
    zsock_destroy (&self->dealer);
    zhashx_destroy (&self->requests);
    zlistx_destroy (&self->events);
    free (self->heap);
    mdp_async_brokers_clear (&self->brokers);
    free (self);
    errno = saved;
    *self_p = NULL;
}

void mdp_async_set_handler (mdp_async_t *self, mdp_async_fn *fn, void *arg)
{
    self->handler = fn;
    self->handler_arg = arg;
}

void mdp_async_set_timeout (mdp_async_t *self, int msecs)
{
    self->timeout = msecs > 0 ? msecs : 1;
}

size_t mdp_async_pending (mdp_async_t *self)
{
    return zhashx_size (self->requests);
}

zsock_t *mdp_async_socket (mdp_async_t *self)
{
    return self->dealer;
}

//  When something is next due (zclock_mono): the earliest request deadline
//  or a dead broker's probe. -1 when nothing is.
static int64_t s_next_due (mdp_async_t *self)
{
    int64_t due = self->heap_size > 0 ? self->heap[0]->deadline : -1;
    return mdp_async_brokers_next_due (&self->brokers, due);
}

int mdp_async_next_timeout (mdp_async_t *self)
{
    int64_t due = s_next_due (self);
    if (due < 0)
        return -1;
    int64_t left = due - zclock_mono ();
    return left < 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
}

//  ---------------------------------------------------------------------------
//  The zloop driver's timer: one one-shot timer, armed for the earliest
//  deadline. zloop_timer_end only takes effect after the loop's current turn,
//  so an ended timer may still fire once: its id then is not ours and it is
//  ignored.

static int s_on_timer (zloop_t *loop, int timer_id, void *arg)
{
    mdp_async_t *self = arg;
    if (timer_id != self->timer_id)
        return 0;        //  an ended timer firing one last time
    self->timer_id = -1; //  one-shot: zloop removes it after this call
    mdp_async_process (self);
    return 0;
}

static int s_on_readable (zloop_t *loop, zsock_t *sock, void *arg)
{
    mdp_async_process ((mdp_async_t *)arg);
    return 0;
}

//  Make sure a timer fires no later than the earliest deadline. A timer that
//  fires early does no harm (it re-arms), so one is only replaced when late.
static void s_rearm (mdp_async_t *self)
{
    int64_t next = s_next_due (self);
    if (!self->loop || next < 0)
        return;
    if (self->timer_id >= 0 && self->timer_at <= next)
        return;
    if (self->timer_id >= 0)
        zloop_timer_end (self->loop, self->timer_id);
    int64_t now = zclock_mono ();
    size_t delay = next > now ? (size_t)(next - now) : 0;
    self->timer_id = zloop_timer (self->loop, delay, 1, s_on_timer, self);
    self->timer_at = now + (int64_t)delay;
    if (self->timer_id < 0)
        zsys_error ("mdp_async: cannot arm a zloop timer; timeouts wait for the next reply");
}

int mdp_async_attach (mdp_async_t *self, zloop_t *loop)
{
    if (!self || !loop || self->loop) {
        errno = EINVAL;
        return -1;
    }
    if (zloop_reader (loop, self->dealer, s_on_readable, self) != 0) {
        errno = ENOMEM;
        return -1;
    }
    self->loop = loop;
    self->timer_id = -1;
    s_rearm (self);
    return 0;
}

//  ---------------------------------------------------------------------------
//  Sending

//  Build [id][""]["MDPC02"][0x01][service][timeout][body...]. NULL on ENOMEM.
static zmsg_t *s_request_msg (uint64_t id, const char *service, int timeout, mdp_msg_t *request)
{
    byte frame[ID_SIZE];
    for (int index = 0; index < ID_SIZE; index++)
        frame[index] = (byte)(id >> (8 * (ID_SIZE - 1 - index)));
    char timeout_text[32];
    mdp_client_timeout_text (timeout, timeout_text, sizeof timeout_text);
    byte command = MDPC02_REQUEST;
    zmsg_t *msg = zmsg_new ();
    if (!msg || mdp_msg_encode (request, msg) || zmsg_pushstr (msg, timeout_text) ||
        zmsg_pushstr (msg, service) || zmsg_pushmem (msg, &command, 1) ||
        zmsg_pushstr (msg, MDPC02) || zmsg_pushmem (msg, NULL, 0) ||
        zmsg_pushmem (msg, frame, ID_SIZE))
        zmsg_destroy (&msg);
    return msg;
}

//  ---------------------------------------------------------------------------
//  Requests in flight, and their failover to another broker

//  Probe a dead broker (with the probe that is due): mmi.service about
//  mmi.ping on correlation id 0, which every broker answers.
static void s_probe_tick (mdp_async_t *self)
{
    if (!mdp_async_brokers_any_dead (&self->brokers))
        return;
    mdp_msg_t *body = mdp_msg_new (PROBE_NAME, NULL);
    zmsg_t *probe = body ? s_request_msg (PROBE_ID, "mmi.service", self->timeout, body) : NULL;
    mdp_msg_destroy (&body);
    mdp_async_brokers_probe_tick (&self->brokers, self->dealer, probe, self->timeout);
    zmsg_destroy (&probe);
}

//  A new request in flight, or NULL on ENOMEM. Takes copy (NULL with one
//  broker), what was sent, to send again elsewhere.
static request_t *s_request_new (mdp_async_t *self, uint64_t id, const char *service, size_t peer,
                                 zmsg_t *copy)
{
    request_t *request = calloc (1, sizeof (request_t));
    if (!request) {
        zmsg_destroy (&copy);
        return NULL;
    }
    request->id = id;
    request->service = strdup (service);
    request->timeout = self->timeout;
    request->deadline = zclock_mono () + self->timeout;
    request->msg = copy;
    request->peer = peer;
    request->tried = 1u << peer;
    if (!request->service || s_heap_push (self, request) != 0) {
        zmsg_destroy (&request->msg);
        free (request->service);
        free (request);
        return NULL;
    }
    zhashx_insert (self->requests, &request->id, request);
    return request;
}

//  Its broker failed the request (silence or 503): send it again to a broker
//  it has not tried. 0, or -1 when that may not be (one broker, a partial
//  came, every broker tried, or the send failed): the request then ends.
static int s_failover (mdp_async_t *self, request_t *request)
{
    zmsg_t *msg = request->partial_seen ? NULL : request->msg;
    if (mdp_async_brokers_failover (&self->brokers, self->dealer, msg, &request->peer,
                                    &request->tried) != 0)
        return -1;
    request->deadline = zclock_mono () + request->timeout;
    s_heap_fix (self, request->slot);
    return 0;
}

uint64_t mdp_async_send (mdp_async_t *self, const char *service, mdp_msg_t **request_p)
{
    mdp_msg_t *request = request_p ? *request_p : NULL;
    if (request_p)
        *request_p = NULL;
    if (!self || !request || !service || !*service || strlen (service) > MDP_MAX_SERVICE_NAME) {
        mdp_msg_destroy (&request);
        errno = EINVAL;
        return 0;
    }
    uint64_t id = self->last_id + 1;
    zmsg_t *msg = s_request_msg (id, service, self->timeout, request);
    mdp_msg_destroy (&request);
    zmsg_t *copy = msg && self->brokers.size > 1 ? zmsg_dup (msg) : NULL;
    if (!msg || (self->brokers.size > 1 && !copy)) {
        zmsg_destroy (&msg);
        errno = ENOMEM;
        return 0;
    }
    size_t peer = mdp_async_brokers_pick (&self->brokers, 0);
    if (mdp_async_brokers_send (&self->brokers, self->dealer, peer, &msg) != 0) {
        zmsg_destroy (&msg);
        zmsg_destroy (&copy);
        errno = EAGAIN; //  the socket's queue is full
        return 0;
    }
    self->last_id = id;
    if (!s_request_new (self, id, service, peer, copy)) {
        errno = ENOMEM; //  sent, but we could never match its reply
        return 0;
    }
    s_rearm (self);
    return id;
}

//  ---------------------------------------------------------------------------
//  Receiving

static void s_push_event (mdp_async_t *self, uint64_t id, mdp_msg_t *reply, bool final, int status)
{
    event_t *event = calloc (1, sizeof (event_t));
    if (event) {
        *event = (event_t){id, reply, final, status};
        if (zlistx_add_end (self->events, event))
            return;
        free (event);
    }
    zsys_error ("mdp_async: out of memory, an event for request %" PRIu64 " is lost", id);
    mdp_msg_destroy (&reply);
}

//  Pop [id][""][protocol] and, for MDPC02, [command]. Returns MDPC02_PARTIAL
//  or MDPC02_FINAL (an MDPC01 reply counts as FINAL) with *id set, or -1.
static int s_reply_header (zmsg_t *msg, uint64_t *id)
{
    zframe_t *frame = zmsg_pop (msg);
    bool valid = frame && zframe_size (frame) == ID_SIZE;
    *id = 0;
    for (int index = 0; valid && index < ID_SIZE; index++)
        *id = (*id << 8) | zframe_data (frame)[index];
    zframe_destroy (&frame);
    frame = zmsg_pop (msg);
    valid = valid && frame && zframe_size (frame) == 0;
    zframe_destroy (&frame);
    frame = zmsg_pop (msg);
    int command = -1;
    if (valid && zframe_streq (frame, MDPC01))
        command = MDPC02_FINAL;
    else if (valid && zframe_streq (frame, MDPC02)) {
        zframe_t *code = zmsg_pop (msg);
        if (code && zframe_size (code) == 1 &&
            (*zframe_data (code) == MDPC02_PARTIAL || *zframe_data (code) == MDPC02_FINAL))
            command = *zframe_data (code);
        zframe_destroy (&code);
    }
    zframe_destroy (&frame);
    return command;
}

//  True when reply is an "mdp.error" 503: the broker never gave the request
//  to a worker (shutting down, queue full), so another broker may.
static bool s_unavailable (mdp_msg_t *reply)
{
    return reply && mdp_msg_error_code (reply) == 503;
}

//  One message from a broker: match it to its request and queue an event.
//  Only the broker a request was last sent to may answer it.
static void s_on_message (mdp_async_t *self, zmsg_t *msg)
{
    uint64_t id;
    int peer = mdp_async_brokers_reply_peer (&self->brokers, msg);
    int command = peer >= 0 ? s_reply_header (msg, &id) : -1;
    if (command > 0)
        mdp_async_brokers_mark_alive (&self->brokers, (size_t)peer);
    zframe_t *service = zmsg_pop (msg);
    request_t *request = command > 0 ? zhashx_lookup (self->requests, &id) : NULL;
    if (command > 0 && id == PROBE_ID) {
        zframe_destroy (&service); //  a probe's answer: the broker lives, that is all
        return;
    }
    if (!request || request->peer != (size_t)peer || !service ||
        !zframe_streq (service, request->service) || zmsg_size (msg) == 0) {
        self->discarded++;
        if (command > 0 && (!request || request->peer != (size_t)peer))
            zsys_debug ("mdp_async: discarded a reply for request %" PRIu64
                        ", not in flight there (%" PRIu64 " discarded in all)",
                        id, self->discarded);
        else
            zsys_warning ("mdp_async: dropped a malformed reply");
        zframe_destroy (&service);
        return;
    }
    zframe_destroy (&service);
    mdp_msg_t *reply = mdp_msg_decode (msg);
    if (command == MDPC02_FINAL) {
        if (s_unavailable (reply) && s_failover (self, request) == 0) {
            mdp_msg_destroy (&reply); //  sent to the next broker instead
            return;
        }
        s_forget (self, request);
        s_push_event (self, id, reply, true, reply ? 0 : EPROTO);
        return;
    }
    request->partial_seen = true;                          //  from now on, never sent again
    request->deadline = zclock_mono () + request->timeout; //  alive: restart its clock
    s_heap_fix (self, request->slot);
    if (reply)
        s_push_event (self, id, reply, false, 0);
    else
        zsys_warning (
            "mdp_async: dropped a partial reply for request %" PRIu64 " with a malformed body", id);
}

//  Read what waits on the socket, then fail over or time out requests past
//  their deadline, and send the probes that are due.
static void s_collect (mdp_async_t *self)
{
    for (int reads = 0; reads < MAX_READS && (zsock_events (self->dealer) & ZMQ_POLLIN); reads++) {
        zmsg_t *msg = zmsg_recv (self->dealer);
        if (!msg)
            break;
        s_on_message (self, msg);
        zmsg_destroy (&msg);
    }
    int64_t now = zclock_mono ();
    while (self->heap_size > 0 && self->heap[0]->deadline <= now) {
        request_t *request = self->heap[0];
        if (s_failover (self, request) == 0)
            continue; //  its deadline moved on
        uint64_t id = request->id;
        s_forget (self, request);
        s_push_event (self, id, NULL, true, ETIMEDOUT);
    }
    s_probe_tick (self);
}

int mdp_async_process (mdp_async_t *self)
{
    s_collect (self);
    int calls = 0;
    //  Without a handler the events stay queued for mdp_async_recv
    while (self->handler && zlistx_size (self->events) > 0) {
        event_t *event = zlistx_detach (self->events, NULL);
        self->handler (self, event->id, event->reply, event->final, event->status,
                       self->handler_arg);
        calls++;
        s_event_destroy ((void **)&event);
    }
    s_rearm (self);
    return calls;
}

mdp_msg_t *mdp_async_recv (mdp_async_t *self, uint64_t *request_id, bool *final, int msecs)
{
    int64_t until = msecs >= 0 ? zclock_mono () + msecs : -1;
    while (true) {
        s_collect (self);
        event_t *event = zlistx_detach (self->events, NULL);
        if (event) {
            mdp_msg_t *reply = event->reply;
            *request_id = event->id;
            *final = event->final;
            errno = event->status;
            free (event);
            s_rearm (self);
            return reply;
        }
        int64_t left = until < 0 ? -1 : until - zclock_mono ();
        if (until >= 0 && left <= 0) {
            errno = EAGAIN;
            return NULL;
        }
        int next = mdp_async_next_timeout (self);
        int wait = next < 0 ? (int)left : left < 0 || next < left ? next : (int)left;
        zmq_pollitem_t item = {zsock_resolve (self->dealer), 0, ZMQ_POLLIN, 0};
        if (zmq_poll (&item, 1, wait) < 0 || zsys_interrupted) {
            errno = EINTR;
            return NULL;
        }
    }
}
