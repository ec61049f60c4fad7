/*  test_worker.c - Check suite for mdp_worker_t against a fake broker
    (worker_harness.h): READY, REPLY, HEARTBEAT, DISCONNECT and malformed input
    byte for byte, the hook through mdp_worker_socket/mdp_worker_process or
    mdp_worker_run, and MDPW02 workers with their partial replies. Long hooks
    are in test_worker_long.c, several brokers in test_worker_brokers.c.
*/
#include "worker_harness.h"

START_TEST (test_ready_frames)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    mdp_worker_t *worker = s_worker (endpoint, 50, NULL);
    ck_assert_str_eq (mdp_worker_service (worker), "echo");
    zframe_t *id = s_expect_ready (broker, "echo");
    //  Then heartbeats, from the same socket
    zmsg_t *heartbeat = s_recv (broker, 1000, false);
    tu_assert_frames (heartbeat, 4, NULL, "", "MDPW01", "\x04");
    ck_assert (zframe_eq (zmsg_first (heartbeat), id));
    zmsg_destroy (&heartbeat);
    zframe_destroy (&id);
    mdp_worker_destroy (&worker);
    mdp_worker_destroy (&worker); //  NULL-safe
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_request_reply)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    hook_t hook = {.action = "config.result"};
    mdp_worker_t *worker = s_worker (endpoint, 50, &hook);
    zframe_t *id = s_expect_ready (broker, "echo");

    s_send_to (broker, id, 7, "", "MDPW01", "\x02", "client-1", "", "config.get", "{\"key\":1}");
    s_process (worker);
    ck_assert_int_eq (hook.calls, 1);
    ck_assert_str_eq (hook.last, "config.get");
    zmsg_t *reply = s_recv (broker, 2000, true);
    tu_assert_frames (reply, 8, NULL, "", "MDPW01", "\x03", "client-1", "", "config.result",
                      "{\"key\":1}");
    ck_assert (zframe_eq (zmsg_first (reply), id));
    zmsg_destroy (&reply);

    //  Several address frames (a client behind a proxy) all come back
    s_send_to (broker, id, 7, "", "MDPW01", "\x02", "proxy", "client-2", "", "a.do");
    s_process (worker);
    reply = s_recv (broker, 2000, true);
    tu_assert_frames (reply, 9, NULL, "", "MDPW01", "\x03", "proxy", "client-2", "",
                      "config.result", "{}");
    zmsg_destroy (&reply);
    errno = 0;
    ck_assert_int_eq (mdp_worker_process (worker), -1); //  nothing more waits
    ck_assert_int_eq (errno, EAGAIN);
    zframe_destroy (&id);
    mdp_worker_destroy (&worker);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

//  Send one request body, serve it, and return the error code of the reply.
static inline int s_error_reply (zsock_t *broker, mdp_worker_t *worker, zframe_t *id,
                                 const char *json)
{
    s_send_to (broker, id, 7, "", "MDPW01", "\x02", "client", "", "a.get", json);
    s_process (worker);
    zmsg_t *reply = s_recv (broker, 2000, true);
    tu_assert_frames (reply, 8, NULL, "", "MDPW01", "\x03", "client", "", "mdp.error", NULL);
    char *text = zframe_strdup (zmsg_last (reply));
    cJSON *data = cJSON_Parse (text);
    cJSON *code = cJSON_GetObjectItem (data, "code");
    ck_assert (cJSON_IsNumber (code));
    ck_assert (cJSON_IsString (cJSON_GetObjectItem (data, "reason")));
    int rc = code->valueint;
    cJSON_Delete (data);
    free (text);
    zmsg_destroy (&reply);
    return rc;
}

