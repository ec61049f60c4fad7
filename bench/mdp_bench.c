/*  mdp_bench.c - mdp-bench: load for mdp-broker, measured next to mdp-relay
    (the bare envelope swap) so that every figure can be read as a ratio, which
    stays meaningful on a noisy shared machine. This file is the driver: the
    options, one run (broker, workers, clients, phases, figures), callgrind's
    instructions per request, the queue-overhead measurement, and the output.
    Peers are in bench_peers.c, the broker process in bench_broker.c.
*/
#include "bench.h"
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

static const char *s_kind_name (broker_kind_t kind)
{
    return kind == BROKER_MDP ? "mdp" : "raw";
}

static void s_usage (FILE *out)
{
    fprintf (
        out,
        "usage: mdp-bench [--broker mdp|raw|both] [-e ENDPOINT] [--mode sync|async|pipe] [-W W]\n"
        "                 [-c CLIENTS] [-w WORKERS] [-s BYTES] [-n N | -d SECONDS]\n"
        "                 [--services K] [--idle-workers J] [--procs] [--json] [--repeat N]\n"
        "                 [--callgrind [--callgrind-dir DIR]] [--queue N] [--heartbeat MS]\n"
        "                 [--warmup N] [--timeout MS] [--relay-pipeline] [-v]\n"
        "  --broker KIND     mdp (build/bin/mdp-broker), raw (mdp-relay), or both, alternately\n"
        "  --relay-pipeline  mdp-relay --pipeline: no limit of one request per worker\n"
        "  -e ENDPOINT       use a running broker of that kind instead of starting one\n"
        "  --mode MODE       sync: one request at a time per client; async: W in flight,\n"
        "                    each with a correlation frame; pipe: W plain MDP/0.1 requests\n"
        "                    in flight, the payload their one body frame, each reply taken\n"
        "                    as the oldest one's\n"
        "  -W, --window W    requests in flight per async or pipe client (default 16)\n"
        "  -c, --clients N   clients (default 1)        -w, --workers N  echo workers (default 1)\n"
        "  -s, --size BYTES  payload per request (default 16)\n"
        "  -n N              measured requests over all clients; -d S: measure S seconds (default "
        "2)\n"
        "  --services K      K registered services: the workers spread over the first ones,\n"
        "                    idle placeholder workers hold the rest; clients address the served\n"
        "                    ones round robin (default 1)\n"
        "  --idle-workers J  J more workers, registered and heartbeating, never sent a request\n"
        "  --procs           workers and clients as processes instead of threads\n"
        "  --json            print one JSON object instead of the table\n"
        "  --repeat N        N runs per broker (alternating with --broker both); keep the best\n"
        "  --callgrind       broker instructions per request: the broker under callgrind,\n"
        "                    counting only while -n requests (default 20000) run;\n"
        "                    --callgrind-dir DIR keeps the files (callgrind.KIND.N-THREAD)\n"
        "  --queue N         queue N requests for a service with no worker (mdp only); report\n"
        "                    the broker's memory per queued request\n"
        "  --heartbeat MS    heartbeat of the broker and the workers (default 2500)\n"
        "  --warmup N        unmeasured requests per client before measuring (default 2W+100)\n"
        "  --timeout MS      a reply later than this fails the run (default 10000)\n"
        "  -v                the broker's log on stderr at the end of each run\n");
}

//  ---------------------------------------------------------------------------
//  Options

static long s_number (const char *text, long min, long max, const char *what)
{
    char *end;
    errno = 0;
    long value = strtol (text, &end, 10);
    if (errno || end == text || *end || value < min || value > max) {
        fprintf (stderr, "mdp-bench: %s must be a whole number from %ld to %ld, not '%s'\n", what,
                 min, max, text);
        exit (2);
    }
    return value;
}

enum {
    O_BROKER = 256,
    O_MODE,
    O_SERVICES,
    O_IDLE,
    O_PROCS,
    O_JSON,
    O_CG,
    O_CGDIR,
    O_QUEUE,
    O_HB,
    O_WARMUP,
    O_REPEAT,
    O_TIMEOUT,
    O_PIPELINE
};

static void s_bad (const char *message)
{
    fprintf (stderr, "mdp-bench: %s\n", message);
    exit (2);
}

