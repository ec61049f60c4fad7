/*  worker_bench.c - mdp-worker-bench: libmdp's worker and client next to bare
    libzmq peers speaking the same MDP/0.1 frames, through one mdp-broker, in
    one run, so that each libmdp figure reads as a ratio. Workers are child
    processes (this program again, with --serve), so that callgrind can count
    the instructions of a worker process per request. Rounds alternate the
    order of the kinds, and the best round of each is kept.
*/
#include "bench.h"
#include "mdp.h"
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#else
#define CALLGRIND_START_INSTRUMENTATION
#define CALLGRIND_STOP_INSTRUMENTATION
#endif

#define ACTION "bench.echo"

static int s_requests = 20000; //  -n: requests per measurement
static int s_clients = 8;      //  -c: clients of the pipelined measurement
static int s_rounds = 3;       //  --rounds
static int s_cg_requests = 0;  //  --callgrind N: worker Ir/req over N requests
static size_t s_size = 16;     //  -s: payload bytes
static char s_body[70000];     //  the JSON body {"p":"xxx..."}
static int s_cg_warm = 0;      //  --call child: round trips before callgrind counts
static volatile sig_atomic_t s_stop = 0;

//  ---------------------------------------------------------------------------
//  The two workers (child processes)

static void s_on_term (int sig)
{
    s_stop = 1;
}

static void s_send_str (void *sock, const char *text, int more)
{
    zmq_send (sock, text, strlen (text), more);
}

//  A bare libzmq worker: READY, then each REQUEST's frames back as REPLY,
//  HEARTBEAT when quiet; DISCONNECT on SIGTERM.
static int s_serve_bare (const char *endpoint, const char *service)
{
    signal (SIGTERM, s_on_term);
    void *ctx = zmq_ctx_new ();
    void *sock = zmq_socket (ctx, ZMQ_DEALER);
    int linger = 100;
    zmq_setsockopt (sock, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_connect (sock, endpoint) != 0)
        return 1;
    s_send_str (sock, "", ZMQ_SNDMORE);
    s_send_str (sock, "MDPW01", ZMQ_SNDMORE);
    s_send_str (sock, "\x01", ZMQ_SNDMORE);
    s_send_str (sock, service, 0);
    zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
    int64_t beat_at = bench_now_ns () + (int64_t)MDP_DEFAULT_HEARTBEAT * 1000000;
    zmq_msg_t frames[16];
    while (!s_stop) {
        int64_t wait = (beat_at - bench_now_ns ()) / 1000000;
        zmq_poll (&item, 1, wait < 0 ? 0 : wait > 200 ? 200 : (long)wait);
        while (true) {
            size_t count = 0;
            int more = 1;
            while (more && count < 16) {
                zmq_msg_init (&frames[count]);
                if (zmq_msg_recv (&frames[count], sock, ZMQ_DONTWAIT) < 0) {
                    zmq_msg_close (&frames[count]);
                    break;
                }
                more = zmq_msg_more (&frames[count]);
                count++;
            }
            if (count == 0)
                break;
            bool request = count >= 5 && zmq_msg_size (&frames[2]) == 1 &&
                           *(char *)zmq_msg_data (&frames[2]) == 0x02;
            for (size_t i = 0; i < count; i++) {
                if (request && i == 2) {
                    zmq_msg_close (&frames[i]);
                    zmq_send_const (sock, "\x03", 1, ZMQ_SNDMORE);
                } else if (!request ||
                           zmq_msg_send (&frames[i], sock, i + 1 < count ? ZMQ_SNDMORE : 0) < 0)
                    zmq_msg_close (&frames[i]);
            }
        }
        if (bench_now_ns () >= beat_at) {
            s_send_str (sock, "", ZMQ_SNDMORE);
            s_send_str (sock, "MDPW01", ZMQ_SNDMORE);
            s_send_str (sock, "\x04", 0);
            beat_at = bench_now_ns () + (int64_t)MDP_DEFAULT_HEARTBEAT * 1000000;
        }
    }
    s_send_str (sock, "", ZMQ_SNDMORE);
    s_send_str (sock, "MDPW01", ZMQ_SNDMORE);
    s_send_str (sock, "\x05", 0);
    zmq_close (sock);
    zmq_ctx_term (ctx);
    return 0;
}

