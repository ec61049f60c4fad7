/*  test_e2e_stream.c - MDP/0.2 end to end through a real broker (in-process)
    and real sockets: every pairing of an MDP/0.1 or MDP/0.2 client with an
    MDP/0.1 or MDP/0.2 worker, ours and a pyzmq peer's (tests/interop/
    mdp02_peer.py) on both sides, with partials counted and in order; the async
    client with ~200 requests in flight to four workers that answer late and
    out of order; mdp-req --stream and mdp-async-req as programs.
*/
#include "broker.h"
#include "mdp.h"
#include "testutil.h"
#include <check.h>
#include <signal.h>
#include <unistd.h>

#define PYTHON "/usr/bin/python3"
#define PEER "tests/interop/mdp02_peer.py"
#define PARTIALS 3 //  partials a streaming worker sends in the pairing tests

static zactor_t *broker;
static char *endpoint;

static void s_setup (void)
{
    broker_actor_args_t args = {NULL, NULL};
    broker = zactor_new (broker_actor, &args);
    ck_assert_ptr_nonnull (broker);
    zstr_send (broker, "ENDPOINT");
    endpoint = zstr_recv (broker);
    ck_assert_ptr_nonnull (endpoint);
}

static void s_teardown (void)
{
    zactor_destroy (&broker);
    zstr_free (&endpoint);
}

//  --- our worker in a thread -------------------------------------------------

typedef struct {
    const char *service; //  service to offer
    int protocol;        //  1 or 2
    int partials;        //  partials per request; -1: the request's "partials"
    int max_delay;       //  msecs: each answer waits a random 0..max_delay
    unsigned int seed;   //  for those delays
} worker_args_t;

//  Domogik's convention: x.get and x.do become x.result, others gain .result.
static void s_reply_action (const char *action, char *buf, size_t size)
{
    size_t length = strlen (action);
    const char *suffix = length > 4 ? action + length - 4 : "";
    if (streq (suffix, ".get"))
        snprintf (buf, size, "%.*s.result", (int)length - 4, action);
    else if (length > 3 && streq (action + length - 3, ".do"))
        snprintf (buf, size, "%.*s.result", (int)length - 3, action);
    else
        snprintf (buf, size, "%s.result", action);
}

//  Partials {"part": i} (plus the request's "n" if any), then the final reply:
//  the request's data plus "parts", the number of partials sent.
static mdp_msg_t *s_stream_hook (mdp_worker_t *worker, mdp_msg_t *request, void *arg)
{
    worker_args_t *args = arg;
    cJSON *data = cJSON_Duplicate (mdp_msg_data (request), 1);
    cJSON *n = cJSON_GetObjectItem (data, "n");
    int partials = args->partials;
    if (partials < 0) {
        cJSON *wanted = cJSON_GetObjectItem (data, "partials");
        partials = cJSON_IsNumber (wanted) ? wanted->valueint : 0;
    }
    if (args->max_delay)
        zclock_sleep ((int)(rand_r (&args->seed) % (args->max_delay + 1)));
    char action[300];
    snprintf (action, sizeof action, "%s.partial", mdp_msg_action (request));
    int sent = 0;
    for (int part = 0; part < partials && args->protocol == 2; part++) {
        cJSON *body = cJSON_CreateObject ();
        if (n)
            cJSON_AddNumberToObject (body, "n", n->valuedouble);
        cJSON_AddNumberToObject (body, "part", part);
        mdp_msg_t *partial = mdp_msg_new (action, body);
        ck_assert_int_eq (mdp_worker_send_partial (worker, &partial), 0);
        sent++;
        if (args->max_delay)
            zclock_sleep ((int)(rand_r (&args->seed) % 3));
    }
    cJSON_AddNumberToObject (data, "parts", sent);
    s_reply_action (mdp_msg_action (request), action, sizeof action);
    return mdp_msg_new (action, data);
}

