/*  test_worker.c - Check suite for mdp_worker_t against a fake broker: a bare
    ROUTER in the test's thread that checks READY, REPLY, HEARTBEAT and
    DISCONNECT byte for byte and sends what a broker (or a broken one) sends.
    The worker's hook runs in the test's thread through mdp_worker_socket and
    mdp_worker_process, or through mdp_worker_run. Heartbeats are 100 msecs.
    The last tests do the same for MDPW02 workers and their partial replies.
*/
#include "mdp.h"
#include "testutil.h"
#include <check.h>
#include <errno.h>
#include <stdatomic.h>

#define HEARTBEAT 100 //  msecs, for every worker here

//  What the on_request hook does, and what it saw.
typedef struct {
    int calls;          //  times the hook ran
    const char *action; //  reply action; NULL means reply nothing
    int busy;           //  msecs of "work" before replying
    bool stop;          //  call mdp_worker_stop from inside the hook
    char last[64];      //  action of the last request
    int partials;       //  partial replies to send first, {"part": i}
    int partial_rc;     //  what the last mdp_worker_send_partial returned
    int partial_errno;  //  and its errno
} hook_t;

static mdp_msg_t *s_hook (mdp_worker_t *worker, mdp_msg_t *request, void *arg)
{
    hook_t *hook = arg;
    hook->calls++;
    snprintf (hook->last, sizeof hook->last, "%s", mdp_msg_action (request));
    if (hook->busy)
        zclock_sleep (hook->busy);
    if (hook->stop)
        mdp_worker_stop (worker);
    for (int part = 0; part < hook->partials; part++) {
        cJSON *data = cJSON_CreateObject ();
        cJSON_AddNumberToObject (data, "part", part);
        mdp_msg_t *partial = mdp_msg_new ("x.partial", data);
        errno = 0;
        hook->partial_rc = mdp_worker_send_partial (worker, &partial);
        hook->partial_errno = errno;
        ck_assert_ptr_null (partial); //  taken, sent or not
    }
    if (!hook->action)
        return NULL;
    return mdp_msg_new (hook->action, cJSON_Duplicate (mdp_msg_data (request), 1));
}

//  True for a HEARTBEAT of either protocol: [id][""][protocol][command].
static bool s_is_heartbeat (zmsg_t *msg)
{
    if (zmsg_size (msg) != 4)
        return false;
    zmsg_first (msg);
    zmsg_next (msg);
    zframe_t *protocol = zmsg_next (msg);
    zframe_t *command = zmsg_last (msg);
    return (zframe_streq (protocol, "MDPW01") && zframe_streq (command, "\x04")) ||
           (zframe_streq (protocol, "MDPW02") && zframe_streq (command, "\x05"));
}

//  Receive one message on the fake broker within timeout msecs, or NULL.
//  With skip, HEARTBEATs are passed over.
static zmsg_t *s_recv (zsock_t *router, int timeout, bool skip)
{
    zpoller_t *poller = zpoller_new (router, NULL);
    int64_t deadline = zclock_mono () + tu_scale (timeout);
    zmsg_t *msg = NULL;
    while (!msg && zclock_mono () < deadline) {
        if (zpoller_wait (poller, (int)(deadline - zclock_mono ())) != router)
            break;
        msg = zmsg_recv (router);
        if (skip && s_is_heartbeat (msg))
            zmsg_destroy (&msg);
    }
    zpoller_destroy (&poller);
    return msg;
}

//  Send the frames after the routing id id to that peer.
static void s_send_to (zsock_t *router, zframe_t *id, int count, ...)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addmem (msg, zframe_data (id), zframe_size (id));
    va_list args;
    va_start (args, count);
    for (int index = 0; index < count; index++)
        zmsg_addstr (msg, va_arg (args, const char *));
    va_end (args);
    ck_assert_int_eq (zmsg_send (&msg, router), 0);
}

//  Expect READY for service and return the worker's routing id.
static zframe_t *s_expect_ready (zsock_t *broker, const char *service)
{
    zmsg_t *ready = s_recv (broker, 2000, true);
    tu_assert_frames (ready, 5, NULL, "", "MDPW01", "\x01", service);
    zframe_t *id = zmsg_pop (ready);
    zmsg_destroy (&ready);
    return id;
}

