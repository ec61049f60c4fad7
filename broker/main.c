/*  main.c - mdp-broker: command line, logging and signals around the routing
    engine in broker.c, and nothing else. SIGINT and SIGTERM arrive through a
    signalfd so the graceful stop starts at once, whatever the poll timeout.
*/
#include "broker.h"
#include "mdp.h"
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

static void s_usage (FILE *out)
{
    fprintf (out,
             "usage: mdp-broker [-e ENDPOINT]... [-v] [--heartbeat MS] [--liveness N]\n"
             "                  [--request-timeout S] [--max-queue N] [--max-msg-size BYTES]\n"
             "  -e, --endpoint EP     bind the ROUTER here (repeatable; default %s)\n"
             "  -v, --verbose         log every message\n"
             "  --heartbeat MS        heartbeat interval, both ways (default 2500)\n"
             "  --liveness N          heartbeats missed before a worker is dead (default 3)\n"
             "  --request-timeout S   deadline of a request without a timeout frame (default 30)\n"
             "  --max-queue N         queued requests per service (default 10000)\n"
             "  --max-msg-size BYTES  largest frame accepted (default: no limit)\n"
             "  -h, --help            this text\n",
             MDP_DEFAULT_ENDPOINT);
}

//  Parse a whole positive number no larger than max; -1 if it is not one.
static long s_number (const char *text, long max)
{
    char *end;
    errno = 0;
    long value = strtol (text, &end, 10);
    if (errno || end == text || *end || value <= 0 || value > max)
        return -1;
    return value;
}

typedef struct {
    int sigfd;                   //  signalfd for SIGINT, SIGTERM
} main_ctx_t;

static void s_on_signal (broker_t *broker, void *arg)
{
    main_ctx_t *ctx = arg;
    struct signalfd_siginfo info;
    if (read (ctx->sigfd, &info, sizeof info) == (ssize_t) sizeof info) {
        zsys_info ("mdp-broker: signal %u, stopping", info.ssi_signo);
        broker_stop (broker);
    }
}

int main (int argc, char *argv[])
{
    //  Block the stop signals before any thread exists, then read them from a
    //  signalfd (czmq's own handler is switched off).
    sigset_t mask;
    sigemptyset (&mask);
    sigaddset (&mask, SIGINT);
    sigaddset (&mask, SIGTERM);
    sigprocmask (SIG_BLOCK, &mask, NULL);
    zsys_handler_set (NULL);

    broker_config_t cfg;
    broker_config_defaults (&cfg);
    const char *endpoints[32];
    int nendpoints = 0;
    enum { OPT_HEARTBEAT = 256, OPT_LIVENESS, OPT_TIMEOUT, OPT_MAXQ, OPT_MAXMSG };
    static const struct option options[] = {
        {"endpoint", required_argument, 0, 'e'},   {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'},             {"heartbeat", required_argument, 0, OPT_HEARTBEAT},
        {"liveness", required_argument, 0, OPT_LIVENESS},
        {"request-timeout", required_argument, 0, OPT_TIMEOUT},
        {"max-queue", required_argument, 0, OPT_MAXQ},
        {"max-msg-size", required_argument, 0, OPT_MAXMSG},
        {0, 0, 0, 0}};
    int opt;
    long value = 0;
    while ((opt = getopt_long (argc, argv, "e:vh", options, NULL)) != -1) {
        if (opt >= OPT_HEARTBEAT && (value = s_number (optarg, 1L << 30)) < 0) {
            fprintf (stderr, "mdp-broker: %s needs a positive whole number, not '%s'\n",
                     options[opt - OPT_HEARTBEAT + 3].name, optarg);
            return 2;
        }
        switch (opt) {
            case 'e':
                if (nendpoints == 32) {
                    fprintf (stderr, "mdp-broker: at most 32 endpoints\n");
                    return 2;
                }
                endpoints[nendpoints++] = optarg;
                break;
            case 'v': cfg.verbose = true; break;
            case 'h': s_usage (stdout); return 0;
            case OPT_HEARTBEAT: cfg.heartbeat = (int) value; break;
            case OPT_LIVENESS: cfg.liveness = (int) value; break;
            case OPT_TIMEOUT: cfg.request_timeout = (int) (value > 86400 ? 86400 : value) * 1000; break;
            case OPT_MAXQ: cfg.max_queue = (size_t) value; break;
            case OPT_MAXMSG: cfg.max_msg_size = value; break;
            default: s_usage (stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf (stderr, "mdp-broker: unexpected argument '%s'\n", argv[optind]);
        s_usage (stderr);
        return 2;
    }
    if (nendpoints == 0)
        endpoints[nendpoints++] = MDP_DEFAULT_ENDPOINT;

    zsys_set_logident ("mdp-broker");
    zsys_set_logstream (stderr);
    broker_t *broker = broker_new (&cfg);
    if (!broker) {
        fprintf (stderr, "mdp-broker: cannot create the broker socket\n");
        return 1;
    }
    for (int i = 0; i < nendpoints; i++)
        if (broker_bind (broker, endpoints[i]) != 0) {
            fprintf (stderr, "mdp-broker: cannot bind '%s': %s\n", endpoints[i],
                     zmq_strerror (errno));
            broker_destroy (&broker);
            return 2;
        }
    main_ctx_t ctx = {signalfd (-1, &mask, SFD_CLOEXEC)};
    zsys_info ("mdp-broker: serving on %s (heartbeat %d ms, liveness %d)",
               broker_endpoint (broker), cfg.heartbeat, cfg.liveness);
    broker_run (broker, NULL, ctx.sigfd, s_on_signal, &ctx);
    broker_destroy (&broker);
    close (ctx.sigfd);
    zsys_shutdown ();
    return 0;
}
