/*  test_broker_v2.c - MDP/0.2 (RFC 18) in the routing engine, byte for byte:
    partial and final replies, the bare and delimited forms, every pairing of
    client and worker versions, and 0.2 error and MMI answers.
*/
#include "broker_harness.h"

//  READY in MDP/0.2, delimited or bare; waits until the broker has it.
static void s_ready_v2 (zsock_t *worker, const char *service, bool bare)
{
    size_t services, workers, queued;
    broker_counts (broker, &services, &workers, &queued);
    if (bare)
        s_send (worker, "scs", MDPW02, MDPW02_READY, service);
    else
        s_send (worker, "sscs", "", MDPW02, MDPW02_READY, service);
    s_pump_until ((int)workers + 1, -1);
    s_take_first_heartbeat (worker, queued, 2, bare);
}

//  Take a REQUEST of either version and form; return its token frame.
static zframe_t *s_request_token (zsock_t *worker, bool bare, const char *proto)
{
    zmsg_t *msg = s_recv (worker, 2000);
    ck_assert_ptr_nonnull (msg);
    if (!bare) {
        zframe_t *empty = zmsg_pop (msg);
        ck_assert_int_eq (zframe_size (empty), 0);
        zframe_destroy (&empty);
    }
    zframe_t *frame = zmsg_pop (msg);
    ck_assert (zframe_streq (frame, proto));
    zframe_destroy (&frame);
    frame = zmsg_pop (msg);
    ck_assert (zframe_size (frame) == 1 && zframe_data (frame)[0] == 0x02);
    zframe_destroy (&frame);
    zframe_t *token = zmsg_pop (msg);
    zmsg_destroy (&msg);
    return token;
}

//  PARTIAL (0x03) or FINAL (0x04) from an MDP/0.2 worker.
static void s_reply_v2 (zsock_t *worker, bool bare, int command, zframe_t *token,
                        const char *action)
{
    zmsg_t *msg = zmsg_new ();
    if (!bare)
        zmsg_addstr (msg, "");
    zmsg_addstr (msg, MDPW02);
    zmsg_addmem (msg, (char[]){(char)command}, 1);
    zmsg_append (msg, &(zframe_t *){zframe_dup (token)});
    zmsg_addstr (msg, "");
    zmsg_addstr (msg, action);
    zmsg_addstr (msg, "{}");
    zmsg_send (&msg, worker);
}

START_TEST (test_stream_to_v2_client)
{
    zsock_t *worker = s_peer (), *client = s_peer ();
    s_ready_v2 (worker, "llm", false);
    s_send (client, "ssscssss", "id7", "", MDPC02, MDPC02_REQUEST, "llm", "30", "ask", "{}");
    zframe_t *token = s_request_token (worker, false, MDPW02);
    s_reply_v2 (worker, false, MDPW02_PARTIAL, token, "part1");
    s_reply_v2 (worker, false, MDPW02_PARTIAL, token, "part2");
    s_reply_v2 (worker, false, MDPW02_FINAL, token, "ask.result");
    const char *actions[] = {"part1", "part2", "ask.result"};
    const char *commands[] = {"\x02", "\x02", "\x03"};
    for (int i = 0; i < 3; i++) {
        zmsg_t *reply = s_recv (client, 2000);
        s_expect (&reply, "id7", "", MDPC02, commands[i], "llm", actions[i], "{}", NULL);
    }
    //  After the FINAL the worker is free and a stray PARTIAL is stale.
    s_reply_v2 (worker, false, MDPW02_PARTIAL, token, "late");
    int64_t deadline = zclock_mono () + tu_scale (2000);
    while (broker_stats (broker)->dropped[DROP_STALE_REPLY] < 1 && zclock_mono () < deadline)
        broker_poll (broker, 2);
    ck_assert_int_eq (broker_stats (broker)->dropped[DROP_STALE_REPLY], 1);
    zframe_destroy (&token);
    zsock_destroy (&worker);
    zsock_destroy (&client);
}
END_TEST

