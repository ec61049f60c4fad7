/*  test_async_failover.c - Check suite for mdp_async_t with several brokers
    (spec/ha.md): two fake brokers; a request whose broker is silent or answers
    503 goes to the other, a stream never restarts after a partial, and a dead
    broker gets probes, not requests, until it answers again.
*/
#include "async_harness.h"
#include <check.h>
#include <errno.h>

//  the fake broker sock has a message, at most msecs; return that message.
static zmsg_t *s_pump_until (mdp_async_t *client, zsock_t *sock, int msecs)
{
    int64_t deadline = zclock_mono () + tu_scale (msecs);
    while (zclock_mono () < deadline && !(zsock_events (sock) & ZMQ_POLLIN)) {
        mdp_async_process (client);
        zmq_pollitem_t items[] = {{zsock_resolve (sock), 0, ZMQ_POLLIN, 0},
                                  {zsock_resolve (mdp_async_socket (client)), 0, ZMQ_POLLIN, 0}};
        zmq_poll (items, 2, 5);
    }
    return (zsock_events (sock) & ZMQ_POLLIN) ? zmsg_recv (sock) : NULL;
}

START_TEST (test_failover_on_silence)
{
    tu_pair_t pair = tu_pair_new ();
    mdp_async_t *client = s_client (pair.list);
    mdp_async_set_timeout (client, tu_scale (200));
    s_send (client, "echo", "a.get", "{}");
    zmsg_t *first = tu_recv (pair.a, 2000);
    ck_assert_ptr_nonnull (first);
    zmsg_t *second = s_pump_until (client, pair.b, 2000); //  A silent: sent to B
    ck_assert_ptr_nonnull (second);
    //  The same request, correlation id and all, on the same wire frames
    zmsg_t *expect = zmsg_dup (first);
    zframe_t *rid = zmsg_pop (expect);
    zframe_destroy (&rid);
    zmsg_t *got = zmsg_dup (second);
    rid = zmsg_pop (got);
    zframe_destroy (&rid);
    ck_assert_int_eq (zmsg_size (got), zmsg_size (expect));
    for (zframe_t *x = zmsg_first (got), *y = zmsg_first (expect); x;
         x = zmsg_next (got), y = zmsg_next (expect))
        ck_assert (zframe_eq (x, y));
    zmsg_destroy (&got);
    zmsg_destroy (&expect);
    //  A answers late, then B: one final event, B's
    tu_answer (pair.a, first, 5, "MDPC02", "\x03", "echo", "a.late", "{}");
    tu_answer (pair.b, second, 5, "MDPC02", "\x03", "echo", "a.result", "{}");
    ck_assert_event (client, 2000, "1 final {\"action\":\"a.result\",\"data\":{}}");
    ck_assert_event (client, 200, "none");
    ck_assert_int_eq (mdp_async_pending (client), 0);
    zmsg_destroy (&first);
    zmsg_destroy (&second);
    mdp_async_destroy (&client);
    tu_pair_destroy (&pair);
}
END_TEST

START_TEST (test_failover_on_503)
{
    tu_pair_t pair = tu_pair_new ();
    mdp_async_t *client = s_client (pair.list);
    s_send (client, "echo", "a.get", "{}");
    zmsg_t *first = tu_recv (pair.a, 2000);
    ck_assert_ptr_nonnull (first);
    tu_answer (pair.a, first, 5, "MDPC02", "\x03", "echo", "mdp.error",
               "{\"code\":503,\"reason\":\"broker shutting down\"}");
    zmsg_t *second = s_pump_until (client, pair.b, 2000); //  at once, not after the timeout
    ck_assert_ptr_nonnull (second);
    tu_answer (pair.b, second, 5, "MDPC02", "\x03", "echo", "a.result", "{}");
    ck_assert_event (client, 2000, "1 final {\"action\":\"a.result\",\"data\":{}}");
    zmsg_destroy (&first);
    zmsg_destroy (&second);
    mdp_async_destroy (&client);
    tu_pair_destroy (&pair);
}
END_TEST

