/*  test_engine.c - the worker protocol engine (mdp_engine.c) alone, driven
    without threads and with explicit "now" values: a ROUTER in the test's
    thread stands in for the broker and checks every frame; the clock is
    whatever the test says it is, so expiry and back-off are exact.
*/
#include "mdp_engine.h"
#include "mdp_proto.h"
#include "testutil.h"
#include <check.h>
#include <errno.h>

#define HB 1000 //  heartbeat of every engine here (fake msecs: no real wait)
#define LIVENESS 3
#define T0 100000 //  the fake clock's start

static zsock_t *broker; //  the fake broker
static char *endpoint;  //  where it listens

static void s_setup (void)
{
    broker = tu_router_bound (&endpoint);
    ck_assert_ptr_nonnull (broker);
}

static void s_teardown (void)
{
    zsock_destroy (&broker);
    free (endpoint);
}

//  A connected engine for "echo" speaking version, and the routing id its
//  READY came from.
static mdp_engine_t *s_engine (int version, zframe_t **id_p)
{
    mdp_engine_t *engine = mdp_engine_new (endpoint, "echo", version, "test");
    ck_assert_ptr_nonnull (engine);
    mdp_engine_set_heartbeat (engine, HB, LIVENESS, T0);
    mdp_engine_set_reconnect (engine, 100, 800);
    ck_assert_int_eq (mdp_engine_timeout (engine, T0), -1); //  parked until connected
    ck_assert_int_eq (mdp_engine_connect (engine, T0), 0);
    //  A port just freed may still draw a stranger's reconnecting peer: skip it
    zmsg_t *ready = tu_recv (broker, 2000);
    while (ready && !zframe_streq (zmsg_last (ready), "echo")) {
        zmsg_destroy (&ready);
        ready = tu_recv (broker, 2000);
    }
    tu_assert_frames (ready, 5, NULL, "", mdp_proto_worker (version), "\x01", "echo");
    *id_p = zmsg_pop (ready);
    zmsg_destroy (&ready);
    return engine;
}

//  Send the frames after the routing id id to that peer.
static void s_send_to (zframe_t *id, int count, ...)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addmem (msg, zframe_data (id), zframe_size (id));
    va_list args;
    va_start (args, count);
    for (int index = 0; index < count; index++)
        zmsg_addstr (msg, va_arg (args, const char *));
    va_end (args);
    ck_assert_int_eq (zmsg_send (&msg, broker), 0);
}

//  Wait (bounded, real time) until the engine's socket has input, then let
//  it read everything at fake time now. Returns what mdp_engine_recv says.
static bool s_recv (mdp_engine_t *engine, int64_t now)
{
    zpoller_t *poller = zpoller_new (mdp_engine_socket (engine), NULL);
    bool ready = zpoller_wait (poller, tu_scale (2000)) != NULL;
    zpoller_destroy (&poller);
    ck_assert_msg (ready, "nothing reached the engine");
    return mdp_engine_recv (engine, now);
}

//  Nothing from the engine within a short real wait.
static void s_expect_silence (void)
{
    zmsg_t *msg = tu_recv (broker, 100);
    ck_assert_ptr_null (msg);
}

START_TEST (test_heartbeat_schedule)
{
    zframe_t *id;
    mdp_engine_t *engine = s_engine (1, &id);
    ck_assert_int_eq (mdp_engine_version (engine), 1);
    ck_assert_int_eq (mdp_engine_timeout (engine, T0), HB);
    mdp_engine_tick (engine, T0 + HB - 1); //  not yet
    s_expect_silence ();
    mdp_engine_tick (engine, T0 + HB);
    zmsg_t *msg = tu_recv (broker, 2000);
    tu_assert_frames (msg, 4, NULL, "", "MDPW01", "\x04");
    ck_assert (zframe_eq (zmsg_first (msg), id));
    zmsg_destroy (&msg);
    ck_assert_int_eq (mdp_engine_timeout (engine, T0 + HB), HB);
    //  A shorter heartbeat takes effect at once
    mdp_engine_set_heartbeat (engine, HB / 4, LIVENESS, T0 + HB);
    ck_assert_int_eq (mdp_engine_timeout (engine, T0 + HB), HB / 4);
    zframe_destroy (&id);
    mdp_engine_destroy (&engine);
    mdp_engine_destroy (&engine); //  NULL-safe
}
END_TEST

