/*  test_broker.c - the routing engine through real sockets, byte for byte.
    The broker object runs in the test's own thread (broker_poll), so each test
    can look at its counters; peers are raw DEALER sockets speaking MDP/0.1.
*/
#include "broker_harness.h"

static bool s_command_is (zmsg_t *msg, int command)
{
    zframe_t *frame = zmsg_first (msg);
    frame = zmsg_next (msg);
    frame = zmsg_next (msg);
    return frame && zframe_size (frame) == 1 && zframe_data (frame)[0] == command;
}

//  Take a REQUEST; return its token frame and leave the body in *body_p.
static zframe_t *s_take_request (zsock_t *worker, zmsg_t **body_p)
{
    zmsg_t *msg = s_recv (worker, 2000);
    ck_assert_ptr_nonnull (msg);
    ck_assert (s_command_is (msg, MDPW01_REQUEST));
    zframe_t *frame = zmsg_pop (msg); //  ""
    zframe_destroy (&frame);
    frame = zmsg_pop (msg); //  MDPW01
    zframe_destroy (&frame);
    frame = zmsg_pop (msg); //  command
    zframe_destroy (&frame);
    zframe_t *token = zmsg_pop (msg);
    frame = zmsg_pop (msg);
    ck_assert_int_eq (zframe_size (frame), 0);
    zframe_destroy (&frame);
    *body_p = msg;
    return token;
}

static void s_reply (zsock_t *worker, zframe_t **token_p, const char *action, const char *json)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "");
    zmsg_addstr (msg, MDPW01);
    zmsg_addmem (msg, (char[]){MDPW01_REPLY}, 1);
    zmsg_append (msg, token_p);
    zmsg_addstr (msg, "");
    zmsg_addstr (msg, action);
    zmsg_addstr (msg, json);
    zmsg_send (&msg, worker);
}

START_TEST (test_round_trip_keeps_envelope)
{
    zsock_t *worker = s_peer (), *client = s_peer ();
    s_ready (worker, "echo");
    //  A DEALER client with its own correlation frame before the delimiter.
    s_send (client, "ssssss", "corr-7", "", MDPC01, "echo", "config.get", "{\"a\":1}");
    zmsg_t *body;
    zframe_t *token = s_take_request (worker, &body);
    s_expect (&body, "config.get", "{\"a\":1}", NULL);
    s_reply (worker, &token, "config.result", "{\"a\":1}");
    zmsg_t *reply = s_recv (client, 2000);
    s_expect (&reply, "corr-7", "", MDPC01, "echo", "config.result", "{\"a\":1}", NULL);
    ck_assert_int_eq (broker_stats (broker)->replies, 1);
    zsock_destroy (&worker);
    zsock_destroy (&client);
}
END_TEST

START_TEST (test_timeout_frame_is_stripped)
{
    zsock_t *worker = s_peer (), *client = s_peer ();
    s_ready (worker, "svc");
    const char *timeouts[] = {"10", "2.5", "None", "10.0"};
    for (int i = 0; i < 4; i++) {
        s_send (client, "ssssss", "", MDPC01, "svc", timeouts[i], "config.get", "{}");
        zmsg_t *body;
        zframe_t *token = s_take_request (worker, &body);
        s_expect (&body, "config.get", "{}", NULL);
        s_reply (worker, &token, "config.result", "{}");
        zmsg_t *reply = s_recv (client, 2000);
        s_expect (&reply, "", MDPC01, "svc", "config.result", "{}", NULL);
    }
    //  Not timeouts: a lone frame, and text that is not a plain decimal.
    const char *bodies[][2] = {{"10", NULL}, {"1e3", "{}"}, {"10.", "{}"}, {".5", "{}"}};
    for (int i = 0; i < 4; i++) {
        if (bodies[i][1])
            s_send (client, "sssss", "", MDPC01, "svc", bodies[i][0], bodies[i][1]);
        else
            s_send (client, "ssss", "", MDPC01, "svc", bodies[i][0]);
        zmsg_t *body;
        zframe_t *token = s_take_request (worker, &body);
        ck_assert_int_eq (zmsg_size (body), bodies[i][1] ? 2 : 1);
        ck_assert (zframe_streq (zmsg_first (body), bodies[i][0]));
        zmsg_destroy (&body);
        s_reply (worker, &token, "r", "{}");
        zmsg_t *reply = s_recv (client, 2000);
        zmsg_destroy (&reply);
    }
    zsock_destroy (&worker);
    zsock_destroy (&client);
}
END_TEST

