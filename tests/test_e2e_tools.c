/*  test_e2e_tools.c - the observability and scripting tools end to end, as
    programs against an in-process broker: mdp-stat (table, --json, --watch,
    a silent broker) and mdp-worker-exec running small shell scripts (replies,
    environment, failures, bad and oversized output, the time limit and what
    it leaves behind, heartbeats while a command runs).
*/
#include "broker.h"
#include "mdp.h"
#include "testutil.h"
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static zactor_t *broker;
static char *endpoint;
static int heartbeat; //  the broker's, msecs

static void s_start_broker (int msecs)
{
    static broker_config_t cfg;
    broker_config_defaults (&cfg);
    cfg.heartbeat = heartbeat = msecs;
    broker_actor_args_t args = {NULL, &cfg};
    broker = zactor_new (broker_actor, &args);
    ck_assert_ptr_nonnull (broker);
    zstr_send (broker, "ENDPOINT");
    endpoint = zstr_recv (broker);
    ck_assert_ptr_nonnull (endpoint);
}

static void s_setup (void)
{
    s_start_broker (2500);
}

static void s_teardown (void)
{
    zactor_destroy (&broker);
    zstr_free (&endpoint);
}

//  An echo worker in a thread (an actor over mdp_worker_socket/process).
static mdp_msg_t *s_echo (mdp_worker_t *worker, mdp_msg_t *request, void *arg)
{
    return mdp_msg_new ("echo.result", cJSON_Duplicate (mdp_msg_data (request), 1));
}

static void s_echo_actor (zsock_t *pipe, void *args)
{
    mdp_worker_t *worker = mdp_worker_new (endpoint, "echo");
    mdp_worker_set_handler (worker, s_echo, NULL);
    tu_worker_run (pipe, &worker);
}

//  Wait until the broker has a worker for service.
static void s_wait_service (const char *service)
{
    ck_assert_msg (tu_wait_service (endpoint, service, 10000), "no worker for %s", service);
}

//  Send action with data (JSON text) to service; the reply, which must come.
static mdp_msg_t *s_request (const char *service, const char *action, const char *json)
{
    mdp_client_t *client = tu_client (endpoint, 10000);
    mdp_msg_t *request = mdp_msg_new (action, mdp_json_parse (json, strlen (json)));
    mdp_msg_t *reply = mdp_client_request (client, service, &request);
    ck_assert_msg (reply != NULL, "no reply to %s from %s", action, service);
    mdp_client_destroy (&client);
    return reply;
}

static void s_make_traffic (int count)
{
    for (int i = 0; i < count; i++) {
        mdp_msg_t *reply = s_request ("echo", "x.get", "{}");
        mdp_msg_destroy (&reply);
    }
}

//  ---------------------------------------------------------------------------
//  mdp-stat

START_TEST (test_stat_table_and_json)
{
    zactor_t *worker = zactor_new (s_echo_actor, NULL);
    s_wait_service ("echo");
    s_make_traffic (3);
    char out[8192], *program = strdup (tu_program ("mdp-stat"));
    char *const argv[] = {program, "-e", endpoint, "-t", "5000", NULL};
    ck_assert_int_eq (tu_run_capture (argv, out, sizeof out, 15000), 0);
    ck_assert_msg (strstr (out, "  up ") && strstr (out, "  requests "), "%s", out);
    ck_assert_msg (strstr (out, "\nSERVICE "), "%s", out);
    char *row = strstr (out, "\necho ");
    ck_assert_msg (row != NULL, "no echo row: %s", out);
    char name[32];
    int workers, idle, queued, requests, replies;
    ck_assert_int_eq (sscanf (row + 1, "%31s %d %d %d %d %d", name, &workers, &idle, &queued,
                              &requests, &replies),
                      6);
    ck_assert_int_eq (workers, 1);
    ck_assert_int_eq (idle, 1);
    ck_assert_int_eq (queued, 0);
    ck_assert_int_eq (requests, 3);
    ck_assert_int_eq (replies, 3);
    //  The same figures for scripts: the two answers as one JSON object.
    char *const json_argv[] = {program, "-e", endpoint, "--json", NULL};
    ck_assert_int_eq (tu_run_capture (json_argv, out, sizeof out, 15000), 0);
    const char *end = NULL;
    cJSON *json = cJSON_ParseWithOpts (out, &end, 1);
    ck_assert_msg (json != NULL, "not JSON: %s", out);
    cJSON *live = cJSON_GetObjectItem (cJSON_GetObjectItem (json, "workers"), "services");
    cJSON *stats = cJSON_GetObjectItem (json, "stats");
    ck_assert_int_eq (cJSON_GetObjectItem (cJSON_GetObjectItem (live, "echo"), "workers")->valueint,
                      1);
    cJSON *echo = cJSON_GetObjectItem (cJSON_GetObjectItem (stats, "services"), "echo");
    ck_assert_int_eq (cJSON_GetObjectItem (echo, "requests")->valueint, 3);
    ck_assert (cJSON_IsNumber (cJSON_GetObjectItem (echo, "p99_ms")));
    ck_assert (cJSON_IsNumber (cJSON_GetObjectItem (stats, "uptime")));
    cJSON_Delete (json);
    free (program);
    zactor_destroy (&worker);
}
END_TEST

