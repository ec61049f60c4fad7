/*  test_bridge.c - mdp-amqp-bridge end to end against a real RabbitMQ that the
    suite starts once on a port of its own and always stops. Neon- and
    nuropb-style services (pika) and a raw echo in C behind the bridge, our
    clients and mdp-req in front, and AMQP clients the other way; streaming,
    404/504/500 routes, RabbitMQ and the broker restarted. See bridge_harness.h.
*/
#include "bridge_harness.h"
#include "forwarder.h"

//  ---------------------------------------------------------------------------
//  MDP -> AMQP

START_TEST (test_neon_forward)
{
    s_neon_serve ("neon_echo_input", "unused_a", "unused_b");
    s_bridge (FWD ("neon.echo", "neon", NEON_ECHO ", \"timeout\": 20000"));
    s_wait_service ("neon.echo");
    //  Quotes, non-ASCII and JSON types through Neon's Python-literal codec
    mdp_msg_t *reply = s_call (
        "neon.echo", "config.get",
        "{\"key\": \"it's \\\"quoted\\\" caf\xc3\xa9\", \"n\": [1, 2.5, null, true]}", 20000);
    ck_assert_str_eq (mdp_msg_action (reply), "config.result");
    ck_assert_str_eq (s_field (reply, "served_by"), "neon_service");
    ck_assert_str_eq (s_field (reply, "key"), "it's \"quoted\" caf\xc3\xa9");
    cJSON *expected = cJSON_Parse ("[1, 2.5, null, true]");
    ck_assert (cJSON_Compare (cJSON_GetObjectItem (mdp_msg_data (reply), "n"), expected, true));
    ck_assert_ptr_null (cJSON_GetObjectItem (mdp_msg_data (reply), "routing_key"));
    ck_assert_ptr_nonnull (s_field (reply, "message_id"));
    cJSON_Delete (expected);
    mdp_msg_destroy (&reply);
    //  The same through mdp-req
    char *const argv[] = {(char *)tu_program ("mdp-req"),
                          "-e",
                          s_endpoint,
                          "-t",
                          "20000",
                          "-r",
                          "1",
                          "neon.echo",
                          "plugin.start.do",
                          "{\"name\": \"x\"}",
                          NULL};
    char *out = s_output (argv, 30000);
    ck_assert_msg (strstr (out, "\"action\":\"plugin.start.result\"") &&
                       strstr (out, "neon_service"),
                   "mdp-req printed %s", out);
    free (out);
}
END_TEST

//  With 2 s AMQP heartbeats, an idle bridge keeps its connection: RabbitMQ
//  would close it after two missed heartbeats (the bridge would log "lost").
START_TEST (test_amqp_heartbeat)
{
    s_neon_serve ("neon_echo_input", "unused_a", "unused_b");
    s_bridge (FWD ("neon.echo", "neon", NEON_ECHO ", \"timeout\": 20000"));
    s_wait_service ("neon.echo");
    mdp_msg_t *reply = s_call ("neon.echo", "config.get", "{}", 20000);
    mdp_msg_destroy (&reply);
    log_wait_t lost = {"bridge.log", "lost", 1};
    ck_assert_msg (!tu_wait_for (s_log_has, &lost, 6000), "the idle link was lost");
    reply = s_call ("neon.echo", "config.get", "{\"again\": 1}", 20000);
    ck_assert_str_eq (s_field (reply, "served_by"), "neon_service");
    mdp_msg_destroy (&reply);
    ck_assert_int_eq (s_count_in ("bridge.log", "link guest@/neon_api up"), 1);
}
END_TEST

//  Many requests in flight at once, each answered with its own data.
START_TEST (test_many_in_flight)
{
    enum { COUNT = 40 };
    s_neon_serve ("neon_echo_input", "unused_a", "unused_b");
    s_bridge (FWD ("neon.echo", "neon", NEON_ECHO ", \"timeout\": 30000, \"concurrency\": 16"));
    s_wait_service ("neon.echo");
    mdp_async_t *async = mdp_async_new (s_endpoint);
    mdp_async_set_timeout (async, tu_scale (60000));
    uint64_t ids[COUNT];
    for (int index = 0; index < COUNT; index++) {
        cJSON *data = cJSON_CreateObject ();
        cJSON_AddNumberToObject (data, "i", index);
        cJSON_AddNumberToObject (data, "sleep", 0.2);
        mdp_msg_t *request = mdp_msg_new ("config.get", data);
        ids[index] = mdp_async_send (async, "neon.echo", &request);
        ck_assert (ids[index] != 0);
    }
    int seen[COUNT] = {0};
    for (int got = 0; got < COUNT; got++) {
        uint64_t id = 0;
        bool final = false;
        mdp_msg_t *reply = mdp_async_recv (async, &id, &final, tu_scale (90000));
        ck_assert_msg (reply && final, "reply %d missing (errno %d)", got, errno);
        int index = 0;
        while (index < COUNT && ids[index] != id)
            index++;
        ck_assert_int_lt (index, COUNT);
        ck_assert_str_eq (mdp_msg_action (reply), "config.result");
        const cJSON *i = cJSON_GetObjectItemCaseSensitive (mdp_msg_data (reply), "i");
        ck_assert_msg (cJSON_IsNumber (i) && i->valueint == index, "reply for %d carries another i",
                       index);
        seen[index]++;
        mdp_msg_destroy (&reply);
    }
    for (int index = 0; index < COUNT; index++)
        ck_assert_int_eq (seen[index], 1);
    mdp_async_destroy (&async);
}
END_TEST

