/*  test_e2e_failover.c - high availability, end to end (spec/ha.md): two real
    mdp-broker processes, one mdp-echo-worker process on each, and clients
    given both endpoints. One broker is killed with SIGKILL while ten clients
    run; every request must be answered once with its own data. Then the dead
    broker comes back, the other is killed: same. MDP/0.2 streams fail over
    only before their first partial. (Workers on both brokers at once come
    with the worker engine rewrite; then each echo worker serves both.)
*/
#include "daemon_harness.h"
#include <fcntl.h>
#include <stdatomic.h>

#define HEARTBEAT 250 //  msecs, brokers and workers (times 10 under valgrind: tu_scale)
#define LIVENESS "5"  //  missed heartbeats: 3 expires busy workers (502) on a loaded box
#define CLIENTS 10    //  client threads
#define REQUESTS (getenv ("MDP_TEST_SLOW") ? 50 : 500) //  per client (fewer under valgrind)
#define TIMEOUT                                                                                    \
    1000 //  msecs a client waits on one broker before moving on (and the
         //  broker on the worker: 500 gives 504s on a loaded machine)

//  One mdp-broker process and what it needs to be killed and restarted.
typedef struct {
    pid_t pid;          //  the process, 0 when not running
    int out, err;       //  its stdout and stderr pipes (read ends)
    char endpoint[256]; //  where it serves
} broker_proc_t;

//  Start mdp-broker on bind (an exact endpoint, or tcp://127.0.0.1:* the
//  first time). The port of a killed broker may be free a little late.
static void s_broker_start (broker_proc_t *broker, const char *bind)
{
    char heartbeat[16];
    snprintf (heartbeat, sizeof heartbeat, "%d", tu_scale (HEARTBEAT));
    int64_t until = zclock_mono () + tu_scale (5000);
    while (true) {
        const char *args[] = {"-e", bind, "--heartbeat", heartbeat, "--liveness", LIVENESS, NULL};
        broker->pid = dh_spawn (args, &broker->out, &broker->err);
        if (dh_endpoint (broker->err, broker->endpoint, sizeof broker->endpoint, 10000))
            break;
        tu_stop (broker->pid, SIGKILL, 2000);
        close (broker->out);
        close (broker->err);
        ck_assert_msg (zclock_mono () < until, "mdp-broker never served on %s", bind);
        zclock_sleep (50); //  the port is still taken: try again, bounded
    }
    fcntl (broker->err, F_SETFL, O_NONBLOCK); //  drained as we go (s_drain)
}

static void s_broker_kill (broker_proc_t *broker)
{
    if (broker->pid <= 0)
        return; //  killed already: its pipes are closed, their numbers maybe reused
    tu_stop (broker->pid, SIGKILL, 5000);
    broker->pid = 0;
    close (broker->out);
    close (broker->err);
}

//  Read what a broker logged so far, so that it never blocks on a full pipe.
static void s_drain (broker_proc_t *broker)
{
    char buffer[4096];
    while (broker->pid > 0 && read (broker->err, buffer, sizeof buffer) > 0)
        ;
}

static pid_t s_worker_start (const char *endpoint)
{
    char heartbeat[16];
    snprintf (heartbeat, sizeof heartbeat, "%d", tu_scale (HEARTBEAT));
    char *argv[] = {(char *)tu_program ("mdp-echo-worker"),
                    "-e",
                    (char *)endpoint,
                    "-H",
                    heartbeat,
                    "echo",
                    NULL};
    pid_t pid = tu_spawn (argv, -1);
    ck_assert_int_gt (pid, 0);
    return pid;
}

static bool s_has_echo (void *endpoint)
{
    mdp_client_t *client = mdp_client_new (endpoint);
    mdp_client_set_timeout (client, 200);
    mdp_client_set_retries (client, 1);
    bool has = mdp_client_has_service (client, "echo") == 1;
    mdp_client_destroy (&client);
    return has;
}