static void s_worker_actor (zsock_t *pipe, void *arg)
{
    worker_args_t args = *(worker_args_t *)arg;
    mdp_worker_t *worker = mdp_worker_new (endpoint, args.service);
    mdp_worker_set_protocol (worker, args.protocol);
    mdp_worker_set_handler (worker, s_stream_hook, &args);
    mdp_worker_set_reconnect (worker, 20, 200);
    tu_worker_run (pipe, &worker);
}

static zactor_t *s_worker_start (worker_args_t args)
{
    zactor_t *actor = zactor_new (s_worker_actor, &args);
    ck_assert_ptr_nonnull (actor);
    return actor;
}

static void s_wait_service (const char *service)
{
    ck_assert_msg (tu_wait_service (endpoint, service, 20000), "no worker for %s", service);
}

//  --- each client, reporting what it got as one transcript --------------------
//  A transcript has one line per reply: "partial|final ACTION DATA".

static void s_line (zchunk_t *transcript, const char *kind, const char *action, cJSON *data)
{
    char *json = cJSON_PrintUnformatted (data);
    char *line = zsys_sprintf ("%s %s %s\n", kind, action, json);
    zchunk_extend (transcript, line, strlen (line));
    zstr_free (&line);
    free (json);
}

static char *s_transcript_end (zchunk_t **transcript_p)
{
    zchunk_extend (*transcript_p, "", 1);
    char *text = strdup ((char *)zchunk_data (*transcript_p));
    zchunk_destroy (transcript_p);
    return text;
}

static mdp_client_t *s_client (void)
{
    mdp_client_t *client = mdp_client_new (endpoint);
    ck_assert_ptr_nonnull (client);
    mdp_client_set_timeout (client, tu_scale (10000));
    mdp_client_set_retries (client, 1);
    return client;
}

static char *s_via_client_v1 (const char *service, const char *action, const char *json)
{
    zchunk_t *transcript = zchunk_new (NULL, 0);
    mdp_client_t *client = s_client ();
    mdp_msg_t *request = mdp_msg_new (action, cJSON_Parse (json));
    mdp_msg_t *reply = mdp_client_request (client, service, &request);
    ck_assert_msg (reply, "MDPC01 client: no reply (errno %d)", errno);
    s_line (transcript, "final", mdp_msg_action (reply), mdp_msg_data (reply));
    mdp_msg_destroy (&reply);
    mdp_client_destroy (&client);
    return s_transcript_end (&transcript);
}

static void s_on_partial (mdp_msg_t *partial, void *arg)
{
    s_line (arg, "partial", mdp_msg_action (partial), mdp_msg_data (partial));
}

static char *s_via_client_stream (const char *service, const char *action, const char *json)
{
    zchunk_t *transcript = zchunk_new (NULL, 0);
    mdp_client_t *client = s_client ();
    mdp_msg_t *request = mdp_msg_new (action, cJSON_Parse (json));
    mdp_msg_t *reply =
        mdp_client_request_stream (client, service, &request, s_on_partial, transcript);
    ck_assert_msg (reply, "MDPC02 client: no final reply (errno %d)", errno);
    s_line (transcript, "final", mdp_msg_action (reply), mdp_msg_data (reply));
    mdp_msg_destroy (&reply);
    mdp_client_destroy (&client);
    return s_transcript_end (&transcript);
}

static char *s_via_async (const char *service, const char *action, const char *json)
{
    zchunk_t *transcript = zchunk_new (NULL, 0);
    mdp_async_t *client = mdp_async_new (endpoint);
    mdp_async_set_timeout (client, tu_scale (10000));
    mdp_msg_t *request = mdp_msg_new (action, cJSON_Parse (json));
    uint64_t sent = mdp_async_send (client, service, &request);
    ck_assert (sent != 0);
    bool final = false;
    while (!final) {
        uint64_t id;
        mdp_msg_t *reply = mdp_async_recv (client, &id, &final, tu_scale (20000));
        ck_assert_msg (reply, "async client: no reply (errno %d)", errno);
        ck_assert_int_eq (id, sent);
        s_line (transcript, final ? "final" : "partial", mdp_msg_action (reply),
                mdp_msg_data (reply));
        mdp_msg_destroy (&reply);
    }
    mdp_async_destroy (&client);
    return s_transcript_end (&transcript);
}

