/*  test_e2e_core.c - end to end through real sockets and real processes: our
    client, broker and worker together; pyzmq peers shaped like Domogik's
    MQSyncReq and MQRep against our broker; the mdp-req and mdp-echo-worker
    programs; a worker that survives a broker restart.
*/
#include "broker.h"
#include "mdp.h"
#include "testutil.h"
#include <check.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#define PYTHON "/usr/bin/python3"

static zactor_t *broker;
static char *endpoint;

static zactor_t *s_broker_start_queue (const char *bind, int heartbeat, size_t max_queue)
{
    static broker_config_t cfg;
    broker_config_defaults (&cfg);
    cfg.heartbeat = heartbeat;
    cfg.max_queue = max_queue;
    broker_actor_args_t args = {bind, &cfg};
    zactor_t *actor = zactor_new (broker_actor, &args);
    ck_assert_ptr_nonnull (actor);
    return actor;
}

static zactor_t *s_broker_start (const char *bind, int heartbeat)
{
    return s_broker_start_queue (bind, heartbeat, 10000);
}

static void s_setup (void)
{
    broker = s_broker_start (NULL, 2500);
    zstr_send (broker, "ENDPOINT");
    endpoint = zstr_recv (broker);
    ck_assert_ptr_nonnull (endpoint);
}

static void s_teardown (void)
{
    zactor_destroy (&broker);
    zstr_free (&endpoint);
}

//  --- our worker in a thread: an actor over mdp_worker_socket/process -------

typedef struct {
    const char *service; //  service to offer
    int heartbeat;       //  msecs
} worker_args_t;

static mdp_msg_t *s_echo (mdp_worker_t *worker, mdp_msg_t *request, void *arg)
{
    cJSON *data = cJSON_Duplicate (mdp_msg_data (request), 1);
    if (cJSON_IsObject (data))
        cJSON_AddStringToObject (data, "served_by", "libmdp");
    char action[256];
    snprintf (action, sizeof action, "%s.result", mdp_msg_action (request));
    return mdp_msg_new (action, data);
}

static void s_worker_actor (zsock_t *pipe, void *args)
{
    worker_args_t *wargs = args;
    mdp_worker_t *worker = mdp_worker_new (endpoint, wargs->service);
    mdp_worker_set_handler (worker, s_echo, NULL);
    if (wargs->heartbeat)
        mdp_worker_set_heartbeat (worker, wargs->heartbeat, 3);
    mdp_worker_set_reconnect (worker, 20, 200);
    tu_worker_run (pipe, &worker);
}

static zactor_t *s_worker_start (const char *service, int heartbeat)
{
    static worker_args_t args;
    args = (worker_args_t){service, heartbeat};
    return zactor_new (s_worker_actor, &args);
}

//  Wait until the broker reports a worker for service.
static void s_wait_service (const char *service)
{
    ck_assert_msg (tu_wait_service (endpoint, service, 5000), "no worker for %s", service);
}

START_TEST (test_client_broker_worker)
{
    zactor_t *worker = s_worker_start ("echo", 0);
    mdp_client_t *client = tu_client (endpoint, 3000);
    for (int i = 0; i < 20; i++) {
        cJSON *data = cJSON_CreateObject ();
        cJSON_AddNumberToObject (data, "n", i);
        mdp_msg_t *request = mdp_msg_new ("config.get", data);
        mdp_msg_t *reply = mdp_client_request (client, "echo", &request);
        ck_assert_ptr_null (request);
        ck_assert_ptr_nonnull (reply);
        ck_assert_str_eq (mdp_msg_action (reply), "config.get.result");
        ck_assert_int_eq (cJSON_GetObjectItem (mdp_msg_data (reply), "n")->valueint, i);
        mdp_msg_destroy (&reply);
    }
    //  The management interface through the public call
    char *answer = mdp_client_mmi (client, "mmi.service", "echo");
    ck_assert_str_eq (answer, "200");
    free (answer);
    answer = mdp_client_mmi (client, "mmi.services", "all");
    ck_assert_str_eq (answer, "echo");
    free (answer);
    answer = mdp_client_mmi (client, "mmi.nonsense", "all");
    ck_assert_str_eq (answer, "501");
    free (answer);
    mdp_client_destroy (&client);
    zactor_destroy (&worker);
}
END_TEST

