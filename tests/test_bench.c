/*  test_bench.c - mdp-bench as a tool: it runs against mdp-broker and against
    mdp-relay, in sync, async and pipe mode, with extra services and idle
    workers and as processes, and prints one JSON object with the number of
    requests it was asked for. Then mdp-relay itself, driven frame by frame:
    the client's routing id as the token, one request per worker, LRU, the
    FIFO, DISCONNECT, and what it drops. No figure is ever asserted.
*/
#include "daemon_harness.h"
#include "testutil.h"
#include <check.h>
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <unistd.h>

//  Run mdp-bench with args (NULL-terminated) and return its stdout parsed as
//  JSON; the exit code must be 0.
static cJSON *s_bench (const char *arg, ...)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = strdup (tu_program ("mdp-bench"));
    va_list args;
    va_start (args, arg);
    for (const char *next = arg; next && argc < 30; next = va_arg (args, const char *))
        argv[argc++] = (char *)next;
    va_end (args);
    argv[argc++] = "--json";
    argv[argc] = NULL;
    int fds[2];
    ck_assert_int_eq (pipe (fds), 0);
    pid_t pid = tu_spawn (argv, fds[1]);
    close (fds[1]);
    ck_assert_int_gt (pid, 0);
    //  One JSON line: it fits in the pipe, so it can be read after the exit.
    int code = tu_wait_exit (pid, 60000);
    char output[16384];
    ssize_t size = read (fds[0], output, sizeof output - 1);
    close (fds[0]);
    free (argv[0]);
    ck_assert_int_eq (code, 0);
    ck_assert_int_gt (size, 0);
    output[size] = 0;
    const char *end = NULL;
    cJSON *json = cJSON_ParseWithOpts (output, &end, false);
    ck_assert_msg (json != NULL, "not JSON: %s", output);
    return json;
}

static double s_number (const cJSON *object, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive (object, name);
    ck_assert_msg (cJSON_IsNumber (item), "no number '%s'", name);
    return item->valuedouble;
}

static void s_check_run (const cJSON *run, const char *broker, double requests)
{
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive (run, "broker");
    ck_assert (cJSON_IsString (kind));
    ck_assert_str_eq (kind->valuestring, broker);
    ck_assert_double_eq (s_number (run, "requests"), requests);
    ck_assert_double_eq (s_number (run, "errors"), 0);
    const cJSON *latency = cJSON_GetObjectItemCaseSensitive (run, "latency_us");
    ck_assert (cJSON_IsObject (latency));
    ck_assert (s_number (latency, "p50") <= s_number (latency, "max"));
}

START_TEST (test_sync_against_mdp_broker)
{
    cJSON *json = s_bench ("--broker", "mdp", "-n", "200", NULL);
    s_check_run (json, "mdp", 200);
    const cJSON *mode = cJSON_GetObjectItemCaseSensitive (json, "mode");
    ck_assert_str_eq (mode->valuestring, "sync");
    //  It measured a broker it started: CPU and memory are known.
    ck_assert (s_number (json, "broker_rss_kib") > 0);
    cJSON_Delete (json);
}
END_TEST

START_TEST (test_async_against_raw_relay)
{
    cJSON *json = s_bench ("--broker", "raw", "--mode", "async", "-W", "8", "-c", "3", "-w", "2",
                           "-n", "200", NULL);
    s_check_run (json, "raw", 200);
    ck_assert_double_eq (s_number (json, "window"), 8);
    cJSON_Delete (json);
}
END_TEST

START_TEST (test_both_with_services_and_idle_workers)
{
    cJSON *json = s_bench ("--broker", "both", "--mode", "async", "-c", "2", "-w", "2", "-s",
                           "20000", "--services", "5", "--idle-workers", "3", "-n", "200", NULL);
    s_check_run (cJSON_GetObjectItemCaseSensitive (json, "mdp"), "mdp", 200);
    s_check_run (cJSON_GetObjectItemCaseSensitive (json, "raw"), "raw", 200);
    ck_assert (cJSON_IsObject (cJSON_GetObjectItemCaseSensitive (json, "ratio")));
    cJSON_Delete (json);
}
END_TEST

START_TEST (test_processes_and_uneven_split)
{
    //  200 requests over 3 clients: 67 + 67 + 66.
    cJSON *json = s_bench ("--broker", "mdp", "--procs", "-c", "3", "-w", "2", "-n", "200", NULL);
    s_check_run (json, "mdp", 200);
    cJSON_Delete (json);
}
END_TEST

START_TEST (test_queue_measurement)
{
    cJSON *json = s_bench ("--queue", "2000", NULL);
    const cJSON *queue = cJSON_GetObjectItemCaseSensitive (json, "queue");
    ck_assert (cJSON_IsObject (queue));
    ck_assert_double_eq (s_number (queue, "requests"), 2000);
    ck_assert (s_number (queue, "rss_after_kib") > 0);
    cJSON_Delete (json);
}
END_TEST