typedef struct {
    int count;       //  partials seen
    int parts[8];    //  their _part or n values
    char action[64]; //  the last one's action
} partials_t;

static void s_on_partial (mdp_msg_t *partial, void *arg)
{
    partials_t *seen = arg;
    const cJSON *data = mdp_msg_data (partial);
    const cJSON *part = cJSON_GetObjectItemCaseSensitive (data, "_part");
    if (!part)
        part = cJSON_GetObjectItemCaseSensitive (data, "n");
    if (seen->count < 8)
        seen->parts[seen->count] = cJSON_IsNumber (part) ? part->valueint : -1;
    seen->count++;
    snprintf (seen->action, sizeof seen->action, "%s", mdp_msg_action (partial));
}

static mdp_msg_t *s_stream (const char *service, const char *action, const char *json,
                            partials_t *seen)
{
    mdp_client_t *client = mdp_client_new (s_endpoint);
    mdp_client_set_timeout (client, tu_scale (20000));
    mdp_client_set_retries (client, 1);
    mdp_msg_t *request = mdp_msg_new (action, cJSON_Parse (json));
    memset (seen, 0, sizeof *seen);
    mdp_msg_t *reply = mdp_client_request_stream (client, service, &request, s_on_partial, seen);
    mdp_client_destroy (&client);
    ck_assert_msg (reply != NULL, "no final reply from %s", service);
    return reply;
}

//  Neon _part/_is_final replies become MDP/0.2 partials where the route
//  streams, and are dropped where it does not.
START_TEST (test_neon_stream)
{
    s_neon_serve ("neon_echo_input", "unused_a", "unused_b");
    s_bridge (
        FWD ("neon.stream", "neon", NEON_ECHO ", \"stream\": true, \"timeout\": 20000") "," FWD (
            "neon.echo", "neon", NEON_ECHO ", \"timeout\": 20000"));
    s_wait_service ("neon.stream");
    s_wait_service ("neon.echo");
    partials_t seen;
    mdp_msg_t *reply = s_stream ("neon.stream", "ask", "{\"parts\": 3}", &seen);
    ck_assert_int_eq (seen.count, 3);
    for (int index = 0; index < 3; index++)
        ck_assert_int_eq (seen.parts[index], index);
    ck_assert_str_eq (seen.action, "ask.partial");
    ck_assert_str_eq (mdp_msg_action (reply), "ask.result");
    ck_assert (cJSON_IsTrue (cJSON_GetObjectItem (mdp_msg_data (reply), "_is_final")));
    mdp_msg_destroy (&reply);
    reply = s_stream ("neon.echo", "ask", "{\"parts\": 3}", &seen);
    ck_assert_int_eq (seen.count, 0);
    ck_assert_str_eq (mdp_msg_action (reply), "ask.result");
    mdp_msg_destroy (&reply);
}
END_TEST

