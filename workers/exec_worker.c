/*  exec_worker.c - mdp-worker-exec, a worker that serves a service with any
    program: each request runs COMMAND (no shell) with the request's JSON data
    on stdin and its action in MDP_ACTION, and the command's stdout, parsed as
    JSON, becomes the reply's data. A failure, bad output or an overrun turns
    into an mdp.error reply; a run never outlives its time limit or leaves a
    zombie. Heartbeats go on from libmdp's background agent meanwhile.
*/
#include "mdp.h"
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_STDOUT (1 << 20) //  stdout beyond this many bytes is an error
#define STDERR_TAIL 2048     //  stderr bytes kept for an error reply
#define CHUNK 65536          //  bytes moved per read or write

extern char **environ;

//  What the command line asks for.
typedef struct {
    char **command;      //  COMMAND and its arguments, NULL-terminated
    const char *service; //  the service, for MDP_SERVICE
    int timeout;         //  msecs one run may take
    bool verbose;        //  log each run
} exec_t;

//  One run of the command and what came of it.
typedef struct {
    pid_t pid;              //  the command; leader of its process group
    int in, out, err;       //  our ends of its stdin, stdout, stderr; -1 once closed
    const char *input;      //  what goes to its stdin
    size_t input_size;      //  bytes of input
    size_t written;         //  bytes of input written so far
    char *output;           //  its stdout so far, NUL-terminated
    size_t output_size;     //  bytes of stdout
    char tail[STDERR_TAIL]; //  the last bytes of its stderr, a ring
    size_t tail_total;      //  stderr bytes seen in all
    int status;             //  its wait status once reaped
    const char *killed_why; //  why the run was cut short, or NULL
    int killed_code;        //  the error code for that
} run_t;

//  ---------------------------------------------------------------------------
//  Starting the command

//  environ, with MDP_ACTION and MDP_SERVICE replacing any inherited ones.
//  The caller frees the array and its last two strings (at *mine).
static char **s_environment (const char *service, const char *action, char **mine)
{
    size_t count = 0;
    while (environ[count])
        count++;
    char **envp = calloc (count + 3, sizeof (char *));
    mine[0] = mine[1] = NULL;
    if (!envp || asprintf (&mine[0], "MDP_ACTION=%s", action) < 0 ||
        asprintf (&mine[1], "MDP_SERVICE=%s", service) < 0) {
        free (envp);
        free (mine[0]);
        return NULL;
    }
    size_t used = 0;
    for (size_t i = 0; i < count; i++)
        if (strncmp (environ[i], "MDP_ACTION=", 11) && strncmp (environ[i], "MDP_SERVICE=", 12))
            envp[used++] = environ[i];
    envp[used++] = mine[0];
    envp[used] = mine[1];
    return envp;
}

