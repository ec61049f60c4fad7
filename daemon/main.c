/*  main.c - mdp-broker as a daemon: command line and config file (config.c),
    logging, detaching (-d), the pid file and signals around the routing engine
    in broker.c, and nothing else. Signals arrive through a signalfd polled by
    broker_run: SIGINT/SIGTERM stop gracefully at once, SIGHUP reloads the
    config file without dropping a connection.
*/
#include "broker.h"
#include "config.h"
#include "daemon_proc.h"
#include "mdp.h"
#include "setup.h"
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>
#ifdef MDP_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#define s_notify(state) sd_notify (0, state)
#else
#define s_notify(state) ((void)0)
#endif

typedef struct {
    char *config_path; //  -c FILE made absolute, or NULL
    cJSON *flags;      //  settings given as flags: the top layer
    bool daemon;       //  -d: detach from the terminal
    bool quiet;        //  -q: log warnings and errors only
    bool print_config; //  --print-config: print and exit
} opts_t;

typedef struct {
    opts_t *opts;           //  the command line
    config_t *config;       //  settings in force (endpoints as bound)
    broker_t *broker;       //  the routing engine
    forwarder_t *forwarder; //  the event forwarder, or NULL
    char *pidfile;          //  absolute path of our pid file, or NULL
    int sigfd;              //  signalfd for SIGINT, SIGTERM, SIGHUP
    int ready_fd;           //  -d: pipe to the waiting parent, or -1
} daemon_t;

static void s_usage (FILE *out)
{
    fprintf (
        out,
        "usage: mdp-broker [OPTION]...\n"
        "  -e, --endpoint EP       bind here (repeatable; default %s)\n"
        "  -c, --config FILE       read settings from a JSON file (see mdp-broker(1))\n"
        "  -d, --daemon            detach; returns once the broker serves\n"
        "  -p, --pidfile FILE      write the pid here once bound, remove it at exit\n"
        "  -v, --verbose           log every message\n"
        "  -q, --quiet             log warnings and errors only\n"
        "  --heartbeat MS          heartbeat interval, both ways (default 2500)\n"
        "  --liveness N            heartbeats missed before a worker is dead (default 3)\n"
        "  --request-timeout S     deadline of a request without a timeout frame (default 30)\n"
        "  --max-queue N           queued requests per service (default 10000)\n"
        "  --max-msg-size BYTES    largest frame accepted, -1 for no limit (default -1)\n"
        "  --stats-interval S      log a stats line every S seconds, 0 for never (default 0)\n"
        "  --log stderr|syslog     where the log goes (default stderr)\n"
        "  --max-client-requests N pending requests per client (per CURVE key), 0: no cap\n"
        "  --pub-endpoint EP       event forwarder: where publishers connect\n"
        "  --sub-endpoint EP       event forwarder: where subscribers connect\n"
        "  --curve-cert FILE       turn CURVE on with this certificate (czmq format)\n"
        "  --curve-keys DIR        public certificates of the peers allowed in\n"
        "  --print-config          print the settings in force as JSON and exit\n"
        "  -V, --version           print the version and exit\n"
        "  -h, --help              this text\n"
        "Flags override the config file. SIGHUP reloads it; SIGINT, SIGTERM stop.\n"
        "Exit status: 0 stopped by a signal, 1 cannot run or the event loop failed,\n"
        "2 bad usage or settings.\n",
        MDP_DEFAULT_ENDPOINT);
}

//  --------------------------------------------------------------------------
//  Logging: czmq's zsys_* to stderr or syslog. czmq has no level filter, so
//  for -q the stderr stream goes through s_filter_write, which drops every
//  line not marked E (error) or W (warning); syslog gets setlogmask.

static FILE *s_filtered;         //  stderr minus info and debug lines, for -q
static bool s_line_start = true; //  the filter is at the start of a line
static bool s_dropping;          //  the filter is dropping the current line

static ssize_t s_filter_write (void *cookie, const char *buf, size_t size)
{
    for (size_t at = 0; at < size;) {
        if (s_line_start)
            s_dropping = buf[at] != 'E' && buf[at] != 'W';
        const char *newline = memchr (buf + at, '\n', size - at);
        size_t end = newline ? (size_t)(newline - buf) + 1 : size;
        for (size_t done = at; !s_dropping && done < end;) {
            ssize_t rc = write (STDERR_FILENO, buf + done, end - done);
            if (rc < 0 && errno == EINTR)
                continue;
            if (rc <= 0)
                break;
            done += (size_t)rc;
        }
        s_line_start = newline != NULL;
        at = end;
    }
    return (ssize_t)size;
}

