/*  test_client.c - Check suite for mdp_client_t against a fake broker: a bare
    ROUTER in the test's own thread that checks the request frames byte for
    byte and answers (or not) as each test needs. The blocking client runs in
    a helper actor and reports its result over the actor pipe. The stream
    tests do the same for mdp_client_request_stream (MDPC02, partials).
*/
#include "mdp.h"
#include "mdp_client_private.h"
#include "testutil.h"
#include <check.h>
#include <errno.h>

//  One client call, as the helper actor makes it.
typedef struct {
    const char *endpoint; //  the fake broker
    int timeout;          //  msecs per attempt
    int retries;          //  attempts in all
    const char *service;  //  service to ask
    const char *action;   //  request action, or the name for has_service
    const char *json;     //  request data; NULL means mdp_client_has_service
    bool stream;          //  use mdp_client_request_stream
    int calls;            //  requests made in turn (0 means 1); the last one reports
} call_t;

//  What the call gave back.
typedef struct {
    int error;      //  errno, or 0 when it succeeded
    int found;      //  mdp_client_has_service's answer
    char *reply;    //  mdp_msg_to_json of the reply, or ""
    char *partials; //  mdp_msg_to_json of each partial, one per line, or ""
} result_t;

//  The stream callback: append the partial as one line to the zchunk.
static void s_collect_partial (mdp_msg_t *partial, void *arg)
{
    char *json = mdp_msg_to_json (partial);
    zchunk_extend ((zchunk_t *)arg, json, strlen (json));
    zchunk_extend ((zchunk_t *)arg, "\n", 1);
    free (json);
}

static void s_client_actor (zsock_t *pipe, void *args)
{
    call_t call = *(call_t *)args;
    zsock_signal (pipe, 0);
    mdp_client_t *client = mdp_client_new (call.endpoint);
    mdp_client_set_timeout (client, call.timeout);
    mdp_client_set_retries (client, call.retries);
    int error = 0, found = 0;
    char *text = NULL;
    zchunk_t *partials = zchunk_new (NULL, 0);
    for (int index = 1; call.json && index < call.calls; index++) {
        mdp_msg_t *request = mdp_msg_new (call.action, cJSON_Parse (call.json));
        mdp_msg_t *reply = mdp_client_request (client, call.service, &request);
        mdp_msg_destroy (&reply);
    }
    if (call.json) {
        mdp_msg_t *request = mdp_msg_new (call.action, cJSON_Parse (call.json));
        mdp_msg_t *reply = call.stream ? mdp_client_request_stream (client, call.service, &request,
                                                                    s_collect_partial, partials)
                                       : mdp_client_request (client, call.service, &request);
        error = reply ? 0 : errno;
        text = reply ? mdp_msg_to_json (reply) : NULL;
        mdp_msg_destroy (&reply);
    } else {
        found = mdp_client_has_service (client, call.action);
        error = found < 0 ? errno : 0;
    }
    mdp_client_destroy (&client);
    zchunk_extend (partials, "", 1);
    zsock_send (pipe, "iiss", error, found, text ? text : "", (char *)zchunk_data (partials));
    zchunk_destroy (&partials);
    free (text);
    char *term = zstr_recv (pipe); //  wait for zactor_destroy
    zstr_free (&term);
}

//  Start a call in the background.
static zactor_t *s_call (call_t call)
{
    zactor_t *actor = zactor_new (s_client_actor, &call);
    ck_assert_ptr_nonnull (actor);
    return actor;
}

//  Wait (bounded) for the call to finish and collect its result.
static result_t s_result (zactor_t **actor_p)
{
    result_t result = {-1, -1, NULL, NULL};
    zpoller_t *poller = zpoller_new (*actor_p, NULL);
    bool done = zpoller_wait (poller, tu_scale (5000)) == *actor_p;
    zpoller_destroy (&poller);
    ck_assert_msg (done, "the client call did not finish");
    zsock_recv (*actor_p, "iiss", &result.error, &result.found, &result.reply, &result.partials);
    zactor_destroy (actor_p);
    return result;
}