//  How many workers the broker at endpoint has for echo (mmi.workers), -1
//  if it does not answer.
static int s_echo_workers (const char *endpoint)
{
    mdp_client_t *client = mdp_client_new (endpoint);
    mdp_client_set_timeout (client, 200);
    mdp_client_set_retries (client, 1);
    char *answer = mdp_client_mmi (client, "mmi.workers", "all");
    mdp_client_destroy (&client);
    cJSON *root = answer ? cJSON_Parse (answer) : NULL;
    cJSON *echo = cJSON_GetObjectItem (cJSON_GetObjectItem (root, "services"), "echo");
    int workers = root ? (int)cJSON_GetNumberValue (cJSON_GetObjectItem (echo, "workers")) : -1;
    cJSON_Delete (root);
    free (answer);
    return echo || !root ? workers : 0;
}

//  Wait until the broker at endpoint has had exactly one echo worker for a
//  whole worker expiry. A worker that reconnects while its broker restarts
//  may leave a stale registration behind (its READY from a socket it then
//  gave up on); requests given to it come back 502 once it expires. That is
//  the worker's business (spec/ha.md), not failover's, so we wait it out.
static void s_wait_one_worker (const char *endpoint)
{
    int64_t until = zclock_mono () + tu_scale (10000), since = -1;
    int hold = tu_scale (HEARTBEAT * atoi (LIVENESS) + HEARTBEAT);
    while (zclock_mono () < until) {
        if (s_echo_workers (endpoint) != 1)
            since = -1;
        else if (since < 0)
            since = zclock_mono ();
        else if (zclock_mono () - since >= hold)
            return;
        zclock_sleep (50); //  polling the broker, bounded by until
    }
    ck_abort_msg ("broker %s never settled on one echo worker", endpoint);
}

static broker_proc_t brokers[2];
static char endpoints[600]; //  "first,second", what the clients are given
static atomic_int answered; //  requests answered, all clients together

//  --- the clients -------------------------------------------------------

//  What one client thread saw.
typedef struct {
    int index;   //  which client
    int good;    //  replies with this request's own data
    int bad;     //  no reply, an error reply, or someone else's data
    int max_gap; //  longest wait for one reply, msecs
} tally_t;

//  One request: ask echo for {"client": c, "seq": n} and check the answer.
static bool s_ask (mdp_client_t *client, int index, int seq)
{
    cJSON *data = cJSON_CreateObject ();
    cJSON_AddNumberToObject (data, "client", index);
    cJSON_AddNumberToObject (data, "seq", seq);
    mdp_msg_t *request = mdp_msg_new ("test.get", data);
    mdp_msg_t *reply = mdp_client_request (client, "echo", &request);
    cJSON *got = reply ? mdp_msg_data (reply) : NULL;
    bool good = reply && !mdp_msg_is_error (reply) &&
                cJSON_GetNumberValue (cJSON_GetObjectItem (got, "client")) == index &&
                cJSON_GetNumberValue (cJSON_GetObjectItem (got, "seq")) == seq;
    char *text = reply ? mdp_msg_to_json (reply) : NULL;
    if (!good)
        zsys_warning ("client %d request %d: %s", index, seq, text ? text : strerror (errno));
    free (text);
    mdp_msg_destroy (&reply);
    return good;
}

static void s_client_actor (zsock_t *pipe, void *args)
{
    tally_t tally = {*(int *)args, 0, 0, 0};
    zsock_signal (pipe, 0);
    mdp_client_t *client = mdp_client_new (endpoints);
    mdp_client_set_timeout (client, tu_scale (TIMEOUT));
    mdp_client_set_retries (client, 4); //  a loaded machine may be slow once
    for (int seq = 0; seq < REQUESTS && !zsys_interrupted; seq++) {
        int64_t since = zclock_mono ();
        if (s_ask (client, tally.index, seq))
            tally.good++;
        else
            tally.bad++;
        int gap = (int)(zclock_mono () - since);
        tally.max_gap = gap > tally.max_gap ? gap : tally.max_gap;
        atomic_fetch_add (&answered, 1);
    }
    mdp_client_destroy (&client);
    zsock_send (pipe, "iii", tally.good, tally.bad, tally.max_gap);
    char *term = zstr_recv (pipe);
    zstr_free (&term);
}

