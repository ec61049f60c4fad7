/*  test_e2e_http_daemon.c - mdp-http as a daemon, end to end as real processes
    (http_harness.h): several -e brokers with failover, the bearer token and
    SIGHUP, the config file and flags (exit codes), --daemon with a pid file,
    and SIGTERM answering the calls in flight.
*/
#include "daemon_harness.h"
#include "http_harness.h"

//  Several -e: a call whose first broker is dead fails over to the next one.
START_TEST (test_failover_between_brokers)
{
    const char *args[] = {"--listen", "127.0.0.1:0", "-e", "tcp://127.0.0.1:1",
                          "-e",       endpoint,      NULL};
    http_pid = dh_spawn_program ("mdp-http", args, &http_out, &http_err);
    char *line = tu_read_line_with (http_err, "serving on http://", 10000);
    ck_assert_msg (line != NULL, "mdp-http did not start");
    char url[256];
    s_word_after (line, "serving on ", url, sizeof url);
    hh_port = atoi (strrchr (url, ':') + 1);
    free (line);
    hh_reply_t reply = hh_request_within ("POST", "/v1/services/echo/config.get?timeout=1500", NULL,
                                          "{\"n\": 1}", 8, 20000);
    ck_assert_int_eq (reply.status, 200);
    ck_assert_str_eq (reply.body, "{\"action\":\"config.result\",\"data\":{\"n\":1}}");
    hh_free (&reply);
}
END_TEST

START_TEST (test_token_required)
{
    char path[256];
    dh_path (path, sizeof path, "token");
    dh_write_file (path, "s3cret-token\n");
    const char *extra[] = {"--token-file", path, NULL};
    s_start_http (extra);
    hh_reply_t reply = hh_request ("GET", "/v1/stats", NULL, NULL);
    ck_assert_int_eq (reply.status, 401);
    char value[128];
    ck_assert_ptr_nonnull (
        strstr (hh_header (&reply, "WWW-Authenticate", value, sizeof value), "Bearer"));
    hh_free (&reply);
    reply =
        hh_request ("POST", "/v1/services/echo/x", "Authorization: Bearer s3cret-tokeN\r\n", "{}");
    ck_assert_int_eq (reply.status, 401);
    hh_free (&reply);
    reply = hh_request ("POST", "/v1/services/echo/x", "Authorization: Bearer s3cret\r\n", "{}");
    ck_assert_int_eq (reply.status, 401);
    hh_free (&reply);
    const char *good = "Authorization: Bearer s3cret-token\r\n";
    ck_assert (tu_wait_for (s_services_up, (void *)good, 10000));
    reply = hh_request ("POST", "/v1/services/echo/x", good, "{}");
    ck_assert_int_eq (reply.status, 200);
    hh_free (&reply);
    reply = hh_request ("GET", "/metrics", good, NULL);
    ck_assert_int_eq (reply.status, 200);
    hh_free (&reply);
    //  The page itself holds no data and loads without the token.
    reply = hh_request ("GET", "/", NULL, NULL);
    ck_assert_int_eq (reply.status, 200);
    hh_free (&reply);
    //  SIGHUP reads a new token.
    dh_write_file (path, "another-token\n");
    kill (http_pid, SIGHUP);
    char *line = tu_read_line_with (http_err, "reloaded", 10000);
    ck_assert_ptr_nonnull (line);
    free (line);
    reply = hh_request ("GET", "/v1/stats", good, NULL);
    ck_assert_int_eq (reply.status, 401);
    hh_free (&reply);
    reply = hh_request ("GET", "/v1/stats", "Authorization: Bearer another-token\r\n", NULL);
    ck_assert_int_eq (reply.status, 200);
    hh_free (&reply);
}
END_TEST

static int s_run_http (const char *const args[], dh_result_t *result)
{
    int fds[2];
    pid_t pid = dh_spawn_program ("mdp-http", args, &fds[0], &fds[1]);
    char *bufs[2] = {result->out, result->err};
    dh_read_all (fds, bufs, sizeof result->out, 10000);
    close (fds[0]);
    close (fds[1]);
    return result->status = tu_wait_exit (pid, 10000);
}