//  A started worker for "echo" with quick heartbeats and reconnects.
static mdp_worker_t *s_worker (const char *endpoint, int liveness, hook_t *hook)
{
    mdp_worker_t *worker = mdp_worker_new (endpoint, "echo");
    ck_assert_ptr_nonnull (worker);
    mdp_worker_set_heartbeat (worker, HEARTBEAT, liveness);
    mdp_worker_set_reconnect (worker, 10, 100);
    if (hook)
        mdp_worker_set_handler (worker, s_hook, hook);
    ck_assert_ptr_nonnull (mdp_worker_socket (worker)); //  starts it
    return worker;
}

//  Wait (bounded) for a request to reach the worker, then serve it.
static void s_process (mdp_worker_t *worker)
{
    zpoller_t *poller = zpoller_new (mdp_worker_socket (worker), NULL);
    bool waiting = zpoller_wait (poller, tu_scale (2000)) != NULL;
    zpoller_destroy (&poller);
    ck_assert_msg (waiting, "no request reached the worker");
    ck_assert_int_eq (mdp_worker_process (worker), 0);
}

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
static int s_error_reply (zsock_t *broker, mdp_worker_t *worker, zframe_t *id, const char *json)
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
static void s_stopper (zsock_t *pipe, void *worker)
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

//  ---------------------------------------------------------------------------
//  MDPW02 workers: RFC 18 command codes, partial replies

//  A started MDPW02 worker for "echo", and its READY.
static mdp_worker_t *s_worker_v2 (const char *endpoint, hook_t *hook)
{
    mdp_worker_t *worker = mdp_worker_new (endpoint, "echo");
    ck_assert_ptr_nonnull (worker);
    ck_assert_int_eq (mdp_worker_set_protocol (worker, 2), 0);
    mdp_worker_set_heartbeat (worker, HEARTBEAT, 50);
    mdp_worker_set_reconnect (worker, 10, 100);
    if (hook)
        mdp_worker_set_handler (worker, s_hook, hook);
    ck_assert_ptr_nonnull (mdp_worker_socket (worker));
    return worker;
}

static zframe_t *s_expect_ready_v2 (zsock_t *broker)
{
    zmsg_t *ready = s_recv (broker, 2000, true);
    tu_assert_frames (ready, 5, NULL, "", "MDPW02", "\x01", "echo");
    zframe_t *id = zmsg_pop (ready);
    zmsg_destroy (&ready);
    return id;
}

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

//  ---------------------------------------------------------------------------
//  Hooks that run for a long time: the caller's thread gives the socket to
//  the helper thread while the hook runs. A fake broker in its own thread
//  (an actor) heartbeats the worker (unless told to stay silent) and keeps
//  score of what the worker sends.

#define LONG_LIVENESS 5 //  a 500 msecs stall of a loaded machine is not death
#define LONG_HOOK (10 * HEARTBEAT * LONG_LIVENESS) //  msecs: ten times "dead"

typedef struct {
    bool silent;             //  never heartbeat the worker
    atomic_int readys;       //  READYs seen
    atomic_int replies;      //  REPLYs seen
    atomic_int disconnects;  //  DISCONNECTs seen
    int64_t max_gap;         //  longest silence of the worker's current socket, msecs
    int64_t second_ready_at; //  when a second READY came (0: none)
} fake_t;

static bool s_fake_registered (void *fake)
{
    return atomic_load (&((fake_t *)fake)->readys) > 0;
}

static bool s_fake_told_bye (void *fake)
{
    return atomic_load (&((fake_t *)fake)->disconnects) > 0;
}

