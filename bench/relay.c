/*  relay.c - mdp-relay: the least an MDP/0.1 broker must do, in MDP's own
    frames, to measure the ceiling any broker can reach on a machine:
    mdp-bench prints mdp-broker's figures as ratios to it. One ROUTER, LRU
    idle workers, one FIFO of waiting requests; no services, no heartbeats,
    no deadlines, no MMI; no allocation per message and no scan.

    What arrives, and what it sends ([<id>] is the ROUTER routing id):
      client   [<c>][env...][""]["MDPC01"][service][body...]
        to a worker:  [<w>][""]["MDPW01"][0x02][token][""][body...]
      REPLY    [<w>][""]["MDPW01"][0x03][token][""][body...]
        back:  [<c>][env...][""]["MDPC01"]["relay"][body...]
      READY    [<w>][""]["MDPW01"][0x01][service]   the worker joins
      HEARTBEAT is ignored; DISCONNECT: the worker leaves. Anything else, a
      REPLY from a worker that holds no request, a second READY: dropped, and
      counted ("N messages dropped" when it stops).
    The token is the client's routing id frame itself when the envelope is
    just that id and libzmq made it (first byte 0, which no peer may choose);
    otherwise the envelope packed, each frame as a length byte and its bytes
    (first byte not 0). So the relay keeps no state per client.
    A worker holds one request at a time, as MDP requires; the others wait in
    the FIFO, oldest first, their frames moved into a ring that grows by
    doubling. With --pipeline requests go round robin at once, however many a
    worker already holds: the bare envelope swap. Clients and workers see the
    same frames as with mdp-broker (the reply's service frame is always
    "relay"), so the same bench code drives both.
*/
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define MAX_FRAMES 64       //  a longer message is dropped, as by the broker
#define TOKEN_MAX 512       //  largest client envelope, packed
#define RING_MIN 4096       //  frames the FIFO holds before it first grows
#define RING_MAX (1u << 22) //  frames the FIFO holds at most
#define NONE UINT32_MAX     //  no worker

typedef struct {
    unsigned char id[255]; //  routing id bytes
    uint8_t len;           //  routing id length, 0 for a free slot
    bool busy;             //  holds a request (never with --pipeline)
    bool listed;           //  on the idle list
    uint32_t hash;         //  hash of the routing id
    uint32_t prev;         //  idle list: previous (older) worker, or NONE
    uint32_t next;         //  idle list: next worker; free slot: next free
} worker_t;

typedef struct {
    void *router;                 //  the one ROUTER socket
    bool pipeline;                //  --pipeline: round robin, no limit per worker
    zmq_msg_t frames[MAX_FRAMES]; //  the message in hand, each always initialised
    size_t sizes[MAX_FRAMES];     //  their sizes
    worker_t *workers;            //  worker slots, by number
    uint32_t nslots;              //  slots in use or freed
    uint32_t capslots;            //  slots allocated
    uint32_t free;                //  first free slot, or NONE
    uint32_t *index;              //  open addressing: routing id -> slot + 1, 0 empty
    uint32_t mask;                //  index size - 1 (a power of two)
    uint32_t nworkers;            //  workers that sent READY and are still here
    uint32_t idle_head;           //  idle workers, longest idle first, or NONE
    uint32_t idle_tail;           //  the most recently idle, or NONE
    zmq_msg_t *ring;              //  frames of waiting requests: token, body...
    uint8_t *counts;              //  frames per waiting request, same capacity
    size_t ring_mask;             //  ring capacity - 1 (a power of two), or 0
    size_t head;                  //  first frame waiting
    size_t tail;                  //  one past the last frame waiting
    size_t count_head;            //  first waiting request's count
    size_t count_tail;            //  one past the last request's count
    uint64_t dropped;             //  messages dropped
} relay_t;

static const uint8_t s_request_cmd = 0x02;

static const unsigned char *s_data (relay_t *self, size_t index)
{
    return zmq_msg_data (&self->frames[index]);
}

//  True if frame index is the 6-byte protocol name (compared inline).
static bool s_is_protocol (relay_t *self, size_t index, const char protocol[6])
{
    if (self->sizes[index] != 6)
        return false;
    uint32_t head[2];
    uint16_t tail[2];
    const unsigned char *data = s_data (self, index);
    memcpy (&head[0], data, 4);
    memcpy (&head[1], protocol, 4);
    memcpy (&tail[0], data + 4, 2);
    memcpy (&tail[1], protocol + 4, 2);
    return head[0] == head[1] && tail[0] == tail[1];
}