//  Unroutable -> 404, no reply in time -> 504, a service's error -> 500.
START_TEST (test_forward_errors)
{
    s_neon_serve ("neon_fail_input,fail=no luck today", "neon_silent_input,silent", "unused");
    s_nuropb_serve ("orders");
    s_bridge (FWD ("neon.fail", "neon", "\"vhost\": \"/neon_api\", \"queue\": \"neon_fail_input\"") "," FWD (
        "neon.silent", "neon",
        "\"vhost\": \"/neon_api\", \"queue\": \"neon_silent_input\", "
        "\"timeout\": 700") "," FWD ("neon.nowhere", "neon",
                                     "\"vhost\": \"/neon_api\", \"queue\": \"no_such_queue\", "
                                     "\"on_missing_queue\": \"fail\"") "," FWD ("orders", "nuropb",
                                                                                "\"timeout\": "
                                                                                "20000") "," FWD ("nuropb.ghost",
                                                                                                  "nuropb",
                                                                                                  "\"routing_key\": \"ghost\", \"on_missing_queue\": \"fail\"") "," FWD ("nuropb.noexchange",
                                                                                                                                                                         "nuropb",
                                                                                                                                                                         "\"exchange\": \"no-such-exchange\""));
    s_wait_service ("nuropb.noexchange");
    s_expect_error ("neon.nowhere", "config.get", "{}", 404, "NO_ROUTE");
    s_expect_error ("nuropb.ghost", "config.get", "{}", 404, "NO_ROUTE");
    s_expect_error ("nuropb.noexchange", "config.get", "{}", 404, "no such nuropb exchange");
    s_expect_error ("neon.silent", "config.get", "{}", 504, "no reply");
    s_expect_error ("neon.fail", "config.get", "{}", 500, "no luck today");
    s_expect_error ("orders", "fail", "{\"text\": \"out of stock\"}", 500,
                    "ValueError: out of stock");
    s_expect_error ("orders", "nosuch", "{}", 500, "Unknown method nosuch");
    mdp_msg_t *reply = s_call ("orders", "echo", "{\"item\": \"tea\"}", 20000);
    ck_assert_str_eq (mdp_msg_action (reply), "echo.result");
    ck_assert_str_eq (s_field (reply, "item"), "tea");
    ck_assert_str_eq (s_field (reply, "served_by"), "nuropb_service");
    mdp_msg_destroy (&reply);
}
END_TEST

//  The raw profile both ways, with partials and an error status.
START_TEST (test_raw_both_ways)
{
    zactor_t *service = zactor_new (s_raw_service, NULL);
    zactor_t *worker = zactor_new (s_worker_actor, NULL);
    s_bridge (FWD ("raw.echo", "raw", "\"queue\": \"raw_echo_input\", \"stream\": true") "," REV (
        "echo", "raw", "\"timeout\": 20000"));
    s_wait_service ("raw.echo");
    s_wait_log ("bridge.log", "consuming mdp.echo", 1, 20000);
    mdp_msg_t *reply = s_call ("raw.echo", "echo", "{\"k\": \"v\"}", 20000);
    ck_assert_str_eq (mdp_msg_action (reply), "echo.result");
    ck_assert_str_eq (s_field (reply, "k"), "v");
    mdp_msg_destroy (&reply);
    reply = s_call ("raw.echo", "plain", "{\"k\": \"w\"}", 20000);
    ck_assert_str_eq (mdp_msg_action (reply), "plain.result");
    ck_assert_str_eq (s_field (reply, "k"), "w");
    mdp_msg_destroy (&reply);
    s_expect_error ("raw.echo", "fail", "{}", 409, "conflict in the raw service");
    partials_t seen;
    reply = s_stream ("raw.echo", "stream", "{}", &seen);
    ck_assert_int_eq (seen.count, 2);
    ck_assert_str_eq (seen.action, "stream.partial");
    ck_assert_str_eq (mdp_msg_action (reply), "stream.result");
    mdp_msg_destroy (&reply);
    //  AMQP -> MDP
    char status[32];
    char *body = s_raw_call ("mdp.echo", "{\"action\": \"config.get\", \"data\": {\"a\": 1}}",
                             status, sizeof status);
    ck_assert_str_eq (status, "final");
    ck_assert_msg (strstr (body, "\"action\":\"config.get.result\"") &&
                       strstr (body, "\"served_by\":\"libmdp\""),
                   "raw reply %s", body);
    free (body);
    zactor_destroy (&worker);
    zactor_destroy (&service);
}
END_TEST

//  ---------------------------------------------------------------------------
//  AMQP -> MDP

