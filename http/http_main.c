/*  http_main.c - mdp-http as a daemon, following mdp-broker's conventions
    (daemon/main.c): command line and JSON config file (http_config.c), -d to
    detach and a pid file (daemon/daemon_proc.c, shared with mdp-broker), SIGINT/SIGTERM to stop and
   SIGHUP to reload, read from a signalfd polled by the server's loop (http_server.c).
*/
#include "daemon_proc.h"
#include "http.h"
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

typedef struct {
    char *config_path; //  -c FILE made absolute, or NULL
    cJSON *flags;      //  settings given as flags: the top layer
    bool daemon;       //  -d: detach from the terminal
    bool print_config; //  --print-config: print and exit
} opts_t;

typedef struct {
    opts_t *opts;          //  the command line
    http_config_t *config; //  settings in force
    http_server_t *server; //  the gateway
    char *pidfile;         //  absolute path of our pid file, or NULL
    int sigfd;             //  signalfd for SIGINT, SIGTERM, SIGHUP
    int ready_fd;          //  -d: pipe to the waiting parent, or -1
    volatile bool stop;    //  a stop signal came
} daemon_t;

static void s_usage (FILE *out)
{
    fprintf (
        out,
        "usage: mdp-http [OPTION]...\n"
        "  -l, --listen HOST:PORT  serve HTTP here (default %s; port 0: any)\n"
        "  -e, --endpoint EP       the broker (repeatable: calls fail over between them;\n"
        "                          default %s)\n"
        "  --events EP             the broker's event forwarder, subscriber side\n"
        "  --token-file FILE       require Authorization: Bearer <first line of FILE>\n"
        "  --curve-server KEY      the broker's CURVE public key (Z85)\n"
        "  --curve-cert FILE       our CURVE certificate (mdp-keygen), with --curve-server\n"
        "  --timeout MS            default deadline of a call (default %d)\n"
        "  --max-body BYTES        largest request body (default %d)\n"
        "  --client-timeout S      close an idle HTTP connection after S seconds (default 30)\n"
        "  -c, --config FILE       read settings from a JSON file (see mdp-http(1))\n"
        "  -d, --daemon            detach; returns once the gateway serves\n"
        "  -p, --pidfile FILE      write the pid here once listening, remove it at exit\n"
        "  -v, --verbose           log every HTTP request\n"
        "  --log stderr|syslog     where the log goes (default stderr)\n"
        "  --print-config          print the settings in force as JSON and exit\n"
        "  -V, --version           print the version and exit\n"
        "  -h, --help              this text\n"
        "Flags override the config file. SIGHUP reloads it; SIGINT, SIGTERM stop.\n"
        "Exit status: 0 stopped by a signal, 1 cannot run, 2 bad usage or settings.\n",
        HTTP_DEFAULT_LISTEN, MDP_DEFAULT_ENDPOINT, HTTP_DEFAULT_TIMEOUT, HTTP_DEFAULT_MAX_BODY);
}

static void s_log_setup (const http_config_t *config)
{
    zsys_set_logident ("mdp-http");
    zsys_set_logsystem (config->log_syslog);
    if (!config->log_syslog)
        zsys_set_logstream (stderr);
}

static void s_startup_error (const http_config_t *config, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));
static void s_startup_error (const http_config_t *config, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    daemon_proc_startup_error ("mdp-http", config->log_syslog, fmt, args);
    va_end (args);
}

//  ---------------------------------------------------------------------------
//  Signals

//  SIGHUP: read the config file again; apply what can change while running
//  (token, timeout, body limit, verbosity, log). A bad file changes nothing.
static void s_reload (daemon_t *self)
{
    char err[1024];
    http_config_t *fresh =
        http_config_build (self->opts->config_path, self->opts->flags, err, sizeof err);
    if (fresh && http_server_reload (self->server, fresh, err, sizeof err) != 0)
        http_config_destroy (&fresh);
    if (!fresh) {
        zsys_error ("mdp-http: reload failed, keeping the settings in force: %s", err);
        return;
    }
    bool same = strcmp (fresh->listen, self->config->listen) == 0 &&
                strcmp (fresh->endpoints[0], self->config->endpoints[0]) == 0;
    if (!same)
        zsys_warning ("mdp-http: reload: listen address or broker changed; "
                      "restart mdp-http to use them");
    http_config_destroy (&self->config);
    self->config = fresh;
    s_log_setup (fresh);
    zsys_info ("mdp-http: reloaded %s (timeout %d ms, max body %zu, token %s)",
               self->opts->config_path ? self->opts->config_path : "(no config file)",
               fresh->timeout, fresh->max_body, fresh->token_file ? "required" : "none");
}

static void s_on_signal (void *arg)
{
    daemon_t *self = arg;
    struct signalfd_siginfo info;
    while (read (self->sigfd, &info, sizeof info) == (ssize_t)sizeof info) {
        if (info.ssi_signo == SIGHUP)
            s_reload (self);
        else {
            zsys_info ("mdp-http: signal %u, stopping", info.ssi_signo);
            self->stop = true;
        }
    }
}

//  ---------------------------------------------------------------------------
//  Start-up