START_TEST (test_broker_heartbeats_keep_it_alive)
{
    zframe_t *id;
    mdp_engine_t *engine = s_engine (1, &id);
    int64_t now = T0;
    //  Ten liveness periods, the broker heartbeating each interval
    for (int beat = 1; beat <= 10 * LIVENESS; beat++) {
        now = T0 + (int64_t)beat * HB;
        s_send_to (id, 3, "", "MDPW01", "\x04");
        ck_assert (!s_recv (engine, now));
        mdp_engine_tick (engine, now);
        zmsg_t *msg = tu_recv (broker, 2000);
        tu_assert_frames (msg, 4, NULL, "", "MDPW01", "\x04"); //  ours, not a READY
        ck_assert (zframe_eq (zmsg_first (msg), id));
        zmsg_destroy (&msg);
    }
    ck_assert_ptr_nonnull (mdp_engine_socket (engine));
    zframe_destroy (&id);
    mdp_engine_destroy (&engine);
}
END_TEST

START_TEST (test_silence_means_reconnect_with_backoff)
{
    zframe_t *id;
    mdp_engine_t *engine = s_engine (1, &id);
    int64_t expiry = T0 + (int64_t)HB * LIVENESS;
    mdp_engine_tick (engine, expiry - 1);
    ck_assert_ptr_nonnull (mdp_engine_socket (engine));
    zmsg_t *msg;
    while ((msg = tu_recv (broker, 100))) //  the heartbeat of that tick
        zmsg_destroy (&msg);
    mdp_engine_tick (engine, expiry);
    ck_assert_ptr_null (mdp_engine_socket (engine)); //  gone, waiting
    //  Never registered: the first wait is the initial 100 plus up to 25%
    int wait = mdp_engine_timeout (engine, expiry);
    ck_assert_int_ge (wait, 100);
    ck_assert_int_le (wait, 125);
    mdp_engine_tick (engine, expiry + wait - 1);
    ck_assert_ptr_null (mdp_engine_socket (engine));
    mdp_engine_tick (engine, expiry + wait);
    ck_assert_ptr_nonnull (mdp_engine_socket (engine));
    msg = tu_recv (broker, 2000);
    tu_assert_frames (msg, 5, NULL, "", "MDPW01", "\x01", "echo");
    ck_assert (!zframe_eq (zmsg_first (msg), id)); //  a new socket
    zmsg_destroy (&msg);
    //  Silent again: the wait doubles (200 plus up to 25%)
    int64_t now = expiry + wait + (int64_t)HB * LIVENESS;
    mdp_engine_tick (engine, now);
    while ((msg = tu_recv (broker, 100)))
        zmsg_destroy (&msg);
    ck_assert_ptr_null (mdp_engine_socket (engine));
    wait = mdp_engine_timeout (engine, now);
    ck_assert_int_ge (wait, 200);
    ck_assert_int_le (wait, 250);
    zframe_destroy (&id);
    mdp_engine_destroy (&engine);
}
END_TEST

START_TEST (test_losing_a_registered_broker_reconnects_at_once)
{
    zframe_t *id;
    mdp_engine_t *engine = s_engine (1, &id);
    s_send_to (id, 3, "", "MDPW01", "\x04"); //  registered: the broker heartbeats
    s_recv (engine, T0 + 10);
    int64_t expiry = T0 + 10 + (int64_t)HB * LIVENESS;
    mdp_engine_tick (engine, expiry);
    ck_assert_ptr_null (mdp_engine_socket (engine));
    ck_assert_int_le (mdp_engine_timeout (engine, expiry), 100 / 4); //  jitter only
    zframe_destroy (&id);
    mdp_engine_destroy (&engine);
}
END_TEST

