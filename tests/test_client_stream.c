/*  test_client_stream.c - Check suite for mdp_client_request_stream: MDPC02
    requests whose partial replies reach a callback before the final one; a
    partial restarts the timeout, and a request is never sent again once a
    partial came. Same fake broker and helper actor as test_client.c.
*/
#include "client_harness.h"
#include "mdp_client_private.h"
#include <check.h>
#include <errno.h>

START_TEST (test_stream_frames_and_partials)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    zactor_t *call = s_call ((call_t){endpoint, 2500, 1, "llm", "ask", "{\"q\": \"hi\"}", true, 1});

    zmsg_t *request = tu_recv (broker, 2000);
    tu_assert_frames (request, 8, NULL, "", "MDPC02", "\x01", "llm", "2.5", "ask",
                      "{\"q\":\"hi\"}");
    tu_send_to (broker, request, NULL, 6, "", "MDPC02", "\x02", "llm", "ask.partial",
                "{\"t\":\"He\"}");
    tu_send_to (broker, request, NULL, 6, "", "MDPC02", "\x02", "llm", "ask.partial",
                "{\"t\":\"ll\"}");
    tu_send_to (broker, request, NULL, 6, "", "MDPC02", "\x02", "other", "ask.partial",
                "{}"); //  dropped
    tu_send_to (broker, request, NULL, 6, "", "MDPC02", "\x02", "llm", "ask.partial",
                "{\"t\":\"o\"}");
    tu_send_to (broker, request, NULL, 6, "", "MDPC02", "\x03", "llm", "ask.result",
                "{\"t\":\"Hello\"}");

    result_t result = s_result (&call);
    ck_assert_int_eq (result.error, 0);
    ck_assert_str_eq (result.partials, "{\"action\":\"ask.partial\",\"data\":{\"t\":\"He\"}}\n"
                                       "{\"action\":\"ask.partial\",\"data\":{\"t\":\"ll\"}}\n"
                                       "{\"action\":\"ask.partial\",\"data\":{\"t\":\"o\"}}\n");
    ck_assert_str_eq (result.reply, "{\"action\":\"ask.result\",\"data\":{\"t\":\"Hello\"}}");
    s_result_free (&result);
    zmsg_destroy (&request);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_stream_takes_mdpc01_reply_as_final)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    zactor_t *call = s_call ((call_t){endpoint, 2500, 1, "old", "a.get", "{}", true, 1});
    zmsg_t *request = tu_recv (broker, 2000);
    ck_assert_ptr_nonnull (request);
    tu_send_to (broker, request, NULL, 5, "", "MDPC01", "old", "a.result", "{\"v\":1}");
    result_t result = s_result (&call);
    ck_assert_int_eq (result.error, 0);
    ck_assert_str_eq (result.partials, "");
    ck_assert_str_eq (result.reply, "{\"action\":\"a.result\",\"data\":{\"v\":1}}");
    s_result_free (&result);
    zmsg_destroy (&request);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_stream_partials_restart_the_timeout)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    zactor_t *call = s_call ((call_t){endpoint, tu_scale (500), 2, "slow", "a.get", "{}", true, 1});
    zmsg_t *request = tu_recv (broker, 2000);
    ck_assert_ptr_nonnull (request);
    //  Eight partials 100 msecs apart: more than the timeout in all, never 500 silent
    for (int part = 0; part < 8; part++) {
        zclock_sleep (tu_scale (100));
        tu_send_to (broker, request, NULL, 6, "", "MDPC02", "\x02", "slow", "a.part", "{}");
    }
    tu_send_to (broker, request, NULL, 6, "", "MDPC02", "\x03", "slow", "a.result", "{}");
    result_t result = s_result (&call);
    ck_assert_int_eq (result.error, 0);
    ck_assert_str_eq (result.reply, "{\"action\":\"a.result\",\"data\":{}}");
    int lines = 0;
    for (char *line = result.partials; (line = strchr (line, '\n')); line++)
        lines++;
    ck_assert_int_eq (lines, 8);
    zmsg_t *retry = tu_recv (broker, 0); //  one attempt was enough
    ck_assert_ptr_null (retry);
    s_result_free (&result);
    zmsg_destroy (&request);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_stream_no_retry_after_a_partial)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    zactor_t *call = s_call ((call_t){endpoint, tu_scale (500), 3, "slow", "a.get", "{}", true, 1});
    zmsg_t *request = tu_recv (broker, 2000);
    ck_assert_ptr_nonnull (request);
    tu_send_to (broker, request, NULL, 6, "", "MDPC02", "\x02", "slow", "a.part", "{\"n\":1}");
    //  ...and then silence: the call ends, with no second attempt
    result_t result = s_result (&call);
    ck_assert_int_eq (result.error, EAGAIN);
    ck_assert_str_eq (result.reply, "");
    ck_assert_str_eq (result.partials, "{\"action\":\"a.part\",\"data\":{\"n\":1}}\n");
    zmsg_t *retry = tu_recv (broker, 100);
    ck_assert_ptr_null (retry);
    s_result_free (&result);
    zmsg_destroy (&request);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_stream_retries_while_no_partial)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    zactor_t *call = s_call ((call_t){endpoint, tu_scale (500), 2, "slow", "a.get", "{}", true, 1});
    zmsg_t *first = tu_recv (broker, 2000);
    zmsg_t *second = tu_recv (broker, 2000); //  after attempt 1 timed out
    char timeout[32];
    mdp_client_timeout_text (tu_scale (500), timeout, sizeof timeout);
    tu_assert_frames (second, 8, NULL, "", "MDPC02", "\x01", "slow", timeout, "a.get", "{}");
    ck_assert (!zframe_eq (zmsg_first (first), zmsg_first (second))); //  a fresh socket
    //  Attempt 1's partial comes late, on the old socket: never seen
    tu_send_to (broker, first, NULL, 6, "", "MDPC02", "\x02", "slow", "a.late", "{}");
    tu_send_to (broker, second, NULL, 6, "", "MDPC02", "\x02", "slow", "a.part", "{}");
    tu_send_to (broker, second, NULL, 6, "", "MDPC02", "\x03", "slow", "a.result", "{}");
    result_t result = s_result (&call);
    ck_assert_int_eq (result.error, 0);
    ck_assert_str_eq (result.partials, "{\"action\":\"a.part\",\"data\":{}}\n");
    ck_assert_str_eq (result.reply, "{\"action\":\"a.result\",\"data\":{}}");
    s_result_free (&result);
    zmsg_destroy (&first);
    zmsg_destroy (&second);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

int main (void)
{
    Suite *suite = suite_create ("mdp_client_stream");
    TCase *tc = tcase_create ("stream");
    tcase_set_timeout (tc, tu_scale (20));
    tcase_add_test (tc, test_stream_frames_and_partials);
    tcase_add_test (tc, test_stream_takes_mdpc01_reply_as_final);
    tcase_add_test (tc, test_stream_partials_restart_the_timeout);
    tcase_add_test (tc, test_stream_no_retry_after_a_partial);
    tcase_add_test (tc, test_stream_retries_while_no_partial);
    suite_add_tcase (suite, tc);
    return tu_run_suite (suite);
}
