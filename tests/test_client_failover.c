/*  test_client_failover.c - Check suite for mdp_client_t with several brokers
    (spec/ha.md): two fake brokers; a request whose broker is silent or answers
    503 goes to the other, a stream is never restarted after a partial, a dead
    broker gets probes, not requests, and the endpoint list is checked.
*/
#include "client_harness.h"
#include "mdp_client_private.h"
#include <check.h>
#include <errno.h>

START_TEST (test_failover_on_silence)
{
    tu_pair_t pair = tu_pair_new ();
    //  retries 1: with two brokers there are still two attempts, one each
    zactor_t *call =
        s_call ((call_t){pair.list, tu_scale (200), 1, "echo", "a.get", "{}", false, 1});
    zmsg_t *first = tu_recv (pair.a, 2000);
    tu_assert_frames (first, 7, NULL, "", "MDPC01", "echo", NULL, "a.get", "{}");
    zmsg_t *second = tu_recv (pair.b, 2000); //  after A stayed silent
    tu_assert_frames (second, 7, NULL, "", "MDPC01", "echo", NULL, "a.get", "{}");
    //  A answers late, then B: the caller gets B's answer, once
    tu_send_to (pair.a, first, NULL, 5, "", "MDPC01", "echo", "a.late", "{}");
    tu_send_to (pair.b, second, NULL, 5, "", "MDPC01", "echo", "a.result", "{}");
    result_t result = s_result (&call);
    ck_assert_int_eq (result.error, 0);
    ck_assert_str_eq (result.reply, "{\"action\":\"a.result\",\"data\":{}}");
    s_result_free (&result);
    zmsg_destroy (&first);
    zmsg_destroy (&second);
    tu_pair_destroy (&pair);
}
END_TEST

START_TEST (test_failover_on_503)
{
    tu_pair_t pair = tu_pair_new ();
    zactor_t *call =
        s_call ((call_t){pair.list, tu_scale (2000), 1, "echo", "a.get", "{}", false, 1});
    zmsg_t *first = tu_recv (pair.a, 2000);
    ck_assert_ptr_nonnull (first);
    tu_send_to (pair.a, first, NULL, 5, "", "MDPC01", "echo", "mdp.error",
                "{\"code\":503,\"reason\":\"broker shutting down\"}");
    zmsg_t *second = tu_recv (pair.b, 2000); //  at once, not after the timeout
    ck_assert_ptr_nonnull (second);
    tu_send_to (pair.b, second, NULL, 5, "", "MDPC01", "echo", "a.result", "{}");
    result_t result = s_result (&call);
    ck_assert_int_eq (result.error, 0);
    ck_assert_str_eq (result.reply, "{\"action\":\"a.result\",\"data\":{}}");
    s_result_free (&result);
    zmsg_destroy (&first);
    zmsg_destroy (&second);
    tu_pair_destroy (&pair);
}
END_TEST

START_TEST (test_503_everywhere_is_the_reply)
{
    tu_pair_t pair = tu_pair_new ();
    zactor_t *call =
        s_call ((call_t){pair.list, tu_scale (2000), 1, "echo", "a.get", "{}", false, 1});
    const char *error = "{\"code\":503,\"reason\":\"queue full\"}";
    zmsg_t *first = tu_recv (pair.a, 2000);
    ck_assert_ptr_nonnull (first);
    tu_send_to (pair.a, first, NULL, 5, "", "MDPC01", "echo", "mdp.error", error);
    zmsg_t *second = tu_recv (pair.b, 2000);
    ck_assert_ptr_nonnull (second);
    tu_send_to (pair.b, second, NULL, 5, "", "MDPC01", "echo", "mdp.error", error);
    result_t result = s_result (&call);
    ck_assert_int_eq (result.error, 0);
    ck_assert_str_eq (
        result.reply,
        "{\"action\":\"mdp.error\",\"data\":{\"code\":503,\"reason\":\"queue full\"}}");
    s_result_free (&result);
    zmsg_destroy (&first);
    zmsg_destroy (&second);
    tu_pair_destroy (&pair);
}
END_TEST

START_TEST (test_stream_no_failover_after_a_partial)
{
    tu_pair_t pair = tu_pair_new ();
    zactor_t *call =
        s_call ((call_t){pair.list, tu_scale (300), 3, "slow", "a.get", "{}", true, 1});
    zmsg_t *request = tu_recv (pair.a, 2000);
    ck_assert_ptr_nonnull (request);
    tu_send_to (pair.a, request, NULL, 6, "", "MDPC02", "\x02", "slow", "a.part", "{}");
    //  ...then A dies: an error for the caller, never a stream restarted on B
    result_t result = s_result (&call);
    ck_assert_int_eq (result.error, EAGAIN);
    ck_assert_str_eq (result.partials, "{\"action\":\"a.part\",\"data\":{}}\n");
    zmsg_t *restarted = tu_recv (pair.b, 100);
    ck_assert_ptr_null (restarted);
    s_result_free (&result);
    zmsg_destroy (&request);
    tu_pair_destroy (&pair);
}
END_TEST

