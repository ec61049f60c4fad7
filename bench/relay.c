/*  relay.c - mdp-relay: the smallest ROUTER relay that carries mdp-bench's
    MDP/0.1 frames between clients and workers, to measure the ceiling any
    broker can reach on a machine: mdp-bench prints mdp-broker's figures as
    ratios to it. No services, no hash tables, no deadlines, no heartbeats.

    What arrives, and what it sends ([<id>] is the ROUTER routing id):
      client   [<c>][env...][""]["MDPC01"][service][body...]
        to a worker, with the client's envelope packed into the token frame:
               [<w>][""]["MDPW01"][0x02][token][""][body...]
      REPLY    [<w>][""]["MDPW01"][0x03][token][""][body...]
        back:  [<c>][env...][""]["MDPC01"]["relay"][body...]
      READY    [<w>][""]["MDPW01"][0x01][service]   the worker joins
      DISCONNECT from a worker: it leaves. Anything else: dropped.
    By default a worker holds one request at a time, as MDP requires, and the
    rest wait in one FIFO (a reply finds its worker by a scan of the READY
    workers: the bench registers a handful). With --pipeline requests go round
    robin at once, however many a worker already holds: the bare envelope swap.
    Either way, requests that arrive before any worker is READY wait in order.
    Clients and workers see the same frames as with mdp-broker (the reply's
    service frame is always "relay"), so the same bench code drives both.
*/
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <zmq.h>

#define MAX_FRAMES 64            //  a longer message is dropped, as by the broker
#define MAX_HELD 1000000         //  requests held at most
#define TOKEN_MAX 512            //  largest client envelope, packed

typedef struct {
    unsigned char id[256];       //  routing id bytes
    size_t len;                  //  routing id length
    bool busy;                   //  holds a request (not with --pipeline)
} peer_t;

//  A frame as read, with its size read once (libzmq's accessors are calls).
typedef struct {
    zmq_msg_t msg;               //  the frame
    size_t size;                 //  its size in bytes
} frame_t;

typedef struct {
    frame_t *frames;             //  the message's frames, owned
    size_t count;                //  frame count
    size_t delim;                //  index of its empty delimiter frame
} held_t;

typedef struct {
    void *router;                //  the one ROUTER socket
    bool pipeline;               //  --pipeline: round robin, no limit per worker
    peer_t *workers;             //  READY workers
    size_t nworkers;             //  READY workers
    size_t capworkers;           //  capacity of workers and idle
    size_t *idle;                //  stack of idle workers' indexes
    size_t nidle;                //  idle workers
    size_t next;                 //  --pipeline: rotation index of the next worker
    held_t *held;                //  requests waiting for a worker, oldest at head
    size_t head;                 //  first held request
    size_t tail;                 //  one past the last held request
    size_t capheld;              //  capacity of held
    uint64_t dropped;            //  messages dropped
} relay_t;

static bool s_is (frame_t *frame, const void *bytes, size_t len)
{
    return frame->size == len && memcmp (zmq_msg_data (&frame->msg), bytes, len) == 0;
}

static void s_close_all (frame_t *frames, size_t count)
{
    for (size_t i = 0; i < count; i++)
        zmq_msg_close (&frames[i].msg);
}

//  Move frames [from, to) out; the last one goes with `last` flags.
static void s_send_range (relay_t *self, frame_t *frames, size_t from, size_t to, int last)
{
    for (size_t i = from; i < to; i++)
        if (zmq_msg_send (&frames[i].msg, self->router, i + 1 < to ? ZMQ_SNDMORE : last) < 0)
            zmq_msg_close (&frames[i].msg);
}

//  The token: the client's envelope [<c>][env...] packed in one frame, each
//  frame as a length byte and its bytes, so that a worker sees exactly the
//  frames mdp-broker sends it (one token frame) and the relay keeps no state.
static bool s_envelope_fits (frame_t *frames, size_t delim)
{
    size_t size = 0;
    for (size_t i = 0; i < delim; i++) {
        if (frames[i].size > 255)
            return false;
        size += 1 + frames[i].size;
    }
    return size <= TOKEN_MAX;
}

