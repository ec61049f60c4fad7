/*  test_client.c - Check suite for mdp_client_t against a fake broker: a bare
    ROUTER in the test's own thread that checks the request frames byte for
    byte and answers (or not) as each test needs. The blocking client runs in
    a helper actor and reports its result over the actor pipe (client_harness.h).
    Streams: test_client_stream.c; several brokers: test_client_failover.c.
*/
#include "client_harness.h"
#include "mdp_client_private.h"
#include <check.h>
#include <errno.h>

START_TEST (test_request_frames_and_reply)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    zactor_t *call =
        s_call ((call_t){endpoint, 2500, 1, "echo", "config.get", "{\"key\": 1}", false, 1});

    zmsg_t *request = tu_recv (broker, 2000);
    tu_assert_frames (request, 7, NULL, "", "MDPC01", "echo", "2.5", "config.get", "{\"key\":1}");
    tu_send_to (broker, request, NULL, 5, "", "MDPC01", "echo", "config.result", "{\"key\":1}");

    result_t result = s_result (&call);
    ck_assert_int_eq (result.error, 0);
    ck_assert_str_eq (result.reply, "{\"action\":\"config.result\",\"data\":{\"key\":1}}");
    s_result_free (&result);
    zmsg_destroy (&request);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_timeout_frame_whole_seconds)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    zactor_t *call = s_call ((call_t){endpoint, 3000, 1, "admin", "device.get", "{}", false, 1});

    zmsg_t *request = tu_recv (broker, 2000);
    tu_assert_frames (request, 7, NULL, "", "MDPC01", "admin", "3", "device.get", "{}");
    tu_send_to (broker, request, NULL, 4, "", "MDPC01", "admin", "device.result");

    result_t result = s_result (&call);
    ck_assert_int_eq (result.error, 0);
    ck_assert_str_eq (result.reply, "{\"action\":\"device.result\",\"data\":{}}");
    s_result_free (&result);
    zmsg_destroy (&request);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_timeout_text)
{
    struct {
        int msecs;
        const char *text;
    } cases[] = {{3000, "3"},   {2500, "2.5"},  {250, "0.25"},     {1, "0.001"},
                 {10000, "10"}, {1050, "1.05"}, {12345, "12.345"}, {100, "0.1"}};
    for (size_t index = 0; index < sizeof cases / sizeof cases[0]; index++) {
        char text[32];
        mdp_client_timeout_text (cases[index].msecs, text, sizeof text);
        ck_assert_str_eq (text, cases[index].text);
    }
}
END_TEST

START_TEST (test_error_reply_is_final)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    zactor_t *call = s_call ((call_t){endpoint, 2000, 3, "nosuch", "x.get", "{}", false, 1});

    zmsg_t *request = tu_recv (broker, 2000);
    ck_assert_ptr_nonnull (request);
    tu_send_to (broker, request, NULL, 5, "", "MDPC01", "nosuch", "mdp.error",
                "{\"code\":404,\"reason\":\"unknown service\"}");

    result_t result = s_result (&call);
    ck_assert_int_eq (result.error, 0);
    ck_assert_str_eq (
        result.reply,
        "{\"action\":\"mdp.error\",\"data\":{\"code\":404,\"reason\":\"unknown service\"}}");
    //  It was the answer: no retry followed it
    zmsg_t *retry = tu_recv (broker, 100);
    ck_assert_ptr_null (retry);
    s_result_free (&result);
    zmsg_destroy (&request);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_timeout_retries_on_new_sockets)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    zactor_t *call =
        s_call ((call_t){endpoint, tu_scale (100), 3, "echo", "a.get", "{}", false, 1});

    //  Three attempts, each from a socket the broker has never seen
    zframe_t *ids[3];
    for (int attempt = 0; attempt < 3; attempt++) {
        zmsg_t *request = tu_recv (broker, 2000);
        ck_assert_msg (request != NULL, "attempt %d never came", attempt + 1);
        tu_assert_frames (request, 7, NULL, "", "MDPC01", "echo", NULL, "a.get", "{}");
        ids[attempt] = zframe_dup (zmsg_first (request));
        for (int before = 0; before < attempt; before++)
            ck_assert (!zframe_eq (ids[attempt], ids[before]));
        zmsg_destroy (&request);
    }
    result_t result = s_result (&call);
    ck_assert_int_eq (result.error, EAGAIN);
    ck_assert_str_eq (result.reply, "");
    zmsg_t *extra = tu_recv (broker, 100);
    ck_assert_ptr_null (extra);
    s_result_free (&result);
    for (int attempt = 0; attempt < 3; attempt++)
        zframe_destroy (&ids[attempt]);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_late_reply_is_not_the_answer)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    zactor_t *call =
        s_call ((call_t){endpoint, tu_scale (300), 2, "echo", "a.get", "{}", false, 1});

    zmsg_t *first = tu_recv (broker, 2000);
    zmsg_t *second = tu_recv (broker, 2000); //  after attempt 1 timed out
    ck_assert_ptr_nonnull (first);
    ck_assert_ptr_nonnull (second);
    ck_assert (!zframe_eq (zmsg_first (first), zmsg_first (second)));
    //  Attempt 1's answer arrives late, then attempt 2's
    tu_send_to (broker, first, NULL, 5, "", "MDPC01", "echo", "a.late", "{}");
    tu_send_to (broker, second, NULL, 5, "", "MDPC01", "echo", "a.result", "{}");

    result_t result = s_result (&call);
    ck_assert_int_eq (result.error, 0);
    ck_assert_str_eq (result.reply, "{\"action\":\"a.result\",\"data\":{}}");
    s_result_free (&result);
    zmsg_destroy (&first);
    zmsg_destroy (&second);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_garbage_is_ignored)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    zactor_t *call =
        s_call ((call_t){endpoint, tu_scale (2000), 1, "echo", "a.get", "{}", false, 1});

    zmsg_t *request = tu_recv (broker, 2000);
    ck_assert_ptr_nonnull (request);
    tu_send_to (broker, request, NULL, 1, "junk");
    tu_send_to (broker, request, NULL, 5, "x", "MDPC01", "echo", "a.bad", "{}"); //  not empty
    tu_send_to (broker, request, NULL, 5, "", "MDPC02", "echo", "a.bad", "{}");  //  other protocol
    tu_send_to (broker, request, NULL, 5, "", "MDPC01", "other", "a.bad", "{}"); //  other service
    tu_send_to (broker, request, NULL, 2, "", "MDPC01");                         //  short
    tu_send_to (broker, request, NULL, 5, "", "MDPC01", "echo", "a.result", "{\"ok\":true}");

    result_t result = s_result (&call);
    ck_assert_int_eq (result.error, 0);
    ck_assert_str_eq (result.reply, "{\"action\":\"a.result\",\"data\":{\"ok\":true}}");
    s_result_free (&result);
    zmsg_destroy (&request);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_undecodable_body_is_eproto)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    zactor_t *call =
        s_call ((call_t){endpoint, tu_scale (2000), 1, "echo", "a.get", "{}", false, 1});

    zmsg_t *request = tu_recv (broker, 2000);
    ck_assert_ptr_nonnull (request);
    tu_send_to (broker, request, NULL, 5, "", "MDPC01", "echo", "a.result", "{not json");

    result_t result = s_result (&call);
    ck_assert_int_eq (result.error, EPROTO);
    s_result_free (&result);
    zmsg_destroy (&request);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