START_TEST (test_queued_until_worker_arrives_in_order)
{
    zsock_t *client = s_peer ();
    for (int i = 0; i < 3; i++) {
        char json[16];
        snprintf (json, sizeof json, "{\"n\":%d}", i);
        s_send (client, "ssssss", "", MDPC01, "late", "5", "x.get", json);
    }
    s_pump_until (0, 3);
    zsock_t *worker = s_peer ();
    s_ready (worker, "late");
    for (int i = 0; i < 3; i++) {
        zmsg_t *body;
        zframe_t *token = s_take_request (worker, &body);
        char json[16];
        snprintf (json, sizeof json, "{\"n\":%d}", i);
        s_expect (&body, "x.get", json, NULL);
        s_reply (worker, &token, "x.result", json);
        zmsg_t *reply = s_recv (client, 2000);
        s_expect (&reply, "", MDPC01, "late", "x.result", json, NULL);
    }
    zsock_destroy (&worker);
    zsock_destroy (&client);
}
END_TEST

START_TEST (test_longest_idle_worker_first)
{
    zsock_t *first = s_peer (), *second = s_peer (), *client = s_peer ();
    s_ready (first, "lru");
    s_ready (second, "lru");
    s_send (client, "sssss", "", MDPC01, "lru", "a", "{}");
    zmsg_t *body;
    zframe_t *token = s_take_request (first, &body);
    zmsg_destroy (&body);
    s_send (client, "sssss", "", MDPC01, "lru", "b", "{}");
    zframe_t *token2 = s_take_request (second, &body);
    zmsg_destroy (&body);
    s_reply (first, &token, "a.result", "{}");
    s_reply (second, &token2, "b.result", "{}");
    zmsg_t *reply = s_recv (client, 2000);
    zmsg_destroy (&reply);
    reply = s_recv (client, 2000);
    zmsg_destroy (&reply);
    //  first finished first, so it has been idle longest and gets the next one.
    s_send (client, "sssss", "", MDPC01, "lru", "c", "{}");
    token = s_take_request (first, &body);
    s_expect (&body, "c", "{}", NULL);
    zframe_destroy (&token);
    zsock_destroy (&first);
    zsock_destroy (&second);
    zsock_destroy (&client);
}
END_TEST

START_TEST (test_disconnect_cases)
{
    //  A second READY, HEARTBEAT or REPLY before READY, and READY mmi.* all get
    //  a well-formed DISCONNECT.
    zsock_t *twice = s_peer ();
    s_ready (twice, "svc");
    s_send (twice, "sscs", "", MDPW01, MDPW01_READY, "svc");
    zmsg_t *msg = s_recv (twice, 2000);
    s_expect (&msg, "", MDPW01, "\x05", NULL);

    zsock_t *early = s_peer ();
    s_send (early, "ssc", "", MDPW01, MDPW01_HEARTBEAT);
    msg = s_recv (early, 2000);
    s_expect (&msg, "", MDPW01, "\x05", NULL);
    s_send (early, "sscsss", "", MDPW01, MDPW01_REPLY, "tok", "", "x");
    msg = s_recv (early, 2000);
    s_expect (&msg, "", MDPW01, "\x05", NULL);

    zsock_t *reserved = s_peer ();
    s_send (reserved, "sscs", "", MDPW01, MDPW01_READY, "mmi.service");
    msg = s_recv (reserved, 2000);
    s_expect (&msg, "", MDPW01, "\x05", NULL);

    size_t services, workers, queued;
    broker_counts (broker, &services, &workers, &queued);
    ck_assert_int_eq (workers, 0);
    ck_assert_int_eq (services, 0);
    zsock_destroy (&twice);
    zsock_destroy (&early);
    zsock_destroy (&reserved);
}
END_TEST

