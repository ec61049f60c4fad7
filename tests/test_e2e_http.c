/*  test_e2e_http.c - mdp-http end to end, as real processes: mdp-broker (with
    its event forwarder), mdp-echo-worker, mdp-http, plus an MDP/0.2 worker in
    a thread that fails, sleeps or streams on request. Calls go over real
    HTTP (tests/http_harness.h): round trip, each error code, deadlines, bad
    input, SSE partials, events from mdp-pub, /metrics through a strict
    parser, the bearer token, config and signals, and the dashboard rendered
    by headless Chromium.
*/
#include "daemon_harness.h"
#include "http_harness.h"
#include <stdatomic.h>

static pid_t broker_pid, echo_pid, http_pid;
static int broker_out, broker_err, http_out, http_err;
static char endpoint[256], pub_ep[256], sub_ep[256];
static zactor_t *worker;
static atomic_int seen;          //  requests the thread worker received

//  ---------------------------------------------------------------------------
//  The thread worker, service "test" (MDPW02): "fail" answers mdp.error with
//  data's "code"; "sleep" waits data's "ms"; "stream" sends data's "partials"
//  partial replies {"part": i}; anything else echoes the data.

static mdp_msg_t *s_test_hook (mdp_worker_t *self, mdp_msg_t *request, void *arg)
{
    atomic_fetch_add (&seen, 1);
    const char *action = mdp_msg_action (request);
    cJSON *data = mdp_msg_data (request);
    const cJSON *number = cJSON_GetObjectItem (data, "code");
    if (streq (action, "fail"))
        return mdp_msg_new_error (cJSON_IsNumber (number) ? number->valueint : 500,
                                  "failed as asked");
    if (streq (action, "sleep")) {
        number = cJSON_GetObjectItem (data, "ms");
        zclock_sleep (cJSON_IsNumber (number) ? number->valueint : 0);
        return mdp_msg_new ("sleep.result", NULL);
    }
    if (streq (action, "stream")) {
        number = cJSON_GetObjectItem (data, "partials");
        int parts = cJSON_IsNumber (number) ? number->valueint : 0;
        for (int part = 0; part < parts; part++) {
            cJSON *body = cJSON_CreateObject ();
            cJSON_AddNumberToObject (body, "part", part);
            mdp_msg_t *partial = mdp_msg_new ("stream.partial", body);
            mdp_worker_send_partial (self, &partial);
        }
        cJSON *body = cJSON_CreateObject ();
        cJSON_AddNumberToObject (body, "parts", parts);
        return mdp_msg_new ("stream.result", body);
    }
    return mdp_msg_new ("test.result", cJSON_Duplicate (data, 1));
}

static void s_worker_actor (zsock_t *pipe, void *arg)
{
    mdp_worker_t *self = mdp_worker_new (endpoint, "test");
    mdp_worker_set_protocol (self, 2);
    mdp_worker_set_handler (self, s_test_hook, NULL);
    mdp_worker_set_reconnect (self, 20, 200);
    zpoller_t *poller = zpoller_new (pipe, mdp_worker_socket (self), NULL);
    zsock_signal (pipe, 0);
    while (true) {
        void *which = zpoller_wait (poller, -1);
        if (which == pipe || !which)
            break;
        mdp_worker_process (self);
    }
    zpoller_destroy (&poller);
    mdp_worker_destroy (&self);
}

//  ---------------------------------------------------------------------------
//  Processes

//  After "prefix", the first word of the line; copied to out.
static void s_word_after (const char *line, const char *prefix, char *out, size_t size)
{
    const char *at = strstr (line, prefix);
    ck_assert_msg (at != NULL, "no '%s' in '%s'", prefix, line);
    at += strlen (prefix);
    snprintf (out, size, "%.*s", (int) strcspn (at, " ,"), at);
}

static void s_start_broker (void)
{
    const char *args[] = {"-e", "tcp://127.0.0.1:*", "--pub-endpoint", "tcp://127.0.0.1:*",
                          "--sub-endpoint", "tcp://127.0.0.1:*", NULL};
    broker_pid = dh_spawn (args, &broker_out, &broker_err);
    char *line = tu_read_line_with (broker_err, "events: publishers connect to", 10000);
    ck_assert_ptr_nonnull (line);
    s_word_after (line, "publishers connect to ", pub_ep, sizeof pub_ep);
    s_word_after (line, "subscribers to ", sub_ep, sizeof sub_ep);
    free (line);
    ck_assert (dh_endpoint (broker_err, endpoint, sizeof endpoint, 10000));
}

