/*  testutil.c - see testutil.h. */
#include "testutil.h"
#include <check.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <unistd.h>

int tu_scale (int msecs)
{
    const char *slow = getenv ("MDP_TEST_SLOW");
    return slow && *slow == '1' ? msecs * 10 : msecs;
}

bool tu_wait_for (bool (*cond) (void *arg), void *arg, int timeout_ms)
{
    int64_t deadline = zclock_mono () + tu_scale (timeout_ms);
    while (!cond (arg)) {
        if (zclock_mono () >= deadline)
            return cond (arg);
        zclock_sleep (5);
    }
    return true;
}

const char *tu_program (const char *name)
{
    static char path[512];
    const char *build = getenv ("MDP_BUILD");
    snprintf (path, sizeof path, "%s/bin/%s", build && *build ? build : "build", name);
    return path;
}

pid_t tu_spawn_err (char *const argv[], int out_fd, int err_fd)
{
    pid_t pid = fork ();
    if (pid == 0) {
        if (out_fd >= 0)
            dup2 (out_fd, STDOUT_FILENO);
        if (err_fd >= 0)
            dup2 (err_fd, STDERR_FILENO);
        execv (argv[0], argv);
        _exit (127);
    }
    return pid;
}

pid_t tu_spawn (char *const argv[], int out_fd)
{
    return tu_spawn_err (argv, out_fd, -1);
}

char *tu_read_line_with (int fd, const char *needle, int timeout_ms)
{
    char line[1024];
    size_t used = 0;
    int64_t deadline = zclock_mono () + tu_scale (timeout_ms);
    while (zclock_mono () < deadline) {
        zmq_pollitem_t item = {NULL, fd, ZMQ_POLLIN, 0};
        if (zmq_poll (&item, 1, (long)(deadline - zclock_mono ())) <= 0)
            continue;
        char c;
        if (read (fd, &c, 1) != 1)
            return NULL;
        if (c != '\n' && used < sizeof line - 1) {
            line[used++] = c;
            continue;
        }
        line[used] = 0;
        if (strstr (line, needle))
            return strdup (line);
        used = 0;
    }
    return NULL;
}

static int s_reap (pid_t pid, int timeout_ms, int *status)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    while (true) {
        pid_t rc = waitpid (pid, status, WNOHANG);
        if (rc == pid)
            return 0;
        if (rc < 0)
            return -1;
        if (zclock_mono () >= deadline)
            return 1;
        zclock_sleep (5);
    }
}

int tu_stop (pid_t pid, int sig, int timeout_ms)
{
    int status = 0;
    if (pid <= 0)
        return -1;
    kill (pid, sig);
    int rc = s_reap (pid, tu_scale (timeout_ms), &status);
    if (rc == 1) {
        kill (pid, SIGKILL);
        waitpid (pid, &status, 0);
    }
    return rc < 0 ? -1 : status;
}

int tu_wait_exit (pid_t pid, int timeout_ms)
{
    int status = 0;
    int rc = s_reap (pid, tu_scale (timeout_ms), &status);
    if (rc != 0) {
        kill (pid, SIGKILL);
        waitpid (pid, &status, 0);
        return -1;
    }
    if (WIFEXITED (status))
        return WEXITSTATUS (status);
    return 128 + WTERMSIG (status);
}

zsock_t *tu_router_bound (char **endpoint_p)
{
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    if (!router)
        return NULL;
    if (zsock_bind (router, "tcp://127.0.0.1:*") < 0) {
        zsock_destroy (&router);
        return NULL;
    }
    *endpoint_p = zsock_last_endpoint (router);
    return router;
}

zmsg_t *tu_recv (zsock_t *sock, int timeout_ms)
{
    zpoller_t *poller = zpoller_new (sock, NULL);
    zmsg_t *msg = NULL;
    if (zpoller_wait (poller, tu_scale (timeout_ms)) == sock)
        msg = zmsg_recv (sock);
    zpoller_destroy (&poller);
    return msg;
}

void tu_assert_frames (zmsg_t *msg, int count, ...)
{
    ck_assert_ptr_nonnull (msg);
    ck_assert_int_eq (zmsg_size (msg), count);
    va_list args;
    va_start (args, count);
    zframe_t *frame = zmsg_first (msg);
    for (int index = 0; index < count; index++, frame = zmsg_next (msg)) {
        const char *expected = va_arg (args, const char *);
        if (expected) {
            char *actual = zframe_strdup (frame);
            ck_assert_msg (zframe_streq (frame, expected), "frame %d is '%s', expected '%s'", index,
                           actual, expected);
            free (actual);
        }
    }
    va_end (args);
}