START_TEST (test_reverse_neon)
{
    zactor_t *worker = zactor_new (s_worker_actor, NULL);
    s_bridge (REV (
        "echo", "neon",
        "\"vhost\": \"/neon_api\", \"queue\": \"mdp_echo_input\", "
        "\"action\": \"config.get\", \"timeout\": 20000") "," REV ("echo", "neon",
                                                                   "\"vhost\": \"/neon_api\", "
                                                                   "\"queue\": "
                                                                   "\"mdp_stream_input\", "
                                                                   "\"stream\": true, \"timeout\": "
                                                                   "20000") "," REV ("nobody",
                                                                                     "neon",
                                                                                     "\"vhost\": "
                                                                                     "\"/"
                                                                                     "neon_api\", "
                                                                                     "\"queue\": "
                                                                                     "\"mdp_nobody_"
                                                                                     "input\", "
                                                                                     "\"timeout\": "
                                                                                     "500"));
    s_wait_log ("bridge.log", "consuming mdp_nobody_input", 1, 20000);
    s_wait_log ("bridge.log", "consuming mdp_stream_input", 1, 20000);
    s_wait_log ("bridge.log", "consuming mdp_echo_input", 1, 20000);
    //  Three at once, each matched by message_id (the client checks), data echoed
    cJSON *json = s_neon_call ("mdp_echo_input", "{\"key\": \"it's\"}", "3");
    cJSON *results = cJSON_GetObjectItem (json, "results");
    ck_assert_int_eq (cJSON_GetArraySize (results), 3);
    for (int index = 0; index < 3; index++) {
        cJSON *result = cJSON_GetObjectItem (cJSON_GetArrayItem (results, index), "result");
        ck_assert_msg (result, "request %d got no reply", index);
        ck_assert_str_eq (cJSON_GetStringValue (s_path (result, "key", NULL)), "it's");
        ck_assert_str_eq (cJSON_GetStringValue (s_path (result, "served_by", NULL)), "libmdp");
        ck_assert_int_eq (s_path (result, "i", NULL)->valueint, index);
    }
    cJSON_Delete (json);
    //  MDP partials become _part/_is_final where the route streams
    json = s_neon_call ("mdp_stream_input", "{\"parts\": 2}", "1");
    cJSON *first = cJSON_GetArrayItem (cJSON_GetObjectItem (json, "results"), 0);
    cJSON *parts = cJSON_GetObjectItem (first, "parts");
    ck_assert_int_eq (cJSON_GetArraySize (parts), 2);
    ck_assert_int_eq (s_path (cJSON_GetArrayItem (parts, 1), "_part", NULL)->valueint, 1);
    ck_assert (cJSON_IsTrue (s_path (first, "result", "_is_final")));
    ck_assert_int_eq (s_path (first, "result", "_part")->valueint, 2);
    cJSON_Delete (json);
    //  No MDP worker: the Neon client hears an error in time
    json = s_neon_call ("mdp_nobody_input", "{}", "1");
    cJSON *result =
        s_path (cJSON_GetArrayItem (cJSON_GetObjectItem (json, "results"), 0), "result", NULL);
    ck_assert_int_eq (s_path (result, "code", NULL)->valueint, 504);
    ck_assert_ptr_nonnull (cJSON_GetStringValue (s_path (result, "error", NULL)));
    cJSON_Delete (json);
    zactor_destroy (&worker);
}
END_TEST

START_TEST (test_reverse_nuropb)
{
    zactor_t *worker = zactor_new (s_worker_actor, NULL);
    s_bridge (REV ("echo", "nuropb", "\"routing_key\": \"mdpecho\", \"timeout\": 20000") "," REV (
        "nobody", "nuropb", "\"routing_key\": \"mdpnobody\", \"timeout\": 500"));
    s_wait_log ("bridge.log", "consuming nuropb-mdpecho-service", 1, 20000);
    s_wait_log ("bridge.log", "consuming nuropb-mdpnobody-service", 1, 20000);
    cJSON *json = s_nuropb_call ("mdpecho", "config.get", "{\"a\": [1, 2]}");
    ck_assert_str_eq (cJSON_GetStringValue (s_path (json, "tag", NULL)), "response");
    ck_assert (cJSON_IsNull (s_path (json, "error", NULL)));
    ck_assert_str_eq (cJSON_GetStringValue (s_path (json, "result", "served_by")), "libmdp");
    ck_assert_int_eq (cJSON_GetArraySize (s_path (json, "result", "a")), 2);
    ck_assert_str_eq (cJSON_GetStringValue (s_path (json, "context", "user_id")), "test");
    cJSON_Delete (json);
    json = s_nuropb_call ("mdpnobody", "x", "{}");
    ck_assert_str_eq (cJSON_GetStringValue (s_path (json, "error", "error")), "NuropbTimeoutError");
    cJSON_Delete (json);
    zactor_destroy (&worker);
}
END_TEST

//  ---------------------------------------------------------------------------
//  Issue 12 item 3: numbers pass the bridge as written, every profile, both
//  ways. Where a Python peer decodes and re-encodes them (Neon, nuropb), the
//  text is Python's: 1e308 comes back as 1e+308 (its doing, not ours).

#define PY_NUMBERS                                                                                 \
    "[9007199254740993,12345678901234567890,0.1,1e+308,-0.0,9223372036854775807,"                  \
    "-9223372036854775808,18446744073709551616]"