static bool s_same_id (const unsigned char *a, const unsigned char *b, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (a[i] != b[i])
            return false;
    return true;
}

//  ---------------------------------------------------------------------------
//  Workers: slots, an index by routing id, and the idle list

static uint32_t s_hash (const unsigned char *id, size_t len)
{
    uint32_t hash = 2166136261u; //  FNV-1a
    for (size_t i = 0; i < len; i++)
        hash = (hash ^ id[i]) * 16777619u;
    return hash;
}

//  The index cell of this routing id: its worker's, or the empty one where
//  it would go.
static uint32_t *s_cell (relay_t *self, const unsigned char *id, size_t len, uint32_t hash)
{
    uint32_t at = hash & self->mask;
    while (self->index[at]) {
        worker_t *worker = &self->workers[self->index[at] - 1];
        if (worker->hash == hash && worker->len == len && s_same_id (worker->id, id, len))
            break;
        at = (at + 1) & self->mask;
    }
    return &self->index[at];
}

//  The worker whose routing id is frame 0 of the message in hand, or NONE.
static uint32_t s_find (relay_t *self)
{
    if (self->sizes[0] == 0 || self->sizes[0] > 255)
        return NONE;
    const unsigned char *id = s_data (self, 0);
    uint32_t cell = *s_cell (self, id, self->sizes[0], s_hash (id, self->sizes[0]));
    return cell ? cell - 1 : NONE;
}

//  Double the index and put every worker back. 0, or -1 out of memory.
static int s_index_grow (relay_t *self)
{
    uint32_t size = (self->mask + 1) * 2;
    uint32_t *index = calloc (size, sizeof (uint32_t));
    if (!index)
        return -1;
    free (self->index);
    self->index = index;
    self->mask = size - 1;
    for (uint32_t n = 0; n < self->nslots; n++)
        if (self->workers[n].len)
            *s_cell (self, self->workers[n].id, self->workers[n].len, self->workers[n].hash) =
                n + 1;
    return 0;
}

//  Empty a cell, moving later cells of the same run back (linear probing).
static void s_index_remove (relay_t *self, uint32_t hole)
{
    self->index[hole] = 0;
    for (uint32_t at = (hole + 1) & self->mask; self->index[at]; at = (at + 1) & self->mask) {
        uint32_t home = self->workers[self->index[at] - 1].hash & self->mask;
        //  It stays if its home lies cyclically in (hole, at].
        bool stays = hole <= at ? hole < home && home <= at : hole < home || home <= at;
        if (!stays) {
            self->index[hole] = self->index[at];
            self->index[at] = 0;
            hole = at;
        }
    }
}

//  A slot for a new worker: its number, or NONE out of memory.
static uint32_t s_slot_new (relay_t *self)
{
    if (self->free != NONE) {
        uint32_t n = self->free;
        self->free = self->workers[n].next;
        return n;
    }
    if (self->nslots == self->capslots) {
        uint32_t cap = self->capslots ? self->capslots * 2 : 16;
        worker_t *workers = realloc (self->workers, cap * sizeof (worker_t));
        if (!workers)
            return NONE;
        self->workers = workers;
        self->capslots = cap;
    }
    return self->nslots++;
}

//  Idle list: take at the head (longest idle), put back at the tail.
static void s_idle_push (relay_t *self, uint32_t n)
{
    worker_t *worker = &self->workers[n];
    worker->prev = self->idle_tail;
    worker->next = NONE;
    worker->listed = true;
    if (self->idle_tail != NONE)
        self->workers[self->idle_tail].next = n;
    else
        self->idle_head = n;
    self->idle_tail = n;
}

static void s_idle_unlink (relay_t *self, uint32_t n)
{
    worker_t *worker = &self->workers[n];
    if (worker->prev != NONE)
        self->workers[worker->prev].next = worker->next;
    else
        self->idle_head = worker->next;
    if (worker->next != NONE)
        self->workers[worker->next].prev = worker->prev;
    else
        self->idle_tail = worker->prev;
    worker->listed = false;
}

