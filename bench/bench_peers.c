/*  bench_peers.c - mdp-bench's clients and workers: MDP/0.1 on raw DEALER
    sockets, bodies [action][payload], no JSON, no copies of the payload.
    The same code runs against mdp-broker and mdp-relay, which send it the
    same frames: workers echo every frame between their command and the empty
    frame (the one token frame) and the body. Each worker confirms that its
    registration went through by asking, on the same socket, a question only
    answered once its READY was processed.
*/
#include "bench.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define MAX_FRAMES 16       //  longest message a peer expects
#define ACTION "bench.echo" //  the request action (never a bare number)
//  The stop pipe: the driver closes its end, which polls as POLLERR (hangup),
//  so any event on it means stop.

static const uint8_t s_cmd[6] = {0, 1, 2, 3, 4, 5}; //  MDPW01 command bytes

int64_t bench_now_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void bench_fail (bench_shared_t *shared, const char *fmt, ...)
{
    if (atomic_fetch_add (&shared->failed, 1) == 0) {
        va_list args;
        va_start (args, fmt);
        vsnprintf (shared->error, sizeof shared->error, fmt, args);
        va_end (args);
    }
}

//  ---------------------------------------------------------------------------
//  Histogram

static size_t s_bucket (uint64_t ns)
{
    if (ns < HIST_SUB)
        return (size_t)ns;
    int exp = 63 - __builtin_clzll (ns); //  >= 6
    size_t bucket = (size_t)(exp - 5) * HIST_SUB + ((ns >> (exp - 6)) & (HIST_SUB - 1));
    return bucket < HIST_BUCKETS ? bucket : HIST_BUCKETS - 1;
}

static uint64_t s_bucket_mid (size_t bucket)
{
    if (bucket < HIST_SUB)
        return bucket;
    int exp = (int)(bucket / HIST_SUB) + 5;
    uint64_t low = (uint64_t)(HIST_SUB + bucket % HIST_SUB) << (exp - 6);
    return low + ((1ULL << (exp - 6)) >> 1);
}

void bench_hist_add (bench_result_t *result, uint64_t ns)
{
    result->hist[s_bucket (ns)]++;
    if (ns > result->max_ns)
        result->max_ns = ns;
}

void bench_hist_merge (bench_result_t *into, const bench_result_t *from)
{
    into->count += from->count;
    into->errors += from->errors;
    if (from->max_ns > into->max_ns)
        into->max_ns = from->max_ns;
    for (size_t i = 0; i < HIST_BUCKETS; i++)
        into->hist[i] += from->hist[i];
}

uint64_t bench_hist_percentile (const bench_result_t *result, double q)
{
    uint64_t total = 0, seen = 0;
    for (size_t i = 0; i < HIST_BUCKETS; i++)
        total += result->hist[i];
    if (total == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)total + 0.999999);
    if (rank < 1)
        rank = 1;
    for (size_t i = 0; i < HIST_BUCKETS; i++)
        if ((seen += result->hist[i]) >= rank) {
            uint64_t mid = s_bucket_mid (i);
            return mid < result->max_ns ? mid : result->max_ns;
        }
    return result->max_ns;
}

//  ---------------------------------------------------------------------------
//  Shared helpers

const char *bench_mode_name (const bench_opts_t *opts)
{
    return opts->pipe ? "pipe" : opts->async ? "async" : "sync";
}

int bench_window (const bench_opts_t *opts)
{
    return opts->async || opts->pipe ? opts->window : 1;
}

int bench_active_services (const bench_opts_t *opts)
{
    return opts->services < opts->workers ? opts->services : opts->workers;
}

int bench_pool_size (const bench_opts_t *opts)
{
    int placeholders = opts->services - bench_active_services (opts);
    return (placeholders > 0 ? placeholders : 0) + opts->idle;
}

