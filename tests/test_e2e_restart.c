/*  test_e2e_restart.c - issue 3's promise on broker restarts: every worker is
    registered again within two heartbeat-liveness periods of the new broker's
    start, whether the old one said goodbye, crashed, or stayed away a while.
    Five libmdp workers (their library's own reconnect back-off) and an
    in-process broker; the count comes from the broker's dispatch: with N idle
    workers, N requests in a row reach N different workers (LRU).
*/
#include "broker.h"
#include "mdp.h"
#include "testutil.h"
#include <check.h>
#include <errno.h>

#define WORKERS 5  //  workers offering "restart"
#define LIVENESS 3 //  as the library's and the broker's default

static int s_heartbeat;  //  msecs, both ways (scaled under valgrind)
static char *s_endpoint; //  the first broker's, reused by the next

//  --- a broker that can also crash -------------------------------------------

//  Like broker_actor, plus "CRASH": destroy the broker without its goodbye
//  (no DISCONNECT to workers, no 503s), as a killed process would. args is
//  the endpoint to bind. After the start-up signal it sends the endpoint
//  bound, or "" if the bind failed.
static void s_broker_actor (zsock_t *pipe, void *args)
{
    broker_config_t cfg;
    broker_config_defaults (&cfg);
    cfg.heartbeat = s_heartbeat;
    cfg.liveness = LIVENESS;
    broker_t *broker = broker_new (&cfg);
    int64_t until = zclock_mono () + 2000; //  the port may be released late
    int rc = broker ? broker_bind (broker, (const char *)args) : -1;
    while (broker && rc != 0 && errno == EADDRINUSE && zclock_mono () < until) {
        zclock_sleep (10);
        rc = broker_bind (broker, (const char *)args);
    }
    zsock_signal (pipe, 0);
    zstr_send (pipe, rc == 0 ? broker_endpoint (broker) : "");
    char *command = NULL;
    while (rc == 0 && !command) {
        broker_poll (broker, 10);
        if (zsock_events (pipe) & ZMQ_POLLIN)
            command = zstr_recv (pipe);
    }
    if (command && !streq (command, "CRASH"))
        broker_shutdown (broker);
    broker_destroy (&broker);
    while (command && !streq (command, "$TERM")) {
        zstr_free (&command);
        command = zstr_recv (pipe);
    }
    zstr_free (&command);
}

//  Start a broker on bind; NULL if it could not bind. Notes the endpoint.
static zactor_t *s_broker_start (const char *bind)
{
    zactor_t *broker = zactor_new (s_broker_actor, (void *)bind);
    char *endpoint = broker ? zstr_recv (broker) : NULL;
    if (!endpoint || !*endpoint) {
        zactor_destroy (&broker);
        zstr_free (&endpoint);
        return NULL;
    }
    zstr_free (&s_endpoint);
    s_endpoint = endpoint;
    return broker;
}

//  --- the workers ------------------------------------------------------------

typedef struct {
    int index; //  which worker this is, echoed in replies
} worker_args_t;

static mdp_msg_t *s_whoami (mdp_worker_t *worker, mdp_msg_t *request, void *arg)
{
    cJSON *data = cJSON_CreateObject ();
    cJSON_AddNumberToObject (data, "worker", *(int *)arg);
    return mdp_msg_new ("whoami.result", data);
}

//  A libmdp worker in a thread, with the library's default reconnect back-off.
static void s_worker_actor (zsock_t *pipe, void *args)
{
    int index = ((worker_args_t *)args)->index;
    mdp_worker_t *worker = mdp_worker_new (s_endpoint, "restart");
    mdp_worker_set_handler (worker, s_whoami, &index);
    mdp_worker_set_heartbeat (worker, s_heartbeat, LIVENESS);
    zsock_t *sock = mdp_worker_socket (worker);
    zpoller_t *poller = zpoller_new (pipe, sock, NULL);
    zsock_signal (pipe, 0);
    while (zpoller_wait (poller, -1) == sock)
        mdp_worker_process (worker);
    zpoller_destroy (&poller); //  $TERM from the test
    mdp_worker_destroy (&worker);
}

