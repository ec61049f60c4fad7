/*  test_e2e_ha_workers.c - issue 15, worker side, with real processes: two
    mdp-broker processes and two mdp-echo-worker processes, each worker given
    both brokers (-e A -e B). Clients spread over both brokers get every
    request answered once with its own data; after kill -9 of one broker the
    workers keep serving the other, and register again with the killed one
    when it restarts on its endpoint (mmi.workers there says so).
*/
#include "daemon_harness.h"
#include <cjson/cJSON.h>

#define HEARTBEAT 250 //  msecs, brokers and workers (scaled)
#define WORKERS 2     //  mdp-echo-worker processes
#define PER_CLIENT 40 //  requests each client thread puts

typedef struct {
    const char *endpoint; //  the broker this client talks to
    const char *tag;      //  written into each request, to tell them apart
    int count;            //  requests to put
    bool stop_on_failure; //  end at the first unanswered request
} load_t;

//  One client thread: count requests in a row, each with its own data;
//  sends "OK WRONG" (answered with its own data / anything else) when done.
static void s_client_actor (zsock_t *pipe, void *arg)
{
    load_t *load = arg;
    zsock_signal (pipe, 0);
    mdp_client_t *client = mdp_client_new (load->endpoint);
    mdp_client_set_timeout (client, tu_scale (5000));
    mdp_client_set_retries (client, 0); //  a lost request shows, never hidden
    int ok = 0, wrong = 0;
    for (int index = 0; index < load->count; index++) {
        cJSON *data = cJSON_CreateObject ();
        cJSON_AddStringToObject (data, "tag", load->tag);
        cJSON_AddNumberToObject (data, "i", index);
        char *sent = cJSON_PrintUnformatted (data);
        mdp_msg_t *request = mdp_msg_new ("ping.get", data);
        mdp_msg_t *reply = mdp_client_request (client, "echo", &request);
        char *got = reply ? cJSON_PrintUnformatted (mdp_msg_data (reply)) : NULL;
        bool good =
            reply && streq (mdp_msg_action (reply), "ping.result") && got && streq (got, sent);
        ok += good;
        wrong += !good;
        free (got);
        free (sent);
        mdp_msg_destroy (&reply);
        if (!good && load->stop_on_failure)
            break;
    }
    mdp_client_destroy (&client);
    zstr_sendf (pipe, "%d %d", ok, wrong);
    char *term = zstr_recv (pipe);
    zstr_free (&term);
}

//  Wait for a client thread's result; ok and wrong counts.
static void s_client_result (zactor_t **actor_p, int *ok, int *wrong)
{
    char *result = zstr_recv (*actor_p);
    ck_assert_ptr_nonnull (result);
    ck_assert_int_eq (sscanf (result, "%d %d", ok, wrong), 2);
    zstr_free (&result);
    zactor_destroy (actor_p);
}

//  Start mdp-broker on endpoint; returns its pid, its pipes in fds.
static pid_t s_broker (const char *endpoint, int fds[2])
{
    char heartbeat[16];
    snprintf (heartbeat, sizeof heartbeat, "%d", tu_scale (HEARTBEAT));
    const char *args[] = {"-e", endpoint, "--heartbeat", heartbeat, NULL};
    pid_t pid = dh_spawn (args, &fds[0], &fds[1]);
    char bound[256];
    ck_assert_msg (dh_endpoint (fds[1], bound, sizeof bound, 10000), "no broker on %s", endpoint);
    return pid;
}

typedef struct {
    const char *endpoint; //  the broker to ask
    int want;             //  workers expected for "echo"
} count_t;

static bool s_has_workers (void *arg)
{
    count_t *count = arg;
    mdp_client_t *client = mdp_client_new (count->endpoint);
    mdp_client_set_timeout (client, tu_scale (1000));
    mdp_client_set_retries (client, 0);
    int workers = dh_workers_of (client, "echo");
    mdp_client_destroy (&client);
    return workers == count->want;
}