//  One client program that prints a JSON line per reply; field names the
//  reply's kind ("command" or "final") and how to tell a partial.
static char *s_via_program (char *const argv[], bool pyzmq_peer)
{
    static char out[65536];
    int code = tu_run_capture (argv, out, sizeof out, 20000);
    ck_assert_msg (code == 0, "%s exited %d: %s", argv[1], code, out);
    zchunk_t *transcript = zchunk_new (NULL, 0);
    for (char *line = strtok (out, "\n"); line; line = strtok (NULL, "\n")) {
        cJSON *item = cJSON_Parse (line);
        ck_assert_msg (item, "not JSON: %s", line);
        const char *action = cJSON_GetStringValue (cJSON_GetObjectItem (item, "action"));
        const char *kind = "final";
        if (pyzmq_peer)
            kind = cJSON_GetStringValue (cJSON_GetObjectItem (item, "command"));
        ck_assert_msg (action && kind, "unexpected line: %s", line);
        s_line (transcript, kind, action, cJSON_GetObjectItem (item, "data"));
        cJSON_Delete (item);
    }
    return s_transcript_end (&transcript);
}

static char *s_via_pyzmq_client (const char *service, const char *action, const char *json)
{
    char *const argv[] = {PYTHON,         PEER,         "client",    endpoint, (char *)service,
                          (char *)action, (char *)json, "--timeout", "10",     NULL};
    return s_via_program (argv, true);
}

//  majortomo's MDP/0.2 client: REQUEST 0x02, replies 0x03/0x04 without the
//  service frame (mdp02_peer.py majortomo).
static char *s_via_majortomo (const char *service, const char *action, const char *json)
{
    char *const argv[] = {PYTHON,         PEER,         "majortomo", endpoint, (char *)service,
                          (char *)action, (char *)json, "--timeout", "10",     NULL};
    return s_via_program (argv, true);
}

//  Domogik's own MDPC01 client (REQ): one reply, printed with its frames.
static char *s_via_domogik_client (const char *service, const char *action, const char *json)
{
    char *const argv[] = {PYTHON,
                          "tests/interop/domogik_client.py",
                          endpoint,
                          (char *)service,
                          (char *)action,
                          (char *)json,
                          "--timeout",
                          "10",
                          NULL};
    return s_via_program (argv, false);
}

//  The transcript a client should see from a worker that sends partials: with
//  partials false, only the final line (an MDP/0.1 client).
static char *s_expected (int parts, bool partials)
{
    zchunk_t *transcript = zchunk_new (NULL, 0);
    for (int part = 0; partials && part < parts; part++) {
        char *line = zsys_sprintf ("partial config.get.partial {\"part\":%d}\n", part);
        zchunk_extend (transcript, line, strlen (line));
        zstr_free (&line);
    }
    char *line = zsys_sprintf ("final config.result {\"key\":\"v\",\"parts\":%d}\n", parts);
    zchunk_extend (transcript, line, strlen (line));
    zstr_free (&line);
    return s_transcript_end (&transcript);
}

typedef char *(client_fn)(const char *service, const char *action, const char *json);

//  Ask service once through every kind of client and check each transcript.
static void s_every_client (const char *service, int parts)
{
    struct {
        const char *name; //  for the failure message
        client_fn *fn;    //  the client
        bool mdp02;       //  speaks MDP/0.2: sees the partials
    } clients[] = {{"libmdp MDPC01", s_via_client_v1, false},
                   {"libmdp MDPC02", s_via_client_stream, true},
                   {"libmdp async", s_via_async, true},
                   {"pyzmq MDPC02", s_via_pyzmq_client, true},
                   {"majortomo MDPC02", s_via_majortomo, true},
                   {"Domogik MDPC01", s_via_domogik_client, false}};
    for (size_t index = 0; index < sizeof clients / sizeof clients[0]; index++) {
        char *expected = s_expected (parts, clients[index].mdp02);
        char *actual = clients[index].fn (service, "config.get", "{\"key\": \"v\"}");
        ck_assert_msg (streq (actual, expected), "%s client of %s:\n%s\nexpected:\n%s",
                       clients[index].name, service, actual, expected);
        free (expected);
        free (actual);
    }
}

