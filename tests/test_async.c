/*  test_async.c - Check suite for mdp_async_t against a fake broker: a bare
    ROUTER in the test's own thread that checks the correlation frame and the
    MDPC02 request byte for byte, then answers in whatever order, with whatever
    partials (or garbage, or nothing) each test needs. Both ways of driving
    the client are used: mdp_async_recv, and a zloop through mdp_async_attach.
*/
#include "mdp.h"
#include "testutil.h"
#include <check.h>
#include <errno.h>
#include <inttypes.h>

#define SEED 20240917u //  the fake broker's shuffles are repeatable

//  The 8-byte big-endian correlation frame of request id.
static zframe_t *s_id_frame (uint64_t id)
{
    byte data[8];
    for (int index = 0; index < 8; index++)
        data[index] = (byte)(id >> (56 - 8 * index));
    return zframe_new (data, 8);
}

//  Send [routing id][frames of request up to and with the delimiter] and then
//  count more string frames: an answer to request, on its envelope.
static void s_answer (zsock_t *router, zmsg_t *request, int count, ...)
{
    zmsg_t *msg = zmsg_new ();
    for (zframe_t *frame = zmsg_first (request); frame; frame = zmsg_next (request)) {
        zframe_t *copy = zframe_dup (frame);
        zmsg_append (msg, &copy);
        if (zframe_size (frame) == 0)
            break;
    }
    va_list args;
    va_start (args, count);
    for (int index = 0; index < count; index++)
        zmsg_addstr (msg, va_arg (args, const char *));
    va_end (args);
    ck_assert_int_eq (zmsg_send (&msg, router), 0);
}

//  Send raw frames to the peer of request: its routing id, then the frame
//  first (taken; may be NULL), then count strings.
static void s_send_raw (zsock_t *router, zmsg_t *request, zframe_t *first, int count, ...)
{
    zmsg_t *msg = zmsg_new ();
    zframe_t *id = zframe_dup (zmsg_first (request));
    zmsg_append (msg, &id);
    if (first)
        zmsg_append (msg, &first);
    va_list args;
    va_start (args, count);
    for (int index = 0; index < count; index++)
        zmsg_addstr (msg, va_arg (args, const char *));
    va_end (args);
    ck_assert_int_eq (zmsg_send (&msg, router), 0);
}

//  An async client for the fake broker, and a request for it.
static mdp_async_t *s_client (const char *endpoint)
{
    mdp_async_t *client = mdp_async_new (endpoint);
    ck_assert_ptr_nonnull (client);
    mdp_async_set_timeout (client, tu_scale (10000)); //  tests that want less say so
    return client;
}

static uint64_t s_send (mdp_async_t *client, const char *service, const char *action,
                        const char *json)
{
    mdp_msg_t *request = mdp_msg_new (action, cJSON_Parse (json));
    uint64_t id = mdp_async_send (client, service, &request);
    ck_assert_ptr_null (request);
    ck_assert_msg (id != 0, "send failed: %s", strerror (errno));
    return id;
}

//  mdp_async_recv within msecs, as one JSON text: "<id> <final> <json>" or
//  "<id> <final> errno=<n>"; "none" when nothing happened. Caller frees.
static char *s_event (mdp_async_t *client, int msecs)
{
    uint64_t id = 0;
    bool final = false;
    errno = 0;
    mdp_msg_t *reply = mdp_async_recv (client, &id, &final, tu_scale (msecs));
    int error = errno;
    if (!reply && error == EAGAIN)
        return strdup ("none");
    char *json = reply ? mdp_msg_to_json (reply) : NULL;
    char *text =
        json ? zsys_sprintf ("%" PRIu64 " %s %s", id, final ? "final" : "partial", json)
             : zsys_sprintf ("%" PRIu64 " %s errno=%d", id, final ? "final" : "partial", error);
    free (json);
    mdp_msg_destroy (&reply);
    return text;
}