//  Take one option from getopt_long; exits on a bad value.
static void s_option (bench_opts_t *opts, int opt, const char *arg)
{
    switch (opt) {
    case O_BROKER:
        opts->both = strcmp (arg, "both") == 0;
        opts->kind = strcmp (arg, "raw") == 0 ? BROKER_RAW : BROKER_MDP;
        if (!opts->both && strcmp (arg, "raw") && strcmp (arg, "mdp"))
            s_bad ("--broker is mdp, raw or both");
        break;
    case O_MODE:
        opts->async = strcmp (arg, "async") == 0;
        opts->pipe = strcmp (arg, "pipe") == 0;
        if (!opts->async && !opts->pipe && strcmp (arg, "sync"))
            s_bad ("--mode is sync, async or pipe");
        break;
    case 'd':
        opts->duration = atof (arg);
        if (!(opts->duration > 0 && opts->duration < 86400))
            s_bad ("-d needs a number of seconds");
        break;
    case 'e':
        opts->endpoint = arg;
        break;
    case 'W':
        opts->window = (int)s_number (arg, 1, 1000000, "-W");
        break;
    case 'c':
        opts->clients = (int)s_number (arg, 1, 1000, "-c");
        break;
    case 'w':
        opts->workers = (int)s_number (arg, 1, 1000, "-w");
        break;
    case 's':
        opts->size = (size_t)s_number (arg, 0, 64 << 20, "-s");
        break;
    case 'n':
        opts->requests = s_number (arg, 1, 1L << 40, "-n");
        break;
    case O_SERVICES:
        opts->services = (int)s_number (arg, 1, 100000, "--services");
        break;
    case O_IDLE:
        opts->idle = (int)s_number (arg, 0, 100000, "--idle-workers");
        break;
    case O_PROCS:
        opts->procs = true;
        break;
    case O_JSON:
        opts->json = true;
        break;
    case O_CG:
        opts->callgrind = true;
        break;
    case O_CGDIR:
        opts->cg_dir = arg;
        break;
    case O_QUEUE:
        opts->queue = s_number (arg, 1, 1000000, "--queue");
        break;
    case O_HB:
        opts->heartbeat = (int)s_number (arg, 10, 3600000, "--heartbeat");
        break;
    case O_WARMUP:
        opts->warmup = (int)s_number (arg, 0, 1000000, "--warmup");
        break;
    case O_REPEAT:
        opts->repeat = (int)s_number (arg, 1, 100, "--repeat");
        break;
    case O_TIMEOUT:
        opts->timeout = (int)s_number (arg, 1, 3600000, "--timeout");
        break;
    case O_PIPELINE:
        opts->pipeline = true;
        break;
    case 'v':
        opts->verbose = true;
        break;
    case 'h':
        s_usage (stdout);
        exit (0);
    default:
        s_usage (stderr);
        exit (2);
    }
}

static void s_parse (bench_opts_t *opts, int argc, char *argv[])
{
    static const struct option options[] = {{"broker", required_argument, 0, O_BROKER},
                                            {"mode", required_argument, 0, O_MODE},
                                            {"window", required_argument, 0, 'W'},
                                            {"clients", required_argument, 0, 'c'},
                                            {"workers", required_argument, 0, 'w'},
                                            {"size", required_argument, 0, 's'},
                                            {"services", required_argument, 0, O_SERVICES},
                                            {"idle-workers", required_argument, 0, O_IDLE},
                                            {"procs", no_argument, 0, O_PROCS},
                                            {"json", no_argument, 0, O_JSON},
                                            {"callgrind", no_argument, 0, O_CG},
                                            {"callgrind-dir", required_argument, 0, O_CGDIR},
                                            {"queue", required_argument, 0, O_QUEUE},
                                            {"heartbeat", required_argument, 0, O_HB},
                                            {"warmup", required_argument, 0, O_WARMUP},
                                            {"repeat", required_argument, 0, O_REPEAT},
                                            {"timeout", required_argument, 0, O_TIMEOUT},
                                            {"help", no_argument, 0, 'h'},
                                            {"relay-pipeline", no_argument, 0, O_PIPELINE},
                                            {0, 0, 0, 0}};
    *opts = (bench_opts_t){.kind = BROKER_MDP,
                           .window = 16,
                           .clients = 1,
                           .workers = 1,
                           .size = 16,
                           .services = 1,
                           .heartbeat = 2500,
                           .warmup = -1,
                           .repeat = 1,
                           .timeout = -1};
    int opt;
    while ((opt = getopt_long (argc, argv, "e:W:c:w:s:n:d:vh", options, NULL)) != -1)
        s_option (opts, opt, optarg);
    if (optind < argc) {
        fprintf (stderr, "mdp-bench: unexpected argument '%s'\n", argv[optind]);
        exit (2);
    }
    if (opts->endpoint && (opts->both || opts->callgrind || opts->queue))
        s_bad ("-e cannot go with --broker both, --callgrind or --queue");
    if (opts->queue && (opts->both || opts->kind == BROKER_RAW || opts->callgrind))
        s_bad ("--queue measures mdp-broker alone, without --callgrind");
    if (opts->callgrind && !opts->requests)
        opts->requests = 20000;
    if (!opts->requests && !opts->duration)
        opts->duration = 2;
    if (opts->warmup < 0)
        opts->warmup = 2 * bench_window (opts) + 100;
    if (opts->timeout < 0)
        opts->timeout = opts->callgrind ? 120000 : 10000;
}