//  Wait until the clients have answered count requests in all (or fail).
static void s_wait_answered (int count)
{
    int64_t until = zclock_mono () + tu_scale (120000);
    while (atomic_load (&answered) < count && zclock_mono () < until) {
        s_drain (&brokers[0]);
        s_drain (&brokers[1]);
        zclock_sleep (5); //  polling a counter, bounded by until
    }
    ck_assert_int_ge (atomic_load (&answered), count);
}

static void s_setup (void)
{
    for (int index = 0; index < 2; index++)
        s_broker_start (&brokers[index], "tcp://127.0.0.1:*");
    snprintf (endpoints, sizeof endpoints, "%s,%s", brokers[0].endpoint, brokers[1].endpoint);
}

static void s_teardown (void)
{
    s_broker_kill (&brokers[0]);
    s_broker_kill (&brokers[1]);
}

//  Kill the first broker a third of the way, bring it back, kill the other
//  two thirds of the way. Every request answered once with its own data.
START_TEST (test_kill_each_broker_under_load)
{
    pid_t workers[2] = {s_worker_start (brokers[0].endpoint), s_worker_start (brokers[1].endpoint)};
    for (int index = 0; index < 2; index++)
        ck_assert_msg (tu_wait_for (s_has_echo, brokers[index].endpoint, 10000),
                       "no echo worker on broker %d", index + 1);
    atomic_store (&answered, 0);
    zactor_t *clients[CLIENTS];
    int indexes[CLIENTS];
    for (int index = 0; index < CLIENTS; index++) {
        indexes[index] = index;
        clients[index] = zactor_new (s_client_actor, &indexes[index]);
        ck_assert_ptr_nonnull (clients[index]);
    }
    int total = CLIENTS * REQUESTS;
    s_wait_answered (total / 3);
    s_broker_kill (&brokers[0]);
    char bind[256];
    snprintf (bind, sizeof bind, "%s", brokers[0].endpoint);
    s_wait_answered (total / 2);
    s_broker_start (&brokers[0], bind); //  back, same endpoint
    s_wait_one_worker (brokers[0].endpoint);
    s_wait_answered (2 * total / 3);
    s_broker_kill (&brokers[1]);

    int good = 0, bad = 0, max_gap = 0;
    for (int index = 0; index < CLIENTS; index++) {
        zpoller_t *poller = zpoller_new (clients[index], NULL);
        bool done = zpoller_wait (poller, tu_scale (120000)) == clients[index];
        zpoller_destroy (&poller);
        ck_assert_msg (done, "client %d never finished", index);
        int client_good, client_bad, gap;
        zsock_recv (clients[index], "iii", &client_good, &client_bad, &gap);
        good += client_good;
        bad += client_bad;
        max_gap = gap > max_gap ? gap : max_gap;
        zactor_destroy (&clients[index]);
    }
    fprintf (stderr,
             "failover: %d answered with their own data, %d not, longest gap %d ms "
             "(client timeout %d ms, heartbeat %d ms)\n",
             good, bad, max_gap, tu_scale (TIMEOUT), tu_scale (HEARTBEAT));
    for (int index = 0; index < 2; index++)
        tu_stop (workers[index], SIGTERM, 5000);
    ck_assert_int_eq (bad, 0);
    ck_assert_int_eq (good, total);
    //  One failover costs one timeout on the dead broker, then the answer
    ck_assert_int_lt (max_gap, 2 * tu_scale (TIMEOUT) + tu_scale (1000));
}
END_TEST

//  --- MDP/0.2 streams through failover ---------------------------------

static atomic_int gate_open;     //  lets the held worker on broker 1 finish
static atomic_int held;          //  requests the held worker has taken
static atomic_int partials_seen; //  partials the streaming client has seen
static atomic_int served;        //  requests the worker on broker 2 has taken

