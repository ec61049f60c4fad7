/*  daemon_harness.h - helpers shared by test_daemon.c and test_e2e_daemon.c:
    run the real mdp-broker program with its output on pipes, read what it
    says, and watch a detached broker (not our child) through its pid file.
    A broker started in the foreground dies with the test (PR_SET_PDEATHSIG),
    so a failed assertion never leaves one behind.
*/
#ifndef DAEMON_HARNESS_H_INCLUDED
#define DAEMON_HARNESS_H_INCLUDED

#include "mdp.h"
#include "mdp_client_private.h"
#include "testutil.h"
#include <arpa/inet.h>
#include <check.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define DH_MAX_ARGS 24 //  arguments after the program name

typedef struct {
    int status;      //  exit code, 128+signal, -1 on timeout
    char out[16384]; //  all of stdout
    char err[16384]; //  all of stderr
} dh_result_t;

static char dh_dir[64]; //  this test's scratch directory

static inline void dh_setup (void)
{
    snprintf (dh_dir, sizeof dh_dir, "/tmp/mdp-daemon-test-XXXXXX");
    ck_assert_ptr_nonnull (mkdtemp (dh_dir));
}

static inline int dh_remove (const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove (path);
}

static inline void dh_teardown (void)
{
    ck_assert_int_eq (nftw (dh_dir, dh_remove, 16, FTW_DEPTH | FTW_PHYS), 0);
}

//  A path in the scratch directory, in a buffer the caller gives.
static inline const char *dh_path (char *buffer, size_t size, const char *name)
{
    snprintf (buffer, size, "%s/%s", dh_dir, name);
    return buffer;
}

static inline void dh_write_file (const char *path, const char *text)
{
    FILE *file = fopen (path, "w");
    ck_assert_ptr_nonnull (file);
    ck_assert_int_eq (fputs (text, file) >= 0, 1);
    ck_assert_int_eq (fclose (file), 0);
}

//  Start argv[0] with argv (NULL-ended), its stdout on out_fd and stderr on
//  err_fd (each left alone when < 0). The child dies with the test
//  (PR_SET_PDEATHSIG). Returns the pid.
static inline pid_t dh_spawn_tied (char *const argv[], int out_fd, int err_fd)
{
    pid_t parent = getpid ();
    pid_t pid = fork ();
    if (pid == 0) {
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        if (getppid () != parent)
            _exit (127);
        if (out_fd >= 0)
            dup2 (out_fd, STDOUT_FILENO);
        if (err_fd >= 0)
            dup2 (err_fd, STDERR_FILENO);
        execv (argv[0], argv);
        _exit (127);
    }
    return pid;
}

//  Start the built program (e.g. "mdp-http") with args (NULL-ended) and its
//  stdout and stderr on pipes (read ends in *out_fd and *err_fd). Returns the
//  pid.
static inline pid_t dh_spawn_program (const char *program, const char *const args[], int *out_fd,
                                      int *err_fd)
{
    char *argv[DH_MAX_ARGS + 2] = {strdup (tu_program (program))};
    for (int i = 0; args[i] && i < DH_MAX_ARGS; i++)
        argv[i + 1] = (char *)args[i];
    int out[2], err[2];
    ck_assert_int_eq (pipe2 (out, O_CLOEXEC), 0);
    ck_assert_int_eq (pipe2 (err, O_CLOEXEC), 0);
    pid_t pid = dh_spawn_tied (argv, out[1], err[1]);
    free (argv[0]);
    close (out[1]);
    close (err[1]);
    *out_fd = out[0];
    *err_fd = err[0];
    ck_assert_int_gt (pid, 0);
    return pid;
}

//  Start mdp-broker with args (NULL-ended) and its stdout and stderr on pipes
//  (read ends in *out_fd and *err_fd). Returns the pid.
static inline pid_t dh_spawn (const char *const args[], int *out_fd, int *err_fd)
{
    return dh_spawn_program ("mdp-broker", args, out_fd, err_fd);
}

//  Read fds[0] and fds[1] into bufs until both reach end of file or
//  timeout_ms passes. Returns true at end of file on both.
static inline bool dh_read_all (int fds[2], char *bufs[2], size_t size, int timeout_ms)
{
    size_t used[2] = {0, 0};
    bool open[2] = {fds[0] >= 0, fds[1] >= 0};
    int64_t deadline = zclock_mono () + tu_scale (timeout_ms);
    while ((open[0] || open[1]) && zclock_mono () < deadline) {
        struct pollfd items[2] = {{open[0] ? fds[0] : -1, POLLIN, 0},
                                  {open[1] ? fds[1] : -1, POLLIN, 0}};
        if (poll (items, 2, (int)(deadline - zclock_mono ())) <= 0)
            continue;
        for (int i = 0; i < 2; i++) {
            if (!open[i] || !items[i].revents)
                continue;
            char chunk[4096];
            ssize_t got = read (fds[i], chunk, sizeof chunk);
            if (got <= 0) {
                open[i] = false;
                continue;
            }
            size_t keep = (size_t)got < size - 1 - used[i] ? (size_t)got : size - 1 - used[i];
            memcpy (bufs[i] + used[i], chunk, keep);
            used[i] += keep;
        }
    }
    bufs[0][used[0]] = 0;
    bufs[1][used[1]] = 0;
    return !open[0] && !open[1];
}