//  Start mdp-http against our broker with extra args (NULL-ended); sets hh_port.
static void s_start_http (const char *const extra[])
{
    const char *args[DH_MAX_ARGS] = {"--listen", "127.0.0.1:0", "-e", endpoint,
                                     "--events", sub_ep};
    int count = 6;
    for (int i = 0; extra && extra[i] && count < DH_MAX_ARGS - 1; i++)
        args[count++] = extra[i];
    args[count] = NULL;
    http_pid = dh_spawn_program ("mdp-http", args, &http_out, &http_err);
    char *line = tu_read_line_with (http_err, "serving on http://", 10000);
    ck_assert_msg (line != NULL, "mdp-http did not start");
    char url[256];
    s_word_after (line, "serving on ", url, sizeof url);
    hh_port = atoi (strrchr (url, ':') + 1);
    ck_assert_int_gt (hh_port, 0);
    free (line);
}

static void s_stop_http (void)
{
    if (http_pid > 0) {
        ck_assert_int_eq (tu_stop (http_pid, SIGTERM, 10000), 0);
        close (http_out);
        close (http_err);
    }
    http_pid = 0;
}

//  True once the thread worker has had a request.
static bool s_worker_busy (void *arg)
{
    return atomic_load (&seen) > 0;
}

//  True when GET /v1/services lists both services with a worker each.
static bool s_services_up (void *arg)
{
    hh_reply_t reply = hh_request ("GET", "/v1/services", arg, NULL);
    cJSON *root = cJSON_Parse (reply.body ? reply.body : "");
    cJSON *services = cJSON_GetObjectItem (root, "services");
    bool up = reply.status == 200
              && cJSON_GetObjectItem (cJSON_GetObjectItem (services, "echo"), "workers")
              && cJSON_GetObjectItem (cJSON_GetObjectItem (services, "test"), "workers");
    cJSON_Delete (root);
    hh_free (&reply);
    return up;
}

static void s_setup (void)
{
    dh_setup ();
    s_start_broker ();
    char *argv[] = {(char *) tu_program ("mdp-echo-worker"), "-e", endpoint, "echo", NULL};
    echo_pid = tu_spawn (argv, -1);
    ck_assert_int_gt (echo_pid, 0);
    worker = zactor_new (s_worker_actor, NULL);
    ck_assert_ptr_nonnull (worker);
}

//  The usual set-up plus mdp-http with no extra flags, both services up.
static void s_setup_running (void)
{
    s_setup ();
    s_start_http (NULL);
    ck_assert_msg (tu_wait_for (s_services_up, NULL, 10000), "services never came up");
}

static void s_teardown (void)
{
    s_stop_http ();
    zactor_destroy (&worker);
    tu_stop (echo_pid, SIGTERM, 5000);
    tu_stop (broker_pid, SIGTERM, 5000);
    close (broker_out);
    close (broker_err);
    dh_teardown ();
}

static cJSON *s_json (const hh_reply_t *reply)
{
    cJSON *root = cJSON_Parse (reply->body);
    ck_assert_msg (root != NULL, "not JSON: '%s'", reply->body);
    return root;
}

//  ---------------------------------------------------------------------------

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
    hh_reply_t reply = hh_request ("POST", "/v1/services/test/sleep?timeout=300", NULL,
                                   "{\"ms\": 1500}");
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

START_TEST (test_sse_partials)
{
    hh_stream_t stream = hh_open ("POST", "/v1/services/test/stream",
                                  "Accept: text/event-stream\r\n", "{\"partials\": 3}", 15);
    const char *final = hh_wait_for (&stream, 0, "event: final", 10000);
    ck_assert_msg (final != NULL, "no final event in '%s'", stream.data);
    ck_assert_ptr_nonnull (strstr (stream.data, "Content-Type: text/event-stream"));
    //  Three partials in order, then the final one, then the end.
    const char *at = stream.data;
    for (int part = 0; part < 3; part++) {
        char want[128];
        snprintf (want, sizeof want,
                  "event: partial\ndata: {\"action\":\"stream.partial\",\"data\":{\"part\":%d}}\n\n",
                  part);
        const char *found = strstr (at, want);
        ck_assert_msg (found != NULL && found < final, "partial %d missing or late", part);
        at = found + strlen (want);
    }
    ck_assert_ptr_nonnull (hh_wait_for (&stream, 0,
                           "event: final\ndata: {\"action\":\"stream.result\",\"data\":{\"parts\":3}}\n\n",
                           5000));
    hh_wait_for (&stream, 0, "\r\n0\r\n\r\n", 5000);
    ck_assert_ptr_nonnull (strstr (stream.data, "\r\n0\r\n\r\n"));
    hh_close (&stream);
    //  An error ends the stream with an error event.
    stream = hh_open ("POST", "/v1/services/test/fail", "Accept: text/event-stream\r\n",
                      "{\"code\": 503}", 13);
    ck_assert_ptr_nonnull (hh_wait_for (&stream, 0,
                           "event: error\ndata: {\"code\":503,\"reason\":\"failed as asked\"}\n\n",
                           10000));
    hh_close (&stream);
}
END_TEST