START_TEST (test_worker_disconnect_removes_it)
{
    zsock_t *worker = s_peer (), *client = s_peer ();
    s_ready (worker, "gone");
    s_send (worker, "ssc", "", MDPW01, MDPW01_DISCONNECT);
    s_pump_until (0, -1);
    s_send (client, "sssss", "", MDPC01, "mmi.service", "None", "gone");
    zmsg_t *reply = s_recv (client, 2000);
    s_expect (&reply, "", MDPC01, "mmi.service", "404", NULL);
    zsock_destroy (&worker);
    zsock_destroy (&client);
}
END_TEST

START_TEST (test_mmi)
{
    zsock_t *a = s_peer (), *b = s_peer (), *b2 = s_peer (), *client = s_peer ();
    s_send (client, "sss", "", MDPC01, "mmi.services"); //  no body: dropped
    s_send (client, "ssss", "", MDPC01, "mmi.services", "x");
    zmsg_t *reply = s_recv (client, 2000);
    s_expect (&reply, "", MDPC01, "mmi.services", "", NULL);
    s_ready (b, "zeta");
    s_ready (b2, "zeta");
    s_ready (a, "alpha");
    s_send (client, "ssss", "", MDPC01, "mmi.services", "x");
    reply = s_recv (client, 2000);
    s_expect (&reply, "", MDPC01, "mmi.services", "alpha, zeta", NULL);
    s_send (client, "ssss", "", MDPC01, "mmi.service", "alpha");
    reply = s_recv (client, 2000);
    s_expect (&reply, "", MDPC01, "mmi.service", "200", NULL);
    s_send (client, "sssss", "", MDPC01, "mmi.service", "5", "nobody");
    reply = s_recv (client, 2000);
    s_expect (&reply, "", MDPC01, "mmi.service", "404", NULL);
    s_send (client, "ssss", "", MDPC01, "mmi.whatever", "x");
    reply = s_recv (client, 2000);
    s_expect (&reply, "", MDPC01, "mmi.whatever", "501", NULL);
    size_t services, workers, queued;
    broker_counts (broker, &services, &workers, &queued);
    ck_assert_int_eq (services, 2); //  no state for mmi.* or for asked-about names
    zsock_destroy (&a);
    zsock_destroy (&b);
    zsock_destroy (&b2);
    zsock_destroy (&client);
}
END_TEST

START_TEST (test_heartbeat_and_expiry)
{
    s_teardown ();
    s_setup_with (50, 10000); //  50 ms heartbeat, liveness 3
    zsock_t *worker = s_peer (), *client = s_peer ();
    s_ready (worker, "hb");
    zmsg_t *msg = s_recv (worker, 1000);
    ck_assert_ptr_nonnull (msg);
    s_expect (&msg, "", MDPW01, "\x04", NULL);
    //  The worker takes a request, then falls silent: it expires and the
    //  client hears 502 at once instead of waiting for its own timeout.
    s_send (client, "ssssss", "", MDPC01, "hb", "30", "x.get", "{}");
    zmsg_t *body;
    zframe_t *token = s_take_request (worker, &body);
    zmsg_destroy (&body);
    zframe_destroy (&token);
    zmsg_t *reply = s_recv (client, 2000);
    s_expect (&reply, "", MDPC01, "hb", "mdp.error",
              "{\"code\": 502, \"reason\": \"worker expired\"}", NULL);
    ck_assert_int_eq (broker_stats (broker)->workers_expired, 1);
    size_t services, workers, queued;
    broker_counts (broker, &services, &workers, &queued);
    ck_assert_int_eq (workers, 0);
    ck_assert_int_eq (services, 0);
    zsock_destroy (&worker);
    zsock_destroy (&client);
}
END_TEST