//  Send the log where config says; also reopens syslog (SIGHUP).
static void s_log_setup (const config_t *config, bool quiet)
{
    zsys_set_logident ("mdp-broker");
    if (config->log_syslog) {
        closelog ();
        zsys_set_logsystem (true);
        setlogmask (quiet ? LOG_UPTO (LOG_WARNING) : LOG_UPTO (LOG_DEBUG));
        return;
    }
    zsys_set_logsystem (false);
    closelog ();
    if (quiet && !s_filtered) {
        s_filtered = fopencookie (NULL, "w", (cookie_io_functions_t){.write = s_filter_write});
        if (s_filtered)
            setvbuf (s_filtered, NULL, _IOLBF, 0);
    }
    zsys_set_logstream (quiet && s_filtered ? s_filtered : stderr);
}

static void s_log_close (void)
{
    zsys_shutdown ();
    closelog ();
    if (s_filtered)
        fclose (s_filtered);
    s_filtered = NULL;
}

//  A fault at start-up goes to stderr, which the caller sees even with -d,
//  and to syslog too when that is where the log goes.
static void s_startup_error (const config_t *config, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));
static void s_startup_error (const config_t *config, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    daemon_proc_startup_error ("mdp-broker", config->log_syslog, fmt, args);
    va_end (args);
}

//  --------------------------------------------------------------------------
//  Signals

//  SIGHUP: read the config file again and apply what can change while
//  running; a bad file is logged and the settings in force are kept.
static void s_reload (daemon_t *self)
{
    s_notify ("RELOADING=1");
    const char *path = self->opts->config_path;
    char err[1024];
    config_t *fresh = config_build (path, self->opts->flags, err, sizeof err);
    if (!fresh)
        zsys_error ("mdp-broker: reload failed, keeping the settings in force: %s", err);
    else {
        s_log_setup (fresh, self->opts->quiet);
        if (!config_same_endpoints (fresh, self->config))
            zsys_warning ("mdp-broker: reload: the endpoints changed; "
                          "restart mdp-broker to bind them");
        const char *was = self->config->pidfile, *now = fresh->pidfile;
        if ((was || now) && (!was || !now || strcmp (was, now) != 0))
            zsys_warning ("mdp-broker: reload: the pidfile changed; it takes effect at restart");
        self->config->engine = fresh->engine;
        self->config->log_syslog = fresh->log_syslog;
        broker_configure (self->broker, &self->config->engine);
        if (setup_reload (self->broker, self->forwarder, self->config, fresh) == 0) {
            cJSON *access = self->config->access;
            self->config->access = fresh->access;
            fresh->access = access;
        }
        config_destroy (&fresh);
        if (path)
            zsys_info ("mdp-broker: reloaded %s (heartbeat %d ms, liveness %d, max_queue %zu)",
                       path, self->config->engine.heartbeat, self->config->engine.liveness,
                       self->config->engine.max_queue);
        else
            zsys_info ("mdp-broker: reloaded: no config file (-c), logs reopened");
    }
    s_notify ("READY=1");
}

static void s_on_signal (broker_t *broker, void *arg)
{
    daemon_t *self = arg;
    struct signalfd_siginfo info;
    while (read (self->sigfd, &info, sizeof info) == (ssize_t)sizeof info) {
        if (info.ssi_signo == SIGHUP)
            s_reload (self);
        else {
            s_notify ("STOPPING=1");
            zsys_info ("mdp-broker: signal %u, stopping", info.ssi_signo);
            broker_stop (broker);
        }
    }
}

//  --------------------------------------------------------------------------
//  Start-up

//  Bind every endpoint. Returns 0, or 2 after saying which one failed.
static int s_bind_all (daemon_t *self, char *bound, size_t size)
{
    bound[0] = 0;
    for (size_t i = 0; i < self->config->nendpoints; i++) {
        const char *endpoint = self->config->endpoints[i];
        if (broker_bind (self->broker, endpoint) != 0) {
            s_startup_error (self->config, "cannot bind endpoint '%s': %s", endpoint,
                             zmq_strerror (errno));
            return 2;
        }
        size_t used = strlen (bound);
        snprintf (bound + used, size - used, "%s%s", i ? " " : "", broker_endpoint (self->broker));
    }
    return 0;
}