START_TEST (test_invalid_body_gets_400)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    hook_t hook = {.action = "a.result"};
    mdp_worker_t *worker = s_worker (endpoint, 50, &hook);
    zframe_t *id = s_expect_ready (broker, "echo");
    ck_assert_int_eq (s_error_reply (broker, worker, id, "{not json"), 400);
    ck_assert_int_eq (hook.calls, 0);
    zframe_destroy (&id);
    mdp_worker_destroy (&worker);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_no_handler_gets_501)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    mdp_worker_t *worker = s_worker (endpoint, 50, NULL);
    zframe_t *id = s_expect_ready (broker, "echo");
    ck_assert_int_eq (s_error_reply (broker, worker, id, "{}"), 501);
    zframe_destroy (&id);
    mdp_worker_destroy (&worker);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_null_from_hook_sends_nothing)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    hook_t hook = {.action = NULL};
    mdp_worker_t *worker = s_worker (endpoint, 50, &hook);
    zframe_t *id = s_expect_ready (broker, "echo");
    s_send_to (broker, id, 7, "", "MDPW01", "\x02", "client", "", "unknown.action", "{}");
    s_process (worker);
    ck_assert_int_eq (hook.calls, 1);
    //  Three heartbeat intervals: heartbeats only, no REPLY
    zmsg_t *reply = s_recv (broker, 3 * HEARTBEAT, true);
    ck_assert_ptr_null (reply);
    zframe_destroy (&id);
    mdp_worker_destroy (&worker);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_heartbeats_while_hook_is_busy)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    hook_t hook = {.action = "slow.result", .busy = 6 * HEARTBEAT};
    mdp_worker_t *worker = s_worker (endpoint, 50, &hook);
    zframe_t *id = s_expect_ready (broker, "echo");
    zmsg_t *msg;
    while ((msg = s_recv (broker, 0, false))) //  forget earlier heartbeats
        zmsg_destroy (&msg);

    s_send_to (broker, id, 7, "", "MDPW01", "\x02", "client", "", "slow.do", "{}");
    s_process (worker); //  returns after 6 heartbeat intervals
    //  What the worker sent while its hook was busy comes before the REPLY
    int heartbeats = 0;
    while ((msg = s_recv (broker, 2000, false))) {
        bool reply = zmsg_size (msg) == 8;
        if (zmsg_size (msg) == 4 && zframe_streq (zmsg_last (msg), "\x04"))
            heartbeats++;
        zmsg_destroy (&msg);
        if (reply)
            break;
    }
    ck_assert_msg (heartbeats >= 3, "only %d heartbeats while the hook was busy", heartbeats);
    zframe_destroy (&id);
    mdp_worker_destroy (&worker);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_disconnect_means_reconnect)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    mdp_worker_t *worker = s_worker (endpoint, 50, NULL);
    zframe_t *first = s_expect_ready (broker, "echo");
    s_send_to (broker, first, 3, "", "MDPW01", "\x05");
    zframe_t *second = s_expect_ready (broker, "echo");
    ck_assert (!zframe_eq (first, second)); //  a new socket
    zframe_destroy (&first);
    zframe_destroy (&second);
    mdp_worker_destroy (&worker);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_silent_broker_means_reconnect)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    int64_t since = zclock_mono ();
    mdp_worker_t *worker = s_worker (endpoint, 3, NULL);
    zframe_t *first = s_expect_ready (broker, "echo");
    zframe_t *second = s_expect_ready (broker, "echo"); //  we never answer
    ck_assert (!zframe_eq (first, second));
    //  Not before liveness x heartbeat of silence
    ck_assert_int_ge (zclock_mono () - since, 3 * HEARTBEAT);
    zframe_destroy (&first);
    zframe_destroy (&second);
    mdp_worker_destroy (&worker);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_heartbeating_broker_keeps_worker)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    mdp_worker_t *worker = s_worker (endpoint, 3, NULL);
    zframe_t *id = s_expect_ready (broker, "echo");
    //  Ten heartbeat intervals, three times the liveness: same connection
    int64_t until = zclock_mono () + 10 * HEARTBEAT;
    while (zclock_mono () < until) {
        s_send_to (broker, id, 3, "", "MDPW01", "\x04");
        zmsg_t *msg = s_recv (broker, HEARTBEAT, false);
        if (msg) {
            tu_assert_frames (msg, 4, NULL, "", "MDPW01", "\x04");
            ck_assert (zframe_eq (zmsg_first (msg), id));
        }
        zmsg_destroy (&msg);
    }
    zframe_destroy (&id);
    mdp_worker_destroy (&worker);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_destroy_sends_disconnect)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    mdp_worker_t *worker = s_worker (endpoint, 50, NULL);
    zframe_t *id = s_expect_ready (broker, "echo");
    mdp_worker_destroy (&worker);
    ck_assert_ptr_null (worker);
    zmsg_t *bye = s_recv (broker, 2000, true);
    tu_assert_frames (bye, 4, NULL, "", "MDPW01", "\x05");
    ck_assert (zframe_eq (zmsg_first (bye), id));
    zmsg_destroy (&bye);
    zframe_destroy (&id);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_malformed_broker_messages_are_dropped)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    hook_t hook = {.action = "a.result"};
    mdp_worker_t *worker = s_worker (endpoint, 50, &hook);
    zframe_t *id = s_expect_ready (broker, "echo");
    s_send_to (broker, id, 2, "MDPW01", "\x05"); //  domogik's DISCONNECT
    s_send_to (broker, id, 1, "junk");
    s_send_to (broker, id, 3, "", "MDPW01", "\x09");                     //  unknown command
    s_send_to (broker, id, 3, "", "MDPW01", "\x04\x04");                 //  two-byte command
    s_send_to (broker, id, 3, "", "MDPW02", "\x02");                     //  other protocol
    s_send_to (broker, id, 6, "", "MDPW01", "\x02", "c", "a.get", "{}"); //  no delimiter
    s_send_to (broker, id, 6, "", "MDPW01", "\x02", "", "a.get", "{}");  //  no address
    s_send_to (broker, id, 7, "", "MDPW01", "\x02", "client", "", "a.get", "{}");

    //  Only the valid request reaches the hook, on the same connection
    s_process (worker);
    ck_assert_int_eq (hook.calls, 1);
    zmsg_t *reply = s_recv (broker, 2000, true);
    tu_assert_frames (reply, 8, NULL, "", "MDPW01", "\x03", "client", "", "a.result", "{}");
    ck_assert (zframe_eq (zmsg_first (reply), id));
    errno = 0;
    ck_assert_int_eq (mdp_worker_process (worker), -1);
    ck_assert_int_eq (errno, EAGAIN);
    zmsg_destroy (&reply);
    zframe_destroy (&id);
    mdp_worker_destroy (&worker);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_new_rejects_bad_arguments)
{
    char name[300];
    memset (name, 'x', sizeof name);
    name[256] = '\0';
    const char *services[] = {"mmi.x", "mmi.", "", NULL, name};
    for (size_t index = 0; index < sizeof services / sizeof services[0]; index++) {
        errno = 0;
        ck_assert_ptr_null (mdp_worker_new ("tcp://127.0.0.1:5555", services[index]));
        ck_assert_int_eq (errno, EINVAL);
    }
    errno = 0;
    ck_assert_ptr_null (mdp_worker_new (NULL, "echo"));
    ck_assert_int_eq (errno, EINVAL);
    ck_assert_ptr_null (mdp_worker_new ("", "echo"));

    name[255] = '\0'; //  255 bytes is the longest allowed
    mdp_worker_t *worker = mdp_worker_new ("tcp://127.0.0.1:5555", name);
    ck_assert_ptr_nonnull (worker);
    mdp_worker_destroy (&worker);
    worker = mdp_worker_new ("tcp://127.0.0.1:5555", "xmmi.ok");
    ck_assert_ptr_nonnull (worker);
    mdp_worker_destroy (&worker);
}
END_TEST