START_TEST (test_request_held_until_taken)
{
    zframe_t *id;
    mdp_engine_t *engine = s_engine (1, &id);
    uint64_t generation = mdp_engine_generation (engine);
    ck_assert_ptr_null (mdp_engine_take (engine));
    ck_assert (!mdp_engine_busy (engine));
    s_send_to (id, 8, "", "MDPW01", "\x02", "proxy", "client", "", "a.get", "{\"k\":1}");
    ck_assert (s_recv (engine, T0 + 1));
    ck_assert (mdp_engine_held (engine));
    //  A held request survives ticks until its owner takes it
    mdp_engine_tick (engine, T0 + 2);
    zmsg_t *body = mdp_engine_take (engine);
    ck_assert (!mdp_engine_held (engine));
    ck_assert (mdp_engine_busy (engine));
    ck_assert_uint_gt (mdp_engine_generation (engine), generation);
    tu_assert_frames (body, 2, "a.get", "{\"k\":1}");
    //  The reply goes back with the whole envelope
    ck_assert_int_eq (mdp_engine_reply (engine, &body, true), 0);
    ck_assert_ptr_null (body);
    zmsg_t *reply = tu_recv (broker, 2000);
    tu_assert_frames (reply, 9, NULL, "", "MDPW01", "\x03", "proxy", "client", "", "a.get",
                      "{\"k\":1}");
    zmsg_destroy (&reply);
    ck_assert (!mdp_engine_busy (engine));
    //  Once final, there is nothing to answer
    zmsg_t *late = zmsg_new ();
    zmsg_addstr (late, "late");
    errno = 0;
    ck_assert_int_eq (mdp_engine_reply (engine, &late, true), -1);
    ck_assert_int_eq (errno, EINVAL);
    ck_assert_ptr_null (late);
    zframe_destroy (&id);
    mdp_engine_destroy (&engine);
}
END_TEST

START_TEST (test_take_msg_and_reply_msg)
{
    //  The worker's hot path: the body decoded from the frames it came in,
    //  the reply sent from action and JSON text, numbers as written
    zframe_t *id;
    mdp_engine_t *engine = s_engine (2, &id);
    errno = 0;
    ck_assert_ptr_null (mdp_engine_take_msg (engine));
    ck_assert_int_eq (errno, EAGAIN);
    //  An envelope longer than the engine's first frame arrays (8 frames)
    s_send_to (id, 17, "", "MDPW02", "\x02", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9",
               "a10", "client", "", "a.get", "{\"n\":12345678901234567890,\"f\":1.50}");
    ck_assert (s_recv (engine, T0 + 1));
    mdp_msg_t *request = mdp_engine_take_msg (engine);
    ck_assert_ptr_nonnull (request);
    ck_assert (mdp_engine_busy (engine));
    ck_assert (!mdp_engine_held (engine));
    ck_assert_str_eq (mdp_msg_action (request), "a.get");
    ck_assert_int_eq (mdp_engine_reply_msg (engine, request, false), 0);
    ck_assert_int_eq (mdp_engine_reply_msg (engine, request, true), 0);
    mdp_msg_destroy (&request);
    for (int reply = 0; reply < 2; reply++) {
        zmsg_t *msg = tu_recv (broker, 2000);
        tu_assert_frames (msg, 18, NULL, "", "MDPW02", reply ? "\x04" : "\x03", "a1", "a2", "a3",
                          "a4", "a5", "a6", "a7", "a8", "a9", "a10", "client", "", "a.get",
                          "{\"n\":12345678901234567890,\"f\":1.50}");
        zmsg_destroy (&msg);
    }
    ck_assert (!mdp_engine_busy (engine));
    mdp_msg_t *late = mdp_msg_new ("late", NULL);
    errno = 0;
    ck_assert_int_eq (mdp_engine_reply_msg (engine, late, true), -1);
    ck_assert_int_eq (errno, EINVAL);
    //  A body that is not [action][json] still becomes the current request,
    //  so that its sender gets an answer
    s_send_to (id, 8, "", "MDPW02", "\x02", "client", "", "a.get", "{not json", "extra");
    ck_assert (s_recv (engine, T0 + 2));
    errno = 0;
    ck_assert_ptr_null (mdp_engine_take_msg (engine));
    ck_assert_int_eq (errno, EPROTO);
    ck_assert (mdp_engine_busy (engine));
    ck_assert_int_eq (mdp_engine_reply_msg (engine, late, true), 0);
    zmsg_t *msg = tu_recv (broker, 2000);
    tu_assert_frames (msg, 8, NULL, "", "MDPW02", "\x04", "client", "", "late", "{}");
    zmsg_destroy (&msg);
    mdp_msg_destroy (&late);
    zframe_destroy (&id);
    mdp_engine_destroy (&engine);
}
END_TEST