START_TEST (test_unknown_service_gets_504)
{
    //  Deadline 0.3 s in the timeout frame, but the client waits 10 s: the
    //  broker's 504 must arrive, not silence.
    char out[4096];
    char *const argv[] = {PYTHON,       "tests/interop/domogik_client.py",
                          endpoint,     "nobody",
                          "config.get", "{}",
                          "--timeout",  "0.3",
                          "--wait",     "10",
                          NULL};
    ck_assert_int_eq (tu_run_capture (argv, out, sizeof out, 15000), 0);
    ck_assert_msg (strstr (out, "\"mdp.error\"") && strstr (out, "504"), "%s", out);
}
END_TEST

START_TEST (test_domogik_client_to_our_worker)
{
    zactor_t *worker = s_worker_start ("dbmgr", 0);
    s_wait_service ("dbmgr");
    char out[4096];
    char *const argv[] = {PYTHON,       "tests/interop/domogik_client.py",
                          endpoint,     "dbmgr",
                          "config.get", "{\"key\": \"x\"}",
                          "--timeout",  "10",
                          NULL};
    ck_assert_int_eq (tu_run_capture (argv, out, sizeof out, 15000), 0);
    //  REQ strips the delimiter: ["MDPC01"][service][action][json], no timeout frame.
    ck_assert_msg (strstr (out, "\"frames\": [\"MDPC01\", \"dbmgr\", \"config.get.result\""), "%s",
                   out);
    ck_assert_msg (strstr (out, "\"served_by\": \"libmdp\""), "%s", out);
    ck_assert_msg (strstr (out, "\"key\": \"x\""), "%s", out);
    //  Domogik's "None" timeout is stripped too, not taken for the action.
    char *const none[] = {PYTHON,         "tests/interop/domogik_client.py",
                          endpoint,       "dbmgr",
                          "config.get",   "{}",
                          "--no-timeout", "--wait",
                          "10",           NULL};
    ck_assert_int_eq (tu_run_capture (none, out, sizeof out, 15000), 0);
    ck_assert_msg (strstr (out, "\"config.get.result\""), "%s", out);
    //  MMI the Domogik way: [timeout][name].
    char *const mmi[] = {
        PYTHON, "tests/interop/domogik_client.py", endpoint, "mmi.service", "dbmgr", "--mmi", NULL};
    ck_assert_int_eq (tu_run_capture (mmi, out, sizeof out, 15000), 0);
    ck_assert_msg (strstr (out, "[\"MDPC01\", \"mmi.service\", \"200\"]"), "%s", out);
    zactor_destroy (&worker);
}
END_TEST

START_TEST (test_our_client_to_domogik_worker)
{
    char *const argv[] = {
        PYTHON, "tests/interop/domogik_worker.py", endpoint, "manager", "--seconds", "60", NULL};
    pid_t pid = tu_spawn (argv, -1);
    s_wait_service ("manager");
    mdp_client_t *client = tu_client (endpoint, 5000);
    cJSON *data = cJSON_Parse ("{\"id\": \"diskfree\"}");
    mdp_msg_t *request = mdp_msg_new ("plugin.start.do", data);
    mdp_msg_t *reply = mdp_client_request (client, "manager", &request);
    ck_assert_ptr_nonnull (reply);
    ck_assert_str_eq (mdp_msg_action (reply), "plugin.start.result");
    cJSON *id = cJSON_GetObjectItem (mdp_msg_data (reply), "id");
    ck_assert_str_eq (cJSON_GetStringValue (id), "diskfree");
    cJSON *by = cJSON_GetObjectItem (mdp_msg_data (reply), "served_by");
    ck_assert_str_eq (cJSON_GetStringValue (by), "pyzmq");
    mdp_msg_destroy (&reply);
    mdp_client_destroy (&client);
    ck_assert_int_eq (tu_stop (pid, SIGTERM, 5000), 0);
}
END_TEST