START_TEST (test_stream_failover_before_a_partial)
{
    tu_pair_t pair = tu_pair_new ();
    zactor_t *call =
        s_call ((call_t){pair.list, tu_scale (200), 1, "slow", "a.get", "{}", true, 1});
    zmsg_t *first = tu_recv (pair.a, 2000);
    ck_assert_ptr_nonnull (first);
    zmsg_t *second = tu_recv (pair.b, 2000);
    tu_assert_frames (second, 8, NULL, "", "MDPC02", "\x01", "slow", NULL, "a.get", "{}");
    tu_send_to (pair.b, second, NULL, 6, "", "MDPC02", "\x02", "slow", "a.part", "{}");
    tu_send_to (pair.b, second, NULL, 6, "", "MDPC02", "\x03", "slow", "a.result", "{}");
    result_t result = s_result (&call);
    ck_assert_int_eq (result.error, 0);
    ck_assert_str_eq (result.partials, "{\"action\":\"a.part\",\"data\":{}}\n");
    ck_assert_str_eq (result.reply, "{\"action\":\"a.result\",\"data\":{}}");
    s_result_free (&result);
    zmsg_destroy (&first);
    zmsg_destroy (&second);
    tu_pair_destroy (&pair);
}
END_TEST

//  After a failover the next request goes straight to the broker that
//  answered; the silent one only gets liveness probes (mmi.service).
START_TEST (test_dead_broker_is_probed_not_asked)
{
    tu_pair_t pair = tu_pair_new ();
    zactor_t *call =
        s_call ((call_t){pair.list, tu_scale (300), 1, "echo", "a.get", "{}", false, 2});
    zmsg_t *lost = tu_recv (pair.a, 2000);
    tu_assert_frames (lost, 7, NULL, "", "MDPC01", "echo", NULL, "a.get", "{}");
    zmsg_t *probe = NULL;
    for (int index = 0; index < 2; index++) {
        zmsg_t *request = tu_recv (pair.b, 2000);
        ck_assert_msg (request != NULL, "request %d never reached B", index + 1);
        if (index == 1) //  while the client waits on B, A gets a probe
            probe = tu_recv (pair.a, 1000);
        tu_send_to (pair.b, request, NULL, 5, "", "MDPC01", "echo", "a.result", "{}");
        zmsg_destroy (&request);
    }
    result_t result = s_result (&call);
    ck_assert_int_eq (result.error, 0);
    s_result_free (&result);
    //  A never saw the second request, only the probe after the back-off
    tu_assert_frames (probe, 6, NULL, "", "MDPC01", "mmi.service", NULL, "mmi.ping");
    zmsg_destroy (&probe);
    zmsg_destroy (&lost);
    tu_pair_destroy (&pair);
}
END_TEST

START_TEST (test_endpoint_lists)
{
    const char *bad[] = {"tcp://127.0.0.1:1,", ",tcp://127.0.0.1:1",
                         "tcp://127.0.0.1:1,,tcp://127.0.0.1:2", "tcp://127.0.0.1:1,nonsense"};
    for (size_t index = 0; index < sizeof bad / sizeof bad[0]; index++) {
        errno = 0;
        ck_assert_msg (mdp_client_new (bad[index]) == NULL, "'%s' was taken", bad[index]);
        ck_assert_int_eq (errno, EINVAL);
    }
    mdp_client_t *client = mdp_client_new ("tcp://127.0.0.1:1,tcp://127.0.0.1:2");
    ck_assert_ptr_nonnull (client);
    ck_assert_int_eq (mdp_client_add_endpoint (client, "tcp://127.0.0.1:3"), 0);
    ck_assert_int_eq (mdp_client_add_endpoint (client, "tcp://127.0.0.1:4,tcp://127.0.0.1:5"), -1);
    ck_assert_int_eq (errno, EINVAL);
    ck_assert_int_eq (mdp_client_add_endpoint (client, ""), -1);
    int added = 3;
    while (mdp_client_add_endpoint (client, "tcp://127.0.0.1:6") == 0)
        added++;
    ck_assert_int_eq (added, 16); //  the documented limit
    ck_assert_int_eq (errno, EINVAL);
    mdp_client_destroy (&client);
}
END_TEST

int main (void)
{
    Suite *suite = suite_create ("mdp_client_failover");
    TCase *tc = tcase_create ("failover");
    tcase_set_timeout (tc, tu_scale (20));
    tcase_add_test (tc, test_failover_on_silence);
    tcase_add_test (tc, test_failover_on_503);
    tcase_add_test (tc, test_503_everywhere_is_the_reply);
    tcase_add_test (tc, test_stream_no_failover_after_a_partial);
    tcase_add_test (tc, test_stream_failover_before_a_partial);
    tcase_add_test (tc, test_dead_broker_is_probed_not_asked);
    tcase_add_test (tc, test_endpoint_lists);
    suite_add_tcase (suite, tc);
    return tu_run_suite (suite);
}