//  Broker 1's worker: sends arg's number of partials (0 or 1), then holds the
//  request until the gate opens (the test kills its broker meanwhile).
static mdp_msg_t *s_held_hook (mdp_worker_t *worker, mdp_msg_t *request, void *arg)
{
    atomic_fetch_add (&held, 1);
    if (*(int *)arg > 0) {
        mdp_msg_t *partial = mdp_msg_new ("held.partial", NULL);
        mdp_worker_send_partial (worker, &partial);
    }
    int64_t until = zclock_mono () + tu_scale (10000);
    while (!atomic_load (&gate_open) && zclock_mono () < until)
        zclock_sleep (10); //  a gate, bounded
    return mdp_msg_new ("held.result", NULL);
}

//  Broker 2's worker: three partials, then the final reply.
static mdp_msg_t *s_stream_hook (mdp_worker_t *worker, mdp_msg_t *request, void *arg)
{
    atomic_fetch_add (&served, 1);
    for (int part = 0; part < 3; part++) {
        mdp_msg_t *partial = mdp_msg_new ("stream.partial", NULL);
        mdp_worker_send_partial (worker, &partial);
    }
    return mdp_msg_new ("stream.result", NULL);
}

typedef struct {
    const char *endpoint; //  the broker
    mdp_worker_fn *hook;  //  what the worker does
    int partials;         //  the hook's argument
} stream_worker_t;

static void s_worker_actor (zsock_t *pipe, void *args)
{
    stream_worker_t worker_args = *(stream_worker_t *)args;
    mdp_worker_t *worker = mdp_worker_new (worker_args.endpoint, "stream");
    mdp_worker_set_protocol (worker, 2);
    mdp_worker_set_heartbeat (worker, tu_scale (HEARTBEAT), 3);
    mdp_worker_set_reconnect (worker, 20, 200);
    mdp_worker_set_handler (worker, worker_args.hook, &worker_args.partials);
    tu_worker_run (pipe, &worker);
}

static void s_count_partial (mdp_msg_t *partial, void *arg)
{
    atomic_fetch_add (&partials_seen, 1);
}

//  One streaming request with both brokers; reports errno and the final
//  reply's action ("" when none).
static void s_stream_client_actor (zsock_t *pipe, void *args)
{
    zsock_signal (pipe, 0);
    mdp_client_t *client = mdp_client_new (endpoints);
    mdp_client_set_timeout (client, tu_scale (TIMEOUT));
    mdp_client_set_retries (client, 2);
    mdp_msg_t *request = mdp_msg_new ("stream.get", NULL);
    mdp_msg_t *reply =
        mdp_client_request_stream (client, "stream", &request, s_count_partial, NULL);
    int error = reply ? 0 : errno;
    zsock_send (pipe, "is", error, reply ? mdp_msg_action (reply) : "");
    mdp_msg_destroy (&reply);
    mdp_client_destroy (&client);
    char *term = zstr_recv (pipe);
    zstr_free (&term);
}

static bool s_has_stream (void *endpoint)
{
    mdp_client_t *client = mdp_client_new (endpoint);
    mdp_client_set_timeout (client, 200);
    mdp_client_set_retries (client, 1);
    bool has = mdp_client_has_service (client, "stream") == 1;
    mdp_client_destroy (&client);
    return has;
}

static bool s_atomic_positive (void *counter)
{
    return atomic_load ((atomic_int *)counter) > 0;
}

//  Workers on both brokers, a streaming call under way, broker 1 holding
//  it (after partials partial replies): kill broker 1, return the result.
static void s_stream_through_kill (int partials, int *error, char **action)
{
    atomic_store (&gate_open, 0);
    atomic_store (&held, 0);
    atomic_store (&served, 0);
    atomic_store (&partials_seen, 0);
    stream_worker_t first = {brokers[0].endpoint, s_held_hook, partials};
    stream_worker_t second = {brokers[1].endpoint, s_stream_hook, 0};
    zactor_t *workers[2] = {zactor_new (s_worker_actor, &first),
                            zactor_new (s_worker_actor, &second)};
    ck_assert (tu_wait_for (s_has_stream, brokers[0].endpoint, 10000));
    ck_assert (tu_wait_for (s_has_stream, brokers[1].endpoint, 10000));
    zactor_t *client = zactor_new (s_stream_client_actor, NULL);
    ck_assert_msg (tu_wait_for (s_atomic_positive, &held, 5000), "broker 1 never had the request");
    if (partials > 0)
        ck_assert (tu_wait_for (s_atomic_positive, &partials_seen, 5000));
    s_broker_kill (&brokers[0]);
    zpoller_t *poller = zpoller_new (client, NULL);
    bool done = zpoller_wait (poller, tu_scale (10000)) == client;
    zpoller_destroy (&poller);
    ck_assert_msg (done, "the streaming call never ended");
    zsock_recv (client, "is", error, action);
    zactor_destroy (&client);
    atomic_store (&gate_open, 1);
    zactor_destroy (&workers[0]);
    zactor_destroy (&workers[1]);
}