START_TEST (test_config_file)
{
    static dh_result_t result;
    char path[256];
    dh_path (path, sizeof path, "http.json");
    dh_write_file (path, "{\"listen\": \"127.0.0.1:0\", \"timeout\": 1234, \"colour\": 1}");
    const char *bad[] = {"-c", path, NULL};
    ck_assert_int_eq (s_run_http (bad, &result), 2);
    ck_assert_ptr_nonnull (strstr (result.err, "unknown key \"colour\""));
    dh_write_file (path, "{\"listen\": \"127.0.0.1:0\", \"timeout\": 1234}");
    const char *print[] = {"-c", path, "--max-body", "99", "--print-config", NULL};
    ck_assert_int_eq (s_run_http (print, &result), 0);
    ck_assert_ptr_nonnull (strstr (result.out, "\"timeout\":\t1234"));
    ck_assert_ptr_nonnull (strstr (result.out, "\"max_body\":\t99"));
    const char *bad_flag[] = {"--timeout", "soon", NULL};
    ck_assert_int_eq (s_run_http (bad_flag, &result), 2);
    const char *bad_listen[] = {"--listen", "nowhere", NULL};
    ck_assert_int_eq (s_run_http (bad_listen, &result), 2);
}
END_TEST

START_TEST (test_daemon_and_pidfile)
{
    char pidfile[256], config[256];
    dh_path (pidfile, sizeof pidfile, "http.pid");
    dh_path (config, sizeof config, "http.json");
    char text[1024];
    snprintf (text, sizeof text,
              "{\"listen\": \"127.0.0.1:0\", \"endpoints\": [\"%s\"], \"pidfile\": \"%s\"}",
              endpoint, pidfile);
    dh_write_file (config, text);
    static dh_result_t result;
    const char *args[] = {"-c", config, "-d", NULL};
    ck_assert_int_eq (s_run_http (args, &result), 0);
    ck_assert (tu_wait_for (dh_file_exists, pidfile, 10000));
    pid_t pid = dh_read_pidfile (pidfile);
    ck_assert_int_gt (pid, 0);
    //  A second one with the same pid file refuses to start.
    ck_assert_int_eq (s_run_http (args, &result), 1);
    ck_assert_ptr_nonnull (strstr (result.err, "already running"));
    ck_assert (dh_stop_detached (pid, 10000));
    ck_assert (tu_wait_for (dh_file_gone, pidfile, 10000));
}
END_TEST

START_TEST (test_stop_answers_calls_in_flight)
{
    s_start_http (NULL);
    ck_assert (tu_wait_for (s_services_up, NULL, 10000));
    const char *body = "{\"ms\": 3000}";
    hh_stream_t call = hh_open ("POST", "/v1/services/test/sleep", NULL, body, strlen (body));
    //  The call is in flight once the worker has it.
    ck_assert (tu_wait_for (s_worker_busy, NULL, 10000));
    s_stop_http ();
    ck_assert_ptr_nonnull (hh_wait_for (&call, 0, "mdp-http is stopping", 5000));
    ck_assert_ptr_nonnull (strstr (call.data, "HTTP/1.1 503"));
    hh_close (&call);
}
END_TEST

int main (void)
{
    Suite *suite = suite_create ("e2e_http_daemon");
    TCase *tc = tcase_create ("daemon");
    tcase_add_checked_fixture (tc, s_setup, s_teardown);
    tcase_set_timeout (tc, tu_scale (90));
    tcase_add_test (tc, test_token_required);
    tcase_add_test (tc, test_failover_between_brokers);
    tcase_add_test (tc, test_config_file);
    tcase_add_test (tc, test_daemon_and_pidfile);
    tcase_add_test (tc, test_stop_answers_calls_in_flight);
    suite_add_tcase (suite, tc);
    return tu_run_suite (suite);
}