START_TEST (test_run_until_hook_stops_it)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    hook_t hook = {.action = "last.result", .stop = true};
    mdp_worker_t *worker = s_worker (endpoint, 50, &hook);
    zframe_t *id = s_expect_ready (broker, "echo");
    s_send_to (broker, id, 7, "", "MDPW01", "\x02", "client", "", "last.do", "{}");
    ck_assert_int_eq (mdp_worker_run (worker), 0); //  returns after that request
    ck_assert_int_eq (hook.calls, 1);
    zmsg_t *reply = s_recv (broker, 2000, true);
    tu_assert_frames (reply, 8, NULL, "", "MDPW01", "\x03", "client", "", "last.result", "{}");
    zmsg_destroy (&reply);
    zframe_destroy (&id);
    mdp_worker_destroy (&worker);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

//  Stops the worker from another thread while mdp_worker_run waits.
static inline void s_stopper (zsock_t *pipe, void *worker)
{
    zsock_signal (pipe, 0);
    zpoller_t *poller = zpoller_new (pipe, NULL);
    if (zpoller_wait (poller, HEARTBEAT) == NULL) //  unless told to quit first
        mdp_worker_stop ((mdp_worker_t *)worker);
    zpoller_destroy (&poller);
    char *term = zstr_recv (pipe);
    zstr_free (&term);
}