//  The worker for the next request, or NONE: the longest idle one, taken
//  off the list; with --pipeline the next in the rotation, which stays on.
static uint32_t s_worker_take (relay_t *self)
{
    uint32_t n = self->idle_head;
    if (n != NONE) {
        s_idle_unlink (self, n);
        if (self->pipeline)
            s_idle_push (self, n);
    }
    return n;
}

//  ---------------------------------------------------------------------------
//  The FIFO of waiting requests: a ring of moved frames

static bool s_waiting (relay_t *self)
{
    return self->count_head != self->count_tail;
}

//  Make room for need more frames, doubling the ring (frames moved, in
//  order). 0, or -1 at RING_MAX or out of memory.
static int s_ring_room (relay_t *self, size_t need)
{
    size_t used = self->tail - self->head, cap = self->ring ? self->ring_mask + 1 : 0;
    if (used + need <= cap)
        return 0;
    size_t size = cap ? cap * 2 : RING_MIN;
    while (size < used + need)
        size *= 2;
    zmq_msg_t *ring = size <= RING_MAX ? malloc (size * sizeof (zmq_msg_t)) : NULL;
    uint8_t *counts = ring ? malloc (size) : NULL;
    if (!counts) {
        free (ring);
        return -1;
    }
    size_t requests = self->count_tail - self->count_head;
    for (size_t i = 0; i < size; i++)
        zmq_msg_init (&ring[i]);
    for (size_t i = 0; i < used; i++)
        zmq_msg_move (&ring[i], &self->ring[(self->head + i) & self->ring_mask]);
    for (size_t i = 0; i < requests; i++)
        counts[i] = self->counts[(self->count_head + i) & self->ring_mask];
    for (size_t i = 0; i < cap; i++)
        zmq_msg_close (&self->ring[i]);
    free (self->ring);
    free (self->counts);
    self->ring = ring;
    self->counts = counts;
    self->ring_mask = size - 1;
    self->head = self->count_head = 0;
    self->tail = used;
    self->count_tail = requests;
    return 0;
}

static zmq_msg_t *s_ring_slot (relay_t *self)
{
    return &self->ring[self->tail++ & self->ring_mask];
}

//  ---------------------------------------------------------------------------
//  Client requests

//  True if the envelope [<c>] is one routing id that libzmq made: it is
//  then the token as it stands.
static bool s_bare (relay_t *self, size_t delim)
{
    return delim == 1 && self->sizes[0] > 0 && s_data (self, 0)[0] == 0;
}

//  Pack the envelope [<c>][env...] into token. Its size, or 0 if it does
//  not fit.
static size_t s_pack (relay_t *self, size_t delim, unsigned char *token)
{
    size_t size = 0;
    for (size_t i = 0; i < delim; i++) {
        if (self->sizes[i] > 255 || size + 1 + self->sizes[i] > TOKEN_MAX)
            return 0;
        token[size++] = (unsigned char)self->sizes[i];
        memcpy (token + size, s_data (self, i), self->sizes[i]);
        size += self->sizes[i];
    }
    return size;
}

//  [<w>][""]["MDPW01"][0x02]: the routing id moved from dest if given
//  (frame 0 of a worker's message), else copied from the worker's slot.
static void s_send_head (relay_t *self, uint32_t n, zmq_msg_t *dest)
{
    if (dest)
        zmq_msg_send (dest, self->router, ZMQ_SNDMORE);
    else
        zmq_send (self->router, self->workers[n].id, self->workers[n].len, ZMQ_SNDMORE);
    zmq_send_const (self->router, "", 0, ZMQ_SNDMORE);
    zmq_send_const (self->router, "MDPW01", 6, ZMQ_SNDMORE);
    zmq_send_const (self->router, &s_request_cmd, 1, ZMQ_SNDMORE);
    if (!self->pipeline)
        self->workers[n].busy = true;
}

//  Frames [from, count) of the message in hand, moved; the last ends it.
static void s_send_body (relay_t *self, size_t from, size_t count)
{
    for (size_t i = from; i < count; i++)
        zmq_msg_send (&self->frames[i], self->router, i + 1 < count ? ZMQ_SNDMORE : 0);
}

//  The request in hand straight to worker n.
static void s_request_send (relay_t *self, uint32_t n, size_t count, size_t delim,
                            const unsigned char *token, size_t size)
{
    s_send_head (self, n, NULL);
    if (size)
        zmq_send (self->router, token, size, ZMQ_SNDMORE);
    else
        zmq_msg_send (&self->frames[0], self->router, ZMQ_SNDMORE);
    zmq_send_const (self->router, "", 0, ZMQ_SNDMORE);
    s_send_body (self, delim + 3, count);
}

