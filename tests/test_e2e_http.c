/*  test_e2e_http.c - mdp-http end to end, as real processes (http_harness.h):
    mdp-broker, mdp-echo-worker, mdp-http, plus an MDP/0.2 worker in a thread
    that fails, sleeps or streams on request. Calls over real HTTP: round trip,
    each error code, deadlines, bad input, /v1/services and /v1/stats, /metrics
    through a strict parser, many calls at once, and the dashboard rendered by
    headless Chromium. Events: test_e2e_http_events.c; flags, token, config
    and signals: test_e2e_http_daemon.c.
*/
#include "daemon_harness.h"
#include "http_harness.h"

START_TEST (test_round_trip)
{
    hh_reply_t reply = hh_request ("POST", "/v1/services/echo/config.get", NULL,
                                   "{\"key\": \"name\", \"n\": 42, \"list\": [1, 2]}");
    ck_assert_int_eq (reply.status, 200);
    char type[128];
    ck_assert_str_eq (hh_header (&reply, "Content-Type", type, sizeof type), "application/json");
    cJSON *root = s_json (&reply);
    ck_assert_str_eq (cJSON_GetObjectItem (root, "action")->valuestring, "config.result");
    cJSON *data = cJSON_GetObjectItem (root, "data");
    ck_assert_str_eq (cJSON_GetObjectItem (data, "key")->valuestring, "name");
    ck_assert_int_eq (cJSON_GetObjectItem (data, "n")->valueint, 42);
    ck_assert_int_eq (cJSON_GetArraySize (cJSON_GetObjectItem (data, "list")), 2);
    cJSON_Delete (root);
    hh_free (&reply);
    //  An empty body is {}.
    reply = hh_request ("POST", "/v1/services/echo/cmd.do", NULL, "");
    ck_assert_int_eq (reply.status, 200);
    ck_assert_str_eq (reply.body, "{\"action\":\"cmd.result\",\"data\":{}}");
    hh_free (&reply);
    //  Numbers pass as written, both ways (compared as text).
    reply = hh_request ("POST", "/v1/services/echo/config.get", NULL, TU_NUMBERS_IN);
    ck_assert_int_eq (reply.status, 200);
    ck_assert_str_eq (reply.body, "{\"action\":\"config.result\",\"data\":" TU_NUMBERS "}");
    hh_free (&reply);
}
END_TEST

START_TEST (test_error_codes)
{
    const int codes[] = {403, 404, 429, 500, 501, 502, 503, 504};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        char body[64];
        snprintf (body, sizeof body, "{\"code\": %d}", codes[i]);
        hh_reply_t reply = hh_request ("POST", "/v1/services/test/fail", NULL, body);
        ck_assert_int_eq (reply.status, codes[i]);
        cJSON *root = s_json (&reply);
        ck_assert_int_eq (cJSON_GetObjectItem (root, "code")->valueint, codes[i]);
        ck_assert_str_eq (cJSON_GetObjectItem (root, "reason")->valuestring, "failed as asked");
        cJSON_Delete (root);
        hh_free (&reply);
    }
}
END_TEST

START_TEST (test_timeout)
{
    int64_t start = zclock_mono ();
    hh_reply_t reply =
        hh_request ("POST", "/v1/services/test/sleep?timeout=300", NULL, "{\"ms\": 1500}");
    ck_assert_int_eq (reply.status, 504);
    ck_assert_ptr_nonnull (strstr (reply.body, "\"code\":504"));
    ck_assert_int_lt (zclock_mono () - start, tu_scale (1400));
    hh_free (&reply);
    //  The header does the same; a bad value is refused before any call.
    reply = hh_request ("POST", "/v1/services/echo/x", "X-MDP-Timeout: 5000\r\n", "{}");
    ck_assert_int_eq (reply.status, 200);
    hh_free (&reply);
    reply = hh_request ("POST", "/v1/services/echo/x?timeout=soon", NULL, "{}");
    ck_assert_int_eq (reply.status, 400);
    hh_free (&reply);
    reply = hh_request ("POST", "/v1/services/echo/x", "X-MDP-Timeout: 0\r\n", "{}");
    ck_assert_int_eq (reply.status, 400);
    hh_free (&reply);
}
END_TEST