//  Start the command in a process group of its own, with default signal
//  dispositions, pipes on fds 0-2 and no other descriptor. 0, or an errno.
static int s_spawn (exec_t *self, run_t *run, char **envp)
{
    int pipes[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
    int rc = 0;
    for (int i = 0; i < 3 && rc == 0; i++)
        if (pipe2 (pipes[i], O_CLOEXEC) != 0)
            rc = errno;
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    sigset_t none, all;
    sigemptyset (&none);
    sigfillset (&all);
    posix_spawn_file_actions_init (&actions);
    posix_spawnattr_init (&attr);
    posix_spawn_file_actions_adddup2 (&actions, pipes[0][0], 0);
    posix_spawn_file_actions_adddup2 (&actions, pipes[1][1], 1);
    posix_spawn_file_actions_adddup2 (&actions, pipes[2][1], 2);
    posix_spawn_file_actions_addclosefrom_np (&actions, 3);
    posix_spawnattr_setflags (&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                         POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup (&attr, 0);
    posix_spawnattr_setsigmask (&attr, &none);
    posix_spawnattr_setsigdefault (&attr, &all);
    if (rc == 0)
        rc = posix_spawnp (&run->pid, self->command[0], &actions, &attr, self->command, envp);
    posix_spawn_file_actions_destroy (&actions);
    posix_spawnattr_destroy (&attr);
    //  Keep our ends (stdin's write end, the read ends of the others).
    int ours[3] = {pipes[0][1], pipes[1][0], pipes[2][0]};
    int theirs[3] = {pipes[0][0], pipes[1][1], pipes[2][1]};
    for (int i = 0; i < 3; i++) {
        if (theirs[i] >= 0)
            close (theirs[i]);
        if (rc != 0 && ours[i] >= 0)
            close (ours[i]);
        else if (ours[i] >= 0)
            fcntl (ours[i], F_SETFL, O_NONBLOCK);
    }
    run->in = rc ? -1 : ours[0];
    run->out = rc ? -1 : ours[1];
    run->err = rc ? -1 : ours[2];
    return rc;
}

//  ---------------------------------------------------------------------------
//  Feeding and draining it

static void s_close (int *fd)
{
    if (*fd >= 0)
        close (*fd);
    *fd = -1;
}

static void s_write_input (run_t *run)
{
    size_t left = run->input_size - run->written;
    ssize_t rc = left ? write (run->in, run->input + run->written, left < CHUNK ? left : CHUNK) : 0;
    if (rc > 0)
        run->written += (size_t)rc;
    if ((rc < 0 && errno != EAGAIN && errno != EINTR) || run->written == run->input_size)
        s_close (&run->in); //  done, or the command stopped reading (EPIPE)
}

//  Read stdout on; more than MAX_STDOUT bytes cuts the run short.
static void s_read_output (run_t *run)
{
    if (!run->output && !(run->output = malloc (MAX_STDOUT + CHUNK + 1))) {
        run->killed_why = "out of memory";
        run->killed_code = 500;
        return;
    }
    ssize_t rc = read (run->out, run->output + run->output_size, CHUNK);
    if (rc > 0) {
        run->output_size += (size_t)rc;
        run->output[run->output_size] = 0;
    }
    if (rc == 0 || (rc < 0 && errno != EAGAIN && errno != EINTR))
        s_close (&run->out);
    if (run->output_size > MAX_STDOUT) {
        run->killed_why = "command output is over 1 MiB";
        run->killed_code = 500;
    }
}

//  Read stderr on, keeping only its last STDERR_TAIL bytes.
static void s_read_errors (run_t *run)
{
    char buffer[4096];
    ssize_t rc = read (run->err, buffer, sizeof buffer);
    for (ssize_t i = 0; i < rc; i++)
        run->tail[run->tail_total++ % STDERR_TAIL] = buffer[i];
    if (rc == 0 || (rc < 0 && errno != EAGAIN && errno != EINTR))
        s_close (&run->err);
}

//  Kill the whole process group, for the reason given.
static void s_kill (run_t *run, const char *why, int code)
{
    if (!run->killed_why || code == 504) {
        run->killed_why = why;
        run->killed_code = code;
    }
    kill (-run->pid, SIGKILL);
}

//  Write stdin and read stdout and stderr together until both outputs end,
//  so that no pipe can fill up and stall the command. Stops early at the
//  deadline, on too much output, or when the worker is interrupted.
static void s_pump (run_t *run, int64_t deadline)
{
    while ((run->out >= 0 || run->err >= 0) && !run->killed_why) {
        struct pollfd items[3];
        int *fds[3], count = 0;
        int *mine[3] = {&run->in, &run->out, &run->err};
        for (int i = 0; i < 3; i++)
            if (*mine[i] >= 0) {
                items[count] = (struct pollfd){*mine[i], i ? POLLIN : POLLOUT, 0};
                fds[count++] = mine[i];
            }
        int64_t left = deadline - zclock_mono ();
        int rc = left > 0 ? poll (items, (nfds_t)count, (int)left) : 0;
        if (left <= 0)
            s_kill (run, "command timed out", 504);
        else if (rc < 0 && errno == EINTR && zsys_interrupted)
            s_kill (run, "worker shutting down", 503);
        for (int i = 0; i < count && rc > 0; i++) {
            if (!items[i].revents)
                continue;
            if (fds[i] == &run->in)
                s_write_input (run);
            else if (fds[i] == &run->out)
                s_read_output (run);
            else
                s_read_errors (run);
        }
    }
    if (run->killed_why)
        kill (-run->pid, SIGKILL);
}

//  Reap the command. Its outputs are closed but it may still run: wait up
//  to the deadline, then kill its group. The group is killed while the
//  leader is still unreaped, so its id cannot have been reused.
static void s_reap (run_t *run, int64_t deadline)
{
    int pause = 1;
    while (waitpid (run->pid, &run->status, WNOHANG) == 0) {
        if (zclock_mono () >= deadline || zsys_interrupted) {
            s_kill (run, zsys_interrupted ? "worker shutting down" : "command timed out",
                    zsys_interrupted ? 503 : 504);
            while (waitpid (run->pid, &run->status, 0) < 0 && errno == EINTR)
                ;
            return;
        }
        zclock_sleep (pause);
        pause = pause < 64 ? pause * 2 : 64;
    }
}

//  ---------------------------------------------------------------------------
//  Replies

//  Domogik's reply action: "x.get" and "x.do" become "x.result", anything
//  else gets ".result" appended. The caller frees it. (mdp-echo-worker has
//  the same rule; libmdp does not export one.)
static char *s_result_action (const char *action)
{
    size_t length = strlen (action);
    if (length > 4 && streq (action + length - 4, ".get"))
        length -= 4;
    else if (length > 3 && streq (action + length - 3, ".do"))
        length -= 3;
    char *result = malloc (length + sizeof ".result");
    if (result) {
        memcpy (result, action, length);
        memcpy (result + length, ".result", sizeof ".result");
    }
    return result;
}

//  The last lines of stderr (whole lines when it was cut), as printable
//  text: other control bytes and bytes that are not ASCII become '?'.
static char *s_stderr_tail (run_t *run)
{
    size_t size = run->tail_total < STDERR_TAIL ? run->tail_total : STDERR_TAIL;
    size_t start = run->tail_total - size, skip = 0;
    char *text = malloc (size + 1);
    if (!text)
        return NULL;
    for (size_t i = 0; i < size; i++) {
        char c = run->tail[(start + i) % STDERR_TAIL];
        text[i] = c == '\n' || c == '\t' || (c >= 32 && c < 127) ? c : '?';
    }
    text[size] = 0;
    if (run->tail_total > STDERR_TAIL && strchr (text, '\n') &&
        strchr (text, '\n') < text + size - 1)
        skip = (size_t)(strchr (text, '\n') - text) + 1;
    memmove (text, text + skip, size + 1 - skip);
    return text;
}

//  mdp.error {"code", "reason", "stderr", "exit"}.
static mdp_msg_t *s_error (run_t *run, int code, const char *reason, int exit_code)
{
    mdp_msg_t *reply = mdp_msg_new_error (code, reason);
    char *tail = s_stderr_tail (run);
    if (reply) {
        cJSON_AddStringToObject (mdp_msg_data (reply), "stderr", tail ? tail : "");
        cJSON_AddNumberToObject (mdp_msg_data (reply), "exit", exit_code);
    }
    free (tail);
    return reply;
}

//  The reply to a finished run.
static mdp_msg_t *s_reply (run_t *run, const char *action)
{
    int status = run->status;
    int exit_code = WIFEXITED (status)     ? WEXITSTATUS (status)
                    : WIFSIGNALED (status) ? 128 + WTERMSIG (status)
                                           : -1;
    char reason[96];
    if (run->killed_why)
        return s_error (run, run->killed_code, run->killed_why, exit_code);
    if (WIFSIGNALED (status)) {
        snprintf (reason, sizeof reason, "command killed by signal %d", WTERMSIG (status));
        return s_error (run, 500, reason, exit_code);
    }
    if (exit_code != 0) {
        snprintf (reason, sizeof reason, "command exited with status %d", exit_code);
        return s_error (run, 500, reason, exit_code);
    }
    //  The script's numbers pass through as it wrote them (mdp_json).
    cJSON *data = mdp_json_parse (run->output, run->output_size);
    if (!data)
        return s_error (run, 500, "command output is not JSON", exit_code);
    char *result = s_result_action (action);
    mdp_msg_t *reply = result ? mdp_msg_new (result, data) : NULL;
    if (!result)
        cJSON_Delete (data);
    free (result);
    return reply ? reply : mdp_msg_new_error (500, "out of memory");
}

//  The on_request hook: one run of the command.
static mdp_msg_t *s_handle (mdp_worker_t *worker, mdp_msg_t *request, void *arg)
{
    exec_t *self = arg;
    int64_t started = zclock_mono (), deadline = started + self->timeout;
    char *input = mdp_json_print (mdp_msg_data (request)), *mine[2];
    char **envp = input ? s_environment (self->service, mdp_msg_action (request), mine) : NULL;
    if (!envp) {
        free (input);
        return mdp_msg_new_error (500, "out of memory");
    }
    run_t run = {.in = -1, .out = -1, .err = -1, .input = input, .input_size = strlen (input)};
    int rc = s_spawn (self, &run, envp);
    free (envp);
    free (mine[0]);
    free (mine[1]);
    mdp_msg_t *reply;
    if (rc != 0) {
        char reason[320];
        snprintf (reason, sizeof reason, "cannot run %.200s: %s", self->command[0], strerror (rc));
        reply = s_error (&run, 500, reason, 127);
    } else {
        s_pump (&run, deadline);
        s_close (&run.in);
        s_close (&run.out);
        s_close (&run.err);
        s_reap (&run, deadline);
        reply = s_reply (&run, mdp_msg_action (request));
    }
    if (self->verbose)
        zsys_info ("exec: %s -> %s in %" PRId64 " ms", mdp_msg_action (request),
                   reply ? mdp_msg_action (reply) : "-", zclock_mono () - started);
    free (run.output);
    free (input);
    return reply;
}

//  ---------------------------------------------------------------------------
//  The program

static void s_usage (FILE *out)
{
    fprintf (out,
             "usage: mdp-worker-exec [-e ENDPOINT] [-t SECONDS] [-H MS] [-v] SERVICE -- COMMAND "
             "[ARGS...]\n"
             "  -e ENDPOINT         broker endpoint (default %s); repeat -e, or give a\n"
             "                      comma-separated list, to serve several brokers\n"
             "  -t SECONDS          time limit of one run (default 30); then 504\n"
             "  -H, --heartbeat MS  heartbeat interval, as the broker's (default %d)\n"
             "  -v                  log each run\n"
             "  --curve-server KEY  the broker's CURVE public key (Z85): encrypt\n"
             "  --curve-cert FILE   our certificate (mdp-keygen), with --curve-server\n"
             "Each request runs COMMAND (no shell) with the request's JSON data on stdin and\n"
             "MDP_ACTION, MDP_SERVICE in its environment; its stdout, which must be JSON, is\n"
             "the reply's data. Failures are answered mdp.error 500 with the end of stderr.\n"
             "Exit 0 on SIGINT or SIGTERM, 2 on a usage error or a COMMAND not found.\n",
             MDP_DEFAULT_ENDPOINT, MDP_DEFAULT_HEARTBEAT);
}

static const char *s_curve_server; //  --curve-server KEY, or NULL
static const char *s_curve_cert;   //  --curve-cert FILE, or NULL

static char *s_endpoints; //  every -e, comma-separated, or NULL

//  Parse the command line into self and the rest. -1 when done, else an exit code.
static int s_parse (int argc, char *argv[], exec_t *self, const char **endpoint, int *heartbeat)
{
    struct option options[] = {{"heartbeat", required_argument, NULL, 'H'},
                               {"help", no_argument, NULL, 'h'},
                               {"curve-server", required_argument, NULL, 'S'},
                               {"curve-cert", required_argument, NULL, 'C'},
                               {NULL, 0, NULL, 0}};
    int opt;
    char *end = NULL;
    while ((opt = getopt_long (argc, argv, "+e:t:H:vh", options, NULL)) != -1) {
        double seconds = opt == 't' ? strtod (optarg, &end) : 0;
        if (opt == 'e') {
            char *joined =
                s_endpoints ? zsys_sprintf ("%s,%s", s_endpoints, optarg) : strdup (optarg);
            zstr_free (&s_endpoints);
            *endpoint = s_endpoints = joined;
        } else if (opt == 't' && end != optarg && !*end && seconds > 0 && seconds <= 86400)
            self->timeout = seconds < 0.001 ? 1 : (int)(seconds * 1000 + 0.5);
        else if (opt == 'H' && atoi (optarg) > 0)
            *heartbeat = atoi (optarg);
        else if (opt == 'v')
            self->verbose = true;
        else if (opt == 'S')
            s_curve_server = optarg;
        else if (opt == 'C')
            s_curve_cert = optarg;
        else {
            s_usage (opt == 'h' ? stdout : stderr);
            return opt == 'h' ? 0 : 2;
        }
    }
    if (optind < argc)
        self->service = argv[optind++];
    if (optind < argc && streq (argv[optind], "--"))
        optind++;
    if (!self->service || optind >= argc) {
        s_usage (stderr);
        return 2;
    }
    self->command = argv + optind;
    return -1;
}

//  True if command names an executable file, directly or through PATH, as
//  posix_spawnp will look for it.
static bool s_runnable (const char *command)
{
    if (strchr (command, '/'))
        return access (command, X_OK) == 0;
    const char *path = getenv ("PATH");
    char candidate[4096];
    for (const char *dir = path && *path ? path : "/bin:/usr/bin"; dir;) {
        const char *end = strchr (dir, ':');
        int length = end ? (int)(end - dir) : (int)strlen (dir);
        snprintf (candidate, sizeof candidate, "%.*s/%s", length, length ? dir : ".", command);
        if (access (candidate, X_OK) == 0)
            return true;
        dir = end ? end + 1 : NULL;
    }
    return false;
}

//  Serve requests until SIGINT or SIGTERM, with a bounded wait so a signal
//  that lands just before the wait is seen at the next round.
static int s_serve (mdp_worker_t *worker)
{
    zsock_t *socket = mdp_worker_socket (worker);
    zpoller_t *poller = socket ? zpoller_new (socket, NULL) : NULL;
    if (!poller)
        return 1;
    while (!zsys_interrupted)
        if (zpoller_wait (poller, 200) == socket)
            mdp_worker_process (worker);
    zpoller_destroy (&poller);
    return 0;
}

//  Check the command, connect and serve. Returns the exit code.
static int s_main (exec_t *self, const char *endpoint, int heartbeat)
{
    if (!s_runnable (self->command[0])) {
        fprintf (stderr, "mdp-worker-exec: cannot run '%s': %s\n", self->command[0],
                 strerror (errno));
        return 2;
    }
    //  A command that stops reading its stdin must not kill us with SIGPIPE.
    signal (SIGPIPE, SIG_IGN);
    mdp_worker_t *worker = mdp_worker_new (endpoint, self->service);
    if (!worker) {
        fprintf (stderr, "mdp-worker-exec: invalid service '%s' or endpoint '%s'\n", self->service,
                 endpoint);
        return 2;
    }
    if ((s_curve_server || s_curve_cert) &&
        mdp_worker_set_curve (worker, s_curve_server, s_curve_cert) != 0) {
        fprintf (stderr, "mdp-worker-exec: --curve-server needs a Z85 public key and "
                         "--curve-cert a readable certificate\n");
        mdp_worker_destroy (&worker);
        return 2;
    }
    mdp_worker_set_heartbeat (worker, heartbeat, MDP_DEFAULT_LIVENESS);
    mdp_worker_set_handler (worker, s_handle, self);
    if (self->verbose)
        zsys_info ("exec: serving '%s' on %s with %s", self->service, endpoint, self->command[0]);
    int rc = s_serve (worker);
    mdp_worker_destroy (&worker);
    return rc;
}

int main (int argc, char *argv[])
{
    exec_t self = {NULL, NULL, 30000, false};
    const char *endpoint = MDP_DEFAULT_ENDPOINT;
    int heartbeat = MDP_DEFAULT_HEARTBEAT;
    int rc = s_parse (argc, argv, &self, &endpoint, &heartbeat);
    if (rc < 0)
        rc = s_main (&self, endpoint, heartbeat);
    zstr_free (&s_endpoints);
    return rc;
}