//  A client request to a worker: frames are moved or closed.
static void s_send_request (relay_t *self, peer_t *worker, frame_t *frames, size_t count,
                            size_t delim)
{
    static const uint8_t request_cmd = 0x02;
    unsigned char token[TOKEN_MAX];
    size_t size = 0;
    for (size_t i = 0; i < delim; i++) {
        token[size++] = (unsigned char) frames[i].size;
        memcpy (token + size, zmq_msg_data (&frames[i].msg), frames[i].size);
        size += frames[i].size;
        zmq_msg_close (&frames[i].msg);
    }
    zmq_send (self->router, worker->id, worker->len, ZMQ_SNDMORE);
    zmq_send_const (self->router, "", 0, ZMQ_SNDMORE);
    zmq_send_const (self->router, "MDPW01", 6, ZMQ_SNDMORE);
    zmq_send_const (self->router, &request_cmd, 1, ZMQ_SNDMORE);
    zmq_send (self->router, token, size, ZMQ_SNDMORE);
    s_send_range (self, frames, delim, delim + 1, ZMQ_SNDMORE);   //  [""]
    s_send_range (self, frames, delim + 3, count, 0);             //  body
    zmq_msg_close (&frames[delim + 1].msg);
    zmq_msg_close (&frames[delim + 2].msg);
    worker->busy = true;
}

//  Keep a request until a worker can take it (copies the frame array).
static void s_hold (relay_t *self, frame_t *frames, size_t count, size_t delim)
{
    if (self->tail == self->capheld && self->head > 0) {   //  slide down
        memmove (self->held, self->held + self->head, (self->tail - self->head) * sizeof (held_t));
        self->tail -= self->head;
        self->head = 0;
    }
    if (self->tail == self->capheld && self->capheld < MAX_HELD) {
        size_t cap = self->capheld ? self->capheld * 2 : 64;
        held_t *held = realloc (self->held, cap * sizeof (held_t));
        if (held) {
            self->held = held;
            self->capheld = cap;
        }
    }
    frame_t *copy = self->tail < self->capheld ? malloc (count * sizeof (frame_t)) : NULL;
    if (!copy) {
        self->dropped++;
        s_close_all (frames, count);
        return;
    }
    memcpy (copy, frames, count * sizeof (frame_t));
    self->held[self->tail++] = (held_t){copy, count, delim};
}

//  Give the oldest held request to worker. Returns false if none is held.
static bool s_unhold (relay_t *self, peer_t *worker)
{
    if (self->head == self->tail)
        return false;
    held_t *held = &self->held[self->head++];
    s_send_request (self, worker, held->frames, held->count, held->delim);
    free (held->frames);
    if (self->head == self->tail)
        self->head = self->tail = 0;
    return true;
}

//  An idle worker (the next in the rotation with --pipeline), or NULL.
static peer_t *s_idle_worker (relay_t *self)
{
    if (self->pipeline)
        return self->nworkers ? &self->workers[self->next++ % self->nworkers] : NULL;
    return self->nidle ? &self->workers[self->idle[--self->nidle]] : NULL;
}

static void s_client (relay_t *self, frame_t *frames, size_t count, size_t delim)
{
    bool valid = count >= delim + 4 && s_envelope_fits (frames, delim);
    peer_t *worker = valid ? s_idle_worker (self) : NULL;
    if (!valid) {   //  no service, no body, or an envelope too big for a token
        self->dropped++;
        s_close_all (frames, count);
    }
    else
    if (worker)
        s_send_request (self, worker, frames, count, delim);
    else
        s_hold (self, frames, count, delim);
}

//  A worker that can take a request: the oldest held one, or it waits idle.
static void s_worker_free (relay_t *self, size_t index)
{
    peer_t *worker = &self->workers[index];
    worker->busy = false;
    if (self->pipeline) {
        while (s_unhold (self, worker))
            ;
    }
    else
    if (!s_unhold (self, worker))
        self->idle[self->nidle++] = index;
}