START_TEST (test_libmdp_mdpw01_worker)
{
    zactor_t *worker = s_worker_start ((worker_args_t){"old", 1, PARTIALS, 0, 0});
    s_wait_service ("old");
    s_every_client ("old", 0); //  it cannot send partials: the final only
    zactor_destroy (&worker);
}
END_TEST

START_TEST (test_libmdp_mdpw02_worker)
{
    zactor_t *worker = s_worker_start ((worker_args_t){"new", 2, PARTIALS, 0, 0});
    s_wait_service ("new");
    s_every_client ("new", PARTIALS);
    zactor_destroy (&worker);
}
END_TEST

START_TEST (test_pyzmq_mdpw02_worker)
{
    char *const argv[] = {PYTHON,       PEER, "worker",    endpoint, "peer",
                          "--partials", "3",  "--seconds", "120",    NULL};
    int fds[2];
    ck_assert_int_eq (pipe (fds), 0);
    pid_t pid = tu_spawn (argv, fds[1]);
    close (fds[1]);
    char *ready = tu_read_line_with (fds[0], "READY", 30000);
    ck_assert_ptr_nonnull (ready);
    free (ready);
    s_wait_service ("peer");
    s_every_client ("peer", PARTIALS);
    ck_assert_int_eq (tu_stop (pid, SIGTERM, 5000), 0);
    close (fds[0]);
}
END_TEST

//  majortomo's client gets MMI answers and error replies in its dialect too.
START_TEST (test_majortomo_mmi_and_errors)
{
    zactor_t *worker = s_worker_start ((worker_args_t){"mt", 2, 0, 0, 0});
    s_wait_service ("mt");
    static char out[4096];
    char *const mmi[] = {PYTHON, PEER, "majortomo", endpoint, "mmi.service", "mt", NULL};
    ck_assert_int_eq (tu_run_capture (mmi, out, sizeof out, 20000), 0);
    ck_assert_str_eq (out, "{\"command\": \"final\", \"frames\": [\"200\"], \"action\": "
                           "\"200\", \"data\": null}\n");
    //  The first body frame is a number, so the broker takes it as the timeout
    //  (spec section 6): no worker within 0.3 s is a 504.
    char *const none[] = {PYTHON, PEER,    "majortomo", endpoint, "nobody",
                          "0.3",  "x.get", "{}",        NULL};
    ck_assert_int_eq (tu_run_capture (none, out, sizeof out, 20000), 0);
    cJSON *line = cJSON_Parse (out);
    ck_assert_ptr_nonnull (line);
    ck_assert_str_eq (cJSON_GetStringValue (cJSON_GetObjectItem (line, "action")), "mdp.error");
    cJSON *code = cJSON_GetObjectItem (cJSON_GetObjectItem (line, "data"), "code");
    ck_assert_int_eq (code ? code->valueint : 0, 504);
    cJSON_Delete (line);
    zactor_destroy (&worker);
}
END_TEST

//  --- correlation under reordering ------------------------------------------

#define IN_FLIGHT 200
#define WORKERS 4

