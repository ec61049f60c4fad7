/*  test_async_loop.c - Check suite for driving mdp_async_t from a program's
    own loop: a handler called by mdp_async_process, a zloop through
    mdp_async_attach (timeouts included), and a hundred requests in flight at
    once, answered by a fake broker in a seeded shuffled order.
*/
#include "async_harness.h"
#include <check.h>
#include <errno.h>

//  What a handler saw, for the process and zloop tests.
typedef struct {
    int calls;        //  handler calls
    int finals;       //  calls with final true
    int timeouts;     //  calls with ETIMEDOUT
    uint64_t last_id; //  id of the last call
    char last[128];   //  action of the last reply, or ""
    zloop_t *loop;    //  to end when every request is done, or NULL
} seen_t;

static int s_end_loop (zloop_t *loop, int timer_id, void *arg)
{
    return -1;
}

static void s_record (mdp_async_t *client, uint64_t id, mdp_msg_t *reply, bool final, int status,
                      void *arg)
{
    seen_t *seen = arg;
    seen->calls++;
    seen->finals += final;
    seen->timeouts += status == ETIMEDOUT;
    seen->last_id = id;
    snprintf (seen->last, sizeof seen->last, "%s", reply ? mdp_msg_action (reply) : "");
    if (status == ETIMEDOUT)
        ck_assert (final && !reply);
}

START_TEST (test_process_calls_the_handler)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    mdp_async_t *client = s_client (endpoint);
    seen_t seen = {0};
    mdp_async_set_handler (client, s_record, &seen);
    ck_assert_int_eq (mdp_async_process (client), 0); //  nothing yet
    s_send (client, "echo", "a.get", "{}");
    zmsg_t *request = tu_recv (broker, 2000);
    ck_assert_ptr_nonnull (request);
    tu_answer (broker, request, 5, "MDPC02", "\x02", "echo", "a.part", "{}");
    tu_answer (broker, request, 5, "MDPC02", "\x03", "echo", "a.result", "{}");
    //  The poll-style loop a program would write around the client
    zpoller_t *poller = zpoller_new (mdp_async_socket (client), NULL);
    int64_t until = zclock_mono () + tu_scale (2000);
    while (seen.finals == 0 && zclock_mono () < until) {
        zpoller_wait (poller, (int)(until - zclock_mono ()));
        int before = seen.calls;
        ck_assert_int_eq (mdp_async_process (client), seen.calls - before);
    }
    zpoller_destroy (&poller);
    ck_assert_int_eq (seen.calls, 2);
    ck_assert_int_eq (seen.finals, 1);
    ck_assert_str_eq (seen.last, "a.result");
    zmsg_destroy (&request);
    mdp_async_destroy (&client);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

//  ---------------------------------------------------------------------------
//  Many requests in flight, answered in a shuffled order

#define REQUESTS 100
#define MAX_PARTIALS 5

//  The fake broker's side and the client's side of one run.
typedef struct {
    zsock_t *broker;            //  the fake broker
    zmsg_t *requests[REQUESTS]; //  what the broker received, in order
    int received;               //  requests received so far
    int partials[REQUESTS];     //  partials the broker sends request n
    uint64_t ids[REQUESTS];     //  request n's id, from mdp_async_send
    int got[REQUESTS];          //  partials the client got for request n
    int finals[REQUESTS];       //  finals the client got for request n
    int done;                   //  requests with their final
    zloop_t *loop;              //  the zloop run, or NULL
    char failure[256];          //  first thing that went wrong, or ""
} flight_t;

static void s_fail (flight_t *flight, const char *text)
{
    if (!*flight->failure)
        snprintf (flight->failure, sizeof flight->failure, "%s", text);
}

//  Request n, as the data says: {"n": n}.
static int s_n_of (cJSON *data)
{
    cJSON *n = cJSON_GetObjectItem (data, "n");
    return cJSON_IsNumber (n) && n->valueint >= 0 && n->valueint < REQUESTS ? n->valueint : -1;
}

//  Send every answer: request n gets partials[n] partials {"n", "part"} then a
//  final {"n", "parts"}; requests interleave in a seeded random order, while
//  each request's own replies stay in order.
static void s_answer_all (flight_t *flight)
{
    zmsg_t *by_n[REQUESTS] = {NULL}; //  the request the client sent as n
    for (int index = 0; index < REQUESTS; index++) {
        char *json = zframe_strdup (zmsg_last (flight->requests[index]));
        cJSON *data = cJSON_Parse (json);
        int n = s_n_of (data);
        ck_assert_msg (n >= 0 && !by_n[n], "request %d: bad data %s", index, json);
        by_n[n] = flight->requests[index];
        cJSON_Delete (data);
        free (json);
    }
    unsigned int seed = SEED;
    int schedule[REQUESTS * (MAX_PARTIALS + 1)], total = 0, sent[REQUESTS] = {0};
    for (int n = 0; n < REQUESTS; n++)
        for (int part = 0; part <= flight->partials[n]; part++)
            schedule[total++] = n;
    for (int index = total - 1; index > 0; index--) {
        int other = rand_r (&seed) % (index + 1), tmp = schedule[index];
        schedule[index] = schedule[other];
        schedule[other] = tmp;
    }
    for (int index = 0; index < total; index++) {
        int n = schedule[index];
        bool final = sent[n] == flight->partials[n];
        char *body = final ? zsys_sprintf ("{\"n\":%d,\"parts\":%d}", n, sent[n])
                           : zsys_sprintf ("{\"n\":%d,\"part\":%d}", n, sent[n]);
        tu_answer (flight->broker, by_n[n], 5, "MDPC02", final ? "\x03" : "\x02", "echo",
                   final ? "job.result" : "job.partial", body);
        sent[n]++;
        zstr_free (&body);
    }
}