START_TEST (test_stat_silent_broker)
{
    //  A ROUTER that never answers: exit 3.
    char *silent_endpoint = NULL;
    zsock_t *silent = tu_router_bound (&silent_endpoint);
    ck_assert_ptr_nonnull (silent);
    char out[4096], *program = strdup (tu_program ("mdp-stat"));
    char *const argv[] = {program, "-e", silent_endpoint, "-t", "300", NULL};
    ck_assert_int_eq (tu_run_capture (argv, out, sizeof out, 15000), 3);
    free (program);
    zstr_free (&silent_endpoint);
    zsock_destroy (&silent);
}
END_TEST

START_TEST (test_stat_watch_until_sigint)
{
    zactor_t *worker = zactor_new (s_echo_actor, NULL);
    s_wait_service ("echo");
    int fds[2];
    ck_assert_int_eq (pipe (fds), 0);
    char *program = strdup (tu_program ("mdp-stat"));
    char *const argv[] = {program, "-e", endpoint, "--watch", "0.1", NULL};
    pid_t pid = tu_spawn (argv, fds[1]);
    close (fds[1]);
    for (int i = 0; i < 2; i++) { //  two reports, not cleared (not a tty)
        char *line = tu_read_line_with (fds[0], "SERVICE", 10000);
        ck_assert_ptr_nonnull (line);
        ck_assert_ptr_null (strchr (line, '\033'));
        free (line);
    }
    int status = tu_stop (pid, SIGINT, 5000);
    ck_assert_msg (WIFEXITED (status) && WEXITSTATUS (status) == 0, "status %d", status);
    close (fds[0]);
    free (program);
    zactor_destroy (&worker);
}
END_TEST

//  ---------------------------------------------------------------------------
//  mdp-worker-exec

//  One script for every case, chosen by the action; $1 is a file for pids.
static const char *s_script =
    "case \"$MDP_ACTION\" in\n"
    "  echo.get) cat ;;\n"
    "  fixed.do) printf '{\"x\": 1}' ;;\n"
    "  numbers.do) printf '%s' '" TU_NUMBERS_IN "' ;;\n"
    "  env.get) printf '{\"action\": \"%s\", \"service\": \"%s\"}' \"$MDP_ACTION\" "
    "\"$MDP_SERVICE\" ;;\n"
    "  chatty.do) head -c 100000 /dev/zero | tr '\\0' e >&2; cat ;;\n"
    "  fail.do) echo first >&2; echo 'second line' >&2; exit 3 ;;\n"
    "  killed.do) kill -9 $$ ;;\n"
    "  bad.do) echo 'not json' ;;\n"
    "  big.do) head -c 2000000 /dev/zero | tr '\\0' 1 ;;\n"
    "  slow.do) sleep 30 & echo $$ $! > \"$1\"; wait ;;\n"
    "esac\n";