START_TEST (test_async_many_in_flight_reordered)
{
    zactor_t *workers[WORKERS];
    for (int index = 0; index < WORKERS; index++)
        workers[index] =
            s_worker_start ((worker_args_t){"busy", 2, -1, 20, 1234u + (unsigned int)index});
    s_wait_service ("busy");
    mdp_async_t *client = mdp_async_new (endpoint);
    mdp_async_set_timeout (client, tu_scale (20000));
    uint64_t ids[IN_FLIGHT];
    int partials[IN_FLIGHT], got[IN_FLIGHT] = {0}, finals[IN_FLIGHT] = {0}, done = 0;
    for (int n = 0; n < IN_FLIGHT; n++) {
        partials[n] = n % 4;
        cJSON *data = cJSON_CreateObject ();
        cJSON_AddNumberToObject (data, "n", n);
        cJSON_AddNumberToObject (data, "partials", partials[n]);
        mdp_msg_t *request = mdp_msg_new ("job.do", data);
        ids[n] = mdp_async_send (client, "busy", &request);
        ck_assert (ids[n] != 0);
    }
    int out_of_order = 0; //  finals that overtook an earlier request's
    int last_final = -1;
    while (done < IN_FLIGHT) {
        uint64_t id;
        bool final;
        mdp_msg_t *reply = mdp_async_recv (client, &id, &final, tu_scale (20000));
        ck_assert_msg (reply, "%d of %d done, then errno %d", done, IN_FLIGHT, errno);
        cJSON *data = mdp_msg_data (reply);
        int n = (int)cJSON_GetNumberValue (cJSON_GetObjectItem (data, "n"));
        ck_assert_msg (n >= 0 && n < IN_FLIGHT && ids[n] == id, "reply for %d on id %d", n,
                       (int)id);
        ck_assert_int_eq (finals[n], 0);
        if (final) {
            ck_assert_int_eq (cJSON_GetNumberValue (cJSON_GetObjectItem (data, "parts")),
                              partials[n]);
            ck_assert_int_eq (got[n], partials[n]);
            finals[n]++;
            done++;
            out_of_order += n < last_final;
            last_final = n;
        } else
            ck_assert_int_eq (cJSON_GetNumberValue (cJSON_GetObjectItem (data, "part")), got[n]++);
        mdp_msg_destroy (&reply);
    }
    ck_assert_int_eq (mdp_async_pending (client), 0);
    ck_assert_msg (out_of_order > 0, "the replies never came out of order: nothing was tested");
    mdp_async_destroy (&client);
    for (int index = 0; index < WORKERS; index++)
        zactor_destroy (&workers[index]);
}
END_TEST

//  --- the programs ------------------------------------------------------------

static int s_count_lines (const char *text, const char *needle)
{
    int count = 0;
    for (const char *at = text; (at = strstr (at, needle)); at += strlen (needle))
        count++;
    return count;
}