//  Append count strings from args to msg and send it on router.
static void s_send_strings (zsock_t *router, zmsg_t *msg, int count, va_list args)
{
    for (int index = 0; index < count; index++)
        zmsg_addstr (msg, va_arg (args, const char *));
    ck_assert_int_eq (zmsg_send (&msg, router), 0);
}

void tu_send_to (zsock_t *router, zmsg_t *request, zframe_t *first, int count, ...)
{
    zmsg_t *msg = zmsg_new ();
    zframe_t *id = zframe_dup (zmsg_first (request));
    zmsg_append (msg, &id);
    if (first)
        zmsg_append (msg, &first);
    va_list args;
    va_start (args, count);
    s_send_strings (router, msg, count, args);
    va_end (args);
}

void tu_answer (zsock_t *router, zmsg_t *request, int count, ...)
{
    zmsg_t *msg = zmsg_new ();
    for (zframe_t *frame = zmsg_first (request); frame; frame = zmsg_next (request)) {
        zframe_t *copy = zframe_dup (frame);
        zmsg_append (msg, &copy);
        if (zframe_size (frame) == 0)
            break;
    }
    va_list args;
    va_start (args, count);
    s_send_strings (router, msg, count, args);
    va_end (args);
}

zframe_t *tu_id_frame (uint64_t id)
{
    byte data[8];
    for (int index = 0; index < 8; index++)
        data[index] = (byte)(id >> (56 - 8 * index));
    return zframe_new (data, 8);
}

tu_pair_t tu_pair_new (void)
{
    tu_pair_t pair;
    char *a, *b;
    pair.a = tu_router_bound (&a);
    pair.b = tu_router_bound (&b);
    ck_assert_ptr_nonnull (pair.a);
    ck_assert_ptr_nonnull (pair.b);
    pair.list = zsys_sprintf ("%s,%s", a, b);
    free (a);
    free (b);
    return pair;
}

void tu_pair_destroy (tu_pair_t *pair)
{
    zsock_destroy (&pair->a);
    zsock_destroy (&pair->b);
    zstr_free (&pair->list);
}

int tu_run_suite (Suite *suite)
{
    SRunner *runner = srunner_create (suite);
    srunner_run_all (runner, CK_NORMAL);
    int failed = srunner_ntests_failed (runner);
    srunner_free (runner);
    return failed == 0 ? 0 : 1;
}

void tu_worker_run (zsock_t *pipe, mdp_worker_t **worker_p)
{
    mdp_worker_t *worker = *worker_p;
    zpoller_t *poller = zpoller_new (pipe, mdp_worker_socket (worker), NULL);
    zsock_signal (pipe, 0);
    while (true) {
        void *which = zpoller_wait (poller, -1);
        if (which == pipe || !which)
            break; //  $TERM from the test
        mdp_worker_process (worker);
    }
    zpoller_destroy (&poller);
    mdp_worker_destroy (worker_p);
}

//  tu_wait_for's condition: args is {endpoint, service}.
static bool s_has_service (void *arg)
{
    const char **args = arg;
    mdp_client_t *client = mdp_client_new (args[0]);
    if (!client)
        return false;
    mdp_client_set_timeout (client, tu_scale (500));
    mdp_client_set_retries (client, 1);
    bool found = mdp_client_has_service (client, args[1]) == 1;
    mdp_client_destroy (&client);
    return found;
}

bool tu_wait_service (const char *endpoint, const char *service, int timeout_ms)
{
    const char *args[] = {endpoint, service};
    return tu_wait_for (s_has_service, args, timeout_ms);
}

int tu_run_capture (char *const argv[], char *out, size_t size, int msecs)
{
    int fds[2];
    ck_assert_int_eq (pipe (fds), 0);
    pid_t pid = tu_spawn (argv, fds[1]);
    close (fds[1]);
    size_t used = 0;
    int64_t deadline = zclock_mono () + tu_scale (msecs);
    while (used < size - 1 && zclock_mono () < deadline) {
        zmq_pollitem_t item = {NULL, fds[0], ZMQ_POLLIN, 0};
        if (zmq_poll (&item, 1, 50) <= 0)
            continue;
        ssize_t got = read (fds[0], out + used, size - 1 - used);
        if (got <= 0)
            break;
        used += (size_t)got;
    }
    out[used] = 0;
    close (fds[0]);
    return tu_wait_exit (pid, msecs);
}

mdp_client_t *tu_client (const char *endpoint, int timeout_ms)
{
    mdp_client_t *client = mdp_client_new (endpoint);
    ck_assert_ptr_nonnull (client);
    mdp_client_set_timeout (client, tu_scale (timeout_ms));
    mdp_client_set_retries (client, 1);
    return client;
}