static int s_publish (const char *category, const char *json)
{
    char *argv[] = {(char *) tu_program ("mdp-pub"), "-e", pub_ep, "-t", "5000",
                    (char *) category, (char *) json, NULL};
    pid_t pid = tu_spawn (argv, -1);
    return tu_wait_exit (pid, 10000);
}

START_TEST (test_events_from_mdp_pub)
{
    hh_stream_t stream = hh_open ("GET", "/v1/events?prefix=plugin.&prefix=device.", NULL,
                                  NULL, 0);
    ck_assert_ptr_nonnull (hh_wait_for (&stream, 0, ": subscribed", 10000));
    ck_assert_int_eq (s_publish ("other.thing", "{\"n\": 0}"), 0);
    ck_assert_int_eq (s_publish ("plugin.status", "{\"n\": 1}"), 0);
    ck_assert_int_eq (s_publish ("device.update", "{\"n\": 2}"), 0);
    ck_assert_ptr_nonnull (hh_wait_for (&stream, 0,
                                        "event: plugin.status\ndata: {\"n\":1}\n\n", 10000));
    ck_assert_ptr_nonnull (hh_wait_for (&stream, 0,
                                        "event: device.update\ndata: {\"n\":2}\n\n", 10000));
    ck_assert_ptr_null (strstr (stream.data, "other.thing"));
    hh_close (&stream);
    //  Without a prefix, every event.
    stream = hh_open ("GET", "/v1/events", NULL, NULL, 0);
    ck_assert_ptr_nonnull (hh_wait_for (&stream, 0, ": subscribed", 10000));
    ck_assert_int_eq (s_publish ("other.thing", "{\"n\": 3}"), 0);
    ck_assert_ptr_nonnull (hh_wait_for (&stream, 0, "event: other.thing\ndata: {\"n\":3}", 10000));
    hh_close (&stream);
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
    ck_assert (hh_metric (text, "mdp_service_time_seconds_bucket{service=\"echo\",le=\"+Inf\"}")
               == count);
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
        streams[i] = hh_open ("POST", "/v1/services/echo/x", NULL, body, (size_t) size);
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
//  The bearer token, config and signals

//  Several -e: a call whose first broker is dead fails over to the next one.
START_TEST (test_failover_between_brokers)
{
    const char *args[] = {"--listen", "127.0.0.1:0", "-e", "tcp://127.0.0.1:1", "-e", endpoint,
                          NULL};
    http_pid = dh_spawn_program ("mdp-http", args, &http_out, &http_err);
    char *line = tu_read_line_with (http_err, "serving on http://", 10000);
    ck_assert_msg (line != NULL, "mdp-http did not start");
    char url[256];
    s_word_after (line, "serving on ", url, sizeof url);
    hh_port = atoi (strrchr (url, ':') + 1);
    free (line);
    hh_reply_t reply = hh_request_within ("POST", "/v1/services/echo/config.get?timeout=1500",
                                          NULL, "{\"n\": 1}", 8, 20000);
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
    ck_assert_ptr_nonnull (strstr (hh_header (&reply, "WWW-Authenticate", value, sizeof value),
                                   "Bearer"));
    hh_free (&reply);
    reply = hh_request ("POST", "/v1/services/echo/x", "Authorization: Bearer s3cret-tokeN\r\n",
                        "{}");
    ck_assert_int_eq (reply.status, 401);
    hh_free (&reply);
    reply = hh_request ("POST", "/v1/services/echo/x", "Authorization: Bearer s3cret\r\n", "{}");
    ck_assert_int_eq (reply.status, 401);
    hh_free (&reply);
    const char *good = "Authorization: Bearer s3cret-token\r\n";
    ck_assert (tu_wait_for (s_services_up, (void *) good, 10000));
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
    ck_assert_ptr_null (strstr (reply.body, "http://"));   //  nothing fetched elsewhere
    ck_assert_ptr_null (strstr (reply.body, "https://"));
    hh_free (&reply);
    char url[64];
    snprintf (url, sizeof url, "http://127.0.0.1:%d/", hh_port);
    const char *dom = s_chromium ("--dump-dom", url, 4000);
    ck_assert_msg (strstr (dom, "<tr data-service=\"test\">"), "no row for test in: %.2000s",
                   dom);
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

START_TEST (test_slow_event_reader_is_dropped)
{
    //  One reader reads every event as it comes; the other reads nothing.
    //  Once the second is more than its buffer behind, the gateway closes it
    //  and the first goes on.
    hh_stream_t fast = hh_open ("GET", "/v1/events?prefix=load.", NULL, NULL, 0);
    hh_stream_t slow = hh_open ("GET", "/v1/events?prefix=load.", NULL, NULL, 0);
    ck_assert_ptr_nonnull (hh_wait_for (&fast, 0, ": subscribed", 10000));
    ck_assert_ptr_nonnull (hh_wait_for (&slow, 0, ": subscribed", 10000));
    mdp_publisher_t *publisher = mdp_publisher_new (pub_ep);
    mdp_publisher_set_sync_timeout (publisher, tu_scale (5000));
    char *pad = malloc (65536);
    memset (pad, 'x', 65535);
    pad[65535] = 0;
    bool dropped = false;
    for (int seq = 0; seq < 400 && !dropped; seq++) {
        cJSON *data = cJSON_CreateObject ();
        cJSON_AddNumberToObject (data, "seq", seq);
        cJSON_AddStringToObject (data, "pad", pad);
        ck_assert_int_eq (mdp_publisher_send (publisher, "load.test", data), 0);
        cJSON_Delete (data);
        char want[64];
        snprintf (want, sizeof want, "{\"seq\":%d,", seq);
        ck_assert_msg (hh_wait_for (&fast, 0, want, 10000), "fast reader lost event %d", seq);
        fast.size = 0;   //  what came is read; the next event comes after
        //  Anything on stderr: the drop is checked below.
        zmq_pollitem_t item = {NULL, http_err, ZMQ_POLLIN, 0};
        dropped = zmq_poll (&item, 1, 0) == 1;
    }
    free (pad);
    mdp_publisher_destroy (&publisher);
    char *line = tu_read_line_with (http_err, "behind; closing it", 10000);
    ck_assert_msg (line != NULL, "the slow reader was never dropped");
    free (line);
    //  The slow reader finds its stream ended once it reads what was sent.
    int64_t deadline = zclock_mono () + tu_scale (20000);
    size_t total = 0;
    while (!slow.eof && zclock_mono () < deadline) {
        hh_read_some (&slow, 1000);
        total += slow.size;
        slow.size = 0;
    }
    ck_assert_msg (slow.eof, "slow reader still open after %zu bytes", total);
    hh_close (&slow);
    hh_close (&fast);
    //  And the gateway serves on.
    hh_reply_t reply = hh_request ("POST", "/v1/services/echo/x", NULL, "{}");
    ck_assert_int_eq (reply.status, 200);
    hh_free (&reply);
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
    Suite *suite = suite_create ("e2e_http");
    TCase *calls = tcase_create ("calls");
    tcase_add_checked_fixture (calls, s_setup_running, s_teardown);
    tcase_set_timeout (calls, tu_scale (90));
    tcase_add_test (calls, test_round_trip);
    tcase_add_test (calls, test_error_codes);
    tcase_add_test (calls, test_timeout);
    tcase_add_test (calls, test_bad_json_never_reaches_the_broker);
    tcase_add_test (calls, test_body_too_large);
    tcase_add_test (calls, test_bad_http_and_the_gateway_survives);
    tcase_add_test (calls, test_sse_partials);
    tcase_add_test (calls, test_events_from_mdp_pub);
    tcase_add_test (calls, test_slow_event_reader_is_dropped);
    tcase_add_test (calls, test_services_and_stats);
    tcase_add_test (calls, test_metrics);
    tcase_add_test (calls, test_many_calls_in_flight);
    tcase_add_test (calls, test_dashboard_in_chromium);
    suite_add_tcase (suite, calls);
    TCase *daemon = tcase_create ("daemon");
    tcase_add_checked_fixture (daemon, s_setup, s_teardown);
    tcase_set_timeout (daemon, tu_scale (90));
    tcase_add_test (daemon, test_token_required);
    tcase_add_test (daemon, test_failover_between_brokers);
    tcase_add_test (daemon, test_config_file);
    tcase_add_test (daemon, test_daemon_and_pidfile);
    tcase_add_test (daemon, test_stop_answers_calls_in_flight);
    suite_add_tcase (suite, daemon);
    SRunner *runner = srunner_create (suite);
    srunner_run_all (runner, CK_NORMAL);
    int failed = srunner_ntests_failed (runner);
    srunner_free (runner);
    return failed ? 1 : 0;
}