static void s_result_free (result_t *result)
{
    zstr_free (&result->reply);
    zstr_free (&result->partials);
}

//  Send frames to the peer whose routing id is the first frame of request.
static void s_send_to (zsock_t *router, zmsg_t *request, int count, ...)
{
    zmsg_t *msg = zmsg_new ();
    zframe_t *id = zframe_dup (zmsg_first (request));
    zmsg_append (msg, &id);
    va_list args;
    va_start (args, count);
    for (int index = 0; index < count; index++)
        zmsg_addstr (msg, va_arg (args, const char *));
    va_end (args);
    ck_assert_int_eq (zmsg_send (&msg, router), 0);
}

START_TEST (test_request_frames_and_reply)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    zactor_t *call =
        s_call ((call_t){endpoint, 2500, 1, "echo", "config.get", "{\"key\": 1}", false, 1});

    zmsg_t *request = tu_recv (broker, 2000);
    tu_assert_frames (request, 7, NULL, "", "MDPC01", "echo", "2.5", "config.get", "{\"key\":1}");
    s_send_to (broker, request, 5, "", "MDPC01", "echo", "config.result", "{\"key\":1}");

    result_t result = s_result (&call);
    ck_assert_int_eq (result.error, 0);
    ck_assert_str_eq (result.reply, "{\"action\":\"config.result\",\"data\":{\"key\":1}}");
    s_result_free (&result);
    zmsg_destroy (&request);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_timeout_frame_whole_seconds)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    zactor_t *call = s_call ((call_t){endpoint, 3000, 1, "admin", "device.get", "{}", false, 1});

    zmsg_t *request = tu_recv (broker, 2000);
    tu_assert_frames (request, 7, NULL, "", "MDPC01", "admin", "3", "device.get", "{}");
    s_send_to (broker, request, 4, "", "MDPC01", "admin", "device.result");

    result_t result = s_result (&call);
    ck_assert_int_eq (result.error, 0);
    ck_assert_str_eq (result.reply, "{\"action\":\"device.result\",\"data\":{}}");
    s_result_free (&result);
    zmsg_destroy (&request);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_timeout_text)
{
    struct {
        int msecs;
        const char *text;
    } cases[] = {{3000, "3"},   {2500, "2.5"},  {250, "0.25"},     {1, "0.001"},
                 {10000, "10"}, {1050, "1.05"}, {12345, "12.345"}, {100, "0.1"}};
    for (size_t index = 0; index < sizeof cases / sizeof cases[0]; index++) {
        char text[32];
        mdp_client_timeout_text (cases[index].msecs, text, sizeof text);
        ck_assert_str_eq (text, cases[index].text);
    }
}
END_TEST