START_TEST (test_pipe_mode_both)
{
    //  Plain MDP/0.1 requests, all in flight at once, one worker.
    cJSON *json = s_bench ("--broker", "both", "--mode", "pipe", "-W", "300", "-n", "300", NULL);
    s_check_run (cJSON_GetObjectItemCaseSensitive (json, "mdp"), "mdp", 300);
    s_check_run (cJSON_GetObjectItemCaseSensitive (json, "raw"), "raw", 300);
    const cJSON *mode = cJSON_GetObjectItemCaseSensitive (json, "mode");
    ck_assert_str_eq (mode->valuestring, "pipe");
    ck_assert_double_eq (s_number (json, "window"), 300);
    cJSON_Delete (json);
}
END_TEST

START_TEST (test_pipe_window_beyond_ten_thousand)
{
    //  mdp-broker must queue the whole window: none refused, none expired.
    cJSON *json = s_bench ("--broker", "mdp", "--mode", "pipe", "-W", "12000", "-n", "12000",
                           "--warmup", "0", NULL);
    s_check_run (json, "mdp", 12000);
    cJSON_Delete (json);
}
END_TEST

//  ---------------------------------------------------------------------------
//  mdp-relay, frame by frame

typedef struct {
    pid_t pid;          //  the relay
    int err_fd;         //  its stderr
    char endpoint[256]; //  where it serves
} relay_t;

static void s_relay_start (relay_t *relay)
{
    char *program = strdup (tu_program ("mdp-relay"));
    char *const argv[] = {program, NULL};
    int err[2];
    ck_assert_int_eq (pipe (err), 0);
    relay->pid = tu_spawn_err (argv, -1, err[1]);
    close (err[1]);
    free (program);
    ck_assert_int_gt (relay->pid, 0);
    relay->err_fd = err[0];
    ck_assert (dh_endpoint (relay->err_fd, relay->endpoint, sizeof relay->endpoint, 10000));
}

//  SIGTERM; it must exit 0 and report dropped messages. Returns the count.
static long s_relay_stop (relay_t *relay)
{
    int status = tu_stop (relay->pid, SIGTERM, 10000);
    ck_assert (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    char *line = tu_read_line_with (relay->err_fd, "messages dropped", 5000);
    close (relay->err_fd);
    ck_assert_ptr_nonnull (line);
    long dropped = strtol (strstr (line, "stopping, ") + strlen ("stopping, "), NULL, 10);
    free (line);
    return dropped;
}

static void s_ready (zsock_t *worker)
{
    zstr_sendx (worker, "", "MDPW01", "\x01", "echo", NULL);
}

static void s_request (zsock_t *client, const char *body)
{
    zstr_sendx (client, "", "MDPC01", "echo", body, NULL);
}

//  The REQUEST a worker gets: [""]["MDPW01"][0x02][token][""][body]. Returns
//  the token frame (the caller destroys it).
static zframe_t *s_take_request (zsock_t *worker, const char *body)
{
    zmsg_t *msg = tu_recv (worker, 5000);
    tu_assert_frames (msg, 6, "", "MDPW01", "\x02", NULL, "", body);
    zmsg_first (msg);
    zmsg_next (msg);
    zmsg_next (msg);
    zframe_t *token = zframe_dup (zmsg_next (msg));
    zmsg_destroy (&msg);
    return token;
}

static void s_reply (zsock_t *worker, zframe_t **token, const char *body)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "");
    zmsg_addstr (msg, "MDPW01");
    zmsg_addstr (msg, "\x03");
    zmsg_append (msg, token);
    zmsg_addstr (msg, "");
    zmsg_addstr (msg, body);
    ck_assert_int_eq (zmsg_send (&msg, worker), 0);
}

static void s_expect_reply (zsock_t *client, const char *body)
{
    zmsg_t *msg = tu_recv (client, 5000);
    tu_assert_frames (msg, 4, "", "MDPC01", "relay", body);
    zmsg_destroy (&msg);
}

START_TEST (test_relay_token_is_the_client_id)
{
    relay_t relay;
    s_relay_start (&relay);
    zsock_t *worker = zsock_new_dealer (relay.endpoint);
    zsock_t *client = zsock_new_dealer (relay.endpoint);
    s_ready (worker);
    s_request (client, "hello");
    //  A plain MDP/0.1 client: the token is its routing id as libzmq made
    //  it (5 bytes, the first 0), not a copy packed into another frame.
    zframe_t *token = s_take_request (worker, "hello");
    ck_assert_int_eq (zframe_size (token), 5);
    ck_assert_int_eq (zframe_data (token)[0], 0);
    s_reply (worker, &token, "world");
    s_expect_reply (client, "world");
    zsock_destroy (&client);
    zsock_destroy (&worker);
    ck_assert_int_eq (s_relay_stop (&relay), 0);
}
END_TEST