static void *s_socket (bench_peer_t *peer, void *ctx)
{
    void *sock = zmq_socket (ctx, ZMQ_DEALER);
    int linger = 0, hwm = 0;
    if (sock) {
        zmq_setsockopt (sock, ZMQ_LINGER, &linger, sizeof linger);
        if (peer->opts->pipe) { //  the whole window leaves at once
            zmq_setsockopt (sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
            zmq_setsockopt (sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
        }
        if (zmq_connect (sock, peer->shared->endpoint) != 0) {
            zmq_close (sock);
            sock = NULL;
        }
    }
    if (!sock)
        bench_fail (peer->shared, "cannot connect to %s: %s", peer->shared->endpoint,
                    zmq_strerror (errno));
    return sock;
}

//  Read one whole message, up to MAX_FRAMES frames (more are closed).
//  Returns the frame count, 0 if none waits (with flags ZMQ_DONTWAIT).
static size_t s_recv (void *sock, zmq_msg_t *frames, int flags)
{
    size_t count = 0;
    bool more = true;
    while (more) {
        zmq_msg_t *frame = &frames[count < MAX_FRAMES ? count : MAX_FRAMES - 1];
        if (count >= MAX_FRAMES)
            zmq_msg_close (frame);
        zmq_msg_init (frame);
        if (zmq_msg_recv (frame, sock, count ? 0 : flags) < 0) {
            zmq_msg_close (frame);
            return count;
        }
        more = zmq_msg_more (frame);
        if (count < MAX_FRAMES)
            count++;
    }
    return count;
}

static void s_close_frames (zmq_msg_t *frames, size_t count)
{
    for (size_t i = 0; i < count; i++)
        zmq_msg_close (&frames[i]);
}

static bool s_is (zmq_msg_t *frame, const char *text)
{
    size_t len = strlen (text);
    return zmq_msg_size (frame) == len && memcmp (zmq_msg_data (frame), text, len) == 0;
}

//  "bench.N" for service N, "bench.idle" for the idle workers' (number -1).
static void s_service_name (int number, char *name, size_t size)
{
    if (number < 0)
        snprintf (name, size, "bench.idle");
    else
        snprintf (name, size, "bench.%d", number);
}

static void s_send_command (void *sock, uint8_t command)
{
    zmq_send_const (sock, "", 0, ZMQ_SNDMORE);
    zmq_send_const (sock, "MDPW01", 6, ZMQ_SNDMORE);
    zmq_send_const (sock, &s_cmd[command], 1, 0);
}

//  READY (unless skip_ready) and the registration probe: a client request on
//  the worker's own socket, answered only after the READY before it.
static void s_register (const bench_opts_t *opts, void *sock, const char *service, bool skip_ready)
{
    if (!skip_ready) {
        zmq_send_const (sock, "", 0, ZMQ_SNDMORE);
        zmq_send_const (sock, "MDPW01", 6, ZMQ_SNDMORE);
        zmq_send_const (sock, &s_cmd[1], 1, ZMQ_SNDMORE);
        zmq_send (sock, service, strlen (service), 0);
    }
    zmq_send_const (sock, "", 0, ZMQ_SNDMORE);
    zmq_send_const (sock, "MDPC01", 6, ZMQ_SNDMORE);
    if (opts->kind == BROKER_MDP)
        zmq_send_const (sock, "mmi.service", 11, ZMQ_SNDMORE);
    else
        zmq_send (sock, service, strlen (service), ZMQ_SNDMORE);
    zmq_send (sock, service, strlen (service), 0);
}

//  The probe's answer: [""]["MDPC01"][service][answer]. From mdp-broker the
//  answer must be 200 (registered); from the relay it is our echo.
static bool s_probe_answered (bench_peer_t *peer, zmq_msg_t *frames, size_t count)
{
    if (count < 4 || !s_is (&frames[1], "MDPC01"))
        return false;
    if (peer->opts->kind == BROKER_MDP && !s_is (&frames[3], "200"))
        bench_fail (peer->shared, "worker registration refused (%.*s)",
                    (int)zmq_msg_size (&frames[3]), (char *)zmq_msg_data (&frames[3]));
    return true;
}

//  ---------------------------------------------------------------------------
//  Worker: echo each REQUEST as a REPLY, frames moved, heartbeat when quiet.

typedef struct {
    bench_peer_t *peer; //  who we are
    void *sock;         //  our DEALER
    bool confirmed;     //  registration confirmed
    int64_t last_sent;  //  when we last sent anything (ns)
} worker_t;

static void s_worker_message (worker_t *self, zmq_msg_t *frames, size_t count)
{
    if (count >= 3 && zmq_msg_size (&frames[0]) == 0 && s_is (&frames[1], "MDPW01") &&
        zmq_msg_size (&frames[2]) == 1) {
        uint8_t command = *(uint8_t *)zmq_msg_data (&frames[2]);
        if (command == 0x02 && count >= 5) { //  the same frames, REPLY for REQUEST
            for (size_t i = 0; i < count; i++) {
                int more = i + 1 < count ? ZMQ_SNDMORE : 0;
                if (i == 2) {
                    zmq_msg_close (&frames[i]);
                    zmq_send_const (self->sock, &s_cmd[3], 1, more);
                } else if (zmq_msg_send (&frames[i], self->sock, more) < 0)
                    zmq_msg_close (&frames[i]);
            }
            self->last_sent = bench_now_ns ();
            return;
        }
        if (command == 0x05)
            bench_fail (self->peer->shared, "worker %d got DISCONNECT from the broker",
                        self->peer->index);
    } else if (!self->confirmed && s_probe_answered (self->peer, frames, count)) {
        self->confirmed = true;
        atomic_fetch_add (&self->peer->shared->ready, 1);
    }
    s_close_frames (frames, count);
}

void bench_worker (bench_peer_t *peer)
{
    const bench_opts_t *opts = peer->opts;
    char service[64];
    s_service_name (peer->index % bench_active_services (opts), service, sizeof service);
    worker_t self = {peer, s_socket (peer, peer->ctx), false, bench_now_ns ()};
    if (!self.sock)
        return;
    s_register (opts, self.sock, service, false);
    int64_t heartbeat_ns = (int64_t)opts->heartbeat * 1000000;
    zmq_pollitem_t items[2] = {{self.sock, 0, ZMQ_POLLIN, 0}, {NULL, peer->stop_fd, ZMQ_POLLIN, 0}};
    zmq_msg_t frames[MAX_FRAMES];
    while (true) {
        int64_t wait = (self.last_sent + heartbeat_ns - bench_now_ns ()) / 1000000;
        if (zmq_poll (items, 2, wait < 0 ? 0 : (long)wait) < 0 && errno != EINTR)
            break;
        if (items[1].revents)
            break;
        size_t count;
        while ((count = s_recv (self.sock, frames, ZMQ_DONTWAIT)) > 0)
            s_worker_message (&self, frames, count);
        if (bench_now_ns () - self.last_sent >= heartbeat_ns) {
            s_send_command (self.sock, 0x04);
            self.last_sent = bench_now_ns ();
        }
    }
    zmq_close (self.sock);
}

//  ---------------------------------------------------------------------------
//  Idle pool: placeholder workers that hold the services beyond the active
//  ones, and --idle-workers, all on one thread: registered, heartbeating,
//  never sent a request (the relay, which has no services, gets no READY,
//  only the probe). Sockets connect at most POOL_PENDING at a time, so that
//  the broker's listen backlog never overflows (which costs seconds of SYN
//  retries).

#define POOL_PENDING 64

typedef struct {
    bench_peer_t *peer; //  who we are
    void **socks;       //  one DEALER per pooled worker
    bool *confirmed;    //  per socket: registration confirmed
    int base;           //  pool number of our first socket
    int count;          //  sockets wanted
    int opened;         //  sockets opened so far
    int nconfirmed;     //  sockets confirmed so far
    int first;          //  no socket below this is unconfirmed
} pool_t;

//  Read what waits on sockets [from, to); heartbeat each if asked.
static void s_pool_sweep (pool_t *self, int from, int to, bool heartbeat)
{
    zmq_msg_t frames[MAX_FRAMES];
    for (int i = from; i < to; i++) {
        size_t n;
        while ((n = s_recv (self->socks[i], frames, ZMQ_DONTWAIT)) > 0) {
            if (n == 3 && s_is (&frames[1], "MDPW01") && zmq_msg_size (&frames[2]) == 1 &&
                *(uint8_t *)zmq_msg_data (&frames[2]) == 0x05)
                bench_fail (self->peer->shared, "idle worker %d got DISCONNECT", self->base + i);
            if (!self->confirmed[i] && s_probe_answered (self->peer, frames, n)) {
                self->confirmed[i] = true;
                self->nconfirmed++;
                atomic_fetch_add (&self->peer->shared->ready, 1);
            }
            s_close_frames (frames, n);
        }
        if (heartbeat)
            s_send_command (self->socks[i], 0x04);
    }
    while (self->first < self->opened && self->confirmed[self->first])
        self->first++;
}

//  Open sockets while fewer than POOL_PENDING wait for confirmation.
static void s_pool_open (pool_t *self)
{
    const bench_opts_t *opts = self->peer->opts;
    int placeholders = bench_pool_size (opts) - opts->idle, active = bench_active_services (opts);
    while (self->opened < self->count && self->opened - self->nconfirmed < POOL_PENDING) {
        char service[64];
        int i = self->opened, number = self->base + i;
        s_service_name (number < placeholders ? active + number : -1, service, sizeof service);
        if (!(self->socks[i] = s_socket (self->peer, self->peer->ctx)))
            return;
        s_register (opts, self->socks[i], service, opts->kind == BROKER_RAW);
        self->opened++;
    }
}

void bench_idle_pool (bench_peer_t *peer)
{
    const bench_opts_t *opts = peer->opts;
    pool_t self = {peer, NULL, NULL, peer->first, peer->count, 0, 0, 0};
    self.socks = calloc ((size_t)self.count, sizeof (void *));
    self.confirmed = calloc ((size_t)self.count, sizeof (bool));
    if (!self.socks || !self.confirmed)
        bench_fail (peer->shared, "out of memory for %d idle workers", self.count);
    //  Every 2 ms until all are confirmed, then once per heartbeat; every
    //  socket heartbeats when one is due.
    zmq_pollitem_t stop = {NULL, peer->stop_fd, ZMQ_POLLIN, 0};
    int64_t heartbeat_ns = (int64_t)opts->heartbeat * 1000000;
    int64_t next_heartbeat = bench_now_ns () + heartbeat_ns;
    while (self.socks && self.confirmed && atomic_load (&peer->shared->failed) == 0) {
        bool setup = self.nconfirmed < self.count, due = bench_now_ns () >= next_heartbeat;
        if (setup)
            s_pool_open (&self);
        s_pool_sweep (&self, due ? 0 : self.first, self.opened, due);
        if (due)
            next_heartbeat = bench_now_ns () + heartbeat_ns;
        int64_t wait = setup ? 2 : (next_heartbeat - bench_now_ns ()) / 1000000;
        int rc = zmq_poll (&stop, 1, wait < 0 ? 0 : (long)wait);
        if (rc > 0 || (rc < 0 && errno != EINTR))
            break;
    }
    if (!atomic_load (&peer->shared->failed)) //  wait for the end of the run
        zmq_poll (&stop, 1, -1);
    for (int i = 0; i < self.opened; i++)
        zmq_close (self.socks[i]);
    free (self.socks);
    free (self.confirmed);
}

//  ---------------------------------------------------------------------------
//  Client: W requests in flight (1 for sync), round robin over the active
//  services. Async requests carry an 8-byte correlation frame (slot and
//  generation) before the delimiter; sync and pipe ones are plain MDP/0.1
//  requests, and each reply answers the oldest request in flight (exact with
//  one worker, which replies in order; with several, pipe latencies are
//  approximate). Pipe requests carry the payload alone, no action frame:
//  MDP's own frames and nothing more. The payload is one
//  buffer for the whole run, sent without a copy; it is freed only after every
//  ZeroMQ context is gone (bench_payload_free).

static char *s_payload; //  the request payload, opts->size bytes

int bench_payload_init (size_t size)
{
    s_payload = malloc (size ? size : 1);
    if (s_payload)
        memset (s_payload, 'x', size);
    return s_payload ? 0 : -1;
}

void bench_payload_free (void)
{
    free (s_payload);
    s_payload = NULL;
}

typedef struct {
    int64_t sent_at;     //  when its request left (ns)
    uint32_t generation; //  generation of its latest request
    bool busy;           //  a request is in flight in this slot
    bool measured;       //  that request counts in the results
} slot_t;

typedef struct {
    bench_peer_t *peer; //  who we are
    void *sock;         //  our DEALER
    int nservices;      //  services addressed
    char (*names)[32];  //  their names
    int next_service;   //  round robin position
    int window;         //  requests in flight at most
    int inflight;       //  requests in flight now
    slot_t *slots;      //  window slots
    int *free_slots;    //  stack of free slot numbers
    int nfree;          //  free slots on the stack
    uint64_t sent;      //  sync, pipe: requests sent, the next slot
    uint64_t answered;  //  sync, pipe: replies taken, the oldest slot
} client_t;

static void s_client_send (client_t *self, bool measured)
{
    int number = self->peer->opts->async ? self->free_slots[--self->nfree]
                                         : (int)(self->sent++ % (uint64_t)self->window);
    slot_t *slot = &self->slots[number];
    void *sock = self->sock;
    if (self->peer->opts->async) {
        uint32_t corr[2] = {(uint32_t)number, ++slot->generation};
        zmq_send (sock, corr, sizeof corr, ZMQ_SNDMORE);
    }
    const char *name = self->names[self->next_service++ % self->nservices];
    zmq_send_const (sock, "", 0, ZMQ_SNDMORE);
    zmq_send_const (sock, "MDPC01", 6, ZMQ_SNDMORE);
    zmq_send (sock, name, strlen (name), ZMQ_SNDMORE);
    if (!self->peer->opts->pipe)
        zmq_send_const (sock, ACTION, sizeof ACTION - 1, ZMQ_SNDMORE);
    zmq_send_const (sock, s_payload, self->peer->opts->size, 0);
    slot->busy = true;
    slot->measured = measured;
    slot->sent_at = bench_now_ns ();
    self->inflight++;
}

//  Check a reply and free its slot. Returns false if it matches no request.
static bool s_client_reply (client_t *self, zmq_msg_t *frames, size_t count)
{
    bench_result_t *result = &self->peer->shared->results[self->peer->index];
    size_t at = self->peer->opts->async ? 1 : 0;
    uint32_t oldest = (uint32_t)(self->answered % (uint64_t)self->window);
    uint32_t corr[2] = {oldest, self->slots[oldest].generation};
    if (at) {
        if (count < 1 || zmq_msg_size (&frames[0]) != sizeof corr)
            return false;
        memcpy (corr, zmq_msg_data (&frames[0]), sizeof corr);
    }
    slot_t *slot = corr[0] < (uint32_t)self->window ? &self->slots[corr[0]] : NULL;
    if (!slot || !slot->busy || slot->generation != corr[1])
        return false;
    //  [""]["MDPC01"][service][action][payload]; pipe: no action frame
    size_t body = self->peer->opts->pipe ? 3 : 4;
    bool ok = count == at + body + 1 && zmq_msg_size (&frames[at]) == 0 &&
              s_is (&frames[at + 1], "MDPC01") && (body == 3 || s_is (&frames[at + 3], ACTION)) &&
              zmq_msg_size (&frames[at + body]) == self->peer->opts->size;
    if (slot->measured && ok) {
        result->count++;
        bench_hist_add (result, (uint64_t)(bench_now_ns () - slot->sent_at));
    } else if (slot->measured)
        result->errors++;
    slot->busy = false;
    if (at)
        self->free_slots[self->nfree++] = (int)corr[0];
    else
        self->answered++;
    self->inflight--;
    return true;
}

//  Send quota requests (or until the deadline, quota 0), keeping the window
//  full, and wait for every reply. Returns 0, or -1 if the run is to end.
static int s_client_run (client_t *self, long quota, int64_t deadline, bool measured)
{
    bench_peer_t *peer = self->peer;
    zmq_pollitem_t items[2] = {{self->sock, 0, ZMQ_POLLIN, 0},
                               {NULL, peer->stop_fd, ZMQ_POLLIN, 0}};
    zmq_msg_t frames[MAX_FRAMES];
    long sent = 0;
    while (true) {
        while (self->inflight < self->window &&
               (quota ? sent < quota : deadline && bench_now_ns () < deadline)) {
            s_client_send (self, measured);
            sent++;
        }
        if (self->inflight == 0)
            return 0;
        size_t count = s_recv (self->sock, frames, ZMQ_DONTWAIT);
        if (count == 0) {
            int rc = zmq_poll (items, 2, peer->opts->timeout);
            if (rc < 0 && errno == EINTR)
                continue;
            if (rc <= 0 || (items[1].revents)) {
                if (rc == 0)
                    bench_fail (peer->shared, "client %d: no reply within %d ms", peer->index,
                                peer->opts->timeout);
                return -1;
            }
            continue;
        }
        if (!s_client_reply (self, frames, count))
            peer->shared->results[peer->index].errors++;
        s_close_frames (frames, count);
    }
}

//  Wait until the driver moves the run to phase. 0, or -1 if it ended.
static int s_wait_phase (bench_peer_t *peer, int phase)
{
    zmq_pollitem_t stop = {NULL, peer->stop_fd, ZMQ_POLLIN, 0};
    while (atomic_load (&peer->shared->phase) < phase) {
        if (zmq_poll (&stop, 1, 0) > 0)
            return -1;
        usleep (50);
    }
    return atomic_load (&peer->shared->phase) == phase ? 0 : -1;
}

static int s_client_init (client_t *self, bench_peer_t *peer)
{
    const bench_opts_t *opts = peer->opts;
    self->peer = peer;
    self->window = bench_window (opts);
    self->nservices = bench_active_services (opts);
    self->next_service = peer->index;
    self->names = calloc ((size_t)self->nservices, sizeof *self->names);
    self->slots = calloc ((size_t)self->window, sizeof (slot_t));
    self->free_slots = calloc ((size_t)self->window, sizeof (int));
    if (!self->names || !self->slots || !self->free_slots || !s_payload)
        return -1;
    for (int i = 0; i < self->nservices; i++)
        s_service_name (i, self->names[i], sizeof self->names[i]);
    for (int i = 0; i < self->window; i++)
        self->free_slots[self->nfree++] = self->window - 1 - i;
    self->sock = s_socket (peer, peer->ctx);
    return self->sock ? 0 : -1;
}

void bench_client (bench_peer_t *peer)
{
    const bench_opts_t *opts = peer->opts;
    client_t self = {0};
    if (s_client_init (&self, peer) == 0 && s_wait_phase (peer, PHASE_WARM) == 0 &&
        s_client_run (&self, opts->warmup, 0, false) == 0) {
        atomic_fetch_add (&peer->shared->warmed, 1);
        if (s_wait_phase (peer, PHASE_MEASURE) == 0) {
            //  -n: this client's quota (0 if -n is below the client count);
            //  else until the deadline.
            int64_t deadline =
                opts->requests ? 0 : bench_now_ns () + (int64_t)(opts->duration * 1e9);
            if (s_client_run (&self, peer->quota, deadline, true) == 0)
                atomic_fetch_add (&peer->shared->done, 1);
        }
    }
    if (self.sock)
        zmq_close (self.sock);
    free (self.names);
    free (self.slots);
    free (self.free_slots);
}