START_TEST (test_two_brokers_two_workers)
{
    char endpoint[2][64];
    int fds[2][2];
    pid_t broker[2];
    for (int side = 0; side < 2; side++) {
        dh_free_endpoint (endpoint[side], sizeof endpoint[side]);
        broker[side] = s_broker (endpoint[side], fds[side]);
    }
    char heartbeat[16];
    snprintf (heartbeat, sizeof heartbeat, "%d", tu_scale (HEARTBEAT));
    pid_t worker[WORKERS];
    for (int index = 0; index < WORKERS; index++) {
        char *argv[] = {strdup (tu_program ("mdp-echo-worker")),
                        "-e",
                        endpoint[0],
                        "-e",
                        endpoint[1],
                        "-H",
                        heartbeat,
                        NULL};
        worker[index] = dh_spawn_tied (argv, -1, -1);
        free (argv[0]);
    }
    count_t both[2] = {{endpoint[0], WORKERS}, {endpoint[1], WORKERS}};
    for (int side = 0; side < 2; side++) //  every worker registered with both
        ck_assert (tu_wait_for (s_has_workers, &both[side], 10000));

    //  Four clients, two on each broker, at once: all answered with their data
    const char *tags[4] = {"a0", "b0", "a1", "b1"};
    load_t loads[4];
    zactor_t *clients[4];
    for (int index = 0; index < 4; index++) {
        loads[index] = (load_t){endpoint[index % 2], tags[index], PER_CLIENT, false};
        clients[index] = zactor_new (s_client_actor, &loads[index]);
    }
    for (int index = 0; index < 4; index++) {
        int ok, wrong;
        s_client_result (&clients[index], &ok, &wrong);
        ck_assert_msg (ok == PER_CLIENT && wrong == 0, "client %s: %d answered, %d not",
                       tags[index], ok, wrong);
    }

    //  kill -9 broker A while clients of both put requests: B's are all answered
    load_t on_a = {endpoint[0], "ka", 1000, true};
    load_t on_b[2] = {{endpoint[1], "kb0", PER_CLIENT, false},
                      {endpoint[1], "kb1", PER_CLIENT, false}};
    zactor_t *client_a = zactor_new (s_client_actor, &on_a);
    zactor_t *client_b[2] = {zactor_new (s_client_actor, &on_b[0]),
                             zactor_new (s_client_actor, &on_b[1])};
    ck_assert_int_eq (kill (broker[0], SIGKILL), 0);
    ck_assert_int_eq (tu_wait_exit (broker[0], 5000), 128 + SIGKILL);
    close (fds[0][0]);
    close (fds[0][1]);
    for (int index = 0; index < 2; index++) {
        int ok, wrong;
        s_client_result (&client_b[index], &ok, &wrong);
        ck_assert_msg (ok == PER_CLIENT && wrong == 0,
                       "after the kill, client %s: %d answered, "
                       "%d not",
                       on_b[index].tag, ok, wrong);
    }
    int ok, wrong;
    s_client_result (&client_a, &ok, &wrong);
    ck_assert_int_eq (wrong, 1); //  the request the dead broker had
    ck_assert (s_has_workers (&both[1]));

    //  Broker A again, on its endpoint: both workers register there again
    broker[0] = s_broker (endpoint[0], fds[0]);
    ck_assert (tu_wait_for (s_has_workers, &both[0], 10000));
    load_t again = {endpoint[0], "again", PER_CLIENT, false};
    zactor_t *client = zactor_new (s_client_actor, &again);
    s_client_result (&client, &ok, &wrong);
    ck_assert_msg (ok == PER_CLIENT && wrong == 0, "after the restart: %d answered, %d not", ok,
                   wrong);
    ck_assert (s_has_workers (&both[1]));

    for (int index = 0; index < WORKERS; index++)
        ck_assert_int_eq (tu_stop (worker[index], SIGTERM, 5000), 0);
    for (int side = 0; side < 2; side++) {
        ck_assert_int_eq (tu_stop (broker[side], SIGTERM, 5000), 0);
        close (fds[side][0]);
        close (fds[side][1]);
    }
}
END_TEST

int main (void)
{
    Suite *suite = suite_create ("e2e_ha_workers");
    TCase *tc = tcase_create ("ha_workers");
    tcase_set_timeout (tc, tu_scale (120));
    tcase_add_test (tc, test_two_brokers_two_workers);
    suite_add_tcase (suite, tc);
    SRunner *runner = srunner_create (suite);
    srunner_run_all (runner, CK_NORMAL);
    int failed = srunner_ntests_failed (runner);
    srunner_free (runner);
    return failed ? 1 : 0;
}