static void s_expect_numbers (cJSON *n, const char *expected)
{
    char *text = n ? mdp_json_print (n) : NULL;
    ck_assert_msg (text && streq (text, expected), "numbers came back as %s", text);
    free (text);
}

START_TEST (test_numbers_as_written)
{
    zactor_t *service = zactor_new (s_raw_service, NULL);
    zactor_t *worker = zactor_new (s_worker_actor, NULL);
    s_neon_serve ("neon_echo_input", "unused_a", "unused_b");
    s_nuropb_serve ("orders");
    s_bridge (FWD ("neon.echo", "neon", NEON_ECHO ", \"timeout\": 20000") "," FWD ("orders", "nuropb", "\"timeout\": 20000") "," FWD (
        "raw.echo", "raw",
        "\"queue\": \"raw_echo_input\"") "," REV ("echo", "neon",
                                                  "\"vhost\": \"/neon_api\", \"queue\": "
                                                  "\"mdp_echo_input\", "
                                                  "\"timeout\": 20000") "," REV ("echo", "nuropb",
                                                                                 "\"routing_key\": "
                                                                                 "\"mdpecho\", "
                                                                                 "\"timeout\": "
                                                                                 "20000") "," REV ("echo",
                                                                                                   "raw",
                                                                                                   "\"timeout\": 20000"));
    s_wait_service ("neon.echo");
    s_wait_service ("orders");
    s_wait_service ("raw.echo");
    s_wait_log ("bridge.log", "consuming mdp_echo_input", 1, 20000);
    s_wait_log ("bridge.log", "consuming nuropb-mdpecho-service", 1, 20000);
    s_wait_log ("bridge.log", "consuming mdp.echo", 1, 20000);
    //  MDP -> AMQP
    const char *services[] = {"neon.echo", "orders", "raw.echo"};
    const char *actions[] = {"config.get", "echo", "echo"};
    const char *expected[] = {PY_NUMBERS, PY_NUMBERS, "[" TU_NUMBERS_LIST "]"};
    for (int index = 0; index < 3; index++) {
        mdp_msg_t *reply = s_call (services[index], actions[index], TU_NUMBERS_IN, 20000);
        s_expect_numbers (cJSON_GetObjectItem (mdp_msg_data (reply), "n"), expected[index]);
        mdp_msg_destroy (&reply);
    }
    //  AMQP -> MDP
    cJSON *json = s_neon_call ("mdp_echo_input", TU_NUMBERS_IN, "1");
    cJSON *first = cJSON_GetArrayItem (cJSON_GetObjectItem (json, "results"), 0);
    s_expect_numbers (s_path (first, "result", "n"), PY_NUMBERS);
    cJSON_Delete (json);
    json = s_nuropb_call ("mdpecho", "config.get", TU_NUMBERS_IN);
    s_expect_numbers (s_path (json, "result", "n"), PY_NUMBERS);
    cJSON_Delete (json);
    char status[32];
    char *body =
        s_raw_call ("mdp.echo", "{\"action\": \"config.get\", \"data\": " TU_NUMBERS_IN "}", status,
                    sizeof status);
    ck_assert_str_eq (status, "final");
    ck_assert_str_eq (body, "{\"action\":\"config.get.result\",\"data\":{\"n\":[" TU_NUMBERS_LIST
                            "],\"served_by\":\"libmdp\"}}");
    free (body);
    zactor_destroy (&worker);
    zactor_destroy (&service);
}
END_TEST

//  ---------------------------------------------------------------------------
//  Faults

typedef struct {
    const char *service; //  the service
    bool present;        //  wanted state
} presence_t;

static bool s_presence (void *arg)
{
    presence_t *presence = arg;
    mdp_client_t *client = mdp_client_new (s_endpoint);
    mdp_client_set_timeout (client, 500);
    mdp_client_set_retries (client, 1);
    int has = mdp_client_has_service (client, presence->service);
    mdp_client_destroy (&client);
    return has == (presence->present ? 1 : 0);
}