//  Ask "restart" until the last WORKERS requests in a row went to WORKERS
//  different workers: then all are registered. Returns the msecs from since
//  until then, or -1 if that did not happen within bound msecs.
static int s_all_registered (int64_t since, int bound)
{
    //  A request waits, queued, for the first worker to come; one held by a
    //  registration that is already dead ends with 502 within a liveness period.
    mdp_client_t *client = mdp_client_new (s_endpoint);
    mdp_client_set_timeout (client, 2 * s_heartbeat * LIVENESS);
    mdp_client_set_retries (client, 1);
    int last[WORKERS], count = 0, took = -1;
    while (took < 0 && zclock_mono () < since + bound) {
        mdp_msg_t *request = mdp_msg_new ("whoami", NULL);
        mdp_msg_t *reply = mdp_client_request (client, "restart", &request);
        cJSON *who = reply ? cJSON_GetObjectItem (mdp_msg_data (reply), "worker") : NULL;
        last[count++ % WORKERS] = cJSON_IsNumber (who) ? who->valueint : -1;
        mdp_msg_destroy (&reply);
        int seen = 0; //  bit per worker among the last WORKERS answers
        for (int n = 0; n < WORKERS && n < count; n++)
            if (last[n] >= 0 && last[n] < WORKERS)
                seen |= 1 << last[n];
        if (seen == (1 << WORKERS) - 1)
            took = (int)(zclock_mono () - since);
    }
    mdp_client_destroy (&client);
    return took;
}

//  Register WORKERS workers with a broker; then ATTEMPTS times stop it
//  (crash: without goodbye), wait outage msecs, start a new one on the same
//  endpoint and time how long until every worker is registered with it.
//  Returns how many attempts met issue 3's limit, two heartbeat-liveness
//  periods; a single figure on a busy 2-core machine may include a
//  scheduling stall of a few hundred msecs (seen with 10 to 18 runnable
//  threads), a late back-off shows in every attempt.
#define ATTEMPTS 3
static int s_restarts (bool crash, int outage)
{
    s_heartbeat = tu_scale (100);
    int limit = 2 * s_heartbeat * LIVENESS, in_time = 0;
    zactor_t *broker = s_broker_start ("tcp://127.0.0.1:*");
    ck_assert_ptr_nonnull (broker);
    zactor_t *workers[WORKERS];
    worker_args_t args[WORKERS];
    for (int index = 0; index < WORKERS; index++) {
        args[index].index = index;
        workers[index] = zactor_new (s_worker_actor, &args[index]);
    }
    bool first = s_all_registered (zclock_mono (), tu_scale (5000)) >= 0;
    for (int attempt = 0; first && broker && attempt < ATTEMPTS; attempt++) {
        if (crash)
            zstr_send (broker, "CRASH");
        zactor_destroy (&broker);
        zclock_sleep (outage); //  the outage itself, not a wait for something
        broker = s_broker_start (s_endpoint);
        int took = broker ? s_all_registered (zclock_mono (), tu_scale (10000)) : -1;
        in_time += took >= 0 && took <= limit;
        printf ("%s after %d ms away: all %d workers back %d ms after the new broker "
                "started (limit %d ms)\n",
                crash ? "crash" : "restart", outage, WORKERS, took, limit);
        fflush (stdout);
    }
    for (int index = 0; index < WORKERS; index++)
        zactor_destroy (&workers[index]);
    zactor_destroy (&broker);
    zstr_free (&s_endpoint);
    ck_assert_msg (first, "the workers never registered with the first broker");
    return in_time;
}

START_TEST (test_workers_back_after_restart)
{
    //  The old broker says goodbye (DISCONNECT); the new one starts at once.
    ck_assert_int_ge (s_restarts (false, 0), ATTEMPTS - 1);
}
END_TEST

START_TEST (test_workers_back_after_crash)
{
    //  No goodbye: the workers hear silence, or DISCONNECT from the new broker
    //  for heartbeats it cannot place.
    ck_assert_int_ge (s_restarts (true, 0), ATTEMPTS - 1);
}
END_TEST

START_TEST (test_workers_back_after_outage)
{
    //  The broker stays away 3 s (30 heartbeats: a supervisor's restart
    //  delay, a slow start); the workers' back-off must not outlast it by
    //  more than the limit.
    ck_assert_int_ge (s_restarts (true, 3000), ATTEMPTS - 1);
}
END_TEST

int main (void)
{
    Suite *suite = suite_create ("e2e-restart");
    TCase *tc = tcase_create ("restart");
    tcase_set_timeout (tc, 120);
    tcase_add_test (tc, test_workers_back_after_restart);
    tcase_add_test (tc, test_workers_back_after_crash);
    tcase_add_test (tc, test_workers_back_after_outage);
    suite_add_tcase (suite, tc);
    return tu_run_suite (suite);
}
