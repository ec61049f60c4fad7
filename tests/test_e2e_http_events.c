/*  test_e2e_http_events.c - mdp-http's streams end to end, as real processes
    (http_harness.h): a worker's partial replies as Server-Sent Events, events
    published with mdp-pub reaching /v1/events by prefix, and a reader too slow
    for its buffer being dropped while the others go on.
*/
#include "daemon_harness.h"
#include "http_harness.h"

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
        snprintf (
            want, sizeof want,
            "event: partial\ndata: {\"action\":\"stream.partial\",\"data\":{\"part\":%d}}\n\n",
            part);
        const char *found = strstr (at, want);
        ck_assert_msg (found != NULL && found < final, "partial %d missing or late", part);
        at = found + strlen (want);
    }
    ck_assert_ptr_nonnull (hh_wait_for (
        &stream, 0, "event: final\ndata: {\"action\":\"stream.result\",\"data\":{\"parts\":3}}\n\n",
        5000));
    hh_wait_for (&stream, 0, "\r\n0\r\n\r\n", 5000);
    ck_assert_ptr_nonnull (strstr (stream.data, "\r\n0\r\n\r\n"));
    hh_close (&stream);
    //  An error ends the stream with an error event.
    stream = hh_open ("POST", "/v1/services/test/fail", "Accept: text/event-stream\r\n",
                      "{\"code\": 503}", 13);
    ck_assert_ptr_nonnull (hh_wait_for (
        &stream, 0, "event: error\ndata: {\"code\":503,\"reason\":\"failed as asked\"}\n\n",
        10000));
    hh_close (&stream);
}
END_TEST

static int s_publish (const char *category, const char *json)
{
    char *argv[] = {(char *)tu_program ("mdp-pub"),
                    "-e",
                    pub_ep,
                    "-t",
                    "5000",
                    (char *)category,
                    (char *)json,
                    NULL};
    pid_t pid = tu_spawn (argv, -1);
    return tu_wait_exit (pid, 10000);
}

START_TEST (test_events_from_mdp_pub)
{
    hh_stream_t stream = hh_open ("GET", "/v1/events?prefix=plugin.&prefix=device.", NULL, NULL, 0);
    ck_assert_ptr_nonnull (hh_wait_for (&stream, 0, ": subscribed", 10000));
    ck_assert_int_eq (s_publish ("other.thing", "{\"n\": 0}"), 0);
    ck_assert_int_eq (s_publish ("plugin.status", "{\"n\": 1}"), 0);
    ck_assert_int_eq (s_publish ("device.update", "{\"n\": 2}"), 0);
    ck_assert_ptr_nonnull (
        hh_wait_for (&stream, 0, "event: plugin.status\ndata: {\"n\":1}\n\n", 10000));
    ck_assert_ptr_nonnull (
        hh_wait_for (&stream, 0, "event: device.update\ndata: {\"n\":2}\n\n", 10000));
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
        fast.size = 0; //  what came is read; the next event comes after
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

int main (void)
{
    Suite *suite = suite_create ("e2e_http_events");
    TCase *tc = tcase_create ("events");
    tcase_add_checked_fixture (tc, s_setup_running, s_teardown);
    tcase_set_timeout (tc, tu_scale (90));
    tcase_add_test (tc, test_sse_partials);
    tcase_add_test (tc, test_events_from_mdp_pub);
    tcase_add_test (tc, test_slow_event_reader_is_dropped);
    suite_add_tcase (suite, tc);
    return tu_run_suite (suite);
}