START_TEST (test_rabbit_restart)
{
    zactor_t *worker = zactor_new (s_worker_actor, NULL);
    s_neon_serve ("neon_echo_input", "neon_silent_input,silent", "unused");
    s_bridge (FWD ("neon.echo", "neon", NEON_ECHO ", \"timeout\": 60000") "," FWD (
        "neon.silent", "neon",
        "\"vhost\": \"/neon_api\", \"queue\": \"neon_silent_input\", "
        "\"timeout\": 60000") "," REV ("echo", "neon",
                                       "\"vhost\": \"/neon_api\", \"queue\": \"mdp_echo_input\", "
                                       "\"timeout\": 20000"));
    s_wait_service ("neon.echo");
    s_wait_service ("neon.silent");
    mdp_async_t *async = mdp_async_new (s_endpoint);
    mdp_async_set_timeout (async, tu_scale (180000));
    mdp_msg_t *request = mdp_msg_new ("config.get", NULL);
    uint64_t in_flight = mdp_async_send (async, "neon.silent", &request);
    s_wait_log ("bridge.log", "neon.silent: config.get sent", 1, 20000);

    ck_assert_int_eq (s_rabbit ("rabbit-down.sh", "RABBIT_KEEP_EPMD=1"), 0);
    mdp_msg_t *reply = s_async_final (async, in_flight, 30000);
    ck_assert_int_eq (mdp_msg_error_code (reply), 502);
    mdp_msg_destroy (&reply);
    presence_t gone = {"neon.echo", false};
    ck_assert_msg (tu_wait_for (s_presence, &gone, 20000), "neon.echo still registered");
    request = mdp_msg_new ("config.get", cJSON_Parse ("{\"during\": \"outage\"}"));
    uint64_t during = mdp_async_send (async, "neon.echo", &request);

    ck_assert_int_eq (s_rabbit ("rabbit-up.sh", "RABBIT_KEEP_DATA=1"), 0);
    reply = s_async_final (async, during, 120000);
    //  The service's queue is not durable (as Neon declares it): the bridge may
    //  be back before the service has declared it again. With on_missing_queue
    //  "wait" (the default) the request is published again until it is served.
    char *text = mdp_msg_to_json (reply);
    ck_assert_msg (streq (mdp_msg_action (reply), "config.result"), "reply %s", text);
    free (text);
    ck_assert_str_eq (s_field (reply, "during"), "outage");
    mdp_msg_destroy (&reply);
    mdp_async_destroy (&async);
    reply = s_call ("neon.echo", "config.get", "{\"after\": true}", 20000);
    ck_assert_str_eq (s_field (reply, "served_by"), "neon_service");
    mdp_msg_destroy (&reply);
    s_wait_log ("bridge.log", "consuming mdp_echo_input", 2, 30000);
    cJSON *json = s_neon_call ("mdp_echo_input", "{\"back\": 1}", "1");
    cJSON *result =
        s_path (cJSON_GetArrayItem (cJSON_GetObjectItem (json, "results"), 0), "result", NULL);
    ck_assert_str_eq (cJSON_GetStringValue (s_path (result, "served_by", NULL)), "libmdp");
    cJSON_Delete (json);
    zactor_destroy (&worker);
}
END_TEST

//  The MDP broker restarts on the same endpoint: the bridge registers again.
START_TEST (test_broker_restart)
{
    s_neon_serve ("neon_echo_input", "unused_a", "unused_b");
    s_bridge (FWD ("neon.echo", "neon", NEON_ECHO ", \"timeout\": 20000"));
    s_wait_service ("neon.echo");
    mdp_msg_t *reply = s_call ("neon.echo", "config.get", "{\"n\": 1}", 20000);
    mdp_msg_destroy (&reply);
    zactor_destroy (&s_broker);
    static broker_config_t cfg;
    broker_config_defaults (&cfg);
    broker_actor_args_t args = {s_endpoint, &cfg};
    s_broker = zactor_new (broker_actor, &args);
    ck_assert_ptr_nonnull (s_broker);
    s_wait_service ("neon.echo");
    reply = s_call ("neon.echo", "config.get", "{\"n\": 2}", 20000);
    ck_assert_str_eq (s_field (reply, "served_by"), "neon_service");
    mdp_msg_destroy (&reply);
}
END_TEST

//  ---------------------------------------------------------------------------
//  Events: MDP forwarder <-> the nuropb events exchange

#define EV_EXCHANGE "nuropb-events-exchange"

//  The events list goes after an empty routes list; the instance is fixed so
//  that a test can pose as the bridge's own echo.
static void s_bridge_events (const char *events)
{
    char config[1024];
    snprintf (config, sizeof config, "], \"instance\": \"evtest\", \"events\": [%s", events);
    s_bridge (config);
}

//  A header's string value, copied, or NULL.
static char *s_header (const amqp_basic_properties_t *props, const char *key)
{
    for (int index = 0; index < props->headers.num_entries; index++) {
        const amqp_table_entry_t *entry = &props->headers.entries[index];
        if (entry->key.len == strlen (key) && memcmp (entry->key.bytes, key, entry->key.len) == 0 &&
            entry->value.kind == AMQP_FIELD_KIND_UTF8)
            return strndup (entry->value.value.bytes.bytes, entry->value.value.bytes.len);
    }
    return NULL;
}