//  Run the broker until a stop signal. Returns the exit status.
static int s_serve (daemon_t *self, sigset_t *signals)
{
    s_log_setup (self->config, self->opts->quiet);
    self->broker = broker_new (&self->config->engine);
    if (!self->broker) {
        s_startup_error (self->config, "cannot create the broker socket: %s", zmq_strerror (errno));
        return 1;
    }
    char bound[2048], err[512];
    if (setup_security (self->broker, self->config, err, sizeof err) != 0) {
        s_startup_error (self->config, "%s", err);
        return 2;
    }
    int rc = s_bind_all (self, bound, sizeof bound);
    if (rc)
        return rc;
    if (setup_events (self->config, &self->forwarder, err, sizeof err) != 0) {
        s_startup_error (self->config, "%s", err);
        return 2;
    }
    if (self->pidfile && daemon_proc_pidfile_write (self->pidfile) != 0) {
        s_startup_error (self->config, "cannot write pidfile %s: %s", self->pidfile,
                         strerror (errno));
        return 1;
    }
    self->sigfd = signalfd (-1, signals, SFD_CLOEXEC | SFD_NONBLOCK);
    if (self->sigfd < 0) {
        s_startup_error (self->config, "cannot read signals: %s", strerror (errno));
        return 1;
    }
    zsys_info ("mdp-broker: serving on %s (heartbeat %d ms, liveness %d)", bound,
               self->config->engine.heartbeat, self->config->engine.liveness);
    s_notify ("READY=1");
    daemon_proc_ready (&self->ready_fd, 0);
    if (broker_run (self->broker, NULL, self->sigfd, s_on_signal, self) != 0) {
        zsys_error ("mdp-broker: stopped: the event loop failed: %s", zmq_strerror (errno));
        return 1;
    }
    zsys_info ("mdp-broker: stopped");
    return 0;
}

//  Long options; those past OPT_PRINT each set one config key.
enum {
    OPT_PRINT = 256,
    OPT_HEARTBEAT,
    OPT_LIVENESS,
    OPT_TIMEOUT,
    OPT_MAXQ,
    OPT_MAXMSG,
    OPT_STATS,
    OPT_MAXCLIENT,
    OPT_PUB,
    OPT_SUB,
    OPT_CERT,
    OPT_KEYS,
    OPT_LOG
};
static const struct option s_options[] = {
    {"endpoint", required_argument, 0, 'e'},
    {"config", required_argument, 0, 'c'},
    {"daemon", no_argument, 0, 'd'},
    {"pidfile", required_argument, 0, 'p'},
    {"verbose", no_argument, 0, 'v'},
    {"quiet", no_argument, 0, 'q'},
    {"version", no_argument, 0, 'V'},
    {"help", no_argument, 0, 'h'},
    {"print-config", no_argument, 0, OPT_PRINT},
    {"heartbeat", required_argument, 0, OPT_HEARTBEAT},
    {"liveness", required_argument, 0, OPT_LIVENESS},
    {"request-timeout", required_argument, 0, OPT_TIMEOUT},
    {"max-queue", required_argument, 0, OPT_MAXQ},
    {"max-msg-size", required_argument, 0, OPT_MAXMSG},
    {"stats-interval", required_argument, 0, OPT_STATS},
    {"max-client-requests", required_argument, 0, OPT_MAXCLIENT},
    {"pub-endpoint", required_argument, 0, OPT_PUB},
    {"sub-endpoint", required_argument, 0, OPT_SUB},
    {"curve-cert", required_argument, 0, OPT_CERT},
    {"curve-keys", required_argument, 0, OPT_KEYS},
    {"log", required_argument, 0, OPT_LOG},
    {0, 0, 0, 0}};

//  The config key each flag with a value sets, by option code.
static const char *s_flag_keys[OPT_LOG + 1] = {['e'] = "endpoints",
                                               ['p'] = "pidfile",
                                               [OPT_HEARTBEAT] = "heartbeat",
                                               [OPT_LIVENESS] = "liveness",
                                               [OPT_TIMEOUT] = "request_timeout",
                                               [OPT_MAXQ] = "max_queue",
                                               [OPT_MAXMSG] = "max_msg_size",
                                               [OPT_STATS] = "stats_interval",
                                               [OPT_MAXCLIENT] = "max_client_requests",
                                               [OPT_PUB] = "pub_endpoint",
                                               [OPT_SUB] = "sub_endpoint",
                                               [OPT_CERT] = "curve_cert",
                                               [OPT_KEYS] = "curve_keys",
                                               [OPT_LOG] = "log"};