//  A worker that sent READY while the broker was down counts the broker's
//  silence from then: it hears a HEARTBEAT at once (issue 12, ghost workers),
//  unless it is handed a queued request at once, which is a sign of life too.
START_TEST (test_first_heartbeat_at_once)
{
    zsock_t *worker = s_peer (), *client = s_peer (), *late = s_peer ();
    s_send (worker, "sscs", "", MDPW01, MDPW01_READY, "first");
    s_pump_until (1, -1);
    zmsg_t *msg = tu_recv (worker, 200); //  no pumping: sent with the READY
    s_expect (&msg, "", MDPW01, "\x04", NULL);
    s_send (client, "ssssss", "", MDPC01, "queued", "30", "x.get", "{}");
    s_pump_until (-1, 1);
    s_send (late, "sscs", "", MDPW01, MDPW01_READY, "queued");
    s_pump_until (2, 0);
    msg = tu_recv (late, 200);
    ck_assert_ptr_nonnull (msg);
    ck_assert (s_command_is (msg, MDPW01_REQUEST));
    zmsg_destroy (&msg);
    ck_assert_ptr_null (tu_recv (late, 100)); //  no HEARTBEAT on top of it
    zsock_destroy (&worker);
    zsock_destroy (&client);
    zsock_destroy (&late);
}
END_TEST

//  A reload that shortens the heartbeat brings the HEARTBEATs owed forward:
//  no worker waits out the old, longer interval.
START_TEST (test_shorter_heartbeat_applies_at_once)
{
    s_teardown ();
    s_setup_with (10000, 10000);
    zsock_t *worker = s_peer ();
    s_ready (worker, "reload");
    broker_config_t cfg;
    broker_config_defaults (&cfg);
    cfg.heartbeat = 50;
    broker_configure (broker, &cfg);
    zmsg_t *msg = s_recv (worker, 1000);
    s_expect (&msg, "", MDPW01, "\x04", NULL);
    zsock_destroy (&worker);
}
END_TEST

START_TEST (test_heartbeats_keep_worker)
{
    s_teardown ();
    s_setup_with (tu_scale (30), 10000);
    zsock_t *worker = s_peer ();
    s_ready (worker, "alive");
    int64_t until = zclock_mono () + tu_scale (400); //  over four liveness periods
    while (zclock_mono () < until) {
        s_send (worker, "ssc", "", MDPW01, MDPW01_HEARTBEAT);
        s_pump (tu_scale (20));
        zmsg_t *msg;
        while (zsock_events (worker) & ZMQ_POLLIN) {
            msg = zmsg_recv (worker);
            ck_assert (s_command_is (msg, MDPW01_HEARTBEAT));
            zmsg_destroy (&msg);
        }
    }
    size_t services, workers, queued;
    broker_counts (broker, &services, &workers, &queued);
    ck_assert_int_eq (workers, 1);
    ck_assert_int_eq (broker_stats (broker)->workers_expired, 0);
    zsock_destroy (&worker);
}
END_TEST

