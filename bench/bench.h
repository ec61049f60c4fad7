/*  bench.h - private to mdp-bench: its options, the block of memory its
    clients and workers share with it (threads or processes alike), and the
    three parts it is made of: the peers (bench_peers.c), the broker under test
    (bench_broker.c) and the driver with its output (mdp_bench.c).
*/
#ifndef BENCH_H_INCLUDED
#define BENCH_H_INCLUDED

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

//  Latency histogram: exact below 64 ns, then 64 steps per power of two
//  (about 1.5% resolution) up to 2^40 ns.
#define HIST_SUB 64
#define HIST_BUCKETS (36 * HIST_SUB)

typedef enum { BROKER_MDP, BROKER_RAW } broker_kind_t;

typedef struct {
    broker_kind_t kind;   //  which broker: mdp-broker or mdp-relay
    bool both;            //  --broker both: mdp and raw, alternately
    const char *endpoint; //  -e: use this running broker, spawn none
    bool async;           //  --mode async: W requests in flight, correlation frame
    bool pipe;            //  --mode pipe: W in flight, plain MDP/0.1, oldest first
    int window;           //  -W: requests in flight per client (async, pipe)
    int clients;          //  -c: client count
    int workers;          //  -w: echo worker count
    size_t size;          //  -s: payload bytes per request
    long requests;        //  -n: measured requests over all clients, or 0
    double duration;      //  -d: seconds to measure, when no -n
    int services;         //  --services K: distinct registered services
    int idle;             //  --idle-workers J: connected, registered, never used
    bool procs;           //  --procs: peers as processes, not threads
    bool json;            //  --json: one JSON object on stdout
    bool callgrind;       //  --callgrind: broker instructions per request
    const char *cg_dir;   //  --callgrind-dir: keep callgrind files here
    long queue;           //  --queue N: queue-overhead measurement
    int heartbeat;        //  --heartbeat MS: broker and worker heartbeat
    int warmup;           //  --warmup N: unmeasured requests per client first
    int repeat;           //  --repeat N: runs per broker, best kept
    int timeout;          //  --timeout MS: a reply later than this fails the run
    bool pipeline;        //  --relay-pipeline: mdp-relay --pipeline
    bool verbose;         //  -v: the broker's log on stderr at the end
} bench_opts_t;

//  What one client measured.
typedef struct {
    uint64_t count;              //  measured replies
    uint64_t errors;             //  replies that were mdp.error or malformed
    uint64_t max_ns;             //  slowest round trip
    uint64_t hist[HIST_BUCKETS]; //  round trips by histogram bucket
} bench_result_t;

typedef enum { PHASE_SETUP, PHASE_WARM, PHASE_MEASURE, PHASE_STOP } bench_phase_t;

//  Shared by the driver and every peer: anonymous shared memory, so the same
//  code works with threads and with --procs processes.
typedef struct {
    _Atomic int phase;        //  bench_phase_t, set by the driver
    _Atomic int ready;        //  worker sockets whose registration is confirmed
    _Atomic int warmed;       //  clients done with their warm-up
    _Atomic int done;         //  clients done measuring
    _Atomic int failed;       //  peers that gave up (the run is void)
    char endpoint[256];       //  the broker's endpoint
    char error[256];          //  the first failure, for the report
    bench_result_t results[]; //  one per client
} bench_shared_t;

//  One peer's job: which role, which index, and the run it belongs to.
typedef struct {
    const bench_opts_t *opts; //  the run's options
    bench_shared_t *shared;   //  the shared block
    void *ctx;                //  ZeroMQ context (threads), NULL: make one
    int stop_fd;              //  readable (EOF) when the run ends
    int index;                //  client or worker number
    long quota;               //  client: measured requests, 0 = by duration
    int first;                //  idle pool: its first pooled worker
    int count;                //  idle pool: how many it runs
} bench_peer_t;