static void s_ready (relay_t *self, frame_t *id)
{
    if (self->nworkers == self->capworkers) {
        size_t cap = self->capworkers ? self->capworkers * 2 : 16;
        peer_t *workers = realloc (self->workers, cap * sizeof (peer_t));
        size_t *idle = workers ? realloc (self->idle, cap * sizeof (size_t)) : NULL;
        if (workers)
            self->workers = workers;
        if (!idle)
            return;
        self->idle = idle;
        self->capworkers = cap;
    }
    peer_t *worker = &self->workers[self->nworkers];
    worker->len = id->size < sizeof worker->id ? id->size : sizeof worker->id;
    memcpy (worker->id, zmq_msg_data (&id->msg), worker->len);
    s_worker_free (self, self->nworkers++);
}

//  The READY worker with this routing id: its index, or SIZE_MAX.
static size_t s_find (relay_t *self, frame_t *id)
{
    for (size_t i = 0; i < self->nworkers; i++)
        if (s_is (id, self->workers[i].id, self->workers[i].len))
            return i;
    return SIZE_MAX;
}

static void s_leave (relay_t *self, frame_t *id)
{
    size_t index = s_find (self, id);
    if (index == SIZE_MAX)
        return;
    //  Rebuild the idle stack without it; the last worker takes its place.
    size_t last = --self->nworkers, kept = 0;
    for (size_t i = 0; i < self->nidle; i++)
        if (self->idle[i] != index)
            self->idle[kept++] = self->idle[i] == last ? index : self->idle[i];
    self->nidle = kept;
    self->workers[index] = self->workers[last];
}

//  True if the token unpacks into whole frames, at least one.
static bool s_token_valid (frame_t *token)
{
    const unsigned char *data = zmq_msg_data (&token->msg);
    size_t size = token->size, at = 0;
    while (at < size)
        at += 1 + data[at];
    return size > 0 && at == size;
}

//  REPLY: [<w>][""]["MDPW01"][0x03][token][""][body...] back to the client
//  as [<c>][env...][""]["MDPC01"]["relay"][body...].
static void s_reply (relay_t *self, frame_t *frames, size_t count)
{
    size_t index = self->pipeline ? SIZE_MAX : s_find (self, &frames[0]);
    if (count < 7 || frames[5].size != 0 || !s_token_valid (&frames[4])
        || (!self->pipeline && (index == SIZE_MAX || !self->workers[index].busy))) {
        self->dropped++;
        s_close_all (frames, count);
        return;
    }
    const unsigned char *token = zmq_msg_data (&frames[4].msg);
    for (size_t at = 0; at < frames[4].size; at += 1 + token[at])
        zmq_send (self->router, token + at + 1, token[at], ZMQ_SNDMORE);
    s_send_range (self, frames, 5, 6, ZMQ_SNDMORE);   //  [""]
    zmq_send_const (self->router, "MDPC01", 6, ZMQ_SNDMORE);
    zmq_send_const (self->router, "relay", 5, ZMQ_SNDMORE);
    s_send_range (self, frames, 6, count, 0);
    s_close_all (frames, 5);
    if (!self->pipeline)
        s_worker_free (self, index);
}

static void s_worker (relay_t *self, frame_t *frames, size_t count, size_t delim)
{
    uint8_t command = frames[3].size == 1 ? *(uint8_t *) zmq_msg_data (&frames[3].msg) : 0;
    if (delim != 1)
        command = 0;
    if (command == 0x03) {
        s_reply (self, frames, count);
        return;
    }
    if (command == 0x01 && count == 5)
        s_ready (self, &frames[0]);
    else
    if (command == 0x05)
        s_leave (self, &frames[0]);
    else
    if (command != 0x04)
        self->dropped++;
    s_close_all (frames, count);
}