START_TEST (test_queue_bound_and_deadline)
{
    s_teardown ();
    s_setup_with (2500, 2);
    zsock_t *client = s_peer ();
    s_send (client, "ssssss", "", MDPC01, "full", "0.2", "a", "{}");
    s_send (client, "ssssss", "", MDPC01, "full", "0.2", "b", "{}");
    s_send (client, "ssssss", "", MDPC01, "full", "0.2", "c", "{}");
    zmsg_t *reply = s_recv (client, 2000); //  the third is refused at once
    s_expect (&reply, "", MDPC01, "full", "mdp.error",
              "{\"code\": 503, \"reason\": \"queue full\"}", NULL);
    for (int i = 0; i < 2; i++) {
        reply = s_recv (client, 3000); //  the others expire after 0.2 s
        s_expect (&reply, "", MDPC01, "full", "mdp.error",
                  "{\"code\": 504, \"reason\": \"no worker for service\"}", NULL);
    }
    size_t services, workers, queued;
    broker_counts (broker, &services, &workers, &queued);
    ck_assert_int_eq (queued, 0);
    ck_assert_int_eq (services, 0);
    zsock_destroy (&client);
}
END_TEST

START_TEST (test_unanswered_request_times_out)
{
    //  A worker that keeps heartbeating but never answers (as Domogik's do for
    //  unknown actions) costs the client its deadline, not the service.
    zsock_t *worker = s_peer (), *client = s_peer ();
    s_ready (worker, "mute");
    s_send (client, "ssssss", "", MDPC01, "mute", "0.2", "unknown.action", "{}");
    zmsg_t *body;
    zframe_t *ignored = s_take_request (worker, &body);
    zmsg_destroy (&body);
    zmsg_t *reply = s_recv (client, 3000);
    s_expect (&reply, "", MDPC01, "mute", "mdp.error",
              "{\"code\": 504, \"reason\": \"worker did not answer in time\"}", NULL);
    s_send (client, "ssssss", "", MDPC01, "mute", "5", "config.get", "{}");
    zframe_t *token = s_take_request (worker, &body);
    s_expect (&body, "config.get", "{}", NULL);
    s_reply (worker, &ignored, "late", "{}"); //  stale: dropped
    s_reply (worker, &token, "config.result", "{}");
    reply = s_recv (client, 2000);
    s_expect (&reply, "", MDPC01, "mute", "config.result", "{}", NULL);
    zsock_destroy (&worker);
    zsock_destroy (&client);
}
END_TEST

START_TEST (test_stale_reply_dropped)
{
    zsock_t *worker = s_peer (), *client = s_peer ();
    s_ready (worker, "svc");
    s_send (client, "sssss", "", MDPC01, "svc", "a", "{}");
    zmsg_t *body;
    zframe_t *token = s_take_request (worker, &body);
    zmsg_destroy (&body);
    zframe_t *copy = zframe_dup (token);
    zframe_t *bogus = zframe_new ("12345678", 8);
    s_reply (worker, &bogus, "wrong", "{}");
    s_reply (worker, &token, "right", "{}");
    s_reply (worker, &copy, "again", "{}");
    zmsg_t *reply = s_recv (client, 2000);
    s_expect (&reply, "", MDPC01, "svc", "right", "{}", NULL);
    int64_t deadline = zclock_mono () + tu_scale (2000);
    while (broker_stats (broker)->dropped[DROP_STALE_REPLY] < 2 && zclock_mono () < deadline)
        broker_poll (broker, 2);
    ck_assert_int_eq (broker_stats (broker)->dropped[DROP_STALE_REPLY], 2);
    s_pump (20);
    ck_assert (!(zsock_events (client) & ZMQ_POLLIN));
    zsock_destroy (&worker);
    zsock_destroy (&client);
}
END_TEST

