/*  load_harness.h - the real processes of the load suites (test_load*.c): an
    mdp-broker and mdp-echo-worker slots, every one recorded so that every
    failure path (LOAD_ASSERT) stops them all, their output appended to one
    log in the build's tests/ folder. Included by one suite each (static
    functions and state).
*/
#ifndef LOAD_HARNESS_H_INCLUDED
#define LOAD_HARNESS_H_INCLUDED

#include "mdp.h"
#include "testutil.h"
#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#define WORKERS 5 //  mdp-echo-worker slots in every test

//  Every process a test starts, so that every failure path can stop them all.
//  (Check also SIGKILLs the test's process group when a test ends.)
static pid_t s_broker;           //  the mdp-broker, 0 when none
static pid_t s_workers[WORKERS]; //  mdp-echo-worker slots, 0 when empty
static char s_endpoint[256];     //  where the broker serves
static int s_log = -1;           //  the programs' stdout and stderr (appended)
static char s_log_path[512];     //  its path, in the build's tests/ folder

__attribute__ ((unused)) static void s_stop_all (void)
{
    for (int slot = 0; slot < WORKERS; slot++)
        if (s_workers[slot] > 0)
            tu_stop (s_workers[slot], SIGTERM, 5000);
    memset (s_workers, 0, sizeof s_workers);
    if (s_broker > 0)
        tu_stop (s_broker, SIGTERM, 5000);
    s_broker = 0;
}

//  Assert, after stopping every process this test started.
#define LOAD_ASSERT(cond, ...)                                                                     \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            s_stop_all ();                                                                         \
            ck_abort_msg (__VA_ARGS__);                                                            \
        }                                                                                          \
    } while (0)

__attribute__ ((unused)) static void s_setup (void)
{
    s_log = open (s_log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    ck_assert_int_ge (s_log, 0);
}

__attribute__ ((unused)) static void s_teardown (void)
{
    s_stop_all ();
    close (s_log);
}

//  --- the programs -----------------------------------------------------------

typedef struct {
    off_t offset;       //  where this broker's lines start in the log
    pid_t pid;          //  the broker
    bool exited;        //  it ended (e.g. the port was still busy)
    char endpoint[256]; //  what it serves on, once it said so
} started_t;

//  True when the broker logged "serving on ENDPOINT" or has exited.
__attribute__ ((unused)) static bool s_broker_said (void *arg)
{
    started_t *started = arg;
    static char text[65536];
    int fd = open (s_log_path, O_RDONLY | O_CLOEXEC);
    ssize_t size = fd >= 0 ? pread (fd, text, sizeof text - 1, started->offset) : -1;
    if (fd >= 0)
        close (fd);
    text[size > 0 ? size : 0] = 0;
    char *line = strstr (text, "mdp-broker: serving on tcp://");
    char *end = line ? strchr (line + 23, ' ') : NULL;
    if (end) {
        snprintf (started->endpoint, sizeof started->endpoint, "%.*s", (int)(end - line - 23),
                  line + 23);
        return true;
    }
    started->exited = waitpid (started->pid, NULL, WNOHANG) == started->pid;
    return started->exited;
}

//  Start mdp-broker bound to bind with up to 4 extra arguments (NULL-ended),
//  wait until it serves and note its endpoint. Returns 0, or -1 if it exited.
__attribute__ ((unused)) static int s_broker_start (const char *bind, const char *extra[])
{
    char program[512], *argv[8] = {program, "-e", (char *)bind};
    snprintf (program, sizeof program, "%s", tu_program ("mdp-broker"));
    for (int arg = 0; arg < 4 && extra && extra[arg]; arg++)
        argv[3 + arg] = (char *)extra[arg];
    started_t started = {lseek (s_log, 0, SEEK_END), 0, false, ""};
    started.pid = s_broker = tu_spawn_err (argv, s_log, s_log);
    if (!tu_wait_for (s_broker_said, &started, 10000) || started.exited) {
        if (!started.exited)
            tu_stop (s_broker, SIGKILL, 1000);
        s_broker = 0;
        return -1;
    }
    snprintf (s_endpoint, sizeof s_endpoint, "%s", started.endpoint);
    return 0;
}

//  SIGTERM the broker (it answers 503 to all it holds and exits 0) and start
//  a new one on the same endpoint, retrying briefly if the port is still busy.
//  Returns the old broker's exit code, or -1 if no new broker came up.
__attribute__ ((unused)) static int s_broker_restart (const char *extra[])
{
    int status = tu_stop (s_broker, SIGTERM, 5000);
    s_broker = 0;
    char bind[256];
    snprintf (bind, sizeof bind, "%s", s_endpoint);
    int64_t until = zclock_mono () + tu_scale (3000);
    while (s_broker_start (bind, extra) != 0) {
        if (zclock_mono () > until)
            return -1;
        zclock_sleep (50); //  then try the port again
    }
    return WIFEXITED (status) ? WEXITSTATUS (status) : 128;
}

//  Start an mdp-echo-worker for "echo" (heartbeat msecs; 0: the default).
__attribute__ ((unused)) static pid_t s_worker_start (int heartbeat)
{
    char program[512], beat[16];
    snprintf (program, sizeof program, "%s", tu_program ("mdp-echo-worker"));
    snprintf (beat, sizeof beat, "%d", heartbeat > 0 ? heartbeat : MDP_DEFAULT_HEARTBEAT);
    char *const argv[] = {program, "-e", s_endpoint, "-H", beat, "echo", NULL};
    return tu_spawn_err (argv, s_log, s_log);
}

__attribute__ ((unused)) static bool s_has_echo (void *arg)
{
    return mdp_client_has_service ((mdp_client_t *)arg, "echo") == 1;
}

//  True once the broker knows a worker for "echo" (bounded wait).
__attribute__ ((unused)) static bool s_wait_echo (void)
{
    mdp_client_t *client = mdp_client_new (s_endpoint);
    mdp_client_set_timeout (client, 500);
    mdp_client_set_retries (client, 1);
    bool ok = client && tu_wait_for (s_has_echo, client, 10000);
    mdp_client_destroy (&client);
    return ok;
}

//  Name the programs' log after suite (BUILD/tests/SUITE.programs.log) and
//  empty it; main calls this once, before the tests.
__attribute__ ((unused)) static void s_log_init (const char *suite)
{
    const char *build = getenv ("MDP_BUILD");
    snprintf (s_log_path, sizeof s_log_path, "%s/tests/%s.programs.log",
              build && *build ? build : "build", suite);
    int fd = open (s_log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0)
        close (fd);
}

#endif