START_TEST (test_v2_partials_then_final)
{
    zframe_t *id;
    mdp_engine_t *engine = s_engine (2, &id);
    s_send_to (id, 7, "", "MDPW02", "\x02", "client", "", "a.get", "{}");
    ck_assert (s_recv (engine, T0 + 1));
    zmsg_t *body = mdp_engine_take (engine);
    zmsg_destroy (&body);
    for (int part = 0; part < 2; part++) {
        zmsg_t *partial = zmsg_new ();
        zmsg_addstr (partial, "a.partial");
        ck_assert_int_eq (mdp_engine_reply (engine, &partial, false), 0);
        zmsg_t *msg = tu_recv (broker, 2000);
        tu_assert_frames (msg, 7, NULL, "", "MDPW02", "\x03", "client", "", "a.partial");
        zmsg_destroy (&msg);
        ck_assert (mdp_engine_busy (engine));
    }
    ck_assert_int_eq (mdp_engine_reply (engine, NULL, true), 0); //  empty final
    zmsg_t *msg = tu_recv (broker, 2000);
    tu_assert_frames (msg, 6, NULL, "", "MDPW02", "\x04", "client", "");
    zmsg_destroy (&msg);
    //  HEARTBEAT and DISCONNECT have their MDPW02 codes
    mdp_engine_tick (engine, T0 + HB);
    msg = tu_recv (broker, 2000);
    tu_assert_frames (msg, 4, NULL, "", "MDPW02", "\x05");
    zmsg_destroy (&msg);
    mdp_engine_close (engine, true);
    msg = tu_recv (broker, 2000);
    tu_assert_frames (msg, 4, NULL, "", "MDPW02", "\x06");
    zmsg_destroy (&msg);
    zframe_destroy (&id);
    mdp_engine_destroy (&engine);
}
END_TEST

START_TEST (test_partial_on_v1_is_eproto)
{
    zframe_t *id;
    mdp_engine_t *engine = s_engine (1, &id);
    s_send_to (id, 7, "", "MDPW01", "\x02", "client", "", "a.get", "{}");
    s_recv (engine, T0 + 1);
    zmsg_t *body = mdp_engine_take (engine);
    errno = 0;
    ck_assert_int_eq (mdp_engine_reply (engine, &body, false), -1);
    ck_assert_int_eq (errno, EPROTO);
    ck_assert (mdp_engine_busy (engine)); //  the final reply may still go
    zframe_destroy (&id);
    mdp_engine_destroy (&engine);
}
END_TEST