START_TEST (test_partials_extend_the_deadline)
{
    //  Timeout 1 s, a stream of five partials 300 ms apart (1.5 s in all):
    //  each partial restarts the deadline, so no 504 cuts the stream short.
    zsock_t *worker = s_peer (), *client = s_peer ();
    s_ready_v2 (worker, "slow", false);
    char timeout[16];
    snprintf (timeout, sizeof timeout, "%d", tu_scale (1000) / 1000);
    s_send (client, "sscssss", "", MDPC02, MDPC02_REQUEST, "slow", timeout, "ask", "{}");
    zframe_t *token = s_request_token (worker, false, MDPW02);
    for (int i = 0; i < 5; i++) {
        int64_t until = zclock_mono () + tu_scale (300);
        while (zclock_mono () < until)
            broker_poll (broker, 5);
        s_reply_v2 (worker, false, MDPW02_PARTIAL, token, "part");
        zmsg_t *reply = s_recv (client, 2000);
        s_expect (&reply, "", MDPC02, "\x02", "slow", "part", "{}", NULL);
    }
    s_reply_v2 (worker, false, MDPW02_FINAL, token, "ask.result");
    zmsg_t *reply = s_recv (client, 2000);
    s_expect (&reply, "", MDPC02, "\x03", "slow", "ask.result", "{}", NULL);
    ck_assert_int_eq (broker_stats (broker)->errors[5], 0); //  no 504
    zframe_destroy (&token);
    zsock_destroy (&worker);
    zsock_destroy (&client);
}
END_TEST

START_TEST (test_v1_client_gets_only_the_final)
{
    zsock_t *worker = s_peer (), *client = s_peer ();
    s_ready_v2 (worker, "llm", false);
    s_send (client, "sssss", "", MDPC01, "llm", "ask", "{}");
    zframe_t *token = s_request_token (worker, false, MDPW02);
    s_reply_v2 (worker, false, MDPW02_PARTIAL, token, "part1");
    s_reply_v2 (worker, false, MDPW02_FINAL, token, "ask.result");
    zmsg_t *reply = s_recv (client, 2000);
    s_expect (&reply, "", MDPC01, "llm", "ask.result", "{}", NULL);
    zframe_destroy (&token);
    zsock_destroy (&worker);
    zsock_destroy (&client);
}
END_TEST

START_TEST (test_v2_client_of_v1_worker)
{
    zsock_t *worker = s_peer (), *client = s_peer ();
    s_ready (worker, "old");
    s_send (client, "sscsss", "", MDPC02, MDPC02_REQUEST, "old", "x.get", "{}");
    zframe_t *token = s_request_token (worker, false, MDPW01);
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "");
    zmsg_addstr (msg, MDPW01);
    zmsg_addmem (msg, (char[]){MDPW01_REPLY}, 1);
    zmsg_append (msg, &token);
    zmsg_addstr (msg, "");
    zmsg_addstr (msg, "x.result");
    zmsg_send (&msg, worker);
    zmsg_t *reply = s_recv (client, 2000);
    s_expect (&reply, "", MDPC02, "\x03", "old", "x.result", NULL);
    zsock_destroy (&worker);
    zsock_destroy (&client);
}
END_TEST

START_TEST (test_bare_rfc18_form)
{
    //  RFC 18 as written: no empty frames, on both sides; answered in kind.
    zsock_t *worker = s_peer (), *client = s_peer ();
    s_ready_v2 (worker, "bare", true);
    s_send (client, "scsss", MDPC02, MDPC02_REQUEST, "bare", "x.get", "{}");
    zframe_t *token = s_request_token (worker, true, MDPW02);
    s_reply_v2 (worker, true, MDPW02_PARTIAL, token, "p");
    s_reply_v2 (worker, true, MDPW02_FINAL, token, "x.result");
    zmsg_t *reply = s_recv (client, 2000);
    s_expect (&reply, MDPC02, "\x02", "bare", "p", "{}", NULL);
    reply = s_recv (client, 2000);
    s_expect (&reply, MDPC02, "\x03", "bare", "x.result", "{}", NULL);
    //  Heartbeats go out in the worker's own form and codes.
    s_send (worker, "sc", MDPW02, MDPW02_HEARTBEAT);
    broker_tick (broker, zclock_mono () + 3000);
    zmsg_t *beat = s_recv (worker, 2000);
    s_expect (&beat, MDPW02, "\x05", NULL);
    zframe_destroy (&token);
    zsock_destroy (&worker);
    zsock_destroy (&client);
}
END_TEST