//  Pooled workers per pool peer: a pool bigger than this runs as processes,
//  each under its own open-file limit (a socket costs two descriptors).
#define BENCH_POOL_CHUNK 4000

//  What one run measured.
typedef struct {
    broker_kind_t kind;   //  the broker it ran against
    bool ok;              //  the run completed
    bench_result_t total; //  all clients' results merged
    double seconds;       //  length of the measured phase
    double cpu_s;         //  broker CPU in the measured phase, or -1
    long rss_kib;         //  broker VmRSS when the measured phase began, or -1
    long rss_end_kib;     //  broker VmRSS when it ended, or -1
    long hwm_kib;         //  broker VmHWM before it was stopped, or -1
    int64_t ir;           //  callgrind: broker instructions while measuring, or -1
    int64_t ir_main;      //  callgrind: the same, main thread only
} bench_run_t;

//  The queue-overhead measurement (--queue).
typedef struct {
    long requests;       //  requests queued
    long rss_before_kib; //  broker VmRSS before
    long rss_after_kib;  //  broker VmRSS with all of them queued
    size_t body_bytes;   //  body bytes per request (action + payload)
} bench_queue_t;

//  The mode's name and a client's requests in flight.
const char *bench_mode_name (const bench_opts_t *opts);
int bench_window (const bench_opts_t *opts);

//  bench_report.c: the table, or one JSON object with --json. runs[0] is the
//  mdp run, runs[1] the raw one; either may be NULL.
void bench_report (const bench_opts_t *opts, const bench_run_t *runs[2]);
void bench_report_queue (const bench_opts_t *opts, const bench_queue_t *queue);

//  bench_peers.c
void bench_client (bench_peer_t *peer);
void bench_worker (bench_peer_t *peer);
void bench_idle_pool (bench_peer_t *peer);
int bench_pool_size (const bench_opts_t *opts);
//  The one payload buffer of a run; free it after every context is gone.
int bench_payload_init (size_t size);
void bench_payload_free (void);
int bench_active_services (const bench_opts_t *opts);
void bench_fail (bench_shared_t *shared, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));
int64_t bench_now_ns (void);
//  Histogram: add one, merge, percentile (q in 0..1) in ns.
void bench_hist_add (bench_result_t *result, uint64_t ns);
void bench_hist_merge (bench_result_t *into, const bench_result_t *from);
uint64_t bench_hist_percentile (const bench_result_t *result, double q);

//  bench_broker.c
typedef struct {
    pid_t pid;          //  the broker process (valgrind's under --callgrind)
    int log_fd;         //  its stderr, an unlinked temporary file
    char endpoint[256]; //  where it serves
    char cg_file[512];  //  callgrind output file, or ""
} bench_broker_t;

//  Start the broker of kind (under callgrind if cg_file is given). extra
//  is a NULL-terminated list of more arguments. Returns 0, or -1 with a
//  message on stderr.
int bench_broker_start (bench_broker_t *self, broker_kind_t kind, const char *cg_file,
                        char *const extra[], int wait_ms);
//  SIGTERM, then wait for it to exit. Returns its exit code or -1.
int bench_broker_stop (bench_broker_t *self, int wait_ms, bool show_log);
//  CPU time of all its threads, ns; resident set and peak (KiB) from /proc.
int64_t bench_proc_cpu_ns (pid_t pid);
long bench_proc_status_kib (pid_t pid, const char *field);
//  Instructions of all threads from callgrind's files for path, or -1;
//  *main_ir gets the main thread's. With remove, the files are deleted.
//  Callgrind starts with instrumentation off: bench_callgrind_control turns
//  it on and off ("on", "off") around the measured phase; 0 or -1.
int bench_callgrind_control (pid_t pid, const char *state);
int64_t bench_callgrind_ir (const char *path, int64_t *main_ir, bool remove);
//  Raise the open-file limit to at least want (best effort).
void bench_raise_fd_limit (long want);

#endif