START_TEST (test_disconnect_forgets_requests)
{
    zframe_t *id;
    mdp_engine_t *engine = s_engine (1, &id);
    s_send_to (id, 7, "", "MDPW01", "\x02", "client", "", "a.get", "{}");
    s_send_to (id, 3, "", "MDPW01", "\x05");
    zpoller_t *poller = zpoller_new (mdp_engine_socket (engine), NULL);
    //  Both must be there before reading: wait until the DISCONNECT is read
    int64_t deadline = zclock_mono () + tu_scale (2000);
    while (mdp_engine_socket (engine) && zclock_mono () < deadline) {
        zpoller_wait (poller, 50);
        mdp_engine_recv (engine, T0 + 1);
    }
    zpoller_destroy (&poller);
    ck_assert_ptr_null (mdp_engine_socket (engine));
    ck_assert (!mdp_engine_held (engine));                      //  its answer could reach nobody
    ck_assert_int_le (mdp_engine_timeout (engine, T0 + 1), 25); //  it was registered
    mdp_engine_tick (engine, T0 + 1 + 25);
    zmsg_t *msg = tu_recv (broker, 2000);
    tu_assert_frames (msg, 5, NULL, "", "MDPW01", "\x01", "echo");
    zmsg_destroy (&msg);
    zframe_destroy (&id);
    mdp_engine_destroy (&engine);
}
END_TEST

START_TEST (test_malformed_messages_are_dropped)
{
    zframe_t *id;
    mdp_engine_t *engine = s_engine (1, &id);
    s_send_to (id, 2, "MDPW01", "\x05"); //  no delimiter
    s_send_to (id, 1, "junk");
    s_send_to (id, 3, "", "MDPW01", "\x09");                     //  unknown command
    s_send_to (id, 3, "", "MDPW01", "\x03");                     //  REPLY: a worker's command
    s_send_to (id, 3, "", "MDPW01", "\x04\x04");                 //  two-byte command
    s_send_to (id, 3, "", "MDPW02", "\x05");                     //  the other protocol
    s_send_to (id, 6, "", "MDPW01", "\x02", "c", "a.get", "{}"); //  no delimiter
    s_send_to (id, 6, "", "MDPW01", "\x02", "", "a.get", "{}");  //  no address
    s_send_to (id, 3, "", "MDPW01", "\x02");                     //  nothing at all
    s_send_to (id, 7, "", "MDPW01", "\x02", "client", "", "a.get", "{}");
    int64_t deadline = zclock_mono () + tu_scale (2000);
    while (!mdp_engine_held (engine) && zclock_mono () < deadline)
        s_recv (engine, T0 + 1);
    ck_assert (mdp_engine_held (engine));
    ck_assert_ptr_nonnull (mdp_engine_socket (engine)); //  same connection
    zmsg_t *body = mdp_engine_take (engine);
    tu_assert_frames (body, 2, "a.get", "{}");
    zmsg_destroy (&body);
    s_expect_silence (); //  nothing was answered
    zframe_destroy (&id);
    mdp_engine_destroy (&engine);
}
END_TEST

START_TEST (test_newer_request_replaces_one_not_taken)
{
    zframe_t *id;
    mdp_engine_t *engine = s_engine (1, &id);
    s_send_to (id, 7, "", "MDPW01", "\x02", "c1", "", "first.get", "{}");
    s_send_to (id, 7, "", "MDPW01", "\x02", "c2", "", "second.get", "{}");
    int64_t deadline = zclock_mono () + tu_scale (2000);
    zmsg_t *body = NULL;
    while (zclock_mono () < deadline) {
        s_recv (engine, T0 + 1);
        body = mdp_engine_take (engine);
        if (body && zframe_streq (zmsg_first (body), "second.get"))
            break;
        zmsg_destroy (&body);
    }
    ck_assert_ptr_nonnull (body);
    zmsg_destroy (&body);
    zframe_destroy (&id);
    mdp_engine_destroy (&engine);
}
END_TEST