//  Start mdp-worker-exec for service with the script; wait until it is there.
static pid_t s_exec_worker (const char *service, const char *pidfile, const char *limit)
{
    char *program = strdup (tu_program ("mdp-worker-exec")), beat[16];
    snprintf (beat, sizeof beat, "%d", heartbeat);
    char *const argv[] = {program,       "-e",
                          endpoint,      "-t",
                          (char *)limit, "--heartbeat",
                          beat,          (char *)service,
                          "--",          "/bin/sh",
                          "-c",          (char *)s_script,
                          "sh",          (char *)pidfile,
                          NULL};
    pid_t pid = tu_spawn (argv, -1);
    ck_assert_int_gt (pid, 0);
    free (program);
    s_wait_service (service);
    return pid;
}

//  The reply's data as text, and its action must be want.
static void s_expect_reply (mdp_msg_t **reply_p, const char *want, const char *json)
{
    ck_assert_str_eq (mdp_msg_action (*reply_p), want);
    const char *end = NULL;
    cJSON *expected = cJSON_ParseWithOpts (json, &end, 1);
    ck_assert_msg (cJSON_Compare (mdp_msg_data (*reply_p), expected, 1), "data %s, want %s",
                   cJSON_PrintUnformatted (mdp_msg_data (*reply_p)), json);
    cJSON_Delete (expected);
    mdp_msg_destroy (reply_p);
}

//  An mdp.error reply with this code and reason; returns its stderr text.
static char *s_expect_error (mdp_msg_t **reply_p, int code, const char *reason, int exit_code)
{
    ck_assert_str_eq (mdp_msg_action (*reply_p), "mdp.error");
    cJSON *data = mdp_msg_data (*reply_p);
    ck_assert_int_eq (mdp_msg_error_code (*reply_p), code);
    ck_assert_str_eq (cJSON_GetStringValue (cJSON_GetObjectItem (data, "reason")), reason);
    if (exit_code >= 0)
        ck_assert_int_eq (cJSON_GetObjectItem (data, "exit")->valueint, exit_code);
    char *text = strdup (cJSON_GetStringValue (cJSON_GetObjectItem (data, "stderr")));
    mdp_msg_destroy (reply_p);
    return text;
}

START_TEST (test_exec_replies)
{
    pid_t pid = s_exec_worker ("shell", "/dev/null", "10");
    mdp_msg_t *reply = s_request ("shell", "echo.get", "{\"a\": [1, \"two\"], \"b\": null}");
    s_expect_reply (&reply, "echo.result", "{\"a\": [1, \"two\"], \"b\": null}");
    reply = s_request ("shell", "fixed.do", "{}");
    s_expect_reply (&reply, "fixed.result", "{\"x\": 1}");
    reply = s_request ("shell", "env.get", "{}");
    s_expect_reply (&reply, "env.result", "{\"action\": \"env.get\", \"service\": \"shell\"}");
    //  100 KB of stderr while 100 KB of stdin goes in and comes back out, each
    //  more than a pipe holds: the pipes are served together, so nothing stalls.
    size_t size = 100000;
    char *json = malloc (size + 16);
    memcpy (json, "{\"s\": \"", 7);
    memset (json + 7, 'z', size);
    memcpy (json + 7 + size, "\"}", 3);
    reply = s_request ("shell", "chatty.do", json);
    s_expect_reply (&reply, "chatty.result", json);
    free (json);
    ck_assert_int_eq (tu_stop (pid, SIGTERM, 5000), 0);
}
END_TEST