//  The request in hand into the FIFO: its token and body frames, moved.
static void s_request_hold (relay_t *self, size_t count, size_t delim, const unsigned char *token,
                            size_t size)
{
    size_t frames = 1 + count - (delim + 3);
    if (s_ring_room (self, frames) != 0) {
        self->dropped++;
        return;
    }
    zmq_msg_t *slot = s_ring_slot (self);
    if (size) {
        zmq_msg_close (slot);
        zmq_msg_init_size (slot, size);
        memcpy (zmq_msg_data (slot), token, size);
    } else
        zmq_msg_move (slot, &self->frames[0]);
    for (size_t i = delim + 3; i < count; i++)
        zmq_msg_move (s_ring_slot (self), &self->frames[i]);
    self->counts[self->count_tail++ & self->ring_mask] = (uint8_t)frames;
}

//  The oldest waiting request to worker n (dest as for s_send_head).
static void s_request_unhold (relay_t *self, uint32_t n, zmq_msg_t *dest)
{
    size_t frames = self->counts[self->count_head++ & self->ring_mask];
    s_send_head (self, n, dest);
    zmq_msg_send (&self->ring[self->head++ & self->ring_mask], self->router, ZMQ_SNDMORE);
    zmq_send_const (self->router, "", 0, ZMQ_SNDMORE);
    for (size_t i = 1; i < frames; i++)
        zmq_msg_send (&self->ring[self->head++ & self->ring_mask], self->router,
                      i + 1 < frames ? ZMQ_SNDMORE : 0);
}

static void s_client (relay_t *self, size_t count, size_t delim)
{
    unsigned char token[TOKEN_MAX];
    size_t size = 0;
    if (count < delim + 4 || (!s_bare (self, delim) && (size = s_pack (self, delim, token)) == 0)) {
        self->dropped++; //  no service, no body, or an envelope too big for a token
        return;
    }
    uint32_t n = s_worker_take (self);
    if (n != NONE)
        s_request_send (self, n, count, delim, token, size);
    else
        s_request_hold (self, count, delim, token, size);
}

//  ---------------------------------------------------------------------------
//  Workers

//  Worker n can take a request: the oldest waiting one, or it goes idle.
//  With --pipeline it takes every waiting request, round robin.
static void s_worker_free (relay_t *self, uint32_t n, zmq_msg_t *dest)
{
    self->workers[n].busy = false;
    if (self->pipeline) {
        while (s_waiting (self))
            s_request_unhold (self, s_worker_take (self), NULL);
    } else if (s_waiting (self))
        s_request_unhold (self, n, dest);
    else
        s_idle_push (self, n);
}

static void s_ready (relay_t *self)
{
    if (s_find (self) != NONE || self->sizes[0] == 0 || self->sizes[0] > 255 ||
        ((self->nworkers + 1) * 2 > self->mask + 1 && s_index_grow (self) != 0)) {
        self->dropped++; //  a second READY, or out of memory
        return;
    }
    uint32_t n = s_slot_new (self);
    if (n == NONE) {
        self->dropped++;
        return;
    }
    worker_t *worker = &self->workers[n];
    worker->len = (uint8_t)self->sizes[0];
    memcpy (worker->id, s_data (self, 0), worker->len);
    worker->hash = s_hash (worker->id, worker->len);
    worker->busy = worker->listed = false;
    *s_cell (self, worker->id, worker->len, worker->hash) = n + 1;
    self->nworkers++;
    if (self->pipeline)
        s_idle_push (self, n);
    s_worker_free (self, n, &self->frames[0]);
}

static void s_leave (relay_t *self, uint32_t n)
{
    worker_t *worker = &self->workers[n];
    if (worker->listed)
        s_idle_unlink (self, n);
    s_index_remove (self,
                    (uint32_t)(s_cell (self, worker->id, worker->len, worker->hash) - self->index));
    worker->len = 0;
    worker->next = self->free;
    self->free = n;
    self->nworkers--;
}