//  One message as read from the ROUTER: classify by the protocol frame.
static void s_handle (relay_t *self, frame_t *frames, size_t count)
{
    size_t delim = 1;
    while (delim < count && frames[delim].size != 0)
        delim++;
    if (delim + 2 >= count) {
        self->dropped++;
        s_close_all (frames, count);
    }
    else
    if (s_is (&frames[delim + 1], "MDPC01", 6))
        s_client (self, frames, count, delim);
    else
    if (s_is (&frames[delim + 1], "MDPW01", 6))
        s_worker (self, frames, count, delim);
    else {
        self->dropped++;
        s_close_all (frames, count);
    }
}

//  Read one whole message; returns its frame count, 0 when none waits, and
//  SIZE_MAX for a message that was too long (read and dropped).
static size_t s_recv (relay_t *self, frame_t *frames)
{
    size_t count = 0;
    bool more = true;
    while (more) {
        zmq_msg_t *frame = &frames[count < MAX_FRAMES ? count : MAX_FRAMES].msg;
        zmq_msg_init (frame);
        int size = zmq_msg_recv (frame, self->router, ZMQ_DONTWAIT);
        if (size < 0) {
            zmq_msg_close (frame);
            break;
        }
        frames[count < MAX_FRAMES ? count : MAX_FRAMES].size = (size_t) size;
        more = zmq_msg_more (frame);
        if (count < MAX_FRAMES)
            count++;
        else {
            zmq_msg_close (frame);
            count = MAX_FRAMES + 1;
        }
    }
    if (count > MAX_FRAMES) {
        s_close_all (frames, MAX_FRAMES);
        self->dropped++;
        return SIZE_MAX;
    }
    return count;
}

static void s_serve (relay_t *self, int sigfd)
{
    zmq_pollitem_t items[2] = {{self->router, 0, ZMQ_POLLIN, 0}, {NULL, sigfd, ZMQ_POLLIN, 0}};
    frame_t frames[MAX_FRAMES + 1];
    while (true) {
        if (zmq_poll (items, 2, -1) < 0 && errno != EINTR)
            break;
        if (items[1].revents & ZMQ_POLLIN)
            break;
        for (int batch = 0; batch < 1000; batch++) {   //  as the broker drains
            size_t count = s_recv (self, frames);
            if (count == 0)
                break;
            if (count != SIZE_MAX)
                s_handle (self, frames, count);
        }
    }
}

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
        else
        if (opt == 'p')
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

static void s_destroy (relay_t *self)
{
    for (size_t i = self->head; i < self->tail; i++) {
        s_close_all (self->held[i].frames, self->held[i].count);
        free (self->held[i].frames);
    }
    free (self->held);
    free (self->workers);
    free (self->idle);
    if (self->router)
        zmq_close (self->router);
}

int main (int argc, char *argv[])
{
    const char *endpoint = "tcp://127.0.0.1:*";
    int code = 0;
    relay_t self = {.router = NULL};
    if (s_args (argc, argv, &endpoint, &self.pipeline, &code) != 0)
        return code;
    //  Stop signals through a signalfd, blocked before libzmq starts threads.
    sigset_t mask;
    sigemptyset (&mask);
    sigaddset (&mask, SIGINT);
    sigaddset (&mask, SIGTERM);
    sigprocmask (SIG_BLOCK, &mask, NULL);
    int sigfd = signalfd (-1, &mask, SFD_CLOEXEC);
    void *ctx = zmq_ctx_new ();
    char bound[256];
    if (sigfd < 0 || !ctx || s_bind (&self, ctx, endpoint, bound, sizeof bound) != 0) {
        fprintf (stderr, "mdp-relay: cannot bind '%s': %s\n", endpoint, zmq_strerror (errno));
        code = 2;
    }
    else {
        fprintf (stderr, "mdp-relay: serving on %s\n", bound);
        fflush (stderr);
        s_serve (&self, sigfd);
        fprintf (stderr, "mdp-relay: stopping, %llu messages dropped\n",
                 (unsigned long long) self.dropped);
    }
    s_destroy (&self);
    if (ctx)
        zmq_ctx_term (ctx);
    if (sigfd >= 0)
        close (sigfd);
    return code;
}