START_TEST (test_bad_json_never_reaches_the_broker)
{
    int before = atomic_load (&seen);
    hh_reply_t reply = hh_request ("POST", "/v1/services/test/x", NULL, "{\"a\": ");
    ck_assert_int_eq (reply.status, 400);
    ck_assert_ptr_nonnull (strstr (reply.body, "not valid JSON"));
    hh_free (&reply);
    reply = hh_request ("POST", "/v1/services/test/x", NULL, "{\"a\": 1} trailing");
    ck_assert_int_eq (reply.status, 400);
    hh_free (&reply);
    //  A valid call after them is the first the worker sees.
    reply = hh_request ("POST", "/v1/services/test/x", NULL, "{\"a\": 1}");
    ck_assert_int_eq (reply.status, 200);
    hh_free (&reply);
    ck_assert_int_eq (atomic_load (&seen), before + 1);
}
END_TEST

START_TEST (test_body_too_large)
{
    size_t size = 1048577;
    char *body = malloc (size + 1);
    memset (body, ' ', size);
    body[0] = '[';
    body[size - 1] = ']';
    body[size] = 0;
    hh_reply_t reply = hh_request_within ("POST", "/v1/services/echo/x", NULL, body, size, 10000);
    ck_assert_int_eq (reply.status, 413);
    hh_free (&reply);
    //  Just under the limit passes.
    body[size - 2] = ']';
    reply = hh_request_within ("POST", "/v1/services/echo/x", NULL, body, size - 1, 10000);
    ck_assert_int_eq (reply.status, 200);
    hh_free (&reply);
    free (body);
}
END_TEST

START_TEST (test_bad_http_and_the_gateway_survives)
{
    hh_reply_t reply = hh_request ("GET", "/no/such/path", NULL, NULL);
    ck_assert_int_eq (reply.status, 404);
    hh_free (&reply);
    reply = hh_request ("GET", "/v1/services/echo/x", NULL, NULL);
    ck_assert_int_eq (reply.status, 405);
    char allow[64];
    ck_assert_str_eq (hh_header (&reply, "Allow", allow, sizeof allow), "POST");
    hh_free (&reply);
    reply = hh_request ("DELETE", "/metrics", NULL, NULL);
    ck_assert_int_eq (reply.status, 405);
    hh_free (&reply);
    //  Not HTTP at all.
    hh_stream_t stream = {hh_connect (), NULL, 0, 0, false};
    ck_assert (hh_send_all (stream.fd, "HELLO THERE\r\n\r\n", 15));
    ck_assert_ptr_nonnull (hh_wait_for (&stream, 0, "HTTP/1.1 400", 5000));
    hh_close (&stream);
    //  A 100 KB header.
    char *huge = malloc (100 * 1024 + 32);
    int len = sprintf (huge, "X-Huge: ");
    memset (huge + len, 'h', 100 * 1024);
    strcpy (huge + len + 100 * 1024, "\r\n");
    reply = hh_request ("GET", "/v1/stats", huge, NULL);
    ck_assert_int_ge (reply.status, 400);
    ck_assert_int_lt (reply.status, 500);
    hh_free (&reply);
    free (huge);
    //  A client that sends half a request and stalls does not hold others up.
    hh_stream_t stalled = {hh_connect (), NULL, 0, 0, false};
    ck_assert (hh_send_all (stalled.fd, "POST /v1/services/echo/x HTTP/1.1\r\nContent-Le", 45));
    reply = hh_request ("POST", "/v1/services/echo/x", NULL, "{\"still\": true}");
    ck_assert_int_eq (reply.status, 200);
    hh_free (&reply);
    hh_close (&stalled);
}
END_TEST