#define ck_assert_event(client, msecs, expected)                                                   \
    do {                                                                                           \
        char *event_ = s_event (client, msecs);                                                    \
        ck_assert_str_eq (event_, expected);                                                       \
        free (event_);                                                                             \
    } while (0)

//  The correlation frame of msg: its second frame, after the routing id.
static zframe_t *s_correlation (zmsg_t *msg)
{
    zmsg_first (msg);
    return zmsg_next (msg);
}

START_TEST (test_request_frames)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    mdp_async_t *client = mdp_async_new (endpoint);         //  the default timeout, 2.5 s
    ck_assert_int_eq (mdp_async_next_timeout (client), -1); //  nothing in flight
    ck_assert_int_eq (s_send (client, "echo", "config.get", "{\"key\": 1}"), 1);
    mdp_async_set_timeout (client, 3000);
    ck_assert_int_eq (s_send (client, "echo", "x.do", "[1,2]"), 2);
    ck_assert_int_eq (mdp_async_pending (client), 2);
    int next = mdp_async_next_timeout (client);
    ck_assert (next >= 0 && next <= 2500);

    //  The id: 8 bytes, big-endian
    zmsg_t *first = tu_recv (broker, 2000);
    tu_assert_frames (first, 9, NULL, NULL, "", "MDPC02", "\x01", "echo", "2.5", "config.get",
                     "{\"key\":1}");
    ck_assert_int_eq (zframe_size (s_correlation (first)), 8);
    ck_assert (memcmp (zframe_data (s_correlation (first)), "\0\0\0\0\0\0\0\x01", 8) == 0);
    zmsg_t *second = tu_recv (broker, 2000);
    tu_assert_frames (second, 9, NULL, NULL, "", "MDPC02", "\x01", "echo", "3", "x.do", "[1,2]");
    ck_assert (memcmp (zframe_data (s_correlation (second)), "\0\0\0\0\0\0\0\x02", 8) == 0);
    ck_assert (zframe_eq (zmsg_first (first), zmsg_first (second))); //  one socket
    zmsg_destroy (&first);
    zmsg_destroy (&second);
    mdp_async_destroy (&client); //  two still in flight: forgotten, no calls
    mdp_async_destroy (&client);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_partials_then_final)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    mdp_async_t *client = s_client (endpoint);
    uint64_t id = s_send (client, "llm", "ask", "{\"q\":\"hi\"}");
    zmsg_t *request = tu_recv (broker, 2000);
    ck_assert_ptr_nonnull (request);
    s_answer (broker, request, 5, "MDPC02", "\x02", "llm", "ask.partial", "{\"text\":\"He\"}");
    s_answer (broker, request, 5, "MDPC02", "\x02", "llm", "ask.partial", "{\"text\":\"ll\"}");
    s_answer (broker, request, 5, "MDPC02", "\x03", "llm", "ask.result", "{\"text\":\"Hello\"}");
    ck_assert_int_eq (id, 1);
    ck_assert_event (client, 2000,
                     "1 partial {\"action\":\"ask.partial\",\"data\":{\"text\":\"He\"}}");
    ck_assert_event (client, 2000,
                     "1 partial {\"action\":\"ask.partial\",\"data\":{\"text\":\"ll\"}}");
    ck_assert_event (client, 2000,
                     "1 final {\"action\":\"ask.result\",\"data\":{\"text\":\"Hello\"}}");
    ck_assert_int_eq (mdp_async_pending (client), 0);
    //  After the FINAL, anything more about that request is discarded
    s_answer (broker, request, 5, "MDPC02", "\x02", "llm", "ask.partial", "{}");
    ck_assert_event (client, 100, "none");
    zmsg_destroy (&request);

    //  An MDPC01 reply (an old broker) is taken as the final one
    s_send (client, "llm", "ask", "{}");
    request = tu_recv (broker, 2000);
    ck_assert_ptr_nonnull (request);
    s_answer (broker, request, 4, "MDPC01", "llm", "ask.result", "{\"v\":1}");
    ck_assert_event (client, 2000, "2 final {\"action\":\"ask.result\",\"data\":{\"v\":1}}");
    ck_assert_int_eq (mdp_async_pending (client), 0);
    ck_assert_int_eq (mdp_async_next_timeout (client), -1);
    zmsg_destroy (&request);
    mdp_async_destroy (&client);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_garbage_is_discarded)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    mdp_async_t *client = s_client (endpoint);
    s_send (client, "echo", "a.get", "{}");
    zmsg_t *request = tu_recv (broker, 2000);
    ck_assert_ptr_nonnull (request);
    s_send_raw (broker, request, NULL, 1, "junk");
    s_send_raw (broker, request, NULL, 5, "", "MDPC02", "\x03", "echo", "a.bad"); //  no id
    s_send_raw (broker, request, NULL, 6, "1234567", "", "MDPC02", "\x03", "echo", "a.bad");
    s_send_raw (broker, request, s_id_frame (99), 5, "", "MDPC02", "\x03", "echo", "a.bad");
    s_send_raw (broker, request, s_id_frame (1ull << 56), 5, "", "MDPC02", "\x03", "echo",
                "a.bad"); //  all 8 bytes count
    s_send_raw (broker, request, s_id_frame (1), 5, "x", "MDPC02", "\x03", "echo", "a.bad");
    s_answer (broker, request, 5, "MDPC03", "\x03", "echo", "a.bad", "{}");     //  protocol
    s_answer (broker, request, 5, "MDPC02", "\x01", "echo", "a.bad", "{}");     //  a REQUEST
    s_answer (broker, request, 5, "MDPC02", "\x03\x03", "echo", "a.bad", "{}"); //  2-byte command
    s_answer (broker, request, 5, "MDPC02", "\x03", "other", "a.bad", "{}");    //  service
    s_answer (broker, request, 3, "MDPC02", "\x03", "echo");                    //  no body
    s_answer (broker, request, 1, "MDPC02");                                    //  short
    ck_assert_event (client, 200, "none");
    ck_assert_int_eq (mdp_async_pending (client), 1);
    s_answer (broker, request, 5, "MDPC02", "\x03", "echo", "a.result", "{\"ok\":true}");
    ck_assert_event (client, 2000, "1 final {\"action\":\"a.result\",\"data\":{\"ok\":true}}");
    zmsg_destroy (&request);
    mdp_async_destroy (&client);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_malformed_final_is_eproto)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    mdp_async_t *client = s_client (endpoint);
    s_send (client, "echo", "a.get", "{}");
    zmsg_t *request = tu_recv (broker, 2000);
    ck_assert_ptr_nonnull (request);
    //  A partial with a broken body is skipped; a final one still ends the request
    s_answer (broker, request, 5, "MDPC02", "\x02", "echo", "a.part", "{broken");
    s_answer (broker, request, 5, "MDPC02", "\x03", "echo", "a.result", "{broken");
    char *expected = zsys_sprintf ("1 final errno=%d", EPROTO);
    ck_assert_event (client, 2000, expected);
    zstr_free (&expected);
    ck_assert_int_eq (mdp_async_pending (client), 0);
    zmsg_destroy (&request);
    mdp_async_destroy (&client);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_timeout_once_then_late_reply_discarded)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    mdp_async_t *client = s_client (endpoint);
    mdp_async_set_timeout (client, tu_scale (100));
    int64_t since = zclock_mono ();
    s_send (client, "slow", "a.get", "{}");
    zmsg_t *request = tu_recv (broker, 2000);
    ck_assert_ptr_nonnull (request);
    char *expected = zsys_sprintf ("1 final errno=%d", ETIMEDOUT);
    ck_assert_event (client, 2000, expected);
    zstr_free (&expected);
    ck_assert_int_ge (zclock_mono () - since, tu_scale (100)); //  never early
    ck_assert_int_eq (mdp_async_pending (client), 0);
    //  Its replies come late: discarded, no second event
    s_answer (broker, request, 5, "MDPC02", "\x02", "slow", "a.part", "{}");
    s_answer (broker, request, 5, "MDPC02", "\x03", "slow", "a.result", "{}");
    ck_assert_event (client, 200, "none");
    //  The client goes on working
    mdp_async_set_timeout (client, tu_scale (10000));
    s_send (client, "slow", "b.get", "{}");
    zmsg_t *next = tu_recv (broker, 2000);
    ck_assert_ptr_nonnull (next);
    s_answer (broker, next, 5, "MDPC02", "\x03", "slow", "b.result", "{}");
    ck_assert_event (client, 2000, "2 final {\"action\":\"b.result\",\"data\":{}}");
    zmsg_destroy (&request);
    zmsg_destroy (&next);
    mdp_async_destroy (&client);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_partials_restart_the_timeout)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    mdp_async_t *client = s_client (endpoint);
    mdp_async_set_timeout (client, tu_scale (500));
    s_send (client, "slow", "a.get", "{}");
    zmsg_t *request = tu_recv (broker, 2000);
    ck_assert_ptr_nonnull (request);
    //  Eight partials 100 msecs apart: more than the timeout in all, never 500 silent
    for (int part = 0; part < 8; part++) {
        zclock_sleep (tu_scale (100));
        s_answer (broker, request, 5, "MDPC02", "\x02", "slow", "a.part", "{}");
        ck_assert_event (client, 2000, "1 partial {\"action\":\"a.part\",\"data\":{}}");
    }
    s_answer (broker, request, 5, "MDPC02", "\x03", "slow", "a.result", "{}");
    ck_assert_event (client, 2000, "1 final {\"action\":\"a.result\",\"data\":{}}");
    zmsg_destroy (&request);
    mdp_async_destroy (&client);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_timeouts_come_in_deadline_order)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    mdp_async_t *client = s_client (endpoint);
    //  Twenty requests, timeouts 50..240 msecs sent in a shuffled order, two of
    //  each. A deadline is known to lie in [earliest, latest]: the clock
    //  before and after the send, plus the timeout.
    unsigned int seed = SEED;
    int order[20];
    int64_t earliest[21], latest[21];
    for (int index = 0; index < 20; index++)
        order[index] = index;
    for (int index = 19; index > 0; index--) {
        int other = rand_r (&seed) % (index + 1), tmp = order[index];
        order[index] = order[other];
        order[other] = tmp;
    }
    for (int index = 0; index < 20; index++) {
        int timeout = tu_scale (50 + 20 * (order[index] / 2));
        mdp_async_set_timeout (client, timeout);
        earliest[index + 1] = zclock_mono () + timeout;
        ck_assert_int_eq (s_send (client, "void", "a.get", "{}"), index + 1);
        latest[index + 1] = zclock_mono () + timeout;
    }
    //  Each comes no earlier than the one before it; equal deadlines by id
    uint64_t last = 0;
    for (int index = 0; index < 20; index++) {
        uint64_t id = 0;
        bool final = false;
        ck_assert_ptr_null (mdp_async_recv (client, &id, &final, tu_scale (2000)));
        ck_assert_int_eq (errno, ETIMEDOUT);
        ck_assert (final && id >= 1 && id <= 20);
        bool tie = last && earliest[id] == latest[id] && earliest[last] == latest[last] &&
                   earliest[id] == earliest[last];
        ck_assert_msg (!last || (latest[id] >= earliest[last] && (!tie || id > last)),
                       "request %d timed out after %d", (int)id, (int)last);
        last = id;
    }
    ck_assert_int_eq (mdp_async_pending (client), 0);
    mdp_async_destroy (&client);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

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
    s_answer (broker, request, 5, "MDPC02", "\x02", "echo", "a.part", "{}");
    s_answer (broker, request, 5, "MDPC02", "\x03", "echo", "a.result", "{}");
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
        s_answer (flight->broker, by_n[n], 5, "MDPC02", final ? "\x03" : "\x02", "echo",
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
        s_answer (late->broker, late->request, 5, "MDPC02", "\x02", "slow", "a.part", "{}");
        s_answer (late->broker, late->request, 5, "MDPC02", "\x03", "slow", "a.result", "{}");
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

START_TEST (test_bad_arguments)
{
    errno = 0;
    ck_assert_ptr_null (mdp_async_new (NULL));
    ck_assert_int_eq (errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null (mdp_async_new (""));
    ck_assert_int_eq (errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null (mdp_async_new ("nonsense://here"));
    ck_assert_int_eq (errno, EINVAL);

    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    mdp_async_t *client = s_client (endpoint);
    char name[300];
    memset (name, 'x', sizeof name);
    name[256] = 0;
    const char *services[] = {NULL, "", name};
    for (size_t index = 0; index < 3; index++) {
        mdp_msg_t *request = mdp_msg_new ("a.get", NULL);
        errno = 0;
        ck_assert_int_eq (mdp_async_send (client, services[index], &request), 0);
        ck_assert_int_eq (errno, EINVAL);
        ck_assert_ptr_null (request); //  taken and freed even so
    }
    errno = 0;
    ck_assert_int_eq (mdp_async_send (client, "echo", NULL), 0);
    ck_assert_int_eq (errno, EINVAL);
    ck_assert_int_eq (mdp_async_pending (client), 0);
    ck_assert_int_eq (mdp_async_attach (client, NULL), -1);
    //  Nothing reached the broker
    zmsg_t *msg = tu_recv (broker, 100);
    ck_assert_ptr_null (msg);
    //  recv with nothing in flight and nothing coming: EAGAIN after msecs
    ck_assert_event (client, 50, "none");
    mdp_async_destroy (&client);
    mdp_async_destroy (NULL);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

//  --- several brokers (spec/ha.md) ----------------------------------------

//  Two fake brokers and the endpoint list "A,B" a client is given.
typedef struct {
    zsock_t *a, *b; //  the fake brokers
    char *list;     //  "endpointA,endpointB"
} pair_t;

static pair_t s_pair (void)
{
    pair_t pair;
    char *a, *b;
    pair.a = tu_router_bound (&a);
    pair.b = tu_router_bound (&b);
    ck_assert_ptr_nonnull (pair.a);
    ck_assert_ptr_nonnull (pair.b);
    pair.list = zsys_sprintf ("%s,%s", a, b);
    free (a);
    free (b);
    return pair;
}

static void s_pair_destroy (pair_t *pair)
{
    zsock_destroy (&pair->a);
    zsock_destroy (&pair->b);
    zstr_free (&pair->list);
}

//  Drive the client (mdp_async_process, no handler: events stay queued) until
//  the fake broker sock has a message, at most msecs; return that message.
static zmsg_t *s_pump_until (mdp_async_t *client, zsock_t *sock, int msecs)
{
    int64_t deadline = zclock_mono () + tu_scale (msecs);
    while (zclock_mono () < deadline && !(zsock_events (sock) & ZMQ_POLLIN)) {
        mdp_async_process (client);
        zmq_pollitem_t items[] = {{zsock_resolve (sock), 0, ZMQ_POLLIN, 0},
                                  {zsock_resolve (mdp_async_socket (client)), 0, ZMQ_POLLIN, 0}};
        zmq_poll (items, 2, 5);
    }
    return (zsock_events (sock) & ZMQ_POLLIN) ? zmsg_recv (sock) : NULL;
}

START_TEST (test_failover_on_silence)
{
    pair_t pair = s_pair ();
    mdp_async_t *client = s_client (pair.list);
    mdp_async_set_timeout (client, tu_scale (200));
    s_send (client, "echo", "a.get", "{}");
    zmsg_t *first = tu_recv (pair.a, 2000);
    ck_assert_ptr_nonnull (first);
    zmsg_t *second = s_pump_until (client, pair.b, 2000); //  A silent: sent to B
    ck_assert_ptr_nonnull (second);
    //  The same request, correlation id and all, on the same wire frames
    zmsg_t *expect = zmsg_dup (first);
    zframe_t *rid = zmsg_pop (expect);
    zframe_destroy (&rid);
    zmsg_t *got = zmsg_dup (second);
    rid = zmsg_pop (got);
    zframe_destroy (&rid);
    ck_assert_int_eq (zmsg_size (got), zmsg_size (expect));
    for (zframe_t *x = zmsg_first (got), *y = zmsg_first (expect); x;
         x = zmsg_next (got), y = zmsg_next (expect))
        ck_assert (zframe_eq (x, y));
    zmsg_destroy (&got);
    zmsg_destroy (&expect);
    //  A answers late, then B: one final event, B's
    s_answer (pair.a, first, 5, "MDPC02", "\x03", "echo", "a.late", "{}");
    s_answer (pair.b, second, 5, "MDPC02", "\x03", "echo", "a.result", "{}");
    ck_assert_event (client, 2000, "1 final {\"action\":\"a.result\",\"data\":{}}");
    ck_assert_event (client, 200, "none");
    ck_assert_int_eq (mdp_async_pending (client), 0);
    zmsg_destroy (&first);
    zmsg_destroy (&second);
    mdp_async_destroy (&client);
    s_pair_destroy (&pair);
}
END_TEST

START_TEST (test_failover_on_503)
{
    pair_t pair = s_pair ();
    mdp_async_t *client = s_client (pair.list);
    s_send (client, "echo", "a.get", "{}");
    zmsg_t *first = tu_recv (pair.a, 2000);
    ck_assert_ptr_nonnull (first);
    s_answer (pair.a, first, 5, "MDPC02", "\x03", "echo", "mdp.error",
              "{\"code\":503,\"reason\":\"broker shutting down\"}");
    zmsg_t *second = s_pump_until (client, pair.b, 2000); //  at once, not after the timeout
    ck_assert_ptr_nonnull (second);
    s_answer (pair.b, second, 5, "MDPC02", "\x03", "echo", "a.result", "{}");
    ck_assert_event (client, 2000, "1 final {\"action\":\"a.result\",\"data\":{}}");
    zmsg_destroy (&first);
    zmsg_destroy (&second);
    mdp_async_destroy (&client);
    s_pair_destroy (&pair);
}
END_TEST

START_TEST (test_stream_no_failover_after_a_partial)
{
    pair_t pair = s_pair ();
    mdp_async_t *client = s_client (pair.list);
    mdp_async_set_timeout (client, tu_scale (200));
    s_send (client, "slow", "a.get", "{}");
    zmsg_t *request = tu_recv (pair.a, 2000);
    ck_assert_ptr_nonnull (request);
    s_answer (pair.a, request, 5, "MDPC02", "\x02", "slow", "a.part", "{}");
    ck_assert_event (client, 2000, "1 partial {\"action\":\"a.part\",\"data\":{}}");
    //  ...then A dies: the caller gets a timeout, B never restarts the stream
    char *expected = zsys_sprintf ("1 final errno=%d", ETIMEDOUT);
    ck_assert_event (client, 2000, expected);
    zstr_free (&expected);
    zmsg_t *restarted = tu_recv (pair.b, 100);
    ck_assert_ptr_null (restarted);
    zmsg_destroy (&request);
    mdp_async_destroy (&client);
    s_pair_destroy (&pair);
}
END_TEST

//  After a failover new requests go straight to the broker that answered;
//  the silent one gets probes only: mmi.service on correlation id 0.
START_TEST (test_dead_broker_is_probed_not_asked)
{
    pair_t pair = s_pair ();
    mdp_async_t *client = s_client (pair.list);
    mdp_async_set_timeout (client, tu_scale (200));
    s_send (client, "echo", "a.get", "{}");
    zmsg_t *lost = tu_recv (pair.a, 2000);
    ck_assert_ptr_nonnull (lost);
    zmsg_t *second = s_pump_until (client, pair.b, 2000);
    ck_assert_ptr_nonnull (second);
    s_answer (pair.b, second, 5, "MDPC02", "\x03", "echo", "a.result", "{}");
    ck_assert_event (client, 2000, "1 final {\"action\":\"a.result\",\"data\":{}}");
    mdp_async_set_timeout (client, tu_scale (10000));
    s_send (client, "echo", "b.get", "{}");
    zmsg_t *third = tu_recv (pair.b, 2000);
    ck_assert_ptr_nonnull (third);
    zmsg_t *probe = s_pump_until (client, pair.a, 1000); //  after the back-off
    ck_assert_ptr_nonnull (probe);
    zframe_t *zero = s_id_frame (0);
    ck_assert (zframe_eq (s_correlation (probe), zero));
    zframe_destroy (&zero);
    tu_assert_frames (probe, 9, NULL, NULL, "", "MDPC02", "\x01", "mmi.service", NULL,
                      "mmi.ping", "{}");
    s_answer (pair.b, third, 5, "MDPC02", "\x03", "echo", "b.result", "{}");
    ck_assert_event (client, 2000, "2 final {\"action\":\"b.result\",\"data\":{}}");
    zmsg_destroy (&probe);
    zmsg_destroy (&third);
    zmsg_destroy (&second);
    zmsg_destroy (&lost);
    mdp_async_destroy (&client);
    s_pair_destroy (&pair);
}
END_TEST

START_TEST (test_endpoint_lists)
{
    const char *bad[] = {"tcp://127.0.0.1:1,", ",tcp://127.0.0.1:1",
                         "tcp://127.0.0.1:1,,tcp://127.0.0.1:2", "tcp://127.0.0.1:1,nonsense"};
    for (size_t index = 0; index < sizeof bad / sizeof bad[0]; index++) {
        errno = 0;
        ck_assert_msg (mdp_async_new (bad[index]) == NULL, "'%s' was taken", bad[index]);
        ck_assert_int_eq (errno, EINVAL);
    }
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    mdp_async_t *client = s_client ("tcp://127.0.0.1:1");
    ck_assert_int_eq (mdp_async_add_endpoint (client, "nonsense"), -1);
    ck_assert_int_eq (mdp_async_add_endpoint (client, endpoint), 0);
    s_send (client, "echo", "a.get", "{}");
    ck_assert_int_eq (mdp_async_add_endpoint (client, "tcp://127.0.0.1:2"), -1); //  in flight
    ck_assert_int_eq (errno, EINVAL);
    mdp_async_destroy (&client);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

int main (void)
{
    Suite *suite = suite_create ("mdp_async");
    TCase *tc = tcase_create ("async");
    tcase_set_timeout (tc, tu_scale (20));
    tcase_add_test (tc, test_request_frames);
    tcase_add_test (tc, test_partials_then_final);
    tcase_add_test (tc, test_garbage_is_discarded);
    tcase_add_test (tc, test_malformed_final_is_eproto);
    tcase_add_test (tc, test_timeout_once_then_late_reply_discarded);
    tcase_add_test (tc, test_partials_restart_the_timeout);
    tcase_add_test (tc, test_timeouts_come_in_deadline_order);
    tcase_add_test (tc, test_process_calls_the_handler);
    tcase_add_test (tc, test_many_in_flight_with_recv);
    tcase_add_test (tc, test_many_in_flight_with_zloop);
    tcase_add_test (tc, test_timeout_with_zloop);
    tcase_add_test (tc, test_bad_arguments);
    suite_add_tcase (suite, tc);
    tc = tcase_create ("failover");
    tcase_set_timeout (tc, tu_scale (20));
    tcase_add_test (tc, test_failover_on_silence);
    tcase_add_test (tc, test_failover_on_503);
    tcase_add_test (tc, test_stream_no_failover_after_a_partial);
    tcase_add_test (tc, test_dead_broker_is_probed_not_asked);
    tcase_add_test (tc, test_endpoint_lists);
    suite_add_tcase (suite, tc);
    SRunner *runner = srunner_create (suite);
    srunner_run_all (runner, CK_NORMAL);
    int failed = srunner_ntests_failed (runner);
    srunner_free (runner);
    return failed == 0 ? 0 : 1;
}