START_TEST (test_garbage_barrage)
{
    zsock_t *bad = s_peer ();
    const char *frames[] = {"",     "MDPC01", "MDPW01",      "MDPC02", "x",
                            "\x01", "\x03",   "mmi.service", "None",   "10"};
    zsys_set_logstream (NULL);
    //  Random frame sequences from a fixed seed, including too many frames.
    srand (7);
    for (int i = 0; i < 3000; i++) {
        zmsg_t *msg = zmsg_new ();
        int count = i % 50 == 0 ? 70 : rand () % 9;
        for (int j = 0; j < count; j++)
            zmsg_addstr (msg, frames[rand () % 10]);
        if (count == 0)
            zmsg_addmem (msg, "", 0);
        zmsg_send (&msg, bad);
    }
    //  Messages from one peer are handled in order: once an MMI answer comes
    //  back on the same socket, the whole barrage has been handled.
    s_send (bad, "ssss", "", MDPC01, "mmi.service", "x");
    bool answered = false;
    for (zmsg_t *msg; !answered && (msg = s_recv (bad, 5000)); zmsg_destroy (&msg))
        answered = zmsg_size (msg) == 4 && zframe_streq (zmsg_last (msg), "404");
    ck_assert (answered);
    //  Still serving.
    zsock_t *worker = s_peer (), *client = s_peer ();
    s_ready (worker, "after");
    s_send (client, "sssss", "", MDPC01, "after", "x.get", "{}");
    zmsg_t *body;
    zframe_t *token = s_take_request (worker, &body);
    zmsg_destroy (&body);
    s_reply (worker, &token, "x.result", "{}");
    zmsg_t *reply = s_recv (client, 2000);
    s_expect (&reply, "", MDPC01, "after", "x.result", "{}", NULL);
    const broker_stats_t *stats = broker_stats (broker);
    ck_assert_uint_gt (stats->dropped[DROP_MALFORMED], 100);
    ck_assert_uint_gt (stats->dropped[DROP_TOO_MANY_FRAMES], 10);
    zsock_destroy (&bad);
    zsock_destroy (&worker);
    zsock_destroy (&client);
}
END_TEST

START_TEST (test_shutdown_answers_everyone)
{
    zsock_t *worker = s_peer (), *client = s_peer ();
    s_ready (worker, "busy");
    s_send (client, "sssss", "", MDPC01, "busy", "a", "{}");
    s_send (client, "sssss", "", MDPC01, "busy", "b", "{}");
    zmsg_t *body;
    zframe_t *token = s_take_request (worker, &body);
    zmsg_destroy (&body);
    zframe_destroy (&token);
    broker_shutdown (broker);
    for (int i = 0; i < 2; i++) {
        zmsg_t *reply = s_recv (client, 2000);
        s_expect (&reply, "", MDPC01, "busy", "mdp.error",
                  "{\"code\": 503, \"reason\": \"broker shutting down\"}", NULL);
    }
    zmsg_t *msg = s_recv (worker, 2000);
    s_expect (&msg, "", MDPW01, "\x05", NULL);
    zsock_destroy (&worker);
    zsock_destroy (&client);
}
END_TEST

int main (void)
{
    Suite *suite = suite_create ("broker");
    TCase *tc = tcase_create ("engine");
    tcase_add_checked_fixture (tc, s_setup, s_teardown);
    tcase_set_timeout (tc, 30);
    tcase_add_test (tc, test_round_trip_keeps_envelope);
    tcase_add_test (tc, test_timeout_frame_is_stripped);
    tcase_add_test (tc, test_queued_until_worker_arrives_in_order);
    tcase_add_test (tc, test_longest_idle_worker_first);
    tcase_add_test (tc, test_disconnect_cases);
    tcase_add_test (tc, test_worker_disconnect_removes_it);
    tcase_add_test (tc, test_mmi);
    tcase_add_test (tc, test_heartbeat_and_expiry);
    tcase_add_test (tc, test_heartbeats_keep_worker);
    tcase_add_test (tc, test_first_heartbeat_at_once);
    tcase_add_test (tc, test_shorter_heartbeat_applies_at_once);
    tcase_add_test (tc, test_queue_bound_and_deadline);
    tcase_add_test (tc, test_unanswered_request_times_out);
    tcase_add_test (tc, test_stale_reply_dropped);
    tcase_add_test (tc, test_garbage_barrage);
    tcase_add_test (tc, test_shutdown_answers_everyone);
    suite_add_tcase (suite, tc);
    return tu_run_suite (suite);
}
