/*  test_e2e_ghost.c - issue 12's ghost workers: workers that sent READY while
    the broker was down count its silence from then. Started 6 s before the
    real mdp-broker, at the default 2500 ms x 3, a pyzmq worker shaped like
    Domogik's MQRep (reconnecting on broker silence, as MQRep and the zguide's
    mdwrkapi do) and the real mdp-echo-worker must each end up registered once,
    and every request to them answered: no second registration, no 502.
*/
#include "daemon_harness.h"

#define PYTHON "/usr/bin/python3"
//  msecs the workers wait for the broker: over the 5 s after which a first
//  HEARTBEAT owed a heartbeat after READY comes too late (7.5 s). Under
//  valgrind (MDP_TEST_SLOW) starting the broker alone takes seconds, so the
//  outage is 2 s there, the low end of "started 2-6 s before the broker".
#define OUTAGE (tu_scale (1) > 1 ? 2000 : 6000)
#define QUIET                                                                                      \
    4000            //  msecs we only watch (no requests: a REQUEST
                    //  is a sign of life) once the broker serves
#define WATCH 10000 //  msecs we watch in all

static const char *s_services[] = {"ghost.py", "ghost.c"};

START_TEST (test_workers_started_before_the_broker)
{
    char endpoint[64];
    dh_free_endpoint (endpoint, sizeof endpoint);
    int out[2];
    ck_assert_int_eq (pipe2 (out, O_CLOEXEC), 0);
    char *python[] = {PYTHON,       "tests/interop/domogik_worker.py",
                      endpoint,     (char *)s_services[0],
                      "--liveness", "3",
                      "--seconds",  "60",
                      NULL};
    pid_t domogik = dh_spawn_tied (python, out[1], -1);
    close (out[1]);
    char *echo[] = {strdup (tu_program ("mdp-echo-worker")), "-e", endpoint, (char *)s_services[1],
                    NULL};
    pid_t ours = dh_spawn_tied (echo, -1, -1);
    free (echo[0]);
    char *line = tu_read_line_with (out[0], "READY", 10000);
    ck_assert_ptr_nonnull (line); //  both workers have sent READY by now
    free (line);
    zclock_sleep (OUTAGE); //  the outage itself, not a wait for a condition

    const char *args[] = {"-e", endpoint, NULL};
    int broker_out, broker_err;
    pid_t broker = dh_spawn (args, &broker_out, &broker_err);
    char bound[256];
    ck_assert (dh_endpoint (broker_err, bound, sizeof bound, 10000));

    //  Watch the registrations; after QUIET msecs (by when a worker that had
    //  heard nothing since its READY has given up), put requests to both
    //  services meanwhile.
    mdp_client_t *client = mdp_client_new (endpoint);
    mdp_client_set_timeout (client, tu_scale (3000));
    mdp_client_set_retries (client, 1);
    int most[2] = {0, 0}, answered[2] = {0, 0}, failed = 0, code = 0;
    int64_t quiet = zclock_mono () + QUIET, until = zclock_mono () + WATCH;
    while (zclock_mono () < until) {
        for (int i = 0; i < 2; i++) {
            int workers = dh_workers_of (client, s_services[i]);
            most[i] = workers > most[i] ? workers : most[i];
            if (workers < 1 || zclock_mono () < quiet)
                continue; //  not registered yet, or still quiet: nothing to ask
            mdp_msg_t *request = mdp_msg_new ("ping.get", NULL);
            mdp_msg_t *reply = mdp_client_request (client, s_services[i], &request);
            if (reply && !mdp_msg_is_error (reply))
                answered[i]++;
            else {
                failed++;
                code = reply ? mdp_msg_error_code (reply) : -1;
            }
            mdp_msg_destroy (&reply);
        }
        zclock_sleep (100);
    }
    mdp_client_destroy (&client);
    ck_assert_int_eq (tu_stop (ours, SIGTERM, 5000) >= 0, 1);
    ck_assert_int_eq (tu_stop (domogik, SIGTERM, 5000) >= 0, 1);
    ck_assert_int_eq (tu_stop (broker, SIGTERM, 5000) >= 0, 1);
    close (out[0]);
    close (broker_out);
    close (broker_err);
    ck_assert_msg (most[0] == 1 && most[1] == 1,
                   "registrations seen: %d of %s, %d of %s (want one each)", most[0], s_services[0],
                   most[1], s_services[1]);
    ck_assert_msg (failed == 0, "%d requests failed, the last with %d (-1: no reply)", failed,
                   code);
    ck_assert_int_ge (answered[0], 5);
    ck_assert_int_ge (answered[1], 5);
}
END_TEST

int main (void)
{
    Suite *suite = suite_create ("e2e_ghost");
    TCase *tc = tcase_create ("ghost");
    tcase_set_timeout (tc, 120);
    tcase_add_test (tc, test_workers_started_before_the_broker);
    suite_add_tcase (suite, tc);
    return tu_run_suite (suite);
}