//  True if the token is a routing id libzmq made, or unpacks into whole
//  frames, at least one.
static bool s_token_valid (relay_t *self)
{
    const unsigned char *data = s_data (self, 4);
    size_t size = self->sizes[4], at = 0;
    if (size > 0 && data[0] == 0)
        return size <= 255;
    while (at < size)
        at += 1 + data[at];
    return size > 0 && at == size;
}

//  REPLY from worker n: [<w>][""]["MDPW01"][0x03][token][""][body...] back
//  to the client as [<c>][env...][""]["MDPC01"]["relay"][body...].
static void s_reply (relay_t *self, uint32_t n, size_t count)
{
    if (count < 7 || self->sizes[5] != 0 || !s_token_valid (self) ||
        (!self->pipeline && !self->workers[n].busy)) {
        self->dropped++;
        return;
    }
    const unsigned char *token = s_data (self, 4);
    if (token[0] == 0)
        zmq_msg_send (&self->frames[4], self->router, ZMQ_SNDMORE);
    else
        for (size_t at = 0; at < self->sizes[4]; at += 1 + token[at])
            zmq_send (self->router, token + at + 1, token[at], ZMQ_SNDMORE);
    zmq_send_const (self->router, "", 0, ZMQ_SNDMORE);
    zmq_send_const (self->router, "MDPC01", 6, ZMQ_SNDMORE);
    zmq_send_const (self->router, "relay", 5, ZMQ_SNDMORE);
    s_send_body (self, 6, count);
    if (!self->pipeline)
        s_worker_free (self, n, &self->frames[0]);
}

static void s_worker (relay_t *self, size_t count, size_t delim)
{
    uint8_t command = delim == 1 && self->sizes[3] == 1 ? s_data (self, 3)[0] : 0;
    uint32_t n = command == 0x01 || command == 0x04 ? NONE : s_find (self);
    if (command == 0x01 && count == 5)
        s_ready (self);
    else if (command == 0x04)
        ; //  HEARTBEAT: nothing is ever due here
    else if (n == NONE)
        self->dropped++; //  not READY, or a READY without its one service frame
    else if (command == 0x03)
        s_reply (self, n, count);
    else if (command == 0x05)
        s_leave (self, n);
    else
        self->dropped++;
}

//  ---------------------------------------------------------------------------
//  The loop: blocking reads, as nothing else is ever due

//  One message as read from the ROUTER: classify by the protocol frame.
static void s_handle (relay_t *self, size_t count)
{
    size_t delim = 1;
    while (delim < count && self->sizes[delim] != 0)
        delim++;
    if (delim + 2 >= count)
        self->dropped++;
    else if (s_is_protocol (self, delim + 1, "MDPC01"))
        s_client (self, count, delim);
    else if (s_is_protocol (self, delim + 1, "MDPW01"))
        s_worker (self, count, delim);
    else
        self->dropped++;
}

//  Read one whole message into frames, waiting for it. Returns its frame
//  count, 0 once the context is shut down, SIZE_MAX for one too long (read
//  and dropped). Each recv releases what the frame held before.
static size_t s_recv (relay_t *self)
{
    size_t count = 0;
    bool more = true;
    while (more) {
        size_t at = count < MAX_FRAMES ? count : MAX_FRAMES - 1;
        int size = zmq_msg_recv (&self->frames[at], self->router, 0);
        if (size < 0) {
            if (errno == EINTR)
                continue;
            return 0;
        }
        self->sizes[at] = (size_t)size;
        more = zmq_msg_more (&self->frames[at]);
        count++;
    }
    if (count > MAX_FRAMES) {
        self->dropped++;
        return SIZE_MAX;
    }
    return count;
}

static void s_serve (relay_t *self)
{
    size_t count;
    while ((count = s_recv (self)) > 0)
        if (count != SIZE_MAX)
            s_handle (self, count);
}

//  ---------------------------------------------------------------------------
//  Setup