START_TEST (test_stop_from_another_thread)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    mdp_worker_t *worker = s_worker (endpoint, 50, NULL);
    zactor_t *stopper = zactor_new (s_stopper, worker);
    ck_assert_int_eq (mdp_worker_run (worker), 0); //  Check's timeout bounds this
    zactor_destroy (&stopper);
    mdp_worker_destroy (&worker);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_v2_ready_and_heartbeat_frames)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    mdp_worker_t *worker = s_worker_v2 (endpoint, NULL);
    ck_assert_int_eq (mdp_worker_set_protocol (worker, 1), -1); //  too late: started
    ck_assert_int_eq (errno, EINVAL);
    zframe_t *id = s_expect_ready_v2 (broker);
    zmsg_t *heartbeat = s_recv (broker, 1000, false);
    tu_assert_frames (heartbeat, 4, NULL, "", "MDPW02", "\x05");
    zmsg_destroy (&heartbeat);
    //  DISCONNECT (0x06) means reconnect, and READY again in MDPW02
    s_send_to (broker, id, 3, "", "MDPW02", "\x06");
    zframe_t *again = s_expect_ready_v2 (broker);
    ck_assert (!zframe_eq (id, again));
    //  Destroy says goodbye with the MDPW02 DISCONNECT
    mdp_worker_destroy (&worker);
    zmsg_t *bye = s_recv (broker, 2000, true);
    tu_assert_frames (bye, 4, NULL, "", "MDPW02", "\x06");
    zmsg_destroy (&bye);
    zframe_destroy (&id);
    zframe_destroy (&again);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_v2_partials_then_final)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    hook_t hook = {.action = "x.result", .partials = 3};
    mdp_worker_t *worker = s_worker_v2 (endpoint, &hook);
    zframe_t *id = s_expect_ready_v2 (broker);
    s_send_to (broker, id, 8, "", "MDPW02", "\x02", "proxy", "client", "", "x.do", "{\"k\":1}");
    s_process (worker);
    ck_assert_int_eq (hook.partial_rc, 0);
    const char *parts[] = {"{\"part\":0}", "{\"part\":1}", "{\"part\":2}"};
    for (int part = 0; part < 3; part++) {
        zmsg_t *partial = s_recv (broker, 2000, true);
        tu_assert_frames (partial, 9, NULL, "", "MDPW02", "\x03", "proxy", "client", "",
                          "x.partial", parts[part]);
        ck_assert (zframe_eq (zmsg_first (partial), id));
        zmsg_destroy (&partial);
    }
    zmsg_t *final = s_recv (broker, 2000, true);
    tu_assert_frames (final, 9, NULL, "", "MDPW02", "\x04", "proxy", "client", "", "x.result",
                      "{\"k\":1}");
    zmsg_destroy (&final);
    //  MDPW01 commands mean nothing to an MDPW02 worker
    s_send_to (broker, id, 7, "", "MDPW01", "\x02", "client", "", "x.do", "{}");
    s_send_to (broker, id, 3, "", "MDPW02", "\x04"); //  a FINAL, from the broker
    zmsg_t *nothing = s_recv (broker, 2 * HEARTBEAT, true);
    ck_assert_ptr_null (nothing);
    errno = 0;
    ck_assert_int_eq (mdp_worker_process (worker), -1);
    ck_assert_int_eq (errno, EAGAIN);
    ck_assert_int_eq (hook.calls, 1);
    zframe_destroy (&id);
    mdp_worker_destroy (&worker);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_send_partial_errors)
{
    //  Outside a request, on any worker: EINVAL
    mdp_worker_t *worker = mdp_worker_new ("tcp://127.0.0.1:5555", "echo");
    ck_assert_int_eq (mdp_worker_set_protocol (worker, 3), -1);
    ck_assert_int_eq (errno, EINVAL);
    ck_assert_int_eq (mdp_worker_set_protocol (worker, 0), -1);
    ck_assert_int_eq (mdp_worker_set_protocol (worker, 2), 0);
    mdp_msg_t *partial = mdp_msg_new ("x.partial", NULL);
    errno = 0;
    ck_assert_int_eq (mdp_worker_send_partial (worker, &partial), -1);
    ck_assert_int_eq (errno, EINVAL);
    ck_assert_ptr_null (partial);
    errno = 0;
    ck_assert_int_eq (mdp_worker_send_partial (worker, NULL), -1);
    ck_assert_int_eq (errno, EINVAL);
    mdp_worker_destroy (&worker);

    //  Inside a request, on an MDPW01 worker: EPROTO, and only the REPLY goes
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    hook_t hook = {.action = "x.result", .partials = 1};
    worker = s_worker (endpoint, 50, &hook);
    zframe_t *id = s_expect_ready (broker, "echo");
    s_send_to (broker, id, 7, "", "MDPW01", "\x02", "client", "", "x.do", "{}");
    s_process (worker);
    ck_assert_int_eq (hook.partial_rc, -1);
    ck_assert_int_eq (hook.partial_errno, EPROTO);
    zmsg_t *reply = s_recv (broker, 2000, true);
    tu_assert_frames (reply, 8, NULL, "", "MDPW01", "\x03", "client", "", "x.result", "{}");
    zmsg_destroy (&reply);
    zframe_destroy (&id);
    mdp_worker_destroy (&worker);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

int main (void)
{
    Suite *suite = suite_create ("mdp_worker");
    TCase *tc = tcase_create ("worker");
    tcase_set_timeout (tc, tu_scale (30));
    tcase_add_test (tc, test_ready_frames);
    tcase_add_test (tc, test_request_reply);
    tcase_add_test (tc, test_invalid_body_gets_400);
    tcase_add_test (tc, test_no_handler_gets_501);
    tcase_add_test (tc, test_null_from_hook_sends_nothing);
    tcase_add_test (tc, test_heartbeats_while_hook_is_busy);
    tcase_add_test (tc, test_disconnect_means_reconnect);
    tcase_add_test (tc, test_silent_broker_means_reconnect);
    tcase_add_test (tc, test_heartbeating_broker_keeps_worker);
    tcase_add_test (tc, test_destroy_sends_disconnect);
    tcase_add_test (tc, test_malformed_broker_messages_are_dropped);
    tcase_add_test (tc, test_new_rejects_bad_arguments);
    tcase_add_test (tc, test_run_until_hook_stops_it);
    tcase_add_test (tc, test_stop_from_another_thread);
    tcase_add_test (tc, test_v2_ready_and_heartbeat_frames);
    tcase_add_test (tc, test_v2_partials_then_final);
    tcase_add_test (tc, test_send_partial_errors);
    suite_add_tcase (suite, tc);
    return tu_run_suite (suite);
}