//  ---------------------------------------------------------------------------
//  One run

typedef struct {
    bench_peer_t peer;                 //  what the peer gets
    void (*role) (bench_peer_t *peer); //  client, worker or idle pool
    bool process;                      //  runs as a process (--procs, big pools)
    pthread_t thread;                  //  its thread
    pid_t pid;                         //  its process
} peer_slot_t;

static void *s_thread (void *arg)
{
    peer_slot_t *slot = arg;
    slot->role (&slot->peer);
    return NULL;
}

static void *s_context (int sockets)
{
    void *ctx = zmq_ctx_new ();
    if (ctx)
        zmq_ctx_set (ctx, ZMQ_MAX_SOCKETS, sockets + 64);
    return ctx;
}

//  Start every peer: the processes first (each with its own context), while
//  this process has no other thread, then the threads on ctx.
static int s_start_peers (peer_slot_t *slots, int count, void *ctx, int stop_fds[2])
{
    for (int i = 0; i < count; i++) {
        peer_slot_t *slot = &slots[i];
        if (!slot->process)
            continue;
        fflush (NULL);
        slot->pid = fork ();
        if (slot->pid < 0)
            return -1;
        if (slot->pid == 0) {
            close (stop_fds[1]);
            slot->peer.ctx = s_context (slot->peer.count + 16);
            slot->role (&slot->peer);
            zmq_ctx_term (slot->peer.ctx);
            _exit (0);
        }
    }
    for (int i = 0; i < count; i++) {
        peer_slot_t *slot = &slots[i];
        slot->peer.ctx = ctx;
        if (!slot->process && pthread_create (&slot->thread, NULL, s_thread, slot) != 0) {
            slot->thread = 0;
            return -1;
        }
    }
    return 0;
}

static void s_join_peers (peer_slot_t *slots, int count, bench_shared_t *shared)
{
    for (int i = 0; i < count; i++) {
        int status = 0;
        if (!slots[i].process && slots[i].thread)
            pthread_join (slots[i].thread, NULL);
        else if (slots[i].process && slots[i].pid > 0 && waitpid (slots[i].pid, &status, 0) > 0 &&
                 !(WIFEXITED (status) && WEXITSTATUS (status) == 0))
            bench_fail (shared, "a peer process ended with status %d", status);
    }
}

//  Wait until *counter reaches want, the run fails, or timeout_ms passes.
static bool s_await (bench_shared_t *shared, _Atomic int *counter, int want, long timeout_ms,
                     const char *what)
{
    int64_t deadline = bench_now_ns () + (int64_t)timeout_ms * 1000000;
    while (atomic_load (counter) < want) {
        if (atomic_load (&shared->failed))
            return false;
        if (bench_now_ns () > deadline) {
            bench_fail (shared, "%s: %d of %d after %ld ms", what, atomic_load (counter), want,
                        timeout_ms);
            return false;
        }
        usleep (1000); //  the driver shares the CPUs with what it measures
    }
    return true;
}

static double s_cpu_s (pid_t pid)
{
    int64_t ns = pid > 0 ? bench_proc_cpu_ns (pid) : -1;
    return ns >= 0 ? (double)ns / 1e9 : -1;
}