START_TEST (test_close_parks)
{
    zframe_t *id;
    mdp_engine_t *engine = s_engine (1, &id);
    mdp_engine_close (engine, false); //  no goodbye
    s_expect_silence ();
    ck_assert_ptr_null (mdp_engine_socket (engine));
    ck_assert_int_eq (mdp_engine_timeout (engine, T0), -1);
    mdp_engine_tick (engine, T0 + 100 * HB); //  parked: never reconnects
    ck_assert_ptr_null (mdp_engine_socket (engine));
    s_expect_silence ();
    errno = 0;
    ck_assert_int_eq (mdp_engine_reply (engine, NULL, true), -1);
    ck_assert_int_eq (errno, EINVAL);
    ck_assert_int_eq (mdp_engine_connect (engine, T0 + 100 * HB), 0);
    zmsg_t *msg = tu_recv (broker, 2000);
    tu_assert_frames (msg, 5, NULL, "", "MDPW01", "\x01", "echo");
    zmsg_destroy (&msg);
    zframe_destroy (&id);
    mdp_engine_destroy (&engine);
    //  destroy said goodbye
    msg = tu_recv (broker, 2000);
    tu_assert_frames (msg, 4, NULL, "", "MDPW01", "\x05");
    zmsg_destroy (&msg);
}
END_TEST

START_TEST (test_new_rejects_bad_arguments)
{
    errno = 0;
    ck_assert_ptr_null (mdp_engine_new ("tcp://127.0.0.1:1", "echo", 3, NULL));
    ck_assert_int_eq (errno, EINVAL);
    ck_assert_ptr_null (mdp_engine_new (NULL, "echo", 1, NULL));
    ck_assert_ptr_null (mdp_engine_new ("tcp://127.0.0.1:1", NULL, 1, NULL));
    //  The command table
    ck_assert_int_eq (mdp_proto_code (1, MDP_PROTO_FINAL), MDPW01_REPLY);
    ck_assert_int_eq (mdp_proto_code (1, MDP_PROTO_PARTIAL), 0);
    ck_assert_int_eq (mdp_proto_code (2, MDP_PROTO_DISCONNECT), MDPW02_DISCONNECT);
    ck_assert_int_eq (mdp_proto_command (2, MDPW02_HEARTBEAT), MDP_PROTO_HEARTBEAT);
    ck_assert_int_eq (mdp_proto_command (1, 0x06), -1);
    ck_assert_int_eq (mdp_proto_command (1, 0), -1);
}
END_TEST

int main (void)
{
    Suite *suite = suite_create ("mdp_engine");
    TCase *tc = tcase_create ("engine");
    tcase_set_timeout (tc, tu_scale (20));
    tcase_add_checked_fixture (tc, s_setup, s_teardown);
    tcase_add_test (tc, test_heartbeat_schedule);
    tcase_add_test (tc, test_broker_heartbeats_keep_it_alive);
    tcase_add_test (tc, test_silence_means_reconnect_with_backoff);
    tcase_add_test (tc, test_losing_a_registered_broker_reconnects_at_once);
    tcase_add_test (tc, test_request_held_until_taken);
    tcase_add_test (tc, test_v2_partials_then_final);
    tcase_add_test (tc, test_partial_on_v1_is_eproto);
    tcase_add_test (tc, test_disconnect_forgets_requests);
    tcase_add_test (tc, test_take_msg_and_reply_msg);
    tcase_add_test (tc, test_malformed_messages_are_dropped);
    tcase_add_test (tc, test_newer_request_replaces_one_not_taken);
    tcase_add_test (tc, test_close_parks);
    tcase_add_test (tc, test_new_rejects_bad_arguments);
    suite_add_tcase (suite, tc);
    SRunner *runner = srunner_create (suite);
    srunner_run_all (runner, CK_NORMAL);
    int failed = srunner_ntests_failed (runner);
    srunner_free (runner);
    return failed == 0 ? 0 : 1;
}