START_TEST (test_v2_errors_and_mmi_are_finals)
{
    s_teardown ();
    s_setup_with (2500, 0); //  no room in any queue: 503 at once
    zsock_t *client = s_peer ();
    s_send (client, "ssscsss", "c1", "", MDPC02, MDPC02_REQUEST, "none", "a", "{}");
    zmsg_t *reply = s_recv (client, 2000);
    s_expect (&reply, "c1", "", MDPC02, "\x03", "none", "mdp.error",
              "{\"code\": 503, \"reason\": \"queue full\"}", NULL);
    s_send (client, "scss", MDPC02, MDPC02_REQUEST, "mmi.service", "none");
    reply = s_recv (client, 2000);
    s_expect (&reply, MDPC02, "\x03", "mmi.service", "404", NULL);
    zsock_destroy (&client);
}
END_TEST

START_TEST (test_v2_rules)
{
    zsock_t *worker = s_peer (), *unknown = s_peer (), *client = s_peer ();
    //  A command from an unregistered MDP/0.2 worker gets a 0.2 DISCONNECT.
    s_send (unknown, "ssc", "", MDPW02, MDPW02_HEARTBEAT);
    zmsg_t *msg = s_recv (unknown, 2000);
    s_expect (&msg, "", MDPW02, "\x06", NULL);
    //  A 0.2 worker speaking 0.1 is dropped; its request stays outstanding.
    s_ready_v2 (worker, "mix", false);
    s_send (client, "sscsss", "", MDPC02, MDPC02_REQUEST, "mix", "a", "{}");
    zframe_t *token = s_request_token (worker, false, MDPW02);
    s_send (worker, "ssc", "", MDPW01, MDPW01_HEARTBEAT);
    //  0x02 from a client is majortomo's REQUEST (test_majortomo_dialect); this
    //  one has no body, so it is malformed.
    s_send (client, "sscs", "", MDPC02, MDPC02_PARTIAL, "mix");
    s_reply_v2 (worker, false, MDPW02_FINAL, token, "a.result");
    msg = s_recv (client, 2000);
    s_expect (&msg, "", MDPC02, "\x03", "mix", "a.result", "{}", NULL);
    ck_assert_uint_ge (broker_stats (broker)->dropped[DROP_MALFORMED], 2);
    //  A second READY in 0.2 gets a 0.2 DISCONNECT.
    s_send (worker, "sscs", "", MDPW02, MDPW02_READY, "mix");
    msg = s_recv (worker, 2000);
    s_expect (&msg, "", MDPW02, "\x06", NULL);
    zframe_destroy (&token);
    zsock_destroy (&worker);
    zsock_destroy (&unknown);
    zsock_destroy (&client);
}
END_TEST