//  A rabbitmq-c consumer of the events exchange with binding key.
static amqp_bytes_t s_event_queue (amqp_connection_state_t conn, const char *binding)
{
    amqp_exchange_declare (conn, 1, amqp_cstring_bytes (EV_EXCHANGE), amqp_cstring_bytes ("topic"),
                           0, 1, 0, 0, amqp_empty_table);
    ck_assert_int_eq (amqp_get_rpc_reply (conn).reply_type, AMQP_RESPONSE_NORMAL);
    amqp_queue_declare_ok_t *ok =
        amqp_queue_declare (conn, 1, amqp_empty_bytes, 0, 0, 1, 1, amqp_empty_table);
    ck_assert_ptr_nonnull (ok);
    amqp_bytes_t queue = amqp_bytes_malloc_dup (ok->queue);
    amqp_queue_bind (conn, 1, queue, amqp_cstring_bytes (EV_EXCHANGE), amqp_cstring_bytes (binding),
                     amqp_empty_table);
    ck_assert_int_eq (amqp_get_rpc_reply (conn).reply_type, AMQP_RESPONSE_NORMAL);
    amqp_basic_consume (conn, 1, queue, amqp_empty_bytes, 0, 1, 1, amqp_empty_table);
    ck_assert_int_eq (amqp_get_rpc_reply (conn).reply_type, AMQP_RESPONSE_NORMAL);
    return queue;
}

//  An MDP event, published until the bridge has subscribed, arrives on the
//  exchange as a nuropb event with the category as routing key.
START_TEST (test_events_to_amqp)
{
    forwarder_t *fwd = forwarder_new ("tcp://127.0.0.1:*", "tcp://127.0.0.1:*");
    ck_assert_ptr_nonnull (fwd);
    amqp_connection_state_t conn = s_amqp_open ();
    amqp_bytes_t queue = s_event_queue (conn, "plugin.#");
    char events[512];
    snprintf (events, sizeof events,
              "{\"direction\": \"to_amqp\", \"sub_endpoint\": \"%s\", \"prefix\": \"plugin.\","
              " \"user\": \"bridge\"}",
              forwarder_sub_endpoint (fwd));
    s_bridge_events (events);
    mdp_publisher_t *pub = mdp_publisher_new (forwarder_pub_endpoint (fwd));
    cJSON *data = cJSON_Parse ("{\"name\": \"x10\", \"status\": \"up\"}");
    amqp_envelope_t envelope;
    bool got = false;
    int64_t deadline = zclock_mono () + tu_scale (30000);
    while (!got && zclock_mono () < deadline) {
        mdp_publisher_send (pub, "core.other", data); //  not our prefix
        mdp_publisher_send (pub, "plugin.status", data);
        struct timeval tv = {0, 300000};
        amqp_maybe_release_buffers (conn);
        got = amqp_consume_message (conn, &envelope, &tv, 0).reply_type == AMQP_RESPONSE_NORMAL;
    }
    ck_assert_msg (got, "no event reached the exchange");
    char *key = strndup (envelope.routing_key.bytes, envelope.routing_key.len);
    ck_assert_str_eq (key, "plugin.status");
    amqp_basic_properties_t *props = &envelope.message.properties;
    char *type = s_header (props, "nuropb_type");
    char *origin = s_header (props, "mdp_origin");
    ck_assert_str_eq (type, "event");
    ck_assert_str_eq (origin, "evtest");
    cJSON *body = cJSON_ParseWithLength (envelope.message.body.bytes, envelope.message.body.len);
    ck_assert_str_eq (cJSON_GetStringValue (cJSON_GetObjectItem (body, "tag")), "event");
    ck_assert_str_eq (cJSON_GetStringValue (cJSON_GetObjectItem (body, "topic")), "plugin.status");
    ck_assert (cJSON_Compare (cJSON_GetObjectItem (body, "event"), data, true));
    ck_assert_ptr_nonnull (cJSON_GetStringValue (cJSON_GetObjectItem (body, "trace_id")));
    free (key);
    free (type);
    free (origin);
    cJSON_Delete (body);
    amqp_destroy_envelope (&envelope);
    cJSON_Delete (data);
    mdp_publisher_destroy (&pub);
    amqp_bytes_free (queue);
    s_amqp_close (conn);
    forwarder_destroy (&fwd);
}
END_TEST