//  Check one event against what request n was sent and what came before.
static void s_check_event (flight_t *flight, uint64_t id, mdp_msg_t *reply, bool final, int status)
{
    int n = reply ? s_n_of (mdp_msg_data (reply)) : -1;
    if (n < 0 || flight->ids[n] != id) {
        s_fail (flight, "a reply reached the wrong request");
        return;
    }
    cJSON *data = mdp_msg_data (reply);
    if (flight->finals[n])
        s_fail (flight, "an event after the final one");
    if (!final) {
        cJSON *part = cJSON_GetObjectItem (data, "part");
        if (!cJSON_IsNumber (part) || part->valueint != flight->got[n]++)
            s_fail (flight, "partials out of order");
        return;
    }
    cJSON *parts = cJSON_GetObjectItem (data, "parts");
    if (status || !cJSON_IsNumber (parts) || parts->valueint != flight->got[n] ||
        flight->got[n] != flight->partials[n])
        s_fail (flight, "final reply does not close its partials");
    flight->finals[n]++;
    flight->done++;
}

//  Send the requests, {"n": n, "seq": n}, and plan each one's partials.
static void s_send_all (flight_t *flight, mdp_async_t *client)
{
    unsigned int seed = SEED + 1;
    for (int n = 0; n < REQUESTS; n++) {
        flight->partials[n] = rand_r (&seed) % (MAX_PARTIALS + 1);
        char json[64];
        snprintf (json, sizeof json, "{\"n\": %d, \"seq\": %d}", n, n);
        flight->ids[n] = s_send (client, "echo", "job.do", json);
        ck_assert_int_eq (flight->ids[n], n + 1);
    }
}

static void s_flight_end (flight_t *flight)
{
    ck_assert_msg (!*flight->failure, "%s", flight->failure);
    ck_assert_int_eq (flight->done, REQUESTS);
    for (int n = 0; n < REQUESTS; n++) {
        ck_assert_int_eq (flight->finals[n], 1);
        ck_assert_int_eq (flight->got[n], flight->partials[n]);
        zmsg_destroy (&flight->requests[n]);
    }
}

START_TEST (test_many_in_flight_with_recv)
{
    char *endpoint;
    flight_t *flight = calloc (1, sizeof (flight_t));
    flight->broker = tu_router_bound (&endpoint);
    mdp_async_t *client = s_client (endpoint);
    mdp_async_set_timeout (client, tu_scale (10000));
    s_send_all (flight, client);
    for (int n = 0; n < REQUESTS; n++) {
        flight->requests[n] = tu_recv (flight->broker, 2000);
        ck_assert_ptr_nonnull (flight->requests[n]);
    }
    s_answer_all (flight);
    while (flight->done < REQUESTS && !*flight->failure) {
        uint64_t id;
        bool final;
        mdp_msg_t *reply = mdp_async_recv (client, &id, &final, tu_scale (2000));
        ck_assert_msg (reply, "no event after %d finals: errno %d", flight->done, errno);
        s_check_event (flight, id, reply, final, 0);
        mdp_msg_destroy (&reply);
    }
    s_flight_end (flight);
    ck_assert_int_eq (mdp_async_pending (client), 0);
    mdp_async_destroy (&client);
    zsock_destroy (&flight->broker);
    free (flight);
    free (endpoint);
}
END_TEST

//  zloop reader of the fake broker: collect requests; answer once all came.
static int s_broker_reader (zloop_t *loop, zsock_t *sock, void *arg)
{
    flight_t *flight = arg;
    zmsg_t *msg = zmsg_recv (sock);
    if (msg && flight->received < REQUESTS)
        flight->requests[flight->received++] = msg;
    else
        zmsg_destroy (&msg);
    if (flight->received == REQUESTS && msg)
        s_answer_all (flight);
    return 0;
}

static void s_flight_handler (mdp_async_t *client, uint64_t id, mdp_msg_t *reply, bool final,
                              int status, void *arg)
{
    flight_t *flight = arg;
    s_check_event (flight, id, reply, final, status);
    if (flight->done == REQUESTS || *flight->failure)
        zloop_timer (flight->loop, 0, 1, s_end_loop, NULL);
}