static void s_fake_broker (zsock_t *pipe, void *arg)
{
    fake_t *fake = arg;
    char *endpoint;
    zsock_t *router = tu_router_bound (&endpoint);
    zsock_signal (pipe, 0);
    zsock_send (pipe, "s", endpoint);
    zframe_t *id = NULL;
    int64_t last_heard = 0, beat_at = zclock_mono () + HEARTBEAT;
    zpoller_t *poller = zpoller_new (pipe, router, NULL);
    while (true) {
        int64_t now = zclock_mono ();
        void *which = zpoller_wait (poller, beat_at > now ? (int)(beat_at - now) : 0);
        now = zclock_mono ();
        if (which == pipe) {
            char *command = zstr_recv (pipe);
            bool term = !command || streq (command, "$TERM");
            if (command && streq (command, "REQUEST") && id)
                s_send_to (router, id, 7, "", "MDPW01", "\x02", "client", "", "long.do", "{}");
            zstr_free (&command);
            if (term)
                break;
        } else if (which == router) {
            zmsg_t *msg = zmsg_recv (router);
            zframe_t *from = zmsg_pop (msg);
            if (zmsg_size (msg) == 4 && zframe_streq (zmsg_last (msg), "echo")) {
                if (++fake->readys == 2)
                    fake->second_ready_at = now;
                zframe_destroy (&id);
                id = zframe_dup (from);
                last_heard = now;
            } else if (id && zframe_eq (from, id)) {
                if (now - last_heard > fake->max_gap)
                    fake->max_gap = now - last_heard;
                last_heard = now;
                if (zmsg_size (msg) == 7 && zframe_streq (zmsg_first (msg), ""))
                    fake->replies++;
                if (zmsg_size (msg) == 3 && zframe_streq (zmsg_last (msg), "\x05"))
                    fake->disconnects++;
            }
            zframe_destroy (&from);
            zmsg_destroy (&msg);
        }
        if (now >= beat_at) {
            if (id && !fake->silent)
                s_send_to (router, id, 3, "", "MDPW01", "\x04");
            beat_at = now + HEARTBEAT;
        }
    }
    zpoller_destroy (&poller);
    zframe_destroy (&id);
    zsock_destroy (&router);
    free (endpoint);
}

//  Start the fake broker and a worker on it whose hook runs LONG_HOOK msecs
//  and then stops mdp_worker_run; serve one request with mdp_worker_run.
static void s_long_hook_run (fake_t *fake, hook_t *hook)
{
    zactor_t *actor = zactor_new (s_fake_broker, fake);
    char *endpoint = NULL;
    zsock_recv (actor, "s", &endpoint);
    mdp_worker_t *worker = mdp_worker_new (endpoint, "echo");
    mdp_worker_set_heartbeat (worker, HEARTBEAT, LONG_LIVENESS);
    mdp_worker_set_reconnect (worker, 10, 100);
    mdp_worker_set_handler (worker, s_hook, hook);
    ck_assert_ptr_nonnull (mdp_worker_socket (worker));
    ck_assert (tu_wait_for (s_fake_registered, fake, 2000));
    zstr_send (actor, "REQUEST");
    ck_assert_int_eq (mdp_worker_run (worker), 0); //  returns after that request
    ck_assert_int_eq (hook->calls, 1);
    //  The DISCONNECT of destroy comes after any reply, on the same socket
    mdp_worker_destroy (&worker);
    if (!fake->silent) //  (a worker between connections says no goodbye)
        ck_assert (tu_wait_for (s_fake_told_bye, fake, 2000));
    zactor_destroy (&actor); //  a barrier: fake is final from here
    zstr_free (&endpoint);
}

START_TEST (test_long_hook_is_never_taken_for_dead)
{
    fake_t fake = {.silent = false};
    hook_t hook = {.action = "long.result", .busy = LONG_HOOK, .stop = true};
    s_long_hook_run (&fake, &hook);
    ck_assert_int_eq (fake.readys, 1); //  the same connection throughout
    ck_assert_int_eq (fake.replies, 1);
    //  HEARTBEATs went out on time while the hook ran: never a silence the
    //  broker would take for death (liveness x heartbeat)
    ck_assert_msg (fake.max_gap < LONG_LIVENESS * HEARTBEAT, "worker silent for %d msecs",
                   (int)fake.max_gap);
}
END_TEST

START_TEST (test_silent_broker_seen_during_long_hook)
{
    fake_t fake = {.silent = true};
    hook_t hook = {.action = "long.result", .busy = LONG_HOOK, .stop = true};
    int64_t started = zclock_mono ();
    s_long_hook_run (&fake, &hook);
    //  The helper saw the broker go silent and reconnected while the hook ran
    ck_assert_int_ge (fake.readys, 2);
    ck_assert (fake.second_ready_at > 0);
    ck_assert_int_lt (fake.second_ready_at - started, LONG_HOOK);
}
END_TEST

//  ---------------------------------------------------------------------------
//  One worker, two brokers (issue 15): two fake brokers, A and B.

typedef struct {
    zsock_t *broker[2]; //  the fake brokers A and B
    zframe_t *id[2];    //  the worker's routing id on each
    zlist_t *got[2];    //  what each received but HEARTBEATs, in order (zmsg_t *)
    char seen[3][16];   //  the actions the hook saw, in order
    int calls;          //  times the hook ran
} two_t;