//  Run mdp-broker with args to its end (at most 10 s) and collect its output.
static inline int dh_run (dh_result_t *result, const char *const args[])
{
    int fds[2];
    pid_t pid = dh_spawn (args, &fds[0], &fds[1]);
    char *bufs[2] = {result->out, result->err};
    dh_read_all (fds, bufs, sizeof result->out, 10000);
    close (fds[0]);
    close (fds[1]);
    result->status = tu_wait_exit (pid, 10000);
    return result->status;
}

//  Read stderr lines until "serving on ENDPOINT"; copy the first endpoint.
//  Returns true if it came within timeout_ms.
static inline bool dh_endpoint (int err_fd, char *endpoint, size_t size, int timeout_ms)
{
    char *line = tu_read_line_with (err_fd, "serving on ", timeout_ms);
    if (!line)
        return false;
    char *start = strstr (line, "serving on ") + strlen ("serving on ");
    snprintf (endpoint, size, "%.*s", (int)strcspn (start, " "), start);
    free (line);
    return strncmp (endpoint, "tcp://", 6) == 0;
}

//  The pid in a pid file, 0 if there is none (yet).
static inline pid_t dh_read_pidfile (const char *path)
{
    char text[32] = "";
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t size = read (fd, text, sizeof text - 1);
    close (fd);
    return size > 0 ? (pid_t)strtol (text, NULL, 10) : 0;
}

static inline bool dh_file_exists (void *path)
{
    return access ((const char *)path, F_OK) == 0;
}

static inline bool dh_file_gone (void *path)
{
    return access ((const char *)path, F_OK) != 0;
}

//  True when pid has ended: no such process, or a zombie nobody reaped yet
//  (a detached broker is not our child).
static inline bool dh_gone (void *arg)
{
    pid_t pid = (pid_t)(intptr_t)arg;
    if (kill (pid, 0) != 0 && errno == ESRCH)
        return true;
    char path[64], stat[256] = "";
    snprintf (path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *file = fopen (path, "r");
    if (!file)
        return true;
    size_t size = fread (stat, 1, sizeof stat - 1, file);
    fclose (file);
    stat[size] = 0;
    char *state = strrchr (stat, ')');
    return state && state[1] == ' ' && (state[2] == 'Z' || state[2] == 'X');
}

//  Stop a detached broker: SIGTERM, then SIGKILL if it is still there after
//  timeout_ms. Returns true if SIGTERM was enough.
static inline bool dh_stop_detached (pid_t pid, int timeout_ms)
{
    if (pid <= 0)
        return true;
    kill (pid, SIGTERM);
    if (tu_wait_for (dh_gone, (void *)(intptr_t)pid, timeout_ms))
        return true;
    kill (pid, SIGKILL);
    return false;
}

//  A loopback endpoint with a port nobody holds, below the kernel's ephemeral
//  range (32768 and up): peers may connect to it before anyone listens, and a
//  connect to a port of that range can pick it as its own source port and
//  connect to itself (TCP simultaneous open), holding the port.
static inline void dh_free_endpoint (char *endpoint, size_t size)
{
    unsigned int seed = (unsigned int)getpid () ^ (unsigned int)zclock_mono ();
    for (int attempt = 0; attempt < 100; attempt++) {
        int port = 20000 + (int)(rand_r (&seed) % 12000);
        //  A plain bind, closed at once (libzmq lets a port go later, in its I/O thread).
        struct sockaddr_in addr = {.sin_family = AF_INET,
                                   .sin_port = htons ((uint16_t)port),
                                   .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
        int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int rc = fd >= 0 ? bind (fd, (struct sockaddr *)&addr, sizeof addr) : -1;
        if (fd >= 0)
            close (fd);
        snprintf (endpoint, size, "tcp://127.0.0.1:%d", port);
        if (rc == 0)
            return;
    }
    ck_abort_msg ("no free port below the ephemeral range");
}

//  Workers registered for service, as mmi.workers says; -1 without an answer.
static inline int dh_workers_of (mdp_client_t *client, const char *service)
{
    char *text = mdp_client_mmi (client, "mmi.workers", "all");
    cJSON *json = text ? cJSON_ParseWithOpts (text, NULL, 1) : NULL;
    free (text);
    if (!json)
        return -1;
    cJSON *services = cJSON_GetObjectItemCaseSensitive (json, "services");
    cJSON *entry = cJSON_GetObjectItemCaseSensitive (services, service);
    cJSON *workers = cJSON_GetObjectItemCaseSensitive (entry, "workers");
    int count = cJSON_IsNumber (workers) ? workers->valueint : 0;
    cJSON_Delete (json);
    return count;
}

#endif