//  majortomo's client: REQUEST is 0x02 (its one command table for client and
//  worker), and it expects PARTIAL 0x03 and FINAL 0x04 back with no service
//  frame. Its requests, errors and MMI answers all go out in that dialect,
//  while an RFC 18 client on the same service keeps RFC 18's.
START_TEST (test_majortomo_dialect)
{
    zsock_t *worker = s_peer (), *client = s_peer (), *rfc = s_peer ();
    s_ready_v2 (worker, "mt", false);
    s_send (client, "sscsss", "", MDPC02, 0x02, "mt", "ask", "{}");
    zframe_t *token = s_request_token (worker, false, MDPW02);
    s_reply_v2 (worker, false, MDPW02_PARTIAL, token, "part");
    s_reply_v2 (worker, false, MDPW02_FINAL, token, "ask.result");
    zmsg_t *reply = s_recv (client, 2000);
    s_expect (&reply, "", MDPC02, "\x03", "part", "{}", NULL);
    reply = s_recv (client, 2000);
    s_expect (&reply, "", MDPC02, "\x04", "ask.result", "{}", NULL);
    zframe_destroy (&token);
    s_send (rfc, "sscsss", "", MDPC02, MDPC02_REQUEST, "mt", "ask", "{}");
    token = s_request_token (worker, false, MDPW02);
    s_reply_v2 (worker, false, MDPW02_FINAL, token, "ask.result");
    reply = s_recv (rfc, 2000);
    s_expect (&reply, "", MDPC02, "\x03", "mt", "ask.result", "{}", NULL);
    zframe_destroy (&token);
    //  MMI, and a correlation frame before the delimiter, come back as sent.
    s_send (client, "ssscss", "corr", "", MDPC02, 0x02, "mmi.service", "mt");
    reply = s_recv (client, 2000);
    s_expect (&reply, "corr", "", MDPC02, "\x04", "200", NULL);
    s_send (client, "scss", MDPC02, 0x02, "mmi.service", "nobody"); //  bare form too
    reply = s_recv (client, 2000);
    s_expect (&reply, MDPC02, "\x04", "404", NULL);
    //  An error reply: no worker for the service within the default deadline
    //  (majortomo sends no timeout frame).
    broker_config_t cfg;
    broker_config_defaults (&cfg);
    cfg.request_timeout = 100;
    broker_configure (broker, &cfg);
    s_send (client, "sscsss", "", MDPC02, 0x02, "nobody", "ask", "{}");
    reply = s_recv (client, 2000);
    s_expect (&reply, "", MDPC02, "\x04", "mdp.error",
              "{\"code\": 504, \"reason\": \"no worker for service\"}", NULL);
    zsock_destroy (&worker);
    zsock_destroy (&client);
    zsock_destroy (&rfc);
}
END_TEST

//  A worker that dies holding a majortomo request: the 502 is in its dialect.
START_TEST (test_majortomo_gets_502_in_its_dialect)
{
    zsock_t *worker = s_peer (), *client = s_peer ();
    s_ready_v2 (worker, "mt", false);
    s_send (client, "sscsss", "", MDPC02, 0x02, "mt", "ask", "{}");
    zframe_t *token = s_request_token (worker, false, MDPW02);
    s_send (worker, "ssc", "", MDPW02, MDPW02_DISCONNECT);
    zmsg_t *reply = s_recv (client, 2000);
    s_expect (&reply, "", MDPC02, "\x04", "mdp.error",
              "{\"code\": 502, \"reason\": \"worker disconnected\"}", NULL);
    zframe_destroy (&token);
    zsock_destroy (&worker);
    zsock_destroy (&client);
}
END_TEST

int main (void)
{
    Suite *suite = suite_create ("broker-v2");
    TCase *tc = tcase_create ("mdp02");
    tcase_add_checked_fixture (tc, s_setup, s_teardown);
    tcase_set_timeout (tc, 30);
    tcase_add_test (tc, test_stream_to_v2_client);
    tcase_add_test (tc, test_partials_extend_the_deadline);
    tcase_add_test (tc, test_v1_client_gets_only_the_final);
    tcase_add_test (tc, test_v2_client_of_v1_worker);
    tcase_add_test (tc, test_bare_rfc18_form);
    tcase_add_test (tc, test_v2_errors_and_mmi_are_finals);
    tcase_add_test (tc, test_v2_rules);
    tcase_add_test (tc, test_majortomo_dialect);
    tcase_add_test (tc, test_majortomo_gets_502_in_its_dialect);
    suite_add_tcase (suite, tc);
    return tu_run_suite (suite);
}