static mdp_msg_t *s_echo (mdp_worker_t *worker, mdp_msg_t *request, void *arg)
{
    return mdp_msg_new (mdp_msg_action (request), cJSON_Duplicate (mdp_msg_data (request), 1));
}

//  A libmdp worker with an echo hook, until SIGTERM (mdp_worker_run).
static int s_serve_libmdp (const char *endpoint, const char *service)
{
    mdp_worker_t *worker = mdp_worker_new (endpoint, service);
    if (!worker)
        return 1;
    mdp_worker_set_handler (worker, s_echo, NULL);
    int rc = mdp_worker_run (worker);
    mdp_worker_destroy (&worker);
    return rc == 0 ? 0 : 1;
}

//  ---------------------------------------------------------------------------
//  The clients

typedef struct {
    const char *endpoint; //  broker
    const char *service;  //  service to call
    bool libmdp;          //  mdp_client_t, else a bare DEALER
    int requests;         //  round trips to make
    void *ctx;            //  libzmq context (bare)
    int errors;           //  replies that were not the echo
} client_job_t;

static void *s_client (void *arg)
{
    client_job_t *job = arg;
    if (job->libmdp) {
        mdp_client_t *client = mdp_client_new (job->endpoint);
        mdp_client_set_timeout (client, 10000);
        mdp_client_set_retries (client, 1);
        mdp_msg_t *body = mdp_msg_new (ACTION, cJSON_Parse (s_body));
        for (int i = 0; i < job->requests; i++) {
            if (s_cg_warm && i == s_cg_warm)
                CALLGRIND_START_INSTRUMENTATION;
            mdp_msg_t *request = mdp_msg_dup (body);
            mdp_msg_t *reply = mdp_client_request (client, job->service, &request);
            if (!reply || !streq (mdp_msg_action (reply), ACTION))
                job->errors++;
            mdp_msg_destroy (&reply);
        }
        if (s_cg_warm)
            CALLGRIND_STOP_INSTRUMENTATION;
        mdp_msg_destroy (&body);
        mdp_client_destroy (&client);
        return NULL;
    }
    void *sock = zmq_socket (job->ctx, ZMQ_DEALER);
    int linger = 0, timeout = 10000;
    zmq_setsockopt (sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (sock, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_connect (sock, job->endpoint);
    char buffer[70000];
    for (int i = 0; i < job->requests; i++) {
        if (s_cg_warm && i == s_cg_warm)
            CALLGRIND_START_INSTRUMENTATION;
        s_send_str (sock, "", ZMQ_SNDMORE);
        s_send_str (sock, "MDPC01", ZMQ_SNDMORE);
        s_send_str (sock, job->service, ZMQ_SNDMORE);
        s_send_str (sock, ACTION, ZMQ_SNDMORE);
        s_send_str (sock, s_body, 0);
        int frames = 0, more = 1, size = 0;
        while (more) {
            size = zmq_recv (sock, buffer, sizeof buffer, 0);
            if (size < 0)
                break;
            frames++;
            size_t length = sizeof more;
            zmq_getsockopt (sock, ZMQ_RCVMORE, &more, &length);
        }
        if (frames != 5 || size != (int)strlen (s_body))
            job->errors++;
        if (size < 0)
            break;
    }
    if (s_cg_warm)
        CALLGRIND_STOP_INSTRUMENTATION;
    zmq_close (sock);
    return NULL;
}

//  clients threads share requests round trips; returns req/s, or -1.
static double s_measure (const char *endpoint, const char *service, bool libmdp, int clients,
                         int requests)
{
    void *ctx = zmq_ctx_new ();
    client_job_t jobs[64];
    pthread_t threads[64];
    int64_t start = bench_now_ns ();
    for (int i = 0; i < clients; i++) {
        jobs[i] = (client_job_t){endpoint, service, libmdp, requests / clients, ctx, 0};
        pthread_create (&threads[i], NULL, s_client, &jobs[i]);
    }
    int errors = 0;
    for (int i = 0; i < clients; i++) {
        pthread_join (threads[i], NULL);
        errors += jobs[i].errors;
    }
    double seconds = (double)(bench_now_ns () - start) / 1e9;
    zmq_ctx_term (ctx);
    if (errors) {
        fprintf (stderr, "mdp-worker-bench: %d bad replies from %s\n", errors, service);
        return -1;
    }
    return (double)(requests / clients * clients) / seconds;
}

//  ---------------------------------------------------------------------------
//  The driver

//  Start a worker process of kind for service, under callgrind (counting
//  off) when cg_file is given, and wait until the broker knows the service.
static pid_t s_worker_start (const char *endpoint, const char *kind, const char *service,
                             const char *cg_file)
{
    char self[400], cg_arg[600];
    ssize_t len = readlink ("/proc/self/exe", self, sizeof self - 1);
    self[len > 0 ? len : 0] = 0;
    snprintf (cg_arg, sizeof cg_arg, "--callgrind-out-file=%s", cg_file ? cg_file : "");
    char *argv[] = {"valgrind",
                    "--tool=callgrind",
                    "-q",
                    "--instr-atstart=no",
                    "--separate-threads=yes",
                    cg_arg,
                    self,
                    "--serve",
                    (char *)kind,
                    (char *)endpoint,
                    (char *)service,
                    NULL};
    pid_t pid = fork ();
    if (pid == 0) {
        execvp (cg_file ? argv[0] : self, cg_file ? argv : argv + 6);
        _exit (127);
    }
    mdp_client_t *client = mdp_client_new (endpoint);
    mdp_client_set_timeout (client, 200);
    mdp_client_set_retries (client, 1);
    int64_t deadline = bench_now_ns () + 60 * (int64_t)1000000000;
    while (mdp_client_has_service (client, service) != 1 && bench_now_ns () < deadline)
        usleep (10000);
    mdp_client_destroy (&client);
    return pid;
}

static void s_worker_stop (pid_t pid)
{
    kill (pid, SIGTERM);
    waitpid (pid, NULL, 0);
}

static int s_number (const char *text, int low)
{
    int value = atoi (text);
    if (value < low) {
        fprintf (stderr, "mdp-worker-bench: '%s' is not a number >= %d\n", text, low);
        exit (2);
    }
    return value;
}

//  Worker Ir per request of kind over s_cg_requests sync round trips: all
//  threads, and in *main_p the main thread's.
static double s_callgrind (const char *endpoint, const char *kind, double *main_p)
{
    char cg_file[128], service[64];
    snprintf (cg_file, sizeof cg_file, "/tmp/mdp-worker-bench.%s.%d", kind, (int)getpid ());
    snprintf (service, sizeof service, "bench.cg.%s", kind);
    pid_t pid = s_worker_start (endpoint, kind, service, cg_file);
    s_measure (endpoint, service, false, 1, 200); //  warm
    bench_callgrind_control (pid, "on");
    s_measure (endpoint, service, false, 1, s_cg_requests);
    bench_callgrind_control (pid, "off");
    s_worker_stop (pid);
    int64_t main_ir = 0;
    int64_t ir = bench_callgrind_ir (cg_file, &main_ir, !getenv ("MDP_BENCH_KEEP"));
    *main_p = main_ir > 0 ? (double)main_ir / s_cg_requests : -1;
    return ir > 0 ? (double)ir / s_cg_requests : -1;
}

//  Client Ir per request of kind (libmdp: mdp_client_t, else a bare
//  DEALER) over s_cg_requests sync round trips to the bare worker serving
//  service: the client runs in a child process under callgrind, which counts
//  only its loop after 200 warm-up round trips (all threads: the client's
//  and libzmq's I/O thread).
static double s_callgrind_client (const char *endpoint, const char *service, bool libmdp)
{
    char cg_file[128], self[400], cg_arg[600], count[32], size[32];
    snprintf (cg_file, sizeof cg_file, "/tmp/mdp-worker-bench.client-%s.%d",
              libmdp ? "libmdp" : "bare", (int)getpid ());
    ssize_t len = readlink ("/proc/self/exe", self, sizeof self - 1);
    self[len > 0 ? len : 0] = 0;
    snprintf (cg_arg, sizeof cg_arg, "--callgrind-out-file=%s", cg_file);
    snprintf (count, sizeof count, "%d", s_cg_requests);
    snprintf (size, sizeof size, "%zu", s_size);
    char *argv[] = {"valgrind",
                    "--tool=callgrind",
                    "-q",
                    "--instr-atstart=no",
                    "--separate-threads=yes",
                    cg_arg,
                    self,
                    "--call",
                    libmdp ? "libmdp" : "bare",
                    (char *)endpoint,
                    (char *)service,
                    count,
                    size,
                    NULL};
    pid_t pid = fork ();
    if (pid == 0) {
        execvp (argv[0], argv);
        _exit (127);
    }
    int status = 0;
    waitpid (pid, &status, 0);
    int64_t main_ir = 0;
    int64_t ir = bench_callgrind_ir (cg_file, &main_ir, !getenv ("MDP_BENCH_KEEP"));
    bool ok = WIFEXITED (status) && WEXITSTATUS (status) == 0;
    return ok && ir > 0 ? (double)ir / s_cg_requests : -1;
}

int main (int argc, char *argv[])
{
    if (argc == 7 && streq (argv[1], "--call")) { //  a client child, see s_callgrind_client
        s_size = (size_t)s_number (argv[6], 0);
        snprintf (s_body, sizeof s_body, "{\"p\":\"%0*d\"}", (int)s_size, 0);
        s_cg_warm = 200;
        int requests = s_number (argv[5], 1);
        return s_measure (argv[3], argv[4], streq (argv[2], "libmdp"), 1, requests + s_cg_warm) > 0
                   ? 0
                   : 1;
    }
    if (argc == 5 && streq (argv[1], "--serve"))
        return streq (argv[2], "bare") ? s_serve_bare (argv[3], argv[4])
                                       : s_serve_libmdp (argv[3], argv[4]);
    static struct option options[] = {{"rounds", required_argument, 0, 'r'},
                                      {"callgrind", required_argument, 0, 'g'},
                                      {0, 0, 0, 0}};
    int opt;
    while ((opt = getopt_long (argc, argv, "n:c:s:h", options, NULL)) != -1) {
        if (opt == 'n')
            s_requests = s_number (optarg, 1);
        else if (opt == 'c')
            s_clients = s_number (optarg, 1) > 64 ? 64 : s_number (optarg, 1);
        else if (opt == 's')
            s_size = (size_t)s_number (optarg, 0) > 60000 ? 60000 : (size_t)s_number (optarg, 0);
        else if (opt == 'r')
            s_rounds = s_number (optarg, 0);
        else if (opt == 'g')
            s_cg_requests = s_number (optarg, 1);
        else {
            fprintf (opt == 'h' ? stdout : stderr,
                     "usage: mdp-worker-bench [-n N] [-c CLIENTS] [-s BYTES] [--rounds R]\n"
                     "                        [--callgrind N]\n"
                     "  libmdp's worker and client against bare libzmq ones, same broker\n");
            return opt == 'h' ? 0 : 2;
        }
    }
    snprintf (s_body, sizeof s_body, "{\"p\":\"%0*d\"}", (int)s_size, 0);
    zsys_init ();
    zsys_handler_set (NULL); //  the driver handles no signals: Ctrl-C ends it
    bench_broker_t broker;
    if (bench_broker_start (&broker, BROKER_MDP, NULL, NULL, 10000) != 0)
        return 1;
    //  best[kind][measure]: kinds bare, libmdp worker; measures sync, pipelined
    double best[2][2] = {{0}}, client_best[2] = {0};
    const char *kinds[2] = {"bare", "libmdp"};
    for (int round = 0; round < s_rounds; round++) {
        for (int turn = 0; turn < 2; turn++) {
            int kind = (round + turn) % 2; //  alternate which goes first
            char service[64];
            snprintf (service, sizeof service, "bench.%s.%d", kinds[kind], round);
            pid_t pid = s_worker_start (broker.endpoint, kinds[kind], service, NULL);
            s_measure (broker.endpoint, service, false, 1, 500); //  warm
            double sync = s_measure (broker.endpoint, service, false, 1, s_requests);
            double pipelined = s_measure (broker.endpoint, service, false, s_clients, s_requests);
            //  The clients, against the bare worker
            double client =
                kind == 0 ? s_measure (broker.endpoint, service, (round % 2) == 0, 1, s_requests)
                          : 0;
            double other =
                kind == 0 ? s_measure (broker.endpoint, service, (round % 2) != 0, 1, s_requests)
                          : 0;
            s_worker_stop (pid);
            fprintf (stderr, "round %d %-6s worker: sync %.0f req/s, %d clients %.0f req/s\n",
                     round + 1, kinds[kind], sync, s_clients, pipelined);
            if (sync > best[kind][0])
                best[kind][0] = sync;
            if (pipelined > best[kind][1])
                best[kind][1] = pipelined;
            if (kind == 0) {
                double libmdp_client = (round % 2) == 0 ? client : other;
                double bare_client = (round % 2) == 0 ? other : client;
                fprintf (stderr,
                         "round %d client: bare DEALER %.0f req/s, mdp_client_t %.0f req/s\n",
                         round + 1, bare_client, libmdp_client);
                if (bare_client > client_best[0])
                    client_best[0] = bare_client;
                if (libmdp_client > client_best[1])
                    client_best[1] = libmdp_client;
            }
        }
    }
    printf ("| measurement | bare libzmq | libmdp | libmdp/bare |\n|---|---:|---:|---:|\n");
    if (s_rounds > 0) {
        printf ("| worker, sync round trips (1 client), req/s | %.0f | %.0f | **%.2f** |\n",
                best[0][0], best[1][0], best[1][0] / best[0][0]);
        printf ("| worker, pipelined (%d sync clients), req/s | %.0f | %.0f | **%.2f** |\n",
                s_clients, best[0][1], best[1][1], best[1][1] / best[0][1]);
        printf ("| client (mdp_client_t vs DEALER), sync, req/s | %.0f | %.0f | **%.2f** |\n",
                client_best[0], client_best[1], client_best[1] / client_best[0]);
    }
    if (s_cg_requests) {
        double bare_main, libmdp_main;
        double bare = s_callgrind (broker.endpoint, "bare", &bare_main);
        double libmdp = s_callgrind (broker.endpoint, "libmdp", &libmdp_main);
        printf (
            "| worker process, Ir per request, main thread (callgrind) | %.0f | %.0f | %.2f |\n",
            bare_main, libmdp_main, libmdp_main / bare_main);
        printf (
            "| worker process, Ir per request, all threads (callgrind) | %.0f | %.0f | %.2f |\n",
            bare, libmdp, libmdp / bare);
        const char *service = "bench.cg.client";
        pid_t pid = s_worker_start (broker.endpoint, "bare", service, NULL);
        double bare_client = s_callgrind_client (broker.endpoint, service, false);
        double libmdp_client = s_callgrind_client (broker.endpoint, service, true);
        s_worker_stop (pid);
        printf (
            "| client process, Ir per request, all threads (callgrind) | %.0f | %.0f | %.2f |\n",
            bare_client, libmdp_client, libmdp_client / bare_client);
    }
    bench_broker_stop (&broker, 5000, false);
    return 0;
}