//  Read what broker side sent within msecs: keep all but HEARTBEATs in
//  got[side]; return how many HEARTBEATs came.
static int s_two_read (two_t *two, int side, int msecs)
{
    int heartbeats = 0;
    int64_t until = zclock_mono () + tu_scale (msecs);
    zmsg_t *msg;
    while (zclock_mono () < until &&
           (msg = s_recv (two->broker[side], (int)(until - zclock_mono ()), false))) {
        if (s_is_heartbeat (msg)) {
            heartbeats++;
            zmsg_destroy (&msg);
        } else
            zlist_append (two->got[side], msg);
    }
    return heartbeats;
}

//  Wait (bounded) until broker side has seen count HEARTBEATs.
static void s_two_heartbeats (two_t *two, int side, int count)
{
    int seen = 0;
    int64_t until = zclock_mono () + tu_scale (2000);
    while (seen < count && zclock_mono () < until)
        seen += s_two_read (two, side, HEARTBEAT);
    ck_assert_int_ge (seen, count);
}

//  The hook: the 1st request (from A) sees one from B arrive while it runs,
//  the 2nd (from B) sees one from A arrive; the 3rd stops the worker. Each
//  waits for two HEARTBEATs on the other broker: that engine is alive and
//  has read the new request while the hook runs.
static mdp_msg_t *s_two_hook (mdp_worker_t *worker, mdp_msg_t *request, void *arg)
{
    two_t *two = arg;
    snprintf (two->seen[two->calls], sizeof two->seen[0], "%s", mdp_msg_action (request));
    two->calls++;
    if (two->calls == 1) {
        s_send_to (two->broker[1], two->id[1], 7, "", "MDPW01", "\x02", "client-b", "", "two.do",
                   "{\"n\":2}");
        s_two_heartbeats (two, 1, 2);
    } else if (two->calls == 2) {
        s_send_to (two->broker[0], two->id[0], 7, "", "MDPW01", "\x02", "client-a", "", "three.do",
                   "{\"n\":3}");
        s_two_heartbeats (two, 0, 2);
    } else
        mdp_worker_stop (worker);
    return mdp_msg_new ("done", cJSON_Duplicate (mdp_msg_data (request), 1));
}

//  Expect the next message kept for side to be the REPLY to client with n.
static void s_two_expect_reply (two_t *two, int side, const char *client, const char *data)
{
    zmsg_t *reply = zlist_pop (two->got[side]);
    ck_assert_ptr_nonnull (reply);
    tu_assert_frames (reply, 8, NULL, "", "MDPW01", "\x03", client, "", "done", data);
    ck_assert (zframe_eq (zmsg_first (reply), two->id[side]));
    zmsg_destroy (&reply);
}

START_TEST (test_two_brokers_one_request_at_a_time)
{
    two_t two = {.calls = 0};
    char *endpoint[2];
    for (int side = 0; side < 2; side++) {
        two.broker[side] = tu_router_bound (&endpoint[side]);
        two.got[side] = zlist_new ();
    }
    char *list = zsys_sprintf ("%s,%s", endpoint[0], endpoint[1]);
    mdp_worker_t *worker = mdp_worker_new (list, "echo");
    ck_assert_ptr_nonnull (worker);
    mdp_worker_set_heartbeat (worker, HEARTBEAT, 50);
    mdp_worker_set_handler (worker, s_two_hook, &two);
    ck_assert_ptr_nonnull (mdp_worker_socket (worker));
    for (int side = 0; side < 2; side++) //  registered with both
        two.id[side] = s_expect_ready (two.broker[side], "echo");

    s_send_to (two.broker[0], two.id[0], 7, "", "MDPW01", "\x02", "client-a", "", "one.do",
               "{\"n\":1}");
    ck_assert_int_eq (mdp_worker_run (worker), 0); //  until the 3rd request
    ck_assert_int_eq (two.calls, 3);
    ck_assert_str_eq (two.seen[0], "one.do");
    ck_assert_str_eq (two.seen[1], "two.do");
    ck_assert_str_eq (two.seen[2], "three.do");
    //  While the 1st hook ran B got nothing but HEARTBEATs (its request was
    //  held, not served); then each reply went to its own broker, once
    ck_assert_int_eq (zlist_size (two.got[1]), 0);
    s_two_read (&two, 0, 3 * HEARTBEAT);
    s_two_read (&two, 1, 3 * HEARTBEAT);
    s_two_expect_reply (&two, 0, "client-a", "{\"n\":1}");
    s_two_expect_reply (&two, 0, "client-a", "{\"n\":3}");
    s_two_expect_reply (&two, 1, "client-b", "{\"n\":2}");
    ck_assert_int_eq (zlist_size (two.got[0]), 0);
    ck_assert_int_eq (zlist_size (two.got[1]), 0);

    mdp_worker_destroy (&worker); //  says goodbye to both
    for (int side = 0; side < 2; side++) {
        zmsg_t *bye = s_recv (two.broker[side], 2000, true);
        tu_assert_frames (bye, 4, NULL, "", "MDPW01", "\x05");
        zmsg_destroy (&bye);
        zframe_destroy (&two.id[side]);
        zlist_destroy (&two.got[side]);
        zsock_destroy (&two.broker[side]);
        free (endpoint[side]);
    }
    zstr_free (&list);
}
END_TEST