START_TEST (test_mdp_req_and_echo_worker_programs)
{
    char *const wargv[] = {(char *)strdup (tu_program ("mdp-echo-worker")), "-e", endpoint, "echo",
                           NULL};
    pid_t worker = tu_spawn (wargv, -1);
    s_wait_service ("echo");
    char out[4096], *req = strdup (tu_program ("mdp-req"));
    char *const ok[] = {req,    "-e",         endpoint,     "-t", "5000",
                        "echo", "config.get", "{\"a\": 1}", NULL};
    ck_assert_int_eq (tu_run_capture (ok, out, sizeof out, 15000), 0);
    ck_assert_msg (strstr (out, "\"action\":\"config.result\"") ||
                       strstr (out, "\"action\": \"config.result\""),
                   "%s", out);
    ck_assert_msg (strstr (out, "\"a\""), "%s", out);
    //  An mdp.error reply is printed, exit 1: a broker with no room in its
    //  queues answers 503 at once.
    zactor_t *full = s_broker_start_queue (NULL, 2500, 0);
    zstr_send (full, "ENDPOINT");
    char *full_endpoint = zstr_recv (full);
    char *const err[] = {req, "-e", full_endpoint, "nobody", "x.get", NULL};
    ck_assert_int_eq (tu_run_capture (err, out, sizeof out, 15000), 1);
    ck_assert_msg (strstr (out, "mdp.error") && strstr (out, "503"), "%s", out);
    zstr_free (&full_endpoint);
    zactor_destroy (&full);
    //  The broker's 504 (sent just before our own deadline) is a timeout:
    //  exit 3, the mdp.error line printed all the same.
    //  (-t 2000: the broker's margin is 100 ms, room enough on a loaded machine)
    char *const late[] = {req, "-e", endpoint, "-t", "2000", "nobody", "x.get", "{}", NULL};
    ck_assert_int_eq (tu_run_capture (late, out, sizeof out, 15000), 3);
    ck_assert_msg (strstr (out, "mdp.error") && strstr (out, "504"), "%s", out);
    //  Invalid JSON argument: exit 2.
    char *const bad[] = {req, "-e", endpoint, "echo", "x.get", "{not json", NULL};
    ck_assert_int_eq (tu_run_capture (bad, out, sizeof out, 15000), 2);
    //  Nobody listening: exit 3 after the retries.
    char *const none[] = {req, "-e", "tcp://127.0.0.1:1", "-t", "100", "-r", "2", "echo",
                          "x", NULL};
    ck_assert_int_eq (tu_run_capture (none, out, sizeof out, 15000), 3);
    ck_assert_int_eq (tu_stop (worker, SIGTERM, 5000), 0);
    free (wargv[0]);
    free (req);
}
END_TEST

//  Issue 12 item 3: numbers of any size come back as written, through
//  mdp-req to a pyzmq worker (which re-encodes: Python writes 1e308 as
//  1e+308, its own doing), and through mdp-req and mdp-async-req to
//  mdp-echo-worker, where nothing re-encodes: byte for byte.
START_TEST (test_numbers_pass_as_written)
{
    char *const pargv[] = {
        PYTHON, "tests/interop/domogik_worker.py", endpoint, "svc", "--seconds", "60", NULL};
    pid_t python = tu_spawn (pargv, -1);
    char *const wargv[] = {(char *)strdup (tu_program ("mdp-echo-worker")), "-e", endpoint, "echo",
                           NULL};
    pid_t worker = tu_spawn (wargv, -1);
    s_wait_service ("svc");
    s_wait_service ("echo");
    char out[4096], *req = strdup (tu_program ("mdp-req"));
    char *const to_python[] = {req,   "-e",    endpoint,      "-t", "10000",
                               "svc", "x.get", TU_NUMBERS_IN, NULL};
    ck_assert_int_eq (tu_run_capture (to_python, out, sizeof out, 20000), 0);
    ck_assert_str_eq (out,
                      "{\"action\":\"x.result\",\"data\":{\"n\":[9007199254740993,"
                      "12345678901234567890,0.1,1e+308,-0.0,9223372036854775807,"
                      "-9223372036854775808,18446744073709551616],\"served_by\":\"pyzmq\"}}\n");
    char *const to_echo[] = {req,    "-e",    endpoint,      "-t", "10000",
                             "echo", "x.get", TU_NUMBERS_IN, NULL};
    ck_assert_int_eq (tu_run_capture (to_echo, out, sizeof out, 20000), 0);
    ck_assert_str_eq (out, "{\"action\":\"x.result\",\"data\":" TU_NUMBERS "}\n");
    char *async = strdup (tu_program ("mdp-async-req"));
    char *const async_echo[] = {async,  "-e",    endpoint,      "-t", "10000",
                                "echo", "x.get", TU_NUMBERS_IN, NULL};
    ck_assert_int_eq (tu_run_capture (async_echo, out, sizeof out, 20000), 0);
    ck_assert_msg (strstr (out, "\"data\":{\"n\":[" TU_NUMBERS_LIST "],\"seq\":0}}\n"), "%s", out);
    ck_assert_int_eq (tu_stop (worker, SIGTERM, 5000), 0);
    ck_assert_int_eq (tu_stop (python, SIGTERM, 5000), 0);
    free (wargv[0]);
    free (req);
    free (async);
}
END_TEST