START_TEST (test_services_and_stats)
{
    hh_reply_t reply = hh_request ("POST", "/v1/services/echo/x", NULL, "{}");
    ck_assert_int_eq (reply.status, 200);
    hh_free (&reply);
    reply = hh_request ("GET", "/v1/services", NULL, NULL);
    ck_assert_int_eq (reply.status, 200);
    cJSON *root = s_json (&reply);
    cJSON *echo = cJSON_GetObjectItem (cJSON_GetObjectItem (root, "services"), "echo");
    ck_assert_int_eq (cJSON_GetObjectItem (echo, "workers")->valueint, 1);
    cJSON_Delete (root);
    hh_free (&reply);
    reply = hh_request ("GET", "/v1/stats", NULL, NULL);
    ck_assert_int_eq (reply.status, 200);
    root = s_json (&reply);
    echo = cJSON_GetObjectItem (cJSON_GetObjectItem (root, "services"), "echo");
    ck_assert_int_ge (cJSON_GetObjectItem (echo, "replies")->valueint, 1);
    ck_assert (cJSON_IsObject (cJSON_GetObjectItem (echo, "time_le_ms")));
    cJSON_Delete (root);
    hh_free (&reply);
}
END_TEST

START_TEST (test_metrics)
{
    for (int i = 0; i < 5; i++) {
        hh_reply_t reply = hh_request ("POST", "/v1/services/echo/x", NULL, "{}");
        ck_assert_int_eq (reply.status, 200);
        hh_free (&reply);
    }
    hh_reply_t reply = hh_request ("POST", "/v1/services/test/fail", NULL, "{\"code\": 429}");
    ck_assert_int_eq (reply.status, 429);
    hh_free (&reply);
    reply = hh_request ("GET", "/metrics", NULL, NULL);
    ck_assert_int_eq (reply.status, 200);
    char type[128];
    ck_assert_ptr_nonnull (strstr (hh_header (&reply, "Content-Type", type, sizeof type),
                                   "text/plain; version=0.0.4"));
    hh_check_prometheus (reply.body);
    const char *text = reply.body;
    ck_assert (hh_metric (text, "mdp_broker_up") == 1);
    ck_assert (hh_metric (text, "mdp_service_workers{service=\"echo\"}") == 1);
    ck_assert (hh_metric (text, "mdp_service_workers{service=\"test\"}") == 1);
    ck_assert (hh_metric (text, "mdp_service_queue_depth{service=\"echo\"}") == 0);
    ck_assert (hh_metric (text, "mdp_service_requests_total{service=\"echo\"}") >= 5);
    ck_assert (hh_metric (text, "mdp_service_replies_total{service=\"echo\"}") >= 5);
    double count = hh_metric (text, "mdp_service_time_seconds_count{service=\"echo\"}");
    ck_assert (count >= 5);
    ck_assert (hh_metric (text, "mdp_service_time_seconds_bucket{service=\"echo\",le=\"+Inf\"}") ==
               count);
    ck_assert (hh_metric (text, "mdp_service_time_seconds_sum{service=\"echo\"}") >= 0);
    ck_assert (hh_metric (text, "mdp_http_responses_total{service=\"echo\",code=\"200\"}") == 5);
    ck_assert (hh_metric (text, "mdp_http_responses_total{service=\"test\",code=\"429\"}") == 1);
    ck_assert (hh_metric (text, "mdp_broker_errors_total{code=\"504\"}") >= 0);
    hh_free (&reply);
}
END_TEST

START_TEST (test_many_calls_in_flight)
{
    //  300 connections, every request sent before any reply is read: one
    //  thread and one MDP socket carry them all.
    enum { COUNT = 300 };
    hh_stream_t *streams = calloc (COUNT, sizeof (hh_stream_t));
    for (int i = 0; i < COUNT; i++) {
        char body[64];
        int size = snprintf (body, sizeof body, "{\"i\": %d}", i);
        streams[i] = hh_open ("POST", "/v1/services/echo/x", NULL, body, (size_t)size);
    }
    for (int i = 0; i < COUNT; i++) {
        char want[64];
        snprintf (want, sizeof want, "{\"i\":%d}}", i);
        ck_assert_msg (hh_wait_for (&streams[i], 0, want, 20000), "call %d: '%s'", i,
                       streams[i].data ? streams[i].data : "");
        ck_assert_ptr_nonnull (strstr (streams[i].data, "HTTP/1.1 200"));
        hh_close (&streams[i]);
    }
    free (streams);
}
END_TEST