static int s_serve (daemon_t *self, sigset_t *signals)
{
    s_log_setup (self->config);
    char err[1024];
    self->server = http_server_new (self->config, err, sizeof err);
    if (!self->server) {
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
    zsys_info ("mdp-http: serving on %s (broker %s%s%s)", http_server_url (self->server),
               self->config->endpoints[0], self->config->events ? ", events " : "",
               self->config->events ? self->config->events : "");
    daemon_proc_ready (&self->ready_fd, 0);
    int rc = http_server_run (self->server, self->sigfd, s_on_signal, self, &self->stop);
    zsys_info ("mdp-http: stopped");
    return rc == 0 ? 0 : 1;
}

enum {
    OPT_PRINT = 256,
    OPT_EVENTS,
    OPT_TOKEN,
    OPT_SERVER,
    OPT_CERT,
    OPT_TIMEOUT,
    OPT_BODY,
    OPT_CLIENT,
    OPT_LOG
};
static const struct option s_options[] = {{"listen", required_argument, 0, 'l'},
                                          {"endpoint", required_argument, 0, 'e'},
                                          {"config", required_argument, 0, 'c'},
                                          {"daemon", no_argument, 0, 'd'},
                                          {"pidfile", required_argument, 0, 'p'},
                                          {"verbose", no_argument, 0, 'v'},
                                          {"version", no_argument, 0, 'V'},
                                          {"help", no_argument, 0, 'h'},
                                          {"print-config", no_argument, 0, OPT_PRINT},
                                          {"events", required_argument, 0, OPT_EVENTS},
                                          {"token-file", required_argument, 0, OPT_TOKEN},
                                          {"curve-server", required_argument, 0, OPT_SERVER},
                                          {"curve-cert", required_argument, 0, OPT_CERT},
                                          {"timeout", required_argument, 0, OPT_TIMEOUT},
                                          {"max-body", required_argument, 0, OPT_BODY},
                                          {"client-timeout", required_argument, 0, OPT_CLIENT},
                                          {"log", required_argument, 0, OPT_LOG},
                                          {0, 0, 0, 0}};

static const char *s_flag_keys[OPT_LOG + 1] = {
    ['l'] = "listen",           ['e'] = "endpoints",
    ['p'] = "pidfile",          [OPT_EVENTS] = "events",
    [OPT_TOKEN] = "token_file", [OPT_SERVER] = "curve_server",
    [OPT_CERT] = "curve_cert",  [OPT_TIMEOUT] = "timeout",
    [OPT_BODY] = "max_body",    [OPT_CLIENT] = "client_timeout",
    [OPT_LOG] = "log"};

static int s_parse_args (opts_t *opts, int argc, char *argv[])
{
    char err[512];
    int opt;
    while ((opt = getopt_long (argc, argv, "l:e:c:dp:vVh", s_options, NULL)) != -1) {
        if (opt > 0 && opt <= OPT_LOG && s_flag_keys[opt]) {
            if (http_config_set_flag (opts->flags, s_flag_keys[opt], optarg, err, sizeof err)) {
                fprintf (stderr, "mdp-http: %s\n", err);
                return 2;
            }
            continue;
        }
        switch (opt) {
        case 'c':
            free (opts->config_path);
            opts->config_path = daemon_proc_absolute (optarg);
            if (!opts->config_path) {
                fprintf (stderr, "mdp-http: %s: %s\n", optarg, strerror (errno));
                return 1;
            }
            break;
        case 'd':
            opts->daemon = true;
            break;
        case 'v':
            http_config_set_flag (opts->flags, "verbose", "true", err, sizeof err);
            break;
        case OPT_PRINT:
            opts->print_config = true;
            break;
        case 'V':
            printf ("mdp-http %d.%d.%d\n", MDP_VERSION_MAJOR, MDP_VERSION_MINOR, MDP_VERSION_PATCH);
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
        fprintf (stderr, "mdp-http: unexpected argument '%s'\n", argv[optind]);
        s_usage (stderr);
        return 2;
    }
    return -1;
}

static int s_start (opts_t *opts, http_config_t **config_p, sigset_t *signals)
{
    daemon_t self = {opts, *config_p, NULL, NULL, -1, -1, false};
    *config_p = NULL;
    int rc = -1;
    if (self.config->pidfile) {
        self.pidfile = daemon_proc_absolute (self.config->pidfile);
        pid_t owner = self.pidfile ? daemon_proc_pidfile_owner (self.pidfile) : 0;
        if (owner > 0) {
            fprintf (stderr, "mdp-http: already running as pid %d (pidfile %s)\n", (int)owner,
                     self.pidfile);
            rc = 1;
        }
    }
    if (rc < 0)
        rc = opts->daemon ? daemon_proc_detach ("mdp-http", &self.ready_fd) : -1;
    if (rc < 0) {
        rc = s_serve (&self, signals);
        daemon_proc_ready (&self.ready_fd, rc);
        if (self.pidfile)
            daemon_proc_pidfile_remove (self.pidfile);
        http_server_destroy (&self.server);
        if (self.sigfd >= 0)
            close (self.sigfd);
        zsys_shutdown ();
    }
    http_config_destroy (&self.config);
    free (self.pidfile);
    return rc;
}

int main (int argc, char *argv[])
{
    sigset_t signals;
    sigemptyset (&signals);
    sigaddset (&signals, SIGINT);
    sigaddset (&signals, SIGTERM);
    sigaddset (&signals, SIGHUP);
    sigprocmask (SIG_BLOCK, &signals, NULL);
    signal (SIGPIPE, SIG_IGN);
    zsys_handler_set (NULL);

    opts_t opts = {NULL, cJSON_CreateObject (), false, false};
    http_config_t *config = NULL;
    int rc = opts.flags ? s_parse_args (&opts, argc, argv) : 1;
    char err[1024];
    if (rc < 0 && !(config = http_config_build (opts.config_path, opts.flags, err, sizeof err))) {
        fprintf (stderr, "mdp-http: %s\n", err);
        rc = 2;
    }
    if (rc < 0 && opts.print_config) {
        char *text = http_config_to_json (config);
        rc = text && printf ("%s\n", text) > 0 ? 0 : 1;
        free (text);
    }
    if (rc < 0)
        rc = s_start (&opts, &config, &signals);
    http_config_destroy (&config);
    cJSON_Delete (opts.flags);
    free (opts.config_path);
    return rc;
}