//  Parse the command line: endpoint and mode. Returns -1 to exit with *code.
static int s_args (int argc, char *argv[], const char **endpoint, bool *pipeline, int *code)
{
    static const struct option options[] = {{"endpoint", required_argument, 0, 'e'},
                                            {"pipeline", no_argument, 0, 'p'},
                                            {"help", no_argument, 0, 'h'},
                                            {0, 0, 0, 0}};
    int opt;
    while ((opt = getopt_long (argc, argv, "e:ph", options, NULL)) != -1) {
        if (opt == 'e')
            *endpoint = optarg;
        else if (opt == 'p')
            *pipeline = true;
        else {
            fprintf (opt == 'h' ? stdout : stderr,
                     "usage: mdp-relay [-e ENDPOINT] [--pipeline]\n"
                     "  -e, --endpoint EP  bind here (default tcp://127.0.0.1:*)\n"
                     "  -p, --pipeline     no limit of one request per worker: round robin\n");
            *code = opt == 'h' ? 0 : 2;
            return -1;
        }
    }
    if (optind < argc) {
        fprintf (stderr, "mdp-relay: unexpected argument '%s'\n", argv[optind]);
        *code = 2;
        return -1;
    }
    return 0;
}

//  The ROUTER, set up as mdp-broker sets up its own. 0, or -1 with errno.
static int s_bind (relay_t *self, void *ctx, const char *endpoint, char *bound, size_t size)
{
    self->router = zmq_socket (ctx, ZMQ_ROUTER);
    if (!self->router)
        return -1;
    int linger = 1000, hwm = 0;
    zmq_setsockopt (self->router, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (self->router, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt (self->router, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (zmq_bind (self->router, endpoint) != 0)
        return -1;
    return zmq_getsockopt (self->router, ZMQ_LAST_ENDPOINT, bound, &size);
}

static int s_init (relay_t *self)
{
    for (size_t i = 0; i < MAX_FRAMES; i++)
        zmq_msg_init (&self->frames[i]);
    self->free = self->idle_head = self->idle_tail = NONE;
    self->mask = 63;
    self->index = calloc (self->mask + 1, sizeof (uint32_t));
    return self->index ? 0 : -1;
}

static void s_destroy (relay_t *self)
{
    for (size_t i = 0; i < MAX_FRAMES; i++)
        zmq_msg_close (&self->frames[i]);
    for (size_t i = 0; self->ring && i <= self->ring_mask; i++)
        zmq_msg_close (&self->ring[i]);
    free (self->ring);
    free (self->counts);
    free (self->workers);
    free (self->index);
    if (self->router)
        zmq_close (self->router);
}

//  SIGINT or SIGTERM, taken by this thread alone: shut the context down, so
//  that the main thread's blocking read returns.
typedef struct {
    sigset_t signals; //  the stop signals, blocked everywhere
    void *ctx;        //  the context to shut down
} stopper_t;

static void *s_stopper (void *arg)
{
    stopper_t *stopper = arg;
    int signal = 0;
    sigwait (&stopper->signals, &signal);
    zmq_ctx_shutdown (stopper->ctx);
    return NULL;
}

int main (int argc, char *argv[])
{
    const char *endpoint = "tcp://127.0.0.1:*";
    int code = 0;
    relay_t self = {.router = NULL};
    if (s_args (argc, argv, &endpoint, &self.pipeline, &code) != 0)
        return code;
    //  The stop signals are blocked before any thread starts, so that only
    //  the stopper's sigwait takes them.
    stopper_t stopper;
    sigemptyset (&stopper.signals);
    sigaddset (&stopper.signals, SIGINT);
    sigaddset (&stopper.signals, SIGTERM);
    pthread_sigmask (SIG_BLOCK, &stopper.signals, NULL);
    stopper.ctx = zmq_ctx_new ();
    pthread_t thread;
    bool stopper_runs = stopper.ctx && pthread_create (&thread, NULL, s_stopper, &stopper) == 0;
    char bound[256];
    if (!stopper_runs || s_init (&self) != 0 ||
        s_bind (&self, stopper.ctx, endpoint, bound, sizeof bound) != 0) {
        fprintf (stderr, "mdp-relay: cannot bind '%s': %s\n", endpoint, zmq_strerror (errno));
        code = 2;
    } else {
        fprintf (stderr, "mdp-relay: serving on %s\n", bound);
        fflush (stderr);
        s_serve (&self);
        fprintf (stderr, "mdp-relay: stopping, %llu messages dropped, %zu requests waiting\n",
                 (unsigned long long)self.dropped, self.count_tail - self.count_head);
    }
    s_destroy (&self);
    if (stopper_runs) { //  a no-op if it already took a signal and ended
        pthread_kill (thread, SIGTERM);
        pthread_join (thread, NULL);
    }
    if (stopper.ctx)
        zmq_ctx_term (stopper.ctx);
    return code;
}