static bool s_dead (void *arg)
{
    pid_t pid = *(pid_t *)arg;
    char path[64], stat[256] = "";
    snprintf (path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *file = fopen (path, "r");
    if (!file)
        return true;
    size_t got = fread (stat, 1, sizeof stat - 1, file);
    fclose (file);
    stat[got] = 0;
    char *state = strrchr (stat, ')');
    return !state || state[2] == 'Z'; //  a zombie is dead, only not yet reaped by init
}

//  Issue 12 item 3: numbers reach the command's stdin as written, and the
//  command's own number text comes back as it wrote it.
START_TEST (test_exec_numbers_pass_as_written)
{
    pid_t pid = s_exec_worker ("shell", "/dev/null", "10");
    const char *requests[] = {"echo.get", "numbers.do"};
    for (int index = 0; index < 2; index++) {
        mdp_msg_t *reply = s_request ("shell", requests[index], TU_NUMBERS_IN);
        char *text = mdp_json_print (mdp_msg_data (reply));
        ck_assert_str_eq (text, TU_NUMBERS);
        free (text);
        mdp_msg_destroy (&reply);
    }
    ck_assert_int_eq (tu_stop (pid, SIGTERM, 5000), 0);
}
END_TEST

START_TEST (test_exec_failures)
{
    //  A fast heartbeat: the worker must keep beating while a command runs.
    s_teardown ();
    s_start_broker (tu_scale (500)); //  dead after 1.5 s of silence
    char pidfile[] = "/tmp/test_e2e_tools.XXXXXX";
    int fd = mkstemp (pidfile);
    ck_assert_int_ge (fd, 0);
    close (fd);
    pid_t pid = s_exec_worker ("shell", pidfile, tu_scale (1) > 1 ? "3" : "2");
    mdp_msg_t *reply = s_request ("shell", "fail.do", "{}");
    char *text = s_expect_error (&reply, 500, "command exited with status 3", 3);
    ck_assert_str_eq (text, "first\nsecond line\n");
    free (text);
    reply = s_request ("shell", "killed.do", "{}");
    free (s_expect_error (&reply, 500, "command killed by signal 9", 137));
    reply = s_request ("shell", "bad.do", "{}");
    free (s_expect_error (&reply, 500, "command output is not JSON", 0));
    reply = s_request ("shell", "big.do", "{}");
    free (s_expect_error (&reply, 500, "command output is over 1 MiB", -1));
    //  Past the time limit: 504, and the command and its child are gone.
    reply = s_request ("shell", "slow.do", "{}");
    free (s_expect_error (&reply, 504, "command timed out", 137));
    FILE *file = fopen (pidfile, "r");
    ck_assert_ptr_nonnull (file);
    int shell = 0, child = 0;
    ck_assert_int_eq (fscanf (file, "%d %d", &shell, &child), 2);
    fclose (file);
    unlink (pidfile);
    ck_assert_int_eq (kill (shell, 0), -1); //  reaped by the worker
    ck_assert_int_eq (errno, ESRCH);
    pid_t orphan = child;
    ck_assert_msg (tu_wait_for (s_dead, &orphan, 2000), "the command's child %d lives", child);
    //  Still serving, and still registered: it never stopped heartbeating.
    reply = s_request ("shell", "fixed.do", "{}");
    s_expect_reply (&reply, "fixed.result", "{\"x\": 1}");
    ck_assert_int_eq (tu_stop (pid, SIGTERM, 5000), 0);
}
END_TEST

START_TEST (test_exec_command_not_found)
{
    //  A COMMAND that is not on PATH: exit 2 at once, not a worker that fails
    //  every request.
    char *program = strdup (tu_program ("mdp-worker-exec")), out[1024];
    char *const argv[] = {program, "-e", endpoint, "missing", "--", "no-such-command-xyz", NULL};
    ck_assert_int_eq (tu_run_capture (argv, out, sizeof out, 15000), 2);
    free (program);
}
END_TEST

int main (void)
{
    Suite *suite = suite_create ("e2e-tools");
    TCase *tc = tcase_create ("tools");
    tcase_add_checked_fixture (tc, s_setup, s_teardown);
    tcase_set_timeout (tc, 60);
    tcase_add_test (tc, test_stat_table_and_json);
    tcase_add_test (tc, test_stat_silent_broker);
    tcase_add_test (tc, test_stat_watch_until_sigint);
    tcase_add_test (tc, test_exec_replies);
    tcase_add_test (tc, test_exec_numbers_pass_as_written);
    tcase_add_test (tc, test_exec_failures);
    tcase_add_test (tc, test_exec_command_not_found);
    suite_add_tcase (suite, tc);
    return tu_run_suite (suite);
}