START_TEST (test_error_reply_is_final)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    zactor_t *call = s_call ((call_t){endpoint, 2000, 3, "nosuch", "x.get", "{}", false, 1});

    zmsg_t *request = tu_recv (broker, 2000);
    ck_assert_ptr_nonnull (request);
    s_send_to (broker, request, 5, "", "MDPC01", "nosuch", "mdp.error",
               "{\"code\":404,\"reason\":\"unknown service\"}");

    result_t result = s_result (&call);
    ck_assert_int_eq (result.error, 0);
    ck_assert_str_eq (
        result.reply,
        "{\"action\":\"mdp.error\",\"data\":{\"code\":404,\"reason\":\"unknown service\"}}");
    //  It was the answer: no retry followed it
    zmsg_t *retry = tu_recv (broker, 100);
    ck_assert_ptr_null (retry);
    s_result_free (&result);
    zmsg_destroy (&request);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_timeout_retries_on_new_sockets)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    zactor_t *call = s_call ((call_t){endpoint, tu_scale (100), 3, "echo", "a.get", "{}", false, 1});

    //  Three attempts, each from a socket the broker has never seen
    zframe_t *ids[3];
    for (int attempt = 0; attempt < 3; attempt++) {
        zmsg_t *request = tu_recv (broker, 2000);
        ck_assert_msg (request != NULL, "attempt %d never came", attempt + 1);
        tu_assert_frames (request, 7, NULL, "", "MDPC01", "echo", NULL, "a.get", "{}");
        ids[attempt] = zframe_dup (zmsg_first (request));
        for (int before = 0; before < attempt; before++)
            ck_assert (!zframe_eq (ids[attempt], ids[before]));
        zmsg_destroy (&request);
    }
    result_t result = s_result (&call);
    ck_assert_int_eq (result.error, EAGAIN);
    ck_assert_str_eq (result.reply, "");
    zmsg_t *extra = tu_recv (broker, 100);
    ck_assert_ptr_null (extra);
    s_result_free (&result);
    for (int attempt = 0; attempt < 3; attempt++)
        zframe_destroy (&ids[attempt]);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_late_reply_is_not_the_answer)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    zactor_t *call = s_call ((call_t){endpoint, tu_scale (300), 2, "echo", "a.get", "{}", false, 1});

    zmsg_t *first = tu_recv (broker, 2000);
    zmsg_t *second = tu_recv (broker, 2000); //  after attempt 1 timed out
    ck_assert_ptr_nonnull (first);
    ck_assert_ptr_nonnull (second);
    ck_assert (!zframe_eq (zmsg_first (first), zmsg_first (second)));
    //  Attempt 1's answer arrives late, then attempt 2's
    s_send_to (broker, first, 5, "", "MDPC01", "echo", "a.late", "{}");
    s_send_to (broker, second, 5, "", "MDPC01", "echo", "a.result", "{}");

    result_t result = s_result (&call);
    ck_assert_int_eq (result.error, 0);
    ck_assert_str_eq (result.reply, "{\"action\":\"a.result\",\"data\":{}}");
    s_result_free (&result);
    zmsg_destroy (&first);
    zmsg_destroy (&second);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_garbage_is_ignored)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    zactor_t *call = s_call ((call_t){endpoint, tu_scale (2000), 1, "echo", "a.get", "{}", false, 1});

    zmsg_t *request = tu_recv (broker, 2000);
    ck_assert_ptr_nonnull (request);
    s_send_to (broker, request, 1, "junk");
    s_send_to (broker, request, 5, "x", "MDPC01", "echo", "a.bad", "{}"); //  not empty
    s_send_to (broker, request, 5, "", "MDPC02", "echo", "a.bad", "{}");  //  other protocol
    s_send_to (broker, request, 5, "", "MDPC01", "other", "a.bad", "{}"); //  other service
    s_send_to (broker, request, 2, "", "MDPC01");                         //  short
    s_send_to (broker, request, 5, "", "MDPC01", "echo", "a.result", "{\"ok\":true}");

    result_t result = s_result (&call);
    ck_assert_int_eq (result.error, 0);
    ck_assert_str_eq (result.reply, "{\"action\":\"a.result\",\"data\":{\"ok\":true}}");
    s_result_free (&result);
    zmsg_destroy (&request);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_undecodable_body_is_eproto)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    zactor_t *call = s_call ((call_t){endpoint, tu_scale (2000), 1, "echo", "a.get", "{}", false, 1});

    zmsg_t *request = tu_recv (broker, 2000);
    ck_assert_ptr_nonnull (request);
    s_send_to (broker, request, 5, "", "MDPC01", "echo", "a.result", "{not json");

    result_t result = s_result (&call);
    ck_assert_int_eq (result.error, EPROTO);
    s_result_free (&result);
    zmsg_destroy (&request);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