//  ---------------------------------------------------------------------------
//  The dashboard in headless Chromium (run through /bin/sh so that valgrind,
//  which skips shells, leaves the browser alone).

static char *s_chromium (const char *mode, const char *url, int msecs)
{
    char profile[256], command[2048];
    dh_path (profile, sizeof profile, "chromium-profile");
    snprintf (command, sizeof command,
              "exec chromium --headless --no-sandbox --disable-gpu --disable-quic "
              "--no-first-run --disable-background-networking --disable-component-update "
              "--disable-sync --disable-dev-shm-usage --user-data-dir=%s "
              "--virtual-time-budget=%d --window-size=900,600 %s '%s' 2>/dev/null",
              profile, msecs, mode, url);
    int out[2];
    ck_assert_int_eq (pipe2 (out, O_CLOEXEC), 0);
    char *argv[] = {"/bin/sh", "-c", command, NULL};
    pid_t pid = tu_spawn (argv, out[1]);
    close (out[1]);
    static char dom[262144];
    int fds[2] = {out[0], -1};
    char *bufs[2] = {dom, (char[1]){0}};
    dh_read_all (fds, bufs, sizeof dom, 60000);
    close (out[0]);
    ck_assert_int_eq (tu_wait_exit (pid, 60000), 0);
    return dom;
}

START_TEST (test_dashboard_in_chromium)
{
    ck_assert_msg (access ("/usr/bin/chromium", X_OK) == 0, "chromium missing: make deps");
    hh_reply_t reply = hh_request ("GET", "/", NULL, NULL);
    ck_assert_int_eq (reply.status, 200);
    ck_assert_ptr_nonnull (strstr (reply.body, "<table id=\"services\">"));
    ck_assert_ptr_null (strstr (reply.body, "http://")); //  nothing fetched elsewhere
    ck_assert_ptr_null (strstr (reply.body, "https://"));
    hh_free (&reply);
    char url[64];
    snprintf (url, sizeof url, "http://127.0.0.1:%d/", hh_port);
    const char *dom = s_chromium ("--dump-dom", url, 4000);
    ck_assert_msg (strstr (dom, "<tr data-service=\"test\">"), "no row for test in: %.2000s", dom);
    const char *row = strstr (dom, "<tr data-service=\"echo\">");
    ck_assert_ptr_nonnull (row);
    ck_assert_ptr_nonnull (strstr (row, "<td class=\"workers\">1</td>"));
    ck_assert_ptr_nonnull (strstr (dom, "data-total=\"workers\"><b>2</b>"));
    ck_assert_ptr_nonnull (strstr (dom, "live, "));
    //  A screenshot for people, beside the build.
    char shot[512];
    snprintf (shot, sizeof shot, "--screenshot=%s/http-dashboard.png",
              getenv ("MDP_BUILD") ? getenv ("MDP_BUILD") : "build");
    s_chromium (shot, url, 4000);
}
END_TEST

int main (void)
{
    Suite *suite = suite_create ("e2e_http");
    TCase *tc = tcase_create ("calls");
    tcase_add_checked_fixture (tc, s_setup_running, s_teardown);
    tcase_set_timeout (tc, tu_scale (90));
    tcase_add_test (tc, test_round_trip);
    tcase_add_test (tc, test_error_codes);
    tcase_add_test (tc, test_timeout);
    tcase_add_test (tc, test_bad_json_never_reaches_the_broker);
    tcase_add_test (tc, test_body_too_large);
    tcase_add_test (tc, test_bad_http_and_the_gateway_survives);
    tcase_add_test (tc, test_services_and_stats);
    tcase_add_test (tc, test_metrics);
    tcase_add_test (tc, test_many_calls_in_flight);
    tcase_add_test (tc, test_dashboard_in_chromium);
    suite_add_tcase (suite, tc);
    return tu_run_suite (suite);
}