START_TEST (test_relay_one_request_per_worker_in_order)
{
    relay_t relay;
    s_relay_start (&relay);
    zsock_t *worker = zsock_new_dealer (relay.endpoint);
    zsock_t *client = zsock_new_dealer (relay.endpoint);
    s_ready (worker);
    s_request (client, "a");
    s_request (client, "b");
    s_request (client, "c");
    //  Each next request only once the worker has replied to the last.
    const char *bodies[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        zframe_t *token = s_take_request (worker, bodies[i]);
        zmsg_t *more = tu_recv (worker, 100);
        ck_assert_msg (more == NULL, "a second request before the reply");
        s_reply (worker, &token, bodies[i]);
        s_expect_reply (client, bodies[i]);
    }
    zsock_destroy (&client);
    zsock_destroy (&worker);
    ck_assert_int_eq (s_relay_stop (&relay), 0);
}
END_TEST

START_TEST (test_relay_async_envelope_and_lru)
{
    relay_t relay;
    s_relay_start (&relay);
    zsock_t *first = zsock_new_dealer (relay.endpoint);
    zsock_t *second = zsock_new_dealer (relay.endpoint);
    zsock_t *client = zsock_new_dealer (relay.endpoint);
    //  Each worker joins and asks a request of its own, which only it can
    //  take (the other is busy or absent); first goes idle before second.
    zsock_t *workers[2] = {first, second};
    zframe_t *tokens[2];
    for (int i = 0; i < 2; i++) {
        s_ready (workers[i]);
        s_request (workers[i], "join");
        tokens[i] = s_take_request (workers[i], "join");
    }
    for (int i = 0; i < 2; i++) {
        s_reply (workers[i], &tokens[i], "join");
        s_expect_reply (workers[i], "join");
    }
    //  first became idle first: it takes the next request. An envelope with
    //  a correlation frame comes back whole.
    zstr_sendx (client, "corr", "", "MDPC01", "echo", "x", NULL);
    zframe_t *token = s_take_request (first, "x");
    s_reply (first, &token, "x");
    zmsg_t *msg = tu_recv (client, 5000);
    tu_assert_frames (msg, 5, "corr", "", "MDPC01", "relay", "x");
    zmsg_destroy (&msg);
    zsock_destroy (&client);
    zsock_destroy (&first);
    zsock_destroy (&second);
    ck_assert_int_eq (s_relay_stop (&relay), 0);
}
END_TEST

START_TEST (test_relay_disconnect_and_drops)
{
    relay_t relay;
    s_relay_start (&relay);
    //  One socket, so that the relay reads these in this order: it joins,
    //  leaves, then asks as a client (its request must wait, not go to it).
    zsock_t *peer = zsock_new_dealer (relay.endpoint);
    s_ready (peer);
    zstr_sendx (peer, "", "MDPW01", "\x05", NULL);
    //  Dropped and counted: a REPLY from a worker that is not there, a
    //  request without a body, an unknown protocol.
    zstr_sendx (peer, "", "MDPW01", "\x03", "token", "", "body", NULL);
    zstr_sendx (peer, "", "MDPC01", "echo", NULL);
    zstr_sendx (peer, "", "MDPX99", "what", NULL);
    s_request (peer, "after");
    zsock_t *worker = zsock_new_dealer (relay.endpoint);
    s_ready (worker);
    zframe_t *token = s_take_request (worker, "after");
    s_reply (worker, &token, "after");
    s_expect_reply (peer, "after");
    zsock_destroy (&peer);
    zsock_destroy (&worker);
    ck_assert_int_eq (s_relay_stop (&relay), 3);
}
END_TEST

START_TEST (test_bad_usage_exits_2)
{
    char *program = strdup (tu_program ("mdp-bench"));
    char *const argv[] = {program, "--broker", "nonsense", NULL};
    int devnull[2];
    ck_assert_int_eq (pipe (devnull), 0);
    pid_t pid = tu_spawn_err (argv, devnull[1], devnull[1]);
    close (devnull[1]);
    ck_assert_int_eq (tu_wait_exit (pid, 10000), 2);
    close (devnull[0]);
    free (program);
}
END_TEST

int main (void)
{
    Suite *suite = suite_create ("bench");
    TCase *tc = tcase_create ("bench");
    tcase_set_timeout (tc, 120);
    tcase_add_test (tc, test_sync_against_mdp_broker);
    tcase_add_test (tc, test_async_against_raw_relay);
    tcase_add_test (tc, test_both_with_services_and_idle_workers);
    tcase_add_test (tc, test_processes_and_uneven_split);
    tcase_add_test (tc, test_queue_measurement);
    tcase_add_test (tc, test_pipe_mode_both);
    tcase_add_test (tc, test_pipe_window_beyond_ten_thousand);
    tcase_add_test (tc, test_bad_usage_exits_2);
    suite_add_tcase (suite, tc);
    TCase *relay = tcase_create ("relay");
    tcase_set_timeout (relay, 60);
    tcase_add_test (relay, test_relay_token_is_the_client_id);
    tcase_add_test (relay, test_relay_one_request_per_worker_in_order);
    tcase_add_test (relay, test_relay_async_envelope_and_lru);
    tcase_add_test (relay, test_relay_disconnect_and_drops);
    suite_add_tcase (suite, relay);
    return tu_run_suite (suite);
}