//  The phases, from the driver's side: registrations confirmed, warm-up,
//  the measured phase with the broker's figures around it.
static void s_drive (const bench_opts_t *opts, bench_shared_t *shared, pid_t pid, bench_run_t *run)
{
    int expected = opts->workers + bench_pool_size (opts);
    long slow = opts->callgrind ? 20 : 1;
    if (!s_await (shared, &shared->ready, expected, (30000 + expected * 5L) * slow,
                  "worker registrations confirmed"))
        return;
    atomic_store (&shared->phase, PHASE_WARM);
    if (!s_await (shared, &shared->warmed, opts->clients, 60000 * slow, "clients warmed up"))
        return;
    if (opts->callgrind && bench_callgrind_control (pid, "on") != 0) {
        bench_fail (shared, "callgrind_control -i on %d failed", (int)pid);
        return;
    }
    double cpu0 = s_cpu_s (pid);
    run->rss_kib = pid > 0 ? bench_proc_status_kib (pid, "VmRSS") : -1;
    int64_t start = bench_now_ns ();
    atomic_store (&shared->phase, PHASE_MEASURE);
    long limit = opts->requests ? 3600000L : (long)(opts->duration * 1000) + opts->timeout + 10000;
    if (!s_await (shared, &shared->done, opts->clients, limit, "clients done"))
        return;
    run->seconds = (double)(bench_now_ns () - start) / 1e9;
    if (opts->callgrind && bench_callgrind_control (pid, "off") != 0)
        bench_fail (shared, "callgrind_control -i off %d failed", (int)pid);
    double cpu1 = s_cpu_s (pid);
    run->cpu_s = cpu0 >= 0 && cpu1 >= 0 ? cpu1 - cpu0 : -1;
    run->rss_end_kib = pid > 0 ? bench_proc_status_kib (pid, "VmRSS") : -1;
    run->hwm_kib = pid > 0 ? bench_proc_status_kib (pid, "VmHWM") : -1;
}

static int s_spawn_broker (const bench_opts_t *opts, broker_kind_t kind, const char *cg_file,
                           bench_broker_t *broker)
{
    char heartbeat[32], queue[32];
    snprintf (heartbeat, sizeof heartbeat, "%d", opts->heartbeat);
    //  Room for every request a run can have waiting, and no expiry while a
    //  whole pipe window waits (under callgrind that can take minutes).
    snprintf (queue, sizeof queue, "%ld",
              opts->queue + (long)bench_window (opts) * opts->clients + 10000);
    char *mdp_args[] = {
        "--heartbeat", heartbeat,           "--max-queue",
        queue,         "--request-timeout", opts->queue || opts->pipe ? "86400" : "30",
        NULL};
    char *raw_args[] = {opts->pipeline ? "--pipeline" : NULL, NULL};
    return bench_broker_start (broker, kind, cg_file, kind == BROKER_MDP ? mdp_args : raw_args,
                               cg_file ? 120000 : 60000);
}

//  The peers of a run: workers, idle-pool chunks (processes when there are
//  several, for the open-file limit), clients with their share of -n.
static void s_make_slots (const bench_opts_t *opts, bench_shared_t *shared, int stop_fd,
                          peer_slot_t *slots, int chunks)
{
    int n = 0, pool = bench_pool_size (opts);
    bench_peer_t peer = {.opts = opts, .shared = shared, .stop_fd = stop_fd, .count = 1};
    for (int i = 0; i < opts->workers; i++) {
        peer.index = i;
        slots[n++] = (peer_slot_t){.peer = peer, .role = bench_worker, .process = opts->procs};
    }
    for (int i = 0; i < chunks; i++) {
        peer.index = i;
        peer.first = i * BENCH_POOL_CHUNK;
        peer.count = pool - peer.first < BENCH_POOL_CHUNK ? pool - peer.first : BENCH_POOL_CHUNK;
        slots[n++] = (peer_slot_t){
            .peer = peer, .role = bench_idle_pool, .process = opts->procs || chunks > 1};
    }
    peer.first = 0;
    peer.count = 1;
    for (int i = 0; i < opts->clients; i++) {
        peer.index = i;
        peer.quota = opts->requests / opts->clients + (i < opts->requests % opts->clients);
        slots[n++] = (peer_slot_t){.peer = peer, .role = bench_client, .process = opts->procs};
    }
}