START_TEST (test_mdp_req_stream_program)
{
    zactor_t *worker = s_worker_start ((worker_args_t){"llm", 2, PARTIALS, 0, 0});
    s_wait_service ("llm");
    static char out[8192];
    char *req = strdup (tu_program ("mdp-req"));
    char *const argv[] = {req,        "-e",  endpoint, "-t",        "20000",
                          "--stream", "llm", "ask",    "{\"q\":1}", NULL};
    ck_assert_int_eq (tu_run_capture (argv, out, sizeof out, 30000), 0);
    const char *expected = "{\"action\":\"ask.partial\",\"data\":{\"part\":0}}\n"
                           "{\"action\":\"ask.partial\",\"data\":{\"part\":1}}\n"
                           "{\"action\":\"ask.partial\",\"data\":{\"part\":2}}\n"
                           "{\"action\":\"ask.result\",\"data\":{\"q\":1,\"parts\":3}}\n";
    ck_assert_str_eq (out, expected);
    //  -s is --stream; without it, only the final line
    char *const plain[] = {req, "-e", endpoint, "-t", "20000", "llm", "ask", "{\"q\":1}", NULL};
    ck_assert_int_eq (tu_run_capture (plain, out, sizeof out, 30000), 0);
    ck_assert_str_eq (out, "{\"action\":\"ask.result\",\"data\":{\"q\":1,\"parts\":3}}\n");
    char *const shortopt[] = {req, "-e", endpoint, "-s", "llm", "ask", NULL};
    ck_assert_int_eq (tu_run_capture (shortopt, out, sizeof out, 30000), 0);
    ck_assert_int_eq (s_count_lines (out, "ask.partial"), PARTIALS);
    free (req);

    //  mdp-async-req: five requests at once, every reply on its own line
    char *async = strdup (tu_program ("mdp-async-req"));
    char *const many[] = {async, "-e",  endpoint, "-t",        "20000", "-n",
                          "5",   "llm", "ask",    "{\"q\":2}", NULL};
    ck_assert_int_eq (tu_run_capture (many, out, sizeof out, 30000), 0);
    ck_assert_int_eq (s_count_lines (out, "\"final\":false"), 5 * PARTIALS);
    ck_assert_int_eq (s_count_lines (out, "\"final\":true"), 5);
    for (int seq = 0; seq < 5; seq++) {
        char *final = zsys_sprintf ("\"final\":true,\"action\":\"ask.result\",\"data\":"
                                    "{\"q\":2,\"seq\":%d,\"parts\":3}",
                                    seq);
        ck_assert_msg (strstr (out, final), "no %s in\n%s", final, out);
        zstr_free (&final);
    }
    //  A broker with no room in its queues answers 503 at once: exit 1
    char wait[16];
    snprintf (wait, sizeof wait, "%d", tu_scale (5000));
    static broker_config_t full_cfg;
    broker_config_defaults (&full_cfg);
    full_cfg.max_queue = 0;
    broker_actor_args_t full_args = {NULL, &full_cfg};
    zactor_t *full = zactor_new (broker_actor, &full_args);
    zstr_send (full, "ENDPOINT");
    char *full_endpoint = zstr_recv (full);
    char *const lost[] = {async, "-e", full_endpoint, "-t", wait, "-n", "2", "nobody", "x", NULL};
    ck_assert_int_eq (tu_run_capture (lost, out, sizeof out, 30000), 1);
    ck_assert_int_eq (s_count_lines (out, "\"action\":\"mdp.error\""), 2);
    ck_assert_int_eq (s_count_lines (out, "503"), 2);
    zstr_free (&full_endpoint);
    zactor_destroy (&full);
    //  The broker's 504 (just before our own deadline) is a timeout: exit 3,
    //  the mdp.error lines printed all the same
    //  (-t 2000: the broker's margin is 100 ms, room enough on a loaded machine)
    //  (On a starved machine our own deadline can still come first: then no
    //  line, and exit 3 all the same; every line printed must be the 504.)
    char *const late[] = {async, "-e", endpoint, "-t", "2000", "-n", "2", "nobody", "x", NULL};
    ck_assert_int_eq (tu_run_capture (late, out, sizeof out, 30000), 3);
    ck_assert_int_eq (s_count_lines (out, "\"action\":\"mdp.error\""), s_count_lines (out, "504"));
    //  No broker at all: every request times out, exit 3
    char *const none[] = {async, "-e", "tcp://127.0.0.1:1", "-t", "100", "-n", "3", "x", "y", NULL};
    ck_assert_int_eq (tu_run_capture (none, out, sizeof out, 30000), 3);
    ck_assert_str_eq (out, "");
    free (async);
    zactor_destroy (&worker);
}
END_TEST

int main (void)
{
    Suite *suite = suite_create ("e2e-stream");
    TCase *tc = tcase_create ("stream");
    tcase_add_checked_fixture (tc, s_setup, s_teardown);
    tcase_set_timeout (tc, 120);
    tcase_add_test (tc, test_libmdp_mdpw01_worker);
    tcase_add_test (tc, test_libmdp_mdpw02_worker);
    tcase_add_test (tc, test_pyzmq_mdpw02_worker);
    tcase_add_test (tc, test_majortomo_mmi_and_errors);
    tcase_add_test (tc, test_async_many_in_flight_reordered);
    tcase_add_test (tc, test_mdp_req_stream_program);
    suite_add_tcase (suite, tc);
    return tu_run_suite (suite);
}