START_TEST (test_worker_survives_broker_restart)
{
    //  Restart on the same port: the worker hears nothing or gets DISCONNECT
    //  for its heartbeats, reconnects and registers again.
    s_teardown ();
    int heartbeat = tu_scale (100);
    broker = s_broker_start ("tcp://127.0.0.1:*", heartbeat);
    zstr_send (broker, "ENDPOINT");
    endpoint = zstr_recv (broker);
    zactor_t *worker = s_worker_start ("phoenix", heartbeat);
    s_wait_service ("phoenix");
    zactor_destroy (&broker);
    broker = s_broker_start (endpoint, heartbeat);
    s_wait_service ("phoenix");
    mdp_client_t *client = tu_client (endpoint, 3000);
    mdp_msg_t *request = mdp_msg_new ("x.get", NULL);
    mdp_msg_t *reply = mdp_client_request (client, "phoenix", &request);
    ck_assert_ptr_nonnull (reply);
    ck_assert_str_eq (mdp_msg_action (reply), "x.get.result");
    mdp_msg_destroy (&reply);
    mdp_client_destroy (&client);
    zactor_destroy (&worker);
}
END_TEST

START_TEST (test_broker_program_serves_and_stops_on_sigterm)
{
    int fds[2];
    ck_assert_int_eq (pipe (fds), 0);
    char *program = strdup (tu_program ("mdp-broker"));
    char *const argv[] = {program, "-e", "tcp://127.0.0.1:*", NULL};
    pid_t pid = tu_spawn_err (argv, -1, fds[1]);
    close (fds[1]);
    char *line = tu_read_line_with (fds[0], "serving on ", 5000);
    ck_assert_ptr_nonnull (line);
    char *bound = strstr (line, "tcp://");
    ck_assert_ptr_nonnull (bound);
    *strchr (bound, ' ') = 0;
    mdp_client_t *client = mdp_client_new (bound);
    mdp_client_set_timeout (client, tu_scale (2000));
    ck_assert_int_eq (mdp_client_has_service (client, "nothing"), 0); //  it answers: 404
    mdp_client_destroy (&client);
    int status = tu_stop (pid, SIGTERM, 1000);
    ck_assert (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    close (fds[0]);
    free (line);
    free (program);
}
END_TEST

int main (void)
{
    Suite *suite = suite_create ("e2e-core");
    TCase *tc = tcase_create ("core");
    tcase_add_checked_fixture (tc, s_setup, s_teardown);
    tcase_set_timeout (tc, 60);
    tcase_add_test (tc, test_client_broker_worker);
    tcase_add_test (tc, test_unknown_service_gets_504);
    tcase_add_test (tc, test_domogik_client_to_our_worker);
    tcase_add_test (tc, test_our_client_to_domogik_worker);
    tcase_add_test (tc, test_mdp_req_and_echo_worker_programs);
    tcase_add_test (tc, test_numbers_pass_as_written);
    tcase_add_test (tc, test_worker_survives_broker_restart);
    tcase_add_test (tc, test_broker_program_serves_and_stops_on_sigterm);
    suite_add_tcase (suite, tc);
    return tu_run_suite (suite);
}