//  Read the command line into opts. Returns -1 to go on, else the exit status.
static int s_parse_args (opts_t *opts, int argc, char *argv[])
{
    char err[512];
    bool verbose = false;
    int opt;
    while ((opt = getopt_long (argc, argv, "e:c:dp:vqVh", s_options, NULL)) != -1) {
        if (opt > 0 && opt <= OPT_LOG && s_flag_keys[opt]) {
            if (config_set_flag (opts->flags, s_flag_keys[opt], optarg, err, sizeof err) != 0) {
                fprintf (stderr, "mdp-broker: %s\n", err);
                return 2;
            }
            continue;
        }
        switch (opt) {
        case 'c':
            free (opts->config_path);
            opts->config_path = daemon_proc_absolute (optarg);
            if (!opts->config_path) {
                fprintf (stderr, "mdp-broker: %s: %s\n", optarg, strerror (errno));
                return 1;
            }
            break;
        case 'd':
            opts->daemon = true;
            break;
        case 'v':
            verbose = true;
            break;
        case 'q':
            opts->quiet = true;
            break;
        case OPT_PRINT:
            opts->print_config = true;
            break;
        case 'V':
            printf ("mdp-broker %d.%d.%d\n", MDP_VERSION_MAJOR, MDP_VERSION_MINOR,
                    MDP_VERSION_PATCH);
            return 0;
        case 'h':
            s_usage (stdout);
            return 0;
        default:
            s_usage (stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf (stderr, "mdp-broker: unexpected argument '%s'\n", argv[optind]);
        s_usage (stderr);
        return 2;
    }
    if (verbose && opts->quiet) {
        fprintf (stderr, "mdp-broker: -v and -q cannot go together\n");
        return 2;
    }
    if (verbose || opts->quiet)
        config_set_flag (opts->flags, "verbose", verbose ? "true" : "false", err, sizeof err);
    return -1;
}

//  Everything after the settings are known. Returns the exit status.
static int s_start (opts_t *opts, config_t *config, sigset_t *signals)
{
    daemon_t self = {opts, config, NULL, NULL, NULL, -1, -1};
    if (config->pidfile) {
        self.pidfile = daemon_proc_absolute (config->pidfile);
        pid_t owner = self.pidfile ? daemon_proc_pidfile_owner (self.pidfile) : 0;
        if (owner > 0) {
            fprintf (stderr, "mdp-broker: already running as pid %d (pidfile %s)\n", (int)owner,
                     self.pidfile);
            free (self.pidfile);
            return 1;
        }
    }
    int rc = opts->daemon ? daemon_proc_detach ("mdp-broker", &self.ready_fd) : -1;
    if (rc < 0) {
        rc = s_serve (&self, signals);
        daemon_proc_ready (&self.ready_fd, rc);
        if (self.pidfile)
            daemon_proc_pidfile_remove (self.pidfile);
        broker_destroy (&self.broker);
        forwarder_destroy (&self.forwarder);
        if (self.sigfd >= 0)
            close (self.sigfd);
        s_log_close ();
    }
    free (self.pidfile);
    return rc;
}

int main (int argc, char *argv[])
{
    //  Block the signals we handle before any thread exists; they are read
    //  from a signalfd (czmq's own handler is switched off).
    sigset_t signals;
    sigemptyset (&signals);
    sigaddset (&signals, SIGINT);
    sigaddset (&signals, SIGTERM);
    sigaddset (&signals, SIGHUP);
    sigprocmask (SIG_BLOCK, &signals, NULL);
    zsys_handler_set (NULL);

    opts_t opts = {NULL, cJSON_CreateObject (), false, false, false};
    config_t *config = NULL;
    int rc = opts.flags ? s_parse_args (&opts, argc, argv) : 1;
    char err[1024];
    if (rc < 0 && !(config = config_build (opts.config_path, opts.flags, err, sizeof err))) {
        fprintf (stderr, "mdp-broker: %s\n", err);
        rc = 2;
    }
    if (rc < 0 && opts.print_config) {
        char *text = config_to_json (config);
        rc = text && printf ("%s\n", text) > 0 ? 0 : 1;
        free (text);
    }
    if (rc < 0)
        rc = s_start (&opts, config, &signals);
    config_destroy (&config);
    cJSON_Delete (opts.flags);
    free (opts.config_path);
    return rc;
}
