/*  test_bench.c - mdp-bench as a tool: it runs against mdp-broker and against
    mdp-relay, in sync, async and pipe mode, with extra services and idle
    workers and as processes, and prints one JSON object with the number of
    requests it was asked for. Correctness of the tool only: no figure is
    ever asserted.
*/
#include "testutil.h"
#include <check.h>
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <unistd.h>

//  Run mdp-bench with args (NULL-terminated) and return its stdout parsed as
//  JSON; the exit code must be 0.
static cJSON *s_bench (const char *arg, ...)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = strdup (tu_program ("mdp-bench"));
    va_list args;
    va_start (args, arg);
    for (const char *next = arg; next && argc < 30; next = va_arg (args, const char *))
        argv[argc++] = (char *) next;
    va_end (args);
    argv[argc++] = "--json";
    argv[argc] = NULL;
    int fds[2];
    ck_assert_int_eq (pipe (fds), 0);
    pid_t pid = tu_spawn (argv, fds[1]);
    close (fds[1]);
    ck_assert_int_gt (pid, 0);
    //  One JSON line: it fits in the pipe, so it can be read after the exit.
    int code = tu_wait_exit (pid, 60000);
    char output[16384];
    ssize_t size = read (fds[0], output, sizeof output - 1);
    close (fds[0]);
    free (argv[0]);
    ck_assert_int_eq (code, 0);
    ck_assert_int_gt (size, 0);
    output[size] = 0;
    const char *end = NULL;
    cJSON *json = cJSON_ParseWithOpts (output, &end, false);
    ck_assert_msg (json != NULL, "not JSON: %s", output);
    return json;
}

static double s_number (const cJSON *object, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive (object, name);
    ck_assert_msg (cJSON_IsNumber (item), "no number '%s'", name);
    return item->valuedouble;
}

static void s_check_run (const cJSON *run, const char *broker, double requests)
{
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive (run, "broker");
    ck_assert (cJSON_IsString (kind));
    ck_assert_str_eq (kind->valuestring, broker);
    ck_assert_double_eq (s_number (run, "requests"), requests);
    ck_assert_double_eq (s_number (run, "errors"), 0);
    const cJSON *latency = cJSON_GetObjectItemCaseSensitive (run, "latency_us");
    ck_assert (cJSON_IsObject (latency));
    ck_assert (s_number (latency, "p50") <= s_number (latency, "max"));
}

START_TEST (test_sync_against_mdp_broker)
{
    cJSON *json = s_bench ("--broker", "mdp", "-n", "200", NULL);
    s_check_run (json, "mdp", 200);
    const cJSON *mode = cJSON_GetObjectItemCaseSensitive (json, "mode");
    ck_assert_str_eq (mode->valuestring, "sync");
    //  It measured a broker it started: CPU and memory are known.
    ck_assert (s_number (json, "broker_rss_kib") > 0);
    cJSON_Delete (json);
}
END_TEST

START_TEST (test_async_against_raw_relay)
{
    cJSON *json = s_bench ("--broker", "raw", "--mode", "async", "-W", "8", "-c", "3", "-w", "2",
                           "-n", "200", NULL);
    s_check_run (json, "raw", 200);
    ck_assert_double_eq (s_number (json, "window"), 8);
    cJSON_Delete (json);
}
END_TEST

START_TEST (test_both_with_services_and_idle_workers)
{
    cJSON *json = s_bench ("--broker", "both", "--mode", "async", "-c", "2", "-w", "2", "-s",
                           "20000", "--services", "5", "--idle-workers", "3", "-n", "200", NULL);
    s_check_run (cJSON_GetObjectItemCaseSensitive (json, "mdp"), "mdp", 200);
    s_check_run (cJSON_GetObjectItemCaseSensitive (json, "raw"), "raw", 200);
    ck_assert (cJSON_IsObject (cJSON_GetObjectItemCaseSensitive (json, "ratio")));
    cJSON_Delete (json);
}
END_TEST

START_TEST (test_processes_and_uneven_split)
{
    //  200 requests over 3 clients: 67 + 67 + 66.
    cJSON *json = s_bench ("--broker", "mdp", "--procs", "-c", "3", "-w", "2", "-n", "200", NULL);
    s_check_run (json, "mdp", 200);
    cJSON_Delete (json);
}
END_TEST

START_TEST (test_queue_measurement)
{
    cJSON *json = s_bench ("--queue", "2000", NULL);
    const cJSON *queue = cJSON_GetObjectItemCaseSensitive (json, "queue");
    ck_assert (cJSON_IsObject (queue));
    ck_assert_double_eq (s_number (queue, "requests"), 2000);
    ck_assert (s_number (queue, "rss_after_kib") > 0);
    cJSON_Delete (json);
}
END_TEST

START_TEST (test_pipe_mode_both)
{
    //  Plain MDP/0.1 requests, all in flight at once, one worker.
    cJSON *json = s_bench ("--broker", "both", "--mode", "pipe", "-W", "300", "-n", "300", NULL);
    s_check_run (cJSON_GetObjectItemCaseSensitive (json, "mdp"), "mdp", 300);
    s_check_run (cJSON_GetObjectItemCaseSensitive (json, "raw"), "raw", 300);
    const cJSON *mode = cJSON_GetObjectItemCaseSensitive (json, "mode");
    ck_assert_str_eq (mode->valuestring, "pipe");
    ck_assert_double_eq (s_number (json, "window"), 300);
    cJSON_Delete (json);
}
END_TEST

START_TEST (test_pipe_window_beyond_ten_thousand)
{
    //  mdp-broker must queue the whole window: none refused, none expired.
    cJSON *json = s_bench ("--broker", "mdp", "--mode", "pipe", "-W", "12000", "-n", "12000",
                           "--warmup", "0", NULL);
    s_check_run (json, "mdp", 12000);
    cJSON_Delete (json);
}
END_TEST

START_TEST (test_bad_usage_exits_2)
{
    char *program = strdup (tu_program ("mdp-bench"));
    char *const argv[] = {program, "--broker", "nonsense", NULL};
    int devnull[2];
    ck_assert_int_eq (pipe (devnull), 0);
    pid_t pid = tu_spawn_err (argv, devnull[1], devnull[1]);
    close (devnull[1]);
    ck_assert_int_eq (tu_wait_exit (pid, 10000), 2);
    close (devnull[0]);
    free (program);
}
END_TEST

int main (void)
{
    Suite *suite = suite_create ("bench");
    TCase *tc = tcase_create ("bench");
    tcase_set_timeout (tc, 120);
    tcase_add_test (tc, test_sync_against_mdp_broker);
    tcase_add_test (tc, test_async_against_raw_relay);
    tcase_add_test (tc, test_both_with_services_and_idle_workers);
    tcase_add_test (tc, test_processes_and_uneven_split);
    tcase_add_test (tc, test_queue_measurement);
    tcase_add_test (tc, test_pipe_mode_both);
    tcase_add_test (tc, test_pipe_window_beyond_ten_thousand);
    tcase_add_test (tc, test_bad_usage_exits_2);
    suite_add_tcase (suite, tc);
    SRunner *runner = srunner_create (suite);
    srunner_run_all (runner, CK_NORMAL);
    int failed = srunner_ntests_failed (runner);
    srunner_free (runner);
    return failed ? 1 : 0;
}