START_TEST (test_stream_fails_over_before_a_partial)
{
    int error;
    char *action;
    s_stream_through_kill (0, &error, &action);
    ck_assert_int_eq (error, 0);
    ck_assert_str_eq (action, "stream.result");
    ck_assert_int_eq (atomic_load (&partials_seen), 3); //  broker 2's, from the start
    ck_assert_int_eq (atomic_load (&served), 1);
    zstr_free (&action);
}
END_TEST

START_TEST (test_stream_not_restarted_after_a_partial)
{
    int error;
    char *action;
    s_stream_through_kill (1, &error, &action);
    ck_assert_int_eq (error, EAGAIN); //  an error, not a stream begun again
    ck_assert_str_eq (action, "");
    ck_assert_int_eq (atomic_load (&partials_seen), 1);
    ck_assert_int_eq (atomic_load (&served), 0);
    zstr_free (&action);
}
END_TEST

//  Run mdp-async-req with -e first -e second, 50 requests; return how many
//  final replies it printed, after checking it exits 0.
static int s_async_req (const char *first, const char *second)
{
    char timeout[16];
    snprintf (timeout, sizeof timeout, "%d", tu_scale (TIMEOUT));
    char *argv[] = {(char *)tu_program ("mdp-async-req"),
                    "-e",
                    (char *)first,
                    "-e",
                    (char *)second,
                    "-t",
                    timeout,
                    "-n",
                    "50",
                    "echo",
                    "a.get",
                    NULL};
    int out[2];
    ck_assert_int_eq (pipe (out), 0);
    pid_t pid = tu_spawn (argv, out[1]);
    close (out[1]);
    int lines = 0;
    char *line;
    while ((line = tu_read_line_with (out[0], "\"final\":true", 10000))) {
        lines++;
        free (line);
    }
    close (out[0]);
    ck_assert_int_eq (tu_wait_exit (pid, 10000), 0);
    return lines;
}

//  mdp-async-req given a dead broker and a live one, in both orders: every
//  request answered, exit 0.
START_TEST (test_async_req_fails_over)
{
    pid_t worker = s_worker_start (brokers[1].endpoint);
    ck_assert (tu_wait_for (s_has_echo, brokers[1].endpoint, 10000));
    char dead[256];
    snprintf (dead, sizeof dead, "%s", brokers[0].endpoint);
    s_broker_kill (&brokers[0]);
    ck_assert_int_eq (s_async_req (dead, brokers[1].endpoint), 50);
    ck_assert_int_eq (s_async_req (brokers[1].endpoint, dead), 50);
    tu_stop (worker, SIGTERM, 5000);
}
END_TEST

int main (void)
{
    Suite *suite = suite_create ("e2e_failover");
    TCase *tc = tcase_create ("failover");
    tcase_add_checked_fixture (tc, s_setup, s_teardown);
    tcase_set_timeout (tc, tu_scale (180));
    tcase_add_test (tc, test_kill_each_broker_under_load);
    tcase_add_test (tc, test_stream_fails_over_before_a_partial);
    tcase_add_test (tc, test_stream_not_restarted_after_a_partial);
    tcase_add_test (tc, test_async_req_fails_over);
    suite_add_tcase (suite, tc);
    return tu_run_suite (suite);
}