START_TEST (test_endpoint_lists)
{
    const char *bad[] = {"tcp://127.0.0.1:5555,", ",tcp://127.0.0.1:5555",
                         "tcp://127.0.0.1:5555,,tcp://127.0.0.1:5556",
                         "tcp://127.0.0.1:5555, tcp://127.0.0.1:5555", " , "};
    for (size_t index = 0; index < sizeof bad / sizeof bad[0]; index++) {
        errno = 0;
        ck_assert_ptr_null (mdp_worker_new (bad[index], "echo"));
        ck_assert_int_eq (errno, EINVAL);
    }
    mdp_worker_t *worker = mdp_worker_new ("tcp://127.0.0.1:5555 , tcp://127.0.0.1:5556", "echo");
    ck_assert_ptr_nonnull (worker);
    errno = 0;
    ck_assert_int_eq (mdp_worker_add_endpoint (worker, "tcp://127.0.0.1:5556"), -1);
    ck_assert_int_eq (errno, EINVAL); //  a duplicate
    ck_assert_int_eq (mdp_worker_add_endpoint (worker, ""), -1);
    ck_assert_int_eq (mdp_worker_add_endpoint (worker, NULL), -1);
    char more[32];
    for (int port = 0; port < 14; port++) { //  16 in all is the most
        snprintf (more, sizeof more, "tcp://127.0.0.1:%d", 6000 + port);
        ck_assert_int_eq (mdp_worker_add_endpoint (worker, more), 0);
    }
    errno = 0;
    ck_assert_int_eq (mdp_worker_add_endpoint (worker, "tcp://127.0.0.1:7000"), -1);
    ck_assert_int_eq (errno, EINVAL);
    mdp_worker_destroy (&worker);

    //  Added before the start, a broker is served; after it, refused
    char *endpoint[2];
    zsock_t *broker[2];
    for (int side = 0; side < 2; side++)
        broker[side] = tu_router_bound (&endpoint[side]);
    worker = mdp_worker_new (endpoint[0], "echo");
    ck_assert_int_eq (mdp_worker_add_endpoint (worker, endpoint[1]), 0);
    ck_assert_ptr_nonnull (mdp_worker_socket (worker));
    ck_assert_int_eq (mdp_worker_add_endpoint (worker, "tcp://127.0.0.1:7001"), -1);
    for (int side = 0; side < 2; side++) {
        zframe_t *id = s_expect_ready (broker[side], "echo");
        zframe_destroy (&id);
    }
    mdp_worker_destroy (&worker);
    for (int side = 0; side < 2; side++) {
        zsock_destroy (&broker[side]);
        free (endpoint[side]);
    }
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
    tcase_add_test (tc, test_long_hook_is_never_taken_for_dead);
    tcase_add_test (tc, test_silent_broker_seen_during_long_hook);
    tcase_add_test (tc, test_two_brokers_one_request_at_a_time);
    tcase_add_test (tc, test_endpoint_lists);
    suite_add_tcase (suite, tc);
    SRunner *runner = srunner_create (suite);
    srunner_run_all (runner, CK_NORMAL);
    int failed = srunner_ntests_failed (runner);
    srunner_free (runner);
    return failed == 0 ? 0 : 1;
}
