/*  test_worker_brokers.c - one worker, several brokers (spec/ha.md): two fake
    brokers, one request at a time, each reply to its own broker; endpoint
    lists.
*/
#include "worker_harness.h"

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
static inline int s_two_read (two_t *two, int side, int msecs)
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
static inline void s_two_heartbeats (two_t *two, int side, int count)
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
static inline mdp_msg_t *s_two_hook (mdp_worker_t *worker, mdp_msg_t *request, void *arg)
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
static inline void s_two_expect_reply (two_t *two, int side, const char *client, const char *data)
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
    Suite *suite = suite_create ("mdp_worker_brokers");
    TCase *tc = tcase_create ("brokers");
    tcase_set_timeout (tc, tu_scale (30));
    tcase_add_test (tc, test_two_brokers_one_request_at_a_time);
    tcase_add_test (tc, test_endpoint_lists);
    suite_add_tcase (suite, tc);
    return tu_run_suite (suite);
}