START_TEST (test_many_in_flight_with_zloop)
{
    char *endpoint;
    flight_t *flight = calloc (1, sizeof (flight_t));
    flight->broker = tu_router_bound (&endpoint);
    mdp_async_t *client = s_client (endpoint);
    mdp_async_set_timeout (client, tu_scale (10000));
    zloop_t *loop = zloop_new ();
    flight->loop = loop;
    mdp_async_set_handler (client, s_flight_handler, flight);
    ck_assert_int_eq (mdp_async_attach (client, loop), 0);
    ck_assert_int_eq (mdp_async_attach (client, loop), -1); //  once only
    ck_assert_int_eq (errno, EINVAL);
    ck_assert_int_eq (zloop_reader (loop, flight->broker, s_broker_reader, flight), 0);
    zloop_timer (loop, tu_scale (20000), 1, s_end_loop, NULL); //  the bound
    s_send_all (flight, client);
    zloop_start (loop);
    s_flight_end (flight);
    ck_assert_int_eq (mdp_async_pending (client), 0);
    mdp_async_destroy (&client);
    zloop_destroy (&loop);
    zsock_destroy (&flight->broker);
    free (flight);
    free (endpoint);
}
END_TEST

//  The zloop timeout test: the broker never answers until the client has
//  given up, then answers late; the loop runs on a while to see nothing more.
typedef struct {
    seen_t seen;       //  what the handler saw
    zsock_t *broker;   //  the fake broker
    zmsg_t *request;   //  the one request it got
    int64_t sent_at;   //  when the request went out
    int64_t timed_out; //  msecs from send to the ETIMEDOUT call
} late_t;

static int s_late_reader (zloop_t *loop, zsock_t *sock, void *arg)
{
    late_t *late = arg;
    zmsg_t *msg = zmsg_recv (sock); //  [rid][id][""]["MDPC02"][0x01][service]...
    zframe_t *service = msg && zmsg_size (msg) > 5 ? zmsg_first (msg) : NULL;
    for (int index = 0; service && index < 5; index++)
        service = zmsg_next (msg);
    if (!late->request && service && zframe_streq (service, "slow"))
        late->request = msg;
    else
        zmsg_destroy (&msg);
    return 0;
}

static void s_late_handler (mdp_async_t *client, uint64_t id, mdp_msg_t *reply, bool final,
                            int status, void *arg)
{
    late_t *late = arg;
    s_record (client, id, reply, final, status, &late->seen);
    if (status == ETIMEDOUT && late->request) {
        late->timed_out = zclock_mono () - late->sent_at;
        tu_answer (late->broker, late->request, 5, "MDPC02", "\x02", "slow", "a.part", "{}");
        tu_answer (late->broker, late->request, 5, "MDPC02", "\x03", "slow", "a.result", "{}");
        zloop_timer (late->seen.loop, tu_scale (300), 1, s_end_loop, NULL);
    }
}

START_TEST (test_timeout_with_zloop)
{
    char *endpoint;
    late_t late;
    memset (&late, 0, sizeof late);
    late.broker = tu_router_bound (&endpoint);
    mdp_async_t *client = s_client (endpoint);
    mdp_async_set_timeout (client, tu_scale (150));
    zloop_t *loop = zloop_new ();
    late.seen.loop = loop;
    mdp_async_set_handler (client, s_late_handler, &late);
    ck_assert_int_eq (mdp_async_attach (client, loop), 0);
    ck_assert_int_eq (zloop_reader (loop, late.broker, s_late_reader, &late), 0);
    zloop_timer (loop, tu_scale (20000), 1, s_end_loop, NULL); //  the bound
    //  A long timeout first, then a short one: the timer must be moved up, or
    //  the bound ends the loop first
    mdp_async_set_timeout (client, tu_scale (60000));
    mdp_msg_t *request = mdp_msg_new ("b.get", NULL);
    uint64_t answered = mdp_async_send (client, "other", &request);
    mdp_async_set_timeout (client, tu_scale (150));
    late.sent_at = zclock_mono ();
    ck_assert_int_eq (s_send (client, "slow", "a.get", "{}"), answered + 1);
    zloop_start (loop);
    ck_assert_int_eq (late.seen.timeouts, 1);
    ck_assert_int_eq (late.seen.calls, 1); //  nothing after the timeout
    ck_assert_int_eq (late.seen.last_id, answered + 1);
    ck_assert_int_ge (late.timed_out, tu_scale (150)); //  never early
    ck_assert_int_eq (mdp_async_pending (client), 1);  //  "b.get", still waiting
    zmsg_destroy (&late.request);
    mdp_async_destroy (&client);
    zloop_destroy (&loop);
    zsock_destroy (&late.broker);
    free (endpoint);
}
END_TEST

int main (void)
{
    Suite *suite = suite_create ("mdp_async_loop");
    TCase *tc = tcase_create ("loop");
    tcase_set_timeout (tc, tu_scale (20));
    tcase_add_test (tc, test_process_calls_the_handler);
    tcase_add_test (tc, test_many_in_flight_with_recv);
    tcase_add_test (tc, test_many_in_flight_with_zloop);
    tcase_add_test (tc, test_timeout_with_zloop);
    suite_add_tcase (suite, tc);
    return tu_run_suite (suite);
}