START_TEST (test_stream_no_failover_after_a_partial)
{
    tu_pair_t pair = tu_pair_new ();
    mdp_async_t *client = s_client (pair.list);
    mdp_async_set_timeout (client, tu_scale (200));
    s_send (client, "slow", "a.get", "{}");
    zmsg_t *request = tu_recv (pair.a, 2000);
    ck_assert_ptr_nonnull (request);
    tu_answer (pair.a, request, 5, "MDPC02", "\x02", "slow", "a.part", "{}");
    ck_assert_event (client, 2000, "1 partial {\"action\":\"a.part\",\"data\":{}}");
    //  ...then A dies: the caller gets a timeout, B never restarts the stream
    char *expected = zsys_sprintf ("1 final errno=%d", ETIMEDOUT);
    ck_assert_event (client, 2000, expected);
    zstr_free (&expected);
    zmsg_t *restarted = tu_recv (pair.b, 100);
    ck_assert_ptr_null (restarted);
    zmsg_destroy (&request);
    mdp_async_destroy (&client);
    tu_pair_destroy (&pair);
}
END_TEST

//  After a failover new requests go straight to the broker that answered;
//  the silent one gets probes only: mmi.service on correlation id 0.
START_TEST (test_dead_broker_is_probed_not_asked)
{
    tu_pair_t pair = tu_pair_new ();
    mdp_async_t *client = s_client (pair.list);
    mdp_async_set_timeout (client, tu_scale (200));
    s_send (client, "echo", "a.get", "{}");
    zmsg_t *lost = tu_recv (pair.a, 2000);
    ck_assert_ptr_nonnull (lost);
    zmsg_t *second = s_pump_until (client, pair.b, 2000);
    ck_assert_ptr_nonnull (second);
    tu_answer (pair.b, second, 5, "MDPC02", "\x03", "echo", "a.result", "{}");
    ck_assert_event (client, 2000, "1 final {\"action\":\"a.result\",\"data\":{}}");
    mdp_async_set_timeout (client, tu_scale (10000));
    s_send (client, "echo", "b.get", "{}");
    zmsg_t *third = tu_recv (pair.b, 2000);
    ck_assert_ptr_nonnull (third);
    zmsg_t *probe = s_pump_until (client, pair.a, 1000); //  after the back-off
    ck_assert_ptr_nonnull (probe);
    zframe_t *zero = tu_id_frame (0);
    ck_assert (zframe_eq (s_correlation (probe), zero));
    zframe_destroy (&zero);
    tu_assert_frames (probe, 9, NULL, NULL, "", "MDPC02", "\x01", "mmi.service", NULL, "mmi.ping",
                      "{}");
    tu_answer (pair.b, third, 5, "MDPC02", "\x03", "echo", "b.result", "{}");
    ck_assert_event (client, 2000, "2 final {\"action\":\"b.result\",\"data\":{}}");
    zmsg_destroy (&probe);
    zmsg_destroy (&third);
    zmsg_destroy (&second);
    zmsg_destroy (&lost);
    mdp_async_destroy (&client);
    tu_pair_destroy (&pair);
}
END_TEST

START_TEST (test_endpoint_lists)
{
    const char *bad[] = {"tcp://127.0.0.1:1,", ",tcp://127.0.0.1:1",
                         "tcp://127.0.0.1:1,,tcp://127.0.0.1:2", "tcp://127.0.0.1:1,nonsense"};
    for (size_t index = 0; index < sizeof bad / sizeof bad[0]; index++) {
        errno = 0;
        ck_assert_msg (mdp_async_new (bad[index]) == NULL, "'%s' was taken", bad[index]);
        ck_assert_int_eq (errno, EINVAL);
    }
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    mdp_async_t *client = s_client ("tcp://127.0.0.1:1");
    ck_assert_int_eq (mdp_async_add_endpoint (client, "nonsense"), -1);
    ck_assert_int_eq (mdp_async_add_endpoint (client, endpoint), 0);
    s_send (client, "echo", "a.get", "{}");
    ck_assert_int_eq (mdp_async_add_endpoint (client, "tcp://127.0.0.1:2"), -1); //  in flight
    ck_assert_int_eq (errno, EINVAL);
    mdp_async_destroy (&client);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

int main (void)
{
    Suite *suite = suite_create ("mdp_async_failover");
    TCase *tc = tcase_create ("failover");
    tcase_set_timeout (tc, tu_scale (20));
    tcase_add_test (tc, test_failover_on_silence);
    tcase_add_test (tc, test_failover_on_503);
    tcase_add_test (tc, test_stream_no_failover_after_a_partial);
    tcase_add_test (tc, test_dead_broker_is_probed_not_asked);
    tcase_add_test (tc, test_endpoint_lists);
    suite_add_tcase (suite, tc);
    return tu_run_suite (suite);
}
