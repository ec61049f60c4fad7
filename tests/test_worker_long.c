/*  test_worker_long.c - hooks that run for a long time: the caller's thread
    gives the socket to the helper thread while the hook runs, so heartbeats
    go out and a silent broker is still seen.
*/
#include "worker_harness.h"

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

static inline bool s_fake_registered (void *fake)
{
    return atomic_load (&((fake_t *)fake)->readys) > 0;
}

static inline bool s_fake_told_bye (void *fake)
{
    return atomic_load (&((fake_t *)fake)->disconnects) > 0;
}

static inline void s_fake_broker (zsock_t *pipe, void *arg)
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
static inline void s_long_hook_run (fake_t *fake, hook_t *hook)
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

int main (void)
{
    Suite *suite = suite_create ("mdp_worker_long");
    TCase *tc = tcase_create ("long");
    tcase_set_timeout (tc, tu_scale (60));
    tcase_add_test (tc, test_long_hook_is_never_taken_for_dead);
    tcase_add_test (tc, test_silent_broker_seen_during_long_hook);
    suite_add_tcase (suite, tc);
    return tu_run_suite (suite);
}