//  The broker's half of one mmi.service question: check it, answer status.
static result_t s_has_service (const char *status)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    zactor_t *call = s_call ((call_t){endpoint, 2500, 1, "mmi.service", "echo", NULL, false, 1});
    zmsg_t *request = tu_recv (broker, 2000);
    tu_assert_frames (request, 6, NULL, "", "MDPC01", "mmi.service", "2.5", "echo");
    s_send_to (broker, request, 4, "", "MDPC01", "mmi.service", status);
    result_t result = s_result (&call);
    zmsg_destroy (&request);
    zsock_destroy (&broker);
    free (endpoint);
    return result;
}

START_TEST (test_has_service)
{
    result_t result = s_has_service ("200");
    ck_assert_int_eq (result.error, 0);
    ck_assert_int_eq (result.found, 1);
    s_result_free (&result);

    result = s_has_service ("404");
    ck_assert_int_eq (result.error, 0);
    ck_assert_int_eq (result.found, 0);
    s_result_free (&result);

    result = s_has_service ("501");
    ck_assert_int_eq (result.found, 0);
    s_result_free (&result);
}
END_TEST

START_TEST (test_bad_arguments)
{
    errno = 0;
    ck_assert_ptr_null (mdp_client_new (NULL));
    ck_assert_int_eq (errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null (mdp_client_new ("nonsense://here"));
    ck_assert_int_eq (errno, EINVAL);

    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    mdp_client_t *client = mdp_client_new (endpoint);
    ck_assert_ptr_nonnull (client);
    mdp_msg_t *request = mdp_msg_new ("a.get", NULL);
    errno = 0;
    ck_assert_ptr_null (mdp_client_request (client, "", &request));
    ck_assert_int_eq (errno, EINVAL);
    ck_assert_ptr_null (request); //  taken and freed even so
    errno = 0;
    ck_assert_ptr_null (mdp_client_request (client, "echo", NULL));
    ck_assert_int_eq (errno, EINVAL);
    errno = 0;
    ck_assert_int_eq (mdp_client_has_service (client, NULL), -1);
    ck_assert_int_eq (errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null (mdp_client_mmi (client, "echo", "x"));   //  not an mmi.* name
    ck_assert_int_eq (errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null (mdp_client_mmi (client, "mmi.service", NULL));
    ck_assert_int_eq (errno, EINVAL);
    //  Nothing reached the broker
    zmsg_t *msg = tu_recv (broker, 100);
    ck_assert_ptr_null (msg);
    mdp_client_destroy (&client);
    mdp_client_destroy (&client);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

//  ---------------------------------------------------------------------------
//  mdp_client_request_stream: MDPC02 with partial replies

START_TEST (test_stream_frames_and_partials)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    zactor_t *call = s_call ((call_t){endpoint, 2500, 1, "llm", "ask", "{\"q\": \"hi\"}", true, 1});

    zmsg_t *request = tu_recv (broker, 2000);
    tu_assert_frames (request, 8, NULL, "", "MDPC02", "\x01", "llm", "2.5", "ask", "{\"q\":\"hi\"}");
    s_send_to (broker, request, 6, "", "MDPC02", "\x02", "llm", "ask.partial", "{\"t\":\"He\"}");
    s_send_to (broker, request, 6, "", "MDPC02", "\x02", "llm", "ask.partial", "{\"t\":\"ll\"}");
    s_send_to (broker, request, 6, "", "MDPC02", "\x02", "other", "ask.partial", "{}"); //  dropped
    s_send_to (broker, request, 6, "", "MDPC02", "\x02", "llm", "ask.partial", "{\"t\":\"o\"}");
    s_send_to (broker, request, 6, "", "MDPC02", "\x03", "llm", "ask.result", "{\"t\":\"Hello\"}");

    result_t result = s_result (&call);
    ck_assert_int_eq (result.error, 0);
    ck_assert_str_eq (result.partials, "{\"action\":\"ask.partial\",\"data\":{\"t\":\"He\"}}\n"
                                       "{\"action\":\"ask.partial\",\"data\":{\"t\":\"ll\"}}\n"
                                       "{\"action\":\"ask.partial\",\"data\":{\"t\":\"o\"}}\n");
    ck_assert_str_eq (result.reply, "{\"action\":\"ask.result\",\"data\":{\"t\":\"Hello\"}}");
    s_result_free (&result);
    zmsg_destroy (&request);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_stream_takes_mdpc01_reply_as_final)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    zactor_t *call = s_call ((call_t){endpoint, 2500, 1, "old", "a.get", "{}", true, 1});
    zmsg_t *request = tu_recv (broker, 2000);
    ck_assert_ptr_nonnull (request);
    s_send_to (broker, request, 5, "", "MDPC01", "old", "a.result", "{\"v\":1}");
    result_t result = s_result (&call);
    ck_assert_int_eq (result.error, 0);
    ck_assert_str_eq (result.partials, "");
    ck_assert_str_eq (result.reply, "{\"action\":\"a.result\",\"data\":{\"v\":1}}");
    s_result_free (&result);
    zmsg_destroy (&request);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_stream_partials_restart_the_timeout)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    zactor_t *call = s_call ((call_t){endpoint, tu_scale (500), 2, "slow", "a.get", "{}", true, 1});
    zmsg_t *request = tu_recv (broker, 2000);
    ck_assert_ptr_nonnull (request);
    //  Eight partials 100 msecs apart: more than the timeout in all, never 500 silent
    for (int part = 0; part < 8; part++) {
        zclock_sleep (tu_scale (100));
        s_send_to (broker, request, 6, "", "MDPC02", "\x02", "slow", "a.part", "{}");
    }
    s_send_to (broker, request, 6, "", "MDPC02", "\x03", "slow", "a.result", "{}");
    result_t result = s_result (&call);
    ck_assert_int_eq (result.error, 0);
    ck_assert_str_eq (result.reply, "{\"action\":\"a.result\",\"data\":{}}");
    int lines = 0;
    for (char *line = result.partials; (line = strchr (line, '\n')); line++)
        lines++;
    ck_assert_int_eq (lines, 8);
    zmsg_t *retry = tu_recv (broker, 0); //  one attempt was enough
    ck_assert_ptr_null (retry);
    s_result_free (&result);
    zmsg_destroy (&request);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_stream_no_retry_after_a_partial)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    zactor_t *call = s_call ((call_t){endpoint, tu_scale (500), 3, "slow", "a.get", "{}", true, 1});
    zmsg_t *request = tu_recv (broker, 2000);
    ck_assert_ptr_nonnull (request);
    s_send_to (broker, request, 6, "", "MDPC02", "\x02", "slow", "a.part", "{\"n\":1}");
    //  ...and then silence: the call ends, with no second attempt
    result_t result = s_result (&call);
    ck_assert_int_eq (result.error, EAGAIN);
    ck_assert_str_eq (result.reply, "");
    ck_assert_str_eq (result.partials, "{\"action\":\"a.part\",\"data\":{\"n\":1}}\n");
    zmsg_t *retry = tu_recv (broker, 100);
    ck_assert_ptr_null (retry);
    s_result_free (&result);
    zmsg_destroy (&request);
    zsock_destroy (&broker);
    free (endpoint);
}
END_TEST

