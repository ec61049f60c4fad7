/*  worker_harness.h - the fake broker side of the mdp_worker_t suites
    (test_worker*.c): a bare ROUTER in the test's thread that checks READY,
    REPLY, HEARTBEAT and DISCONNECT byte for byte, an on_request hook that
    records what it saw, and started MDPW01/MDPW02 workers. Heartbeats are
    100 msecs.
*/
#ifndef WORKER_HARNESS_H_INCLUDED
#define WORKER_HARNESS_H_INCLUDED

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

static inline mdp_msg_t *s_hook (mdp_worker_t *worker, mdp_msg_t *request, void *arg)
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
static inline bool s_is_heartbeat (zmsg_t *msg)
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
static inline zmsg_t *s_recv (zsock_t *router, int timeout, bool skip)
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
static inline void s_send_to (zsock_t *router, zframe_t *id, int count, ...)
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
static inline zframe_t *s_expect_ready (zsock_t *broker, const char *service)
{
    zmsg_t *ready = s_recv (broker, 2000, true);
    tu_assert_frames (ready, 5, NULL, "", "MDPW01", "\x01", service);
    zframe_t *id = zmsg_pop (ready);
    zmsg_destroy (&ready);
    return id;
}

//  A started worker for "echo" with quick heartbeats and reconnects.
static inline mdp_worker_t *s_worker (const char *endpoint, int liveness, hook_t *hook)
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
static inline void s_process (mdp_worker_t *worker)
{
    zpoller_t *poller = zpoller_new (mdp_worker_socket (worker), NULL);
    bool waiting = zpoller_wait (poller, tu_scale (2000)) != NULL;
    zpoller_destroy (&poller);
    ck_assert_msg (waiting, "no request reached the worker");
    ck_assert_int_eq (mdp_worker_process (worker), 0);
}

//  ---------------------------------------------------------------------------
//  MDPW02 workers: RFC 18 command codes, partial replies

//  A started MDPW02 worker for "echo", and its READY.
static inline mdp_worker_t *s_worker_v2 (const char *endpoint, hook_t *hook)
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

static inline zframe_t *s_expect_ready_v2 (zsock_t *broker)
{
    zmsg_t *ready = s_recv (broker, 2000, true);
    tu_assert_frames (ready, 5, NULL, "", "MDPW02", "\x01", "echo");
    zframe_t *id = zmsg_pop (ready);
    zmsg_destroy (&ready);
    return id;
}

#endif
