/*  test_async.c - Check suite for mdp_async_t against a fake broker: a bare
    ROUTER in the test's own thread that checks the correlation frame and the
    MDPC02 request byte for byte, then answers in whatever order, with whatever
    partials (or garbage, or nothing) each test needs, driving the client with
    mdp_async_recv. Handlers and zloop: test_async_loop.c; several brokers:
    test_async_failover.c.
*/
#include "async_harness.h"
#include <check.h>
#include <errno.h>

START_TEST (test_request_frames)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    mdp_async_t *client = mdp_async_new (endpoint);         //  the default timeout, 2.5 s
    ck_assert_int_eq (mdp_async_next_timeout (client), -1); //  nothing in flight
    ck_assert_int_eq (s_send (client, "echo", "config.get", "{\"key\": 1}"), 1);
    mdp_async_set_timeout (client, 3000);
    ck_assert_int_eq (s_send (client, "echo", "x.do", "[1,2]"), 2);
    ck_assert_int_eq (mdp_async_pending (client), 2);
    int next = mdp_async_next_timeout (client);
    ck_assert (next >= 0 && next <= 2500);

    //  The id: 8 bytes, big-endian
    zmsg_t *first = tu_recv (broker, 2000);
    tu_assert_frames (first, 9, NULL, NULL, "", "MDPC02", "\x01", "echo", "2.5", "config.get",
                      "{\"key\":1}");
    ck_assert_int_eq (zframe_size (s_correlation (first)), 8);
    ck_assert (memcmp (zframe_data (s_correlation (first)), "\0\0\0\0\0\0\0\x01", 8) == 0);
    zmsg_t *second = tu_recv (broker, 2000);
    tu_assert_frames (second, 9, NULL, NULL, "", "MDPC02", "\x01", "echo", "3", "x.do", "[1,2]");
    ck_assert (memcmp (zframe_data (s_correlation (second)), "\0\0\0\0\0\0\0\x02", 8) == 0);
    ck_assert (zframe_eq (zmsg_first (first), zmsg_first (second))); //  one socket
    zmsg_destroy (&first);
    zmsg_destroy (&second);
    mdp_async_destroy (&client); //  two still in flight: forgotten, no calls
    mdp_async_destroy (&client);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_partials_then_final)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    mdp_async_t *client = s_client (endpoint);
    uint64_t id = s_send (client, "llm", "ask", "{\"q\":\"hi\"}");
    zmsg_t *request = tu_recv (broker, 2000);
    ck_assert_ptr_nonnull (request);
    tu_answer (broker, request, 5, "MDPC02", "\x02", "llm", "ask.partial", "{\"text\":\"He\"}");
    tu_answer (broker, request, 5, "MDPC02", "\x02", "llm", "ask.partial", "{\"text\":\"ll\"}");
    tu_answer (broker, request, 5, "MDPC02", "\x03", "llm", "ask.result", "{\"text\":\"Hello\"}");
    ck_assert_int_eq (id, 1);
    ck_assert_event (client, 2000,
                     "1 partial {\"action\":\"ask.partial\",\"data\":{\"text\":\"He\"}}");
    ck_assert_event (client, 2000,
                     "1 partial {\"action\":\"ask.partial\",\"data\":{\"text\":\"ll\"}}");
    ck_assert_event (client, 2000,
                     "1 final {\"action\":\"ask.result\",\"data\":{\"text\":\"Hello\"}}");
    ck_assert_int_eq (mdp_async_pending (client), 0);
    //  After the FINAL, anything more about that request is discarded
    tu_answer (broker, request, 5, "MDPC02", "\x02", "llm", "ask.partial", "{}");
    ck_assert_event (client, 100, "none");
    zmsg_destroy (&request);

    //  An MDPC01 reply (an old broker) is taken as the final one
    s_send (client, "llm", "ask", "{}");
    request = tu_recv (broker, 2000);
    ck_assert_ptr_nonnull (request);
    tu_answer (broker, request, 4, "MDPC01", "llm", "ask.result", "{\"v\":1}");
    ck_assert_event (client, 2000, "2 final {\"action\":\"ask.result\",\"data\":{\"v\":1}}");
    ck_assert_int_eq (mdp_async_pending (client), 0);
    ck_assert_int_eq (mdp_async_next_timeout (client), -1);
    zmsg_destroy (&request);
    mdp_async_destroy (&client);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_garbage_is_discarded)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    mdp_async_t *client = s_client (endpoint);
    s_send (client, "echo", "a.get", "{}");
    zmsg_t *request = tu_recv (broker, 2000);
    ck_assert_ptr_nonnull (request);
    tu_send_to (broker, request, NULL, 1, "junk");
    tu_send_to (broker, request, NULL, 5, "", "MDPC02", "\x03", "echo", "a.bad"); //  no id
    tu_send_to (broker, request, NULL, 6, "1234567", "", "MDPC02", "\x03", "echo", "a.bad");
    tu_send_to (broker, request, tu_id_frame (99), 5, "", "MDPC02", "\x03", "echo", "a.bad");
    tu_send_to (broker, request, tu_id_frame (1ull << 56), 5, "", "MDPC02", "\x03", "echo",
                "a.bad"); //  all 8 bytes count
    tu_send_to (broker, request, tu_id_frame (1), 5, "x", "MDPC02", "\x03", "echo", "a.bad");
    tu_answer (broker, request, 5, "MDPC03", "\x03", "echo", "a.bad", "{}");     //  protocol
    tu_answer (broker, request, 5, "MDPC02", "\x01", "echo", "a.bad", "{}");     //  a REQUEST
    tu_answer (broker, request, 5, "MDPC02", "\x03\x03", "echo", "a.bad", "{}"); //  2-byte command
    tu_answer (broker, request, 5, "MDPC02", "\x03", "other", "a.bad", "{}");    //  service
    tu_answer (broker, request, 3, "MDPC02", "\x03", "echo");                    //  no body
    tu_answer (broker, request, 1, "MDPC02");                                    //  short
    ck_assert_event (client, 200, "none");
    ck_assert_int_eq (mdp_async_pending (client), 1);
    tu_answer (broker, request, 5, "MDPC02", "\x03", "echo", "a.result", "{\"ok\":true}");
    ck_assert_event (client, 2000, "1 final {\"action\":\"a.result\",\"data\":{\"ok\":true}}");
    zmsg_destroy (&request);
    mdp_async_destroy (&client);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_malformed_final_is_eproto)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    mdp_async_t *client = s_client (endpoint);
    s_send (client, "echo", "a.get", "{}");
    zmsg_t *request = tu_recv (broker, 2000);
    ck_assert_ptr_nonnull (request);
    //  A partial with a broken body is skipped; a final one still ends the request
    tu_answer (broker, request, 5, "MDPC02", "\x02", "echo", "a.part", "{broken");
    tu_answer (broker, request, 5, "MDPC02", "\x03", "echo", "a.result", "{broken");
    char *expected = zsys_sprintf ("1 final errno=%d", EPROTO);
    ck_assert_event (client, 2000, expected);
    zstr_free (&expected);
    ck_assert_int_eq (mdp_async_pending (client), 0);
    zmsg_destroy (&request);
    mdp_async_destroy (&client);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_timeout_once_then_late_reply_discarded)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    mdp_async_t *client = s_client (endpoint);
    mdp_async_set_timeout (client, tu_scale (100));
    int64_t since = zclock_mono ();
    s_send (client, "slow", "a.get", "{}");
    zmsg_t *request = tu_recv (broker, 2000);
    ck_assert_ptr_nonnull (request);
    char *expected = zsys_sprintf ("1 final errno=%d", ETIMEDOUT);
    ck_assert_event (client, 2000, expected);
    zstr_free (&expected);
    ck_assert_int_ge (zclock_mono () - since, tu_scale (100)); //  never early
    ck_assert_int_eq (mdp_async_pending (client), 0);
    //  Its replies come late: discarded, no second event
    tu_answer (broker, request, 5, "MDPC02", "\x02", "slow", "a.part", "{}");
    tu_answer (broker, request, 5, "MDPC02", "\x03", "slow", "a.result", "{}");
    ck_assert_event (client, 200, "none");
    //  The client goes on working
    mdp_async_set_timeout (client, tu_scale (10000));
    s_send (client, "slow", "b.get", "{}");
    zmsg_t *next = tu_recv (broker, 2000);
    ck_assert_ptr_nonnull (next);
    tu_answer (broker, next, 5, "MDPC02", "\x03", "slow", "b.result", "{}");
    ck_assert_event (client, 2000, "2 final {\"action\":\"b.result\",\"data\":{}}");
    zmsg_destroy (&request);
    zmsg_destroy (&next);
    mdp_async_destroy (&client);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_partials_restart_the_timeout)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    mdp_async_t *client = s_client (endpoint);
    mdp_async_set_timeout (client, tu_scale (500));
    s_send (client, "slow", "a.get", "{}");
    zmsg_t *request = tu_recv (broker, 2000);
    ck_assert_ptr_nonnull (request);
    //  Eight partials 100 msecs apart: more than the timeout in all, never 500 silent
    for (int part = 0; part < 8; part++) {
        zclock_sleep (tu_scale (100));
        tu_answer (broker, request, 5, "MDPC02", "\x02", "slow", "a.part", "{}");
        ck_assert_event (client, 2000, "1 partial {\"action\":\"a.part\",\"data\":{}}");
    }
    tu_answer (broker, request, 5, "MDPC02", "\x03", "slow", "a.result", "{}");
    ck_assert_event (client, 2000, "1 final {\"action\":\"a.result\",\"data\":{}}");
    zmsg_destroy (&request);
    mdp_async_destroy (&client);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_timeouts_come_in_deadline_order)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    mdp_async_t *client = s_client (endpoint);
    //  Twenty requests, timeouts 50..240 msecs sent in a shuffled order, two of
    //  each. A deadline is known to lie in [earliest, latest]: the clock
    //  before and after the send, plus the timeout.
    unsigned int seed = SEED;
    int order[20];
    int64_t earliest[21], latest[21];
    for (int index = 0; index < 20; index++)
        order[index] = index;
    for (int index = 19; index > 0; index--) {
        int other = rand_r (&seed) % (index + 1), tmp = order[index];
        order[index] = order[other];
        order[other] = tmp;
    }
    for (int index = 0; index < 20; index++) {
        int timeout = tu_scale (50 + 20 * (order[index] / 2));
        mdp_async_set_timeout (client, timeout);
        earliest[index + 1] = zclock_mono () + timeout;
        ck_assert_int_eq (s_send (client, "void", "a.get", "{}"), index + 1);
        latest[index + 1] = zclock_mono () + timeout;
    }
    //  Each comes no earlier than the one before it; equal deadlines by id
    uint64_t last = 0;
    for (int index = 0; index < 20; index++) {
        uint64_t id = 0;
        bool final = false;
        ck_assert_ptr_null (mdp_async_recv (client, &id, &final, tu_scale (2000)));
        ck_assert_int_eq (errno, ETIMEDOUT);
        ck_assert (final && id >= 1 && id <= 20);
        bool tie = last && earliest[id] == latest[id] && earliest[last] == latest[last] &&
                   earliest[id] == earliest[last];
        ck_assert_msg (!last || (latest[id] >= earliest[last] && (!tie || id > last)),
                       "request %d timed out after %d", (int)id, (int)last);
        last = id;
    }
    ck_assert_int_eq (mdp_async_pending (client), 0);
    mdp_async_destroy (&client);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_bad_arguments)
{
    errno = 0;
    ck_assert_ptr_null (mdp_async_new (NULL));
    ck_assert_int_eq (errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null (mdp_async_new (""));
    ck_assert_int_eq (errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null (mdp_async_new ("nonsense://here"));
    ck_assert_int_eq (errno, EINVAL);

    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    mdp_async_t *client = s_client (endpoint);
    char name[300];
    memset (name, 'x', sizeof name);
    name[256] = 0;
    const char *services[] = {NULL, "", name};
    for (size_t index = 0; index < 3; index++) {
        mdp_msg_t *request = mdp_msg_new ("a.get", NULL);
        errno = 0;
        ck_assert_int_eq (mdp_async_send (client, services[index], &request), 0);
        ck_assert_int_eq (errno, EINVAL);
        ck_assert_ptr_null (request); //  taken and freed even so
    }
    errno = 0;
    ck_assert_int_eq (mdp_async_send (client, "echo", NULL), 0);
    ck_assert_int_eq (errno, EINVAL);
    ck_assert_int_eq (mdp_async_pending (client), 0);
    ck_assert_int_eq (mdp_async_attach (client, NULL), -1);
    //  Nothing reached the broker
    zmsg_t *msg = tu_recv (broker, 100);
    ck_assert_ptr_null (msg);
    //  recv with nothing in flight and nothing coming: EAGAIN after msecs
    ck_assert_event (client, 50, "none");
    mdp_async_destroy (&client);
    mdp_async_destroy (NULL);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

int main (void)
{
    Suite *suite = suite_create ("mdp_async");
    TCase *tc = tcase_create ("async");
    tcase_set_timeout (tc, tu_scale (20));
    tcase_add_test (tc, test_request_frames);
    tcase_add_test (tc, test_partials_then_final);
    tcase_add_test (tc, test_garbage_is_discarded);
    tcase_add_test (tc, test_malformed_final_is_eproto);
    tcase_add_test (tc, test_timeout_once_then_late_reply_discarded);
    tcase_add_test (tc, test_partials_restart_the_timeout);
    tcase_add_test (tc, test_timeouts_come_in_deadline_order);
    tcase_add_test (tc, test_bad_arguments);
    suite_add_tcase (suite, tc);
    return tu_run_suite (suite);
}