static void s_event_publish (amqp_connection_state_t conn, const char *key, const char *type,
                             const char *origin, const char *body)
{
    const char *keys[6] = {"nuropb_protocol", "nuropb_version", "nuropb_type",
                           "trace_id",        "encrypted",      "mdp_origin"};
    const char *values[6] = {"0.1.1", "0.1.8", type, "t1", "", origin};
    amqp_table_entry_t entries[6];
    for (int index = 0; index < 6; index++) {
        entries[index].key = amqp_cstring_bytes (keys[index]);
        entries[index].value.kind = AMQP_FIELD_KIND_UTF8;
        entries[index].value.value.bytes = amqp_cstring_bytes (values[index]);
    }
    amqp_basic_properties_t props = {0};
    props._flags = AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG;
    props.content_type = amqp_cstring_bytes ("application/json");
    props.headers = (amqp_table_t){6, entries};
    amqp_basic_publish (conn, 1, amqp_cstring_bytes (EV_EXCHANGE), amqp_cstring_bytes (key), 0, 0,
                        &props, amqp_cstring_bytes (body));
}

//  A nuropb event on the exchange reaches an MDP subscriber; a request, a
//  body that is not JSON and the bridge's own echo do not.
START_TEST (test_events_from_amqp)
{
    forwarder_t *fwd = forwarder_new ("tcp://127.0.0.1:*", "tcp://127.0.0.1:*");
    ck_assert_ptr_nonnull (fwd);
    mdp_subscriber_t *sub = mdp_subscriber_new (forwarder_sub_endpoint (fwd));
    ck_assert_int_eq (mdp_subscriber_subscribe (sub, "sensor."), 0);
    char events[512];
    snprintf (events, sizeof events,
              "{\"direction\": \"from_amqp\", \"pub_endpoint\": \"%s\", \"binding\": \"sensor.#\","
              " \"user\": \"bridge\"}",
              forwarder_pub_endpoint (fwd));
    s_bridge_events (events);
    amqp_connection_state_t conn = s_amqp_open ();
    amqp_exchange_declare (conn, 1, amqp_cstring_bytes (EV_EXCHANGE), amqp_cstring_bytes ("topic"),
                           0, 1, 0, 0, amqp_empty_table);
    ck_assert_int_eq (amqp_get_rpc_reply (conn).reply_type, AMQP_RESPONSE_NORMAL);
    const char *good = "{\"tag\": \"event\", \"topic\": \"sensor.temp\", \"event\": {\"c\": 21.5},"
                       " \"context\": {}, \"trace_id\": \"t1\", \"target\": null}";
    char *category = NULL;
    cJSON *data = NULL;
    int64_t deadline = zclock_mono () + tu_scale (30000);
    while (!category && zclock_mono () < deadline) {
        s_event_publish (conn, "sensor.bad", "request", "other", good);
        s_event_publish (conn, "sensor.json", "event", "other", "{not json");
        s_event_publish (conn, "sensor.echo", "event", "evtest",
                         "{\"topic\": \"sensor.echo\", \"event\": {}}");
        s_event_publish (conn, "sensor.temp", "event", "other", good);
        mdp_subscriber_recv (sub, &category, &data, 300);
    }
    ck_assert_msg (category, "no event reached the subscriber");
    ck_assert_str_eq (category, "sensor.temp");
    ck_assert (cJSON_GetObjectItem (data, "c")->valuedouble == 21.5);
    free (category);
    cJSON_Delete (data);
    s_amqp_close (conn);
    mdp_subscriber_destroy (&sub);
    forwarder_destroy (&fwd);
}
END_TEST

int main (void)
{
    Suite *suite = suite_create ("bridge");
    TCase *tc = tcase_create ("rabbitmq");
    tcase_set_timeout (tc, 300);
    tcase_add_unchecked_fixture (tc, s_rabbit_setup, s_rabbit_teardown);
    tcase_add_checked_fixture (tc, s_setup, s_teardown);
    tcase_add_test (tc, test_neon_forward);
    tcase_add_test (tc, test_amqp_heartbeat);
    tcase_add_test (tc, test_many_in_flight);
    tcase_add_test (tc, test_neon_stream);
    tcase_add_test (tc, test_forward_errors);
    tcase_add_test (tc, test_raw_both_ways);
    tcase_add_test (tc, test_reverse_neon);
    tcase_add_test (tc, test_reverse_nuropb);
    tcase_add_test (tc, test_numbers_as_written);
    tcase_add_test (tc, test_broker_restart);
    tcase_add_test (tc, test_rabbit_restart);
    tcase_add_test (tc, test_events_to_amqp);
    tcase_add_test (tc, test_events_from_amqp);
    suite_add_tcase (suite, tc);
    SRunner *runner = srunner_create (suite);
    srunner_run_all (runner, CK_NORMAL);
    int failed = srunner_ntests_failed (runner);
    srunner_free (runner);
    return failed ? 1 : 0;
}