//  The broker's half of one mmi.service question: check it, answer status.
static result_t s_has_service (const char *status)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    zactor_t *call = s_call ((call_t){endpoint, 2500, 1, "mmi.service", "echo", NULL, false, 1});
    zmsg_t *request = tu_recv (broker, 2000);
    tu_assert_frames (request, 6, NULL, "", "MDPC01", "mmi.service", "2.5", "echo");
    tu_send_to (broker, request, NULL, 4, "", "MDPC01", "mmi.service", status);
    result_t result = s_result (&call);
    zmsg_destroy (&request);
    zsock_destroy (&broker);
    free (endpoint);
    return result;
}

START_TEST (test_has_service)
{
    result_t result = s_has_service ("200");
    ck_assert_int_eq (result.error, 0);
    ck_assert_int_eq (result.found, 1);
    s_result_free (&result);

    result = s_has_service ("404");
    ck_assert_int_eq (result.error, 0);
    ck_assert_int_eq (result.found, 0);
    s_result_free (&result);

    result = s_has_service ("501");
    ck_assert_int_eq (result.found, 0);
    s_result_free (&result);
}
END_TEST

START_TEST (test_bad_arguments)
{
    errno = 0;
    ck_assert_ptr_null (mdp_client_new (NULL));
    ck_assert_int_eq (errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null (mdp_client_new ("nonsense://here"));
    ck_assert_int_eq (errno, EINVAL);

    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    mdp_client_t *client = mdp_client_new (endpoint);
    ck_assert_ptr_nonnull (client);
    mdp_msg_t *request = mdp_msg_new ("a.get", NULL);
    errno = 0;
    ck_assert_ptr_null (mdp_client_request (client, "", &request));
    ck_assert_int_eq (errno, EINVAL);
    ck_assert_ptr_null (request); //  taken and freed even so
    errno = 0;
    ck_assert_ptr_null (mdp_client_request (client, "echo", NULL));
    ck_assert_int_eq (errno, EINVAL);
    errno = 0;
    ck_assert_int_eq (mdp_client_has_service (client, NULL), -1);
    ck_assert_int_eq (errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null (mdp_client_mmi (client, "echo", "x")); //  not an mmi.* name
    ck_assert_int_eq (errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null (mdp_client_mmi (client, "mmi.service", NULL));
    ck_assert_int_eq (errno, EINVAL);
    //  Nothing reached the broker
    zmsg_t *msg = tu_recv (broker, 100);
    ck_assert_ptr_null (msg);
    mdp_client_destroy (&client);
    mdp_client_destroy (&client);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

int main (void)
{
    Suite *suite = suite_create ("mdp_client");
    TCase *tc = tcase_create ("client");
    tcase_set_timeout (tc, tu_scale (20));
    tcase_add_test (tc, test_request_frames_and_reply);
    tcase_add_test (tc, test_timeout_frame_whole_seconds);
    tcase_add_test (tc, test_timeout_text);
    tcase_add_test (tc, test_error_reply_is_final);
    tcase_add_test (tc, test_timeout_retries_on_new_sockets);
    tcase_add_test (tc, test_late_reply_is_not_the_answer);
    tcase_add_test (tc, test_garbage_is_ignored);
    tcase_add_test (tc, test_undecodable_body_is_eproto);
    tcase_add_test (tc, test_has_service);
    tcase_add_test (tc, test_bad_arguments);
    suite_add_tcase (suite, tc);
    return tu_run_suite (suite);
}