//  One complete run against a fresh broker of kind (or opts->endpoint).
//  Returns 0 with run filled in, or -1 with a message on stderr.
static int s_run (const bench_opts_t *base, broker_kind_t kind, const char *cg_file,
                  bench_run_t *run)
{
    bench_opts_t opts = *base;
    opts.kind = kind;
    *run = (bench_run_t){.kind = kind,
                         .cpu_s = -1,
                         .rss_kib = -1,
                         .rss_end_kib = -1,
                         .hwm_kib = -1,
                         .ir = -1,
                         .ir_main = -1};
    int pool = bench_pool_size (&opts), chunks = (pool + BENCH_POOL_CHUNK - 1) / BENCH_POOL_CHUNK;
    int npeers = opts.workers + chunks + opts.clients;
    bench_raise_fd_limit (2L * (npeers + (chunks > 1 ? BENCH_POOL_CHUNK : pool)) + 512);
    size_t shared_size = sizeof (bench_shared_t) + (size_t)opts.clients * sizeof (bench_result_t);
    bench_shared_t *shared =
        mmap (NULL, shared_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    peer_slot_t *slots = calloc ((size_t)npeers, sizeof (peer_slot_t));
    bench_broker_t broker = {.pid = -1, .log_fd = -1};
    int stop_fds[2] = {-1, -1};
    if (shared == MAP_FAILED || !slots || bench_payload_init (opts.size) != 0 ||
        pipe2 (stop_fds, O_CLOEXEC) != 0) {
        fprintf (stderr, "mdp-bench: out of resources\n");
        exit (1);
    }
    if (opts.endpoint)
        snprintf (shared->endpoint, sizeof shared->endpoint, "%s", opts.endpoint);
    else if (s_spawn_broker (&opts, kind, cg_file, &broker) == 0)
        snprintf (shared->endpoint, sizeof shared->endpoint, "%s", broker.endpoint);
    else
        bench_fail (shared, "the %s broker did not start", s_kind_name (kind));

    s_make_slots (&opts, shared, stop_fds[0], slots, chunks);
    void *ctx = opts.procs ? NULL : s_context (opts.clients + opts.workers + pool);
    if (!atomic_load (&shared->failed)) {
        if (s_start_peers (slots, npeers, ctx, stop_fds) != 0)
            bench_fail (shared, "cannot start the peers: %s", strerror (errno));
        else
            s_drive (&opts, shared, broker.pid, run);
    }
    atomic_store (&shared->phase, PHASE_STOP);
    close (stop_fds[1]);
    s_join_peers (slots, npeers, shared);
    if (ctx)
        zmq_ctx_term (ctx);
    close (stop_fds[0]);
    if (broker.pid > 0 && bench_broker_stop (&broker, cg_file ? 120000 : 30000, opts.verbose) != 0)
        bench_fail (shared, "the %s broker did not exit cleanly", s_kind_name (kind));
    if (cg_file)
        run->ir = bench_callgrind_ir (cg_file, &run->ir_main, !opts.cg_dir);
    for (int i = 0; i < opts.clients; i++)
        bench_hist_merge (&run->total, &shared->results[i]);
    int rc = atomic_load (&shared->failed) ? -1 : 0;
    if (rc)
        fprintf (stderr, "mdp-bench: %s run failed: %s\n", s_kind_name (kind), shared->error);
    munmap (shared, shared_size);
    free (slots);
    bench_payload_free ();
    return rc;
}

//  ---------------------------------------------------------------------------
//  Callgrind: the broker runs under callgrind with instrumentation off, and
//  s_drive switches it on for the measured phase only, so start-up,
//  registrations, warm-up and shutdown never count.

static int s_callgrind_run (const bench_opts_t *opts, broker_kind_t kind, const char *dir,
                            bench_run_t *run)
{
    char file[512];
    snprintf (file, sizeof file, "%s/callgrind.%s.%ld", dir, s_kind_name (kind), opts->requests);
    if (s_run (opts, kind, file, run) != 0)
        return -1;
    if (run->ir < 0) {
        fprintf (stderr, "mdp-bench: no instruction count in %s-*\n", file);
        return -1;
    }
    return 0;
}

//  ---------------------------------------------------------------------------
//  Queue overhead: Q requests for a service nobody offers, sent in batches
//  of 1000, each batch confirmed by an MMI answer on the same connection, so
//  that the broker has read them all and libzmq's pipes stay short.

static int s_probe (void *sock, int timeout_ms)
{
    zmq_send_const (sock, "", 0, ZMQ_SNDMORE);
    zmq_send_const (sock, "MDPC01", 6, ZMQ_SNDMORE);
    zmq_send_const (sock, "mmi.service", 11, ZMQ_SNDMORE);
    zmq_send_const (sock, "bench.queued", 12, 0);
    zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
    if (zmq_poll (&item, 1, timeout_ms) <= 0)
        return -1;
    zmq_msg_t frame;
    zmq_msg_init (&frame);
    int more = 1;
    while (more && zmq_msg_recv (&frame, sock, 0) >= 0)
        more = zmq_msg_more (&frame);
    zmq_msg_close (&frame);
    return 0;
}

static int s_queue (const bench_opts_t *opts)
{
    bench_broker_t broker;
    if (bench_payload_init (opts->size) != 0 ||
        s_spawn_broker (opts, BROKER_MDP, NULL, &broker) != 0)
        return 1;
    bench_queue_t queue = {opts->queue, -1, -1, strlen ("bench.echo") + opts->size};
    char *payload = calloc (1, opts->size + 1);
    void *ctx = zmq_ctx_new ();
    void *sock = zmq_socket (ctx, ZMQ_DEALER);
    int linger = 0, rc = payload && sock ? 0 : -1;
    zmq_setsockopt (sock, ZMQ_LINGER, &linger, sizeof linger);
    if (rc == 0)
        rc = zmq_connect (sock, broker.endpoint) == 0 ? s_probe (sock, opts->timeout) : -1;
    queue.rss_before_kib = bench_proc_status_kib (broker.pid, "VmRSS");
    for (long sent = 0; rc == 0 && sent < opts->queue;) {
        for (int i = 0; i < 1000 && sent < opts->queue; i++, sent++) {
            zmq_send_const (sock, "", 0, ZMQ_SNDMORE);
            zmq_send_const (sock, "MDPC01", 6, ZMQ_SNDMORE);
            zmq_send_const (sock, "bench.queued", 12, ZMQ_SNDMORE);
            zmq_send_const (sock, "bench.echo", 10, ZMQ_SNDMORE);
            zmq_send (sock, payload, opts->size, 0);
        }
        rc = s_probe (sock, opts->timeout);
    }
    queue.rss_after_kib = bench_proc_status_kib (broker.pid, "VmRSS");
    zmq_close (sock);
    zmq_ctx_term (ctx);
    free (payload);
    bench_payload_free ();
    if (bench_broker_stop (&broker, 30000, opts->verbose) != 0 || rc != 0) {
        fprintf (stderr, "mdp-bench: the queue measurement failed\n");
        return 1;
    }
    bench_report_queue (opts, &queue);
    return 0;
}

//  ---------------------------------------------------------------------------

static double s_score (const bench_opts_t *opts, const bench_run_t *run)
{
    if (opts->callgrind) //  fewer instructions per request is better
        return -(double)run->ir;
    return run->seconds > 0 ? (double)run->total.count / run->seconds : 0;
}

int main (int argc, char *argv[])
{
    bench_opts_t opts;
    s_parse (&opts, argc, argv);
    if (opts.queue)
        return s_queue (&opts);
    char dir[512] = "";
    if (opts.callgrind) {
        if (opts.cg_dir)
            snprintf (dir, sizeof dir, "%s", opts.cg_dir);
        else
            snprintf (dir, sizeof dir, "/tmp/mdp-bench-cg-XXXXXX");
        if (opts.cg_dir ? mkdir (dir, 0755) != 0 && errno != EEXIST : !mkdtemp (dir)) {
            fprintf (stderr, "mdp-bench: cannot make %s: %s\n", dir, strerror (errno));
            return 1;
        }
    }
    broker_kind_t kinds[2] = {opts.both ? BROKER_MDP : opts.kind, BROKER_RAW};
    int nkinds = opts.both ? 2 : 1;
    bench_run_t best[2];
    bool have[2] = {false, false};
    int rc = 0;
    for (int round = 0; rc == 0 && round < opts.repeat; round++)
        for (int k = 0; rc == 0 && k < nkinds; k++) {
            bench_run_t run;
            rc = opts.callgrind ? s_callgrind_run (&opts, kinds[k], dir, &run)
                                : s_run (&opts, kinds[k], NULL, &run);
            int slot = kinds[k] == BROKER_MDP ? 0 : 1;
            if (rc == 0 && (!have[slot] || s_score (&opts, &run) > s_score (&opts, &best[slot]))) {
                best[slot] = run;
                have[slot] = true;
            }
        }
    if (opts.callgrind && !opts.cg_dir)
        rmdir (dir);
    if (rc != 0)
        return 1;
    const bench_run_t *runs[2] = {have[0] ? &best[0] : NULL, have[1] ? &best[1] : NULL};
    bench_report (&opts, runs);
    return 0;
}