START_TEST (test_stream_retries_while_no_partial)
{
    char *endpoint;
    zsock_t *broker = tu_router_bound (&endpoint);
    zactor_t *call = s_call ((call_t){endpoint, tu_scale (500), 2, "slow", "a.get", "{}", true, 1});
    zmsg_t *first = tu_recv (broker, 2000);
    zmsg_t *second = tu_recv (broker, 2000); //  after attempt 1 timed out
    char timeout[32];
    mdp_client_timeout_text (tu_scale (500), timeout, sizeof timeout);
    tu_assert_frames (second, 8, NULL, "", "MDPC02", "\x01", "slow", timeout, "a.get", "{}");
    ck_assert (!zframe_eq (zmsg_first (first), zmsg_first (second))); //  a fresh socket
    //  Attempt 1's partial comes late, on the old socket: never seen
    s_send_to (broker, first, 6, "", "MDPC02", "\x02", "slow", "a.late", "{}");
    s_send_to (broker, second, 6, "", "MDPC02", "\x02", "slow", "a.part", "{}");
    s_send_to (broker, second, 6, "", "MDPC02", "\x03", "slow", "a.result", "{}");
    result_t result = s_result (&call);
    ck_assert_int_eq (result.error, 0);
    ck_assert_str_eq (result.partials, "{\"action\":\"a.part\",\"data\":{}}\n");
    ck_assert_str_eq (result.reply, "{\"action\":\"a.result\",\"data\":{}}");
    s_result_free (&result);
    zmsg_destroy (&first);
    zmsg_destroy (&second);
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

START_TEST (test_failover_on_silence)
{
    pair_t pair = s_pair ();
    //  retries 1: with two brokers there are still two attempts, one each
    zactor_t *call = s_call ((call_t){pair.list, tu_scale (200), 1, "echo", "a.get", "{}", false, 1});
    zmsg_t *first = tu_recv (pair.a, 2000);
    tu_assert_frames (first, 7, NULL, "", "MDPC01", "echo", NULL, "a.get", "{}");
    zmsg_t *second = tu_recv (pair.b, 2000); //  after A stayed silent
    tu_assert_frames (second, 7, NULL, "", "MDPC01", "echo", NULL, "a.get", "{}");
    //  A answers late, then B: the caller gets B's answer, once
    s_send_to (pair.a, first, 5, "", "MDPC01", "echo", "a.late", "{}");
    s_send_to (pair.b, second, 5, "", "MDPC01", "echo", "a.result", "{}");
    result_t result = s_result (&call);
    ck_assert_int_eq (result.error, 0);
    ck_assert_str_eq (result.reply, "{\"action\":\"a.result\",\"data\":{}}");
    s_result_free (&result);
    zmsg_destroy (&first);
    zmsg_destroy (&second);
    s_pair_destroy (&pair);
}
END_TEST

START_TEST (test_failover_on_503)
{
    pair_t pair = s_pair ();
    zactor_t *call = s_call ((call_t){pair.list, tu_scale (2000), 1, "echo", "a.get", "{}", false, 1});
    zmsg_t *first = tu_recv (pair.a, 2000);
    ck_assert_ptr_nonnull (first);
    s_send_to (pair.a, first, 5, "", "MDPC01", "echo", "mdp.error",
               "{\"code\":503,\"reason\":\"broker shutting down\"}");
    zmsg_t *second = tu_recv (pair.b, 2000); //  at once, not after the timeout
    ck_assert_ptr_nonnull (second);
    s_send_to (pair.b, second, 5, "", "MDPC01", "echo", "a.result", "{}");
    result_t result = s_result (&call);
    ck_assert_int_eq (result.error, 0);
    ck_assert_str_eq (result.reply, "{\"action\":\"a.result\",\"data\":{}}");
    s_result_free (&result);
    zmsg_destroy (&first);
    zmsg_destroy (&second);
    s_pair_destroy (&pair);
}
END_TEST

START_TEST (test_503_everywhere_is_the_reply)
{
    pair_t pair = s_pair ();
    zactor_t *call = s_call ((call_t){pair.list, tu_scale (2000), 1, "echo", "a.get", "{}", false, 1});
    const char *error = "{\"code\":503,\"reason\":\"queue full\"}";
    zmsg_t *first = tu_recv (pair.a, 2000);
    ck_assert_ptr_nonnull (first);
    s_send_to (pair.a, first, 5, "", "MDPC01", "echo", "mdp.error", error);
    zmsg_t *second = tu_recv (pair.b, 2000);
    ck_assert_ptr_nonnull (second);
    s_send_to (pair.b, second, 5, "", "MDPC01", "echo", "mdp.error", error);
    result_t result = s_result (&call);
    ck_assert_int_eq (result.error, 0);
    ck_assert_str_eq (result.reply,
                      "{\"action\":\"mdp.error\",\"data\":{\"code\":503,\"reason\":\"queue full\"}}");
    s_result_free (&result);
    zmsg_destroy (&first);
    zmsg_destroy (&second);
    s_pair_destroy (&pair);
}
END_TEST

START_TEST (test_stream_no_failover_after_a_partial)
{
    pair_t pair = s_pair ();
    zactor_t *call = s_call ((call_t){pair.list, tu_scale (300), 3, "slow", "a.get", "{}", true, 1});
    zmsg_t *request = tu_recv (pair.a, 2000);
    ck_assert_ptr_nonnull (request);
    s_send_to (pair.a, request, 6, "", "MDPC02", "\x02", "slow", "a.part", "{}");
    //  ...then A dies: an error for the caller, never a stream restarted on B
    result_t result = s_result (&call);
    ck_assert_int_eq (result.error, EAGAIN);
    ck_assert_str_eq (result.partials, "{\"action\":\"a.part\",\"data\":{}}\n");
    zmsg_t *restarted = tu_recv (pair.b, 100);
    ck_assert_ptr_null (restarted);
    s_result_free (&result);
    zmsg_destroy (&request);
    s_pair_destroy (&pair);
}
END_TEST

START_TEST (test_stream_failover_before_a_partial)
{
    pair_t pair = s_pair ();
    zactor_t *call = s_call ((call_t){pair.list, tu_scale (200), 1, "slow", "a.get", "{}", true, 1});
    zmsg_t *first = tu_recv (pair.a, 2000);
    ck_assert_ptr_nonnull (first);
    zmsg_t *second = tu_recv (pair.b, 2000);
    tu_assert_frames (second, 8, NULL, "", "MDPC02", "\x01", "slow", NULL, "a.get", "{}");
    s_send_to (pair.b, second, 6, "", "MDPC02", "\x02", "slow", "a.part", "{}");
    s_send_to (pair.b, second, 6, "", "MDPC02", "\x03", "slow", "a.result", "{}");
    result_t result = s_result (&call);
    ck_assert_int_eq (result.error, 0);
    ck_assert_str_eq (result.partials, "{\"action\":\"a.part\",\"data\":{}}\n");
    ck_assert_str_eq (result.reply, "{\"action\":\"a.result\",\"data\":{}}");
    s_result_free (&result);
    zmsg_destroy (&first);
    zmsg_destroy (&second);
    s_pair_destroy (&pair);
}
END_TEST

//  After a failover the next request goes straight to the broker that
//  answered; the silent one only gets liveness probes (mmi.service).
START_TEST (test_dead_broker_is_probed_not_asked)
{
    pair_t pair = s_pair ();
    zactor_t *call = s_call ((call_t){pair.list, tu_scale (300), 1, "echo", "a.get", "{}", false, 2});
    zmsg_t *lost = tu_recv (pair.a, 2000);
    tu_assert_frames (lost, 7, NULL, "", "MDPC01", "echo", NULL, "a.get", "{}");
    zmsg_t *probe = NULL;
    for (int index = 0; index < 2; index++) {
        zmsg_t *request = tu_recv (pair.b, 2000);
        ck_assert_msg (request != NULL, "request %d never reached B", index + 1);
        if (index == 1) //  while the client waits on B, A gets a probe
            probe = tu_recv (pair.a, 1000);
        s_send_to (pair.b, request, 5, "", "MDPC01", "echo", "a.result", "{}");
        zmsg_destroy (&request);
    }
    result_t result = s_result (&call);
    ck_assert_int_eq (result.error, 0);
    s_result_free (&result);
    //  A never saw the second request, only the probe after the back-off
    tu_assert_frames (probe, 6, NULL, "", "MDPC01", "mmi.service", NULL, "mmi.ping");
    zmsg_destroy (&probe);
    zmsg_destroy (&lost);
    s_pair_destroy (&pair);
}
END_TEST

START_TEST (test_endpoint_lists)
{
    const char *bad[] = {"tcp://127.0.0.1:1,", ",tcp://127.0.0.1:1", "tcp://127.0.0.1:1,,tcp://127.0.0.1:2",
                         "tcp://127.0.0.1:1,nonsense"};
    for (size_t index = 0; index < sizeof bad / sizeof bad[0]; index++) {
        errno = 0;
        ck_assert_msg (mdp_client_new (bad[index]) == NULL, "'%s' was taken", bad[index]);
        ck_assert_int_eq (errno, EINVAL);
    }
    mdp_client_t *client = mdp_client_new ("tcp://127.0.0.1:1,tcp://127.0.0.1:2");
    ck_assert_ptr_nonnull (client);
    ck_assert_int_eq (mdp_client_add_endpoint (client, "tcp://127.0.0.1:3"), 0);
    ck_assert_int_eq (mdp_client_add_endpoint (client, "tcp://127.0.0.1:4,tcp://127.0.0.1:5"), -1);
    ck_assert_int_eq (errno, EINVAL);
    ck_assert_int_eq (mdp_client_add_endpoint (client, ""), -1);
    int added = 3;
    while (mdp_client_add_endpoint (client, "tcp://127.0.0.1:6") == 0)
        added++;
    ck_assert_int_eq (added, 16); //  the documented limit
    ck_assert_int_eq (errno, EINVAL);
    mdp_client_destroy (&client);
}
END_TEST

int main (void)
{
    Suite *suite = suite_create ("mdp_client");
    TCase *tc = tcase_create ("client");
    tcase_set_timeout (tc, tu_scale (20));
    tcase_add_test (tc, test_request_frames_and_reply);
    tcase_add_test (tc, test_timeout_frame_whole_seconds);
    tcase_add_test (tc, test_timeout_text);
    tcase_add_test (tc, test_error_reply_is_final);
    tcase_add_test (tc, test_timeout_retries_on_new_sockets);
    tcase_add_test (tc, test_late_reply_is_not_the_answer);
    tcase_add_test (tc, test_garbage_is_ignored);
    tcase_add_test (tc, test_undecodable_body_is_eproto);
    tcase_add_test (tc, test_has_service);
    tcase_add_test (tc, test_bad_arguments);
    tcase_add_test (tc, test_stream_frames_and_partials);
    tcase_add_test (tc, test_stream_takes_mdpc01_reply_as_final);
    tcase_add_test (tc, test_stream_partials_restart_the_timeout);
    tcase_add_test (tc, test_stream_no_retry_after_a_partial);
    tcase_add_test (tc, test_stream_retries_while_no_partial);
    suite_add_tcase (suite, tc);
    tc = tcase_create ("failover");
    tcase_set_timeout (tc, tu_scale (20));
    tcase_add_test (tc, test_failover_on_silence);
    tcase_add_test (tc, test_failover_on_503);
    tcase_add_test (tc, test_503_everywhere_is_the_reply);
    tcase_add_test (tc, test_stream_no_failover_after_a_partial);
    tcase_add_test (tc, test_stream_failover_before_a_partial);
    tcase_add_test (tc, test_dead_broker_is_probed_not_asked);
    tcase_add_test (tc, test_endpoint_lists);
    suite_add_tcase (suite, tc);
    SRunner *runner = srunner_create (suite);
    srunner_run_all (runner, CK_NORMAL);
    int failed = srunner_ntests_failed (runner);
    srunner_free (runner);
    return failed == 0 ? 0 : 1;
}
