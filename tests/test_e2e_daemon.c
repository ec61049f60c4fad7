/*  test_e2e_daemon.c - the real mdp-broker program serving as a daemon: -d
    with a pid file (serves, refuses a second copy, SIGTERM removes the pid
    file), and SIGHUP reloading the config file with a good file and a bad
    one, proved through what the broker does. Also runs under valgrind.
*/
#include "daemon_harness.h"

//  A raw MDP/0.1 client: requests go out on one DEALER, so the broker handles
//  them in the order sent and answers in that order.
static void s_request (zsock_t *client, const char *service, const char *frame)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "");
    zmsg_addstr (msg, "MDPC01");
    zmsg_addstr (msg, service);
    zmsg_addstr (msg, frame);
    if (strncmp (service, "mmi.", 4) != 0)
        zmsg_addstr (msg, "{}");
    ck_assert_int_eq (zmsg_send (&msg, client), 0);
}

//  The next reply as "service frame..." (the frames after MDPC01, joined by
//  spaces), within timeout_ms.
static char *s_reply (zsock_t *client, int timeout_ms)
{
    zsock_set_rcvtimeo (client, tu_scale (timeout_ms));
    zmsg_t *msg = zmsg_recv (client);
    ck_assert_ptr_nonnull (msg);
    ck_assert_int_ge (zmsg_size (msg), 4);
    free (zmsg_popstr (msg)); //  ""
    free (zmsg_popstr (msg)); //  MDPC01
    char *text = zmsg_popstr (msg), *frame;
    while ((frame = zmsg_popstr (msg))) {
        char *longer = zsys_sprintf ("%s %s", text, frame);
        free (text);
        free (frame);
        text = longer;
    }
    zmsg_destroy (&msg);
    return text;
}

static void s_expect_reply (zsock_t *client, const char *expected)
{
    char *reply = s_reply (client, 5000);
    ck_assert_str_eq (reply, expected);
    free (reply);
}

//  The next reply is an error reply with code from service.
static void s_expect_error (zsock_t *client, const char *service, int code)
{
    char *reply = s_reply (client, 5000);
    char *expected = zsys_sprintf ("%s mdp.error {\"code\": %d, ", service, code);
    ck_assert_msg (strncmp (reply, expected, strlen (expected)) == 0, "got '%s'", reply);
    free (expected);
    free (reply);
}

//  -d with a pid file: the command returns once the broker serves; the pid
//  file names it; a second copy refuses; SIGTERM stops it and removes the file.
START_TEST (test_daemon_with_pidfile)
{
    char pidfile[128];
    dh_path (pidfile, sizeof pidfile, "broker.pid");
    int out, err;
    const char *args[] = {"-d", "-p", pidfile, "-e", "tcp://127.0.0.1:*", NULL};
    pid_t starter = dh_spawn (args, &out, &err);
    char endpoint[256] = "";
    bool said = dh_endpoint (err, endpoint, sizeof endpoint, 10000);
    int status = tu_wait_exit (starter, 10000);
    bool appeared = tu_wait_for (dh_file_exists, pidfile, 5000);
    pid_t pid = dh_read_pidfile (pidfile);
    //  Look before asserting: a failed assertion must not leave it running.
    int has_service = -2;
    if (said && pid > 0) {
        mdp_client_t *client = mdp_client_new (endpoint);
        mdp_client_set_timeout (client, tu_scale (2000));
        has_service = mdp_client_has_service (client, "nobody");
        mdp_client_destroy (&client);
    }
    static dh_result_t second;
    const char *again[] = {"-d", "-p", pidfile, "-e", "tcp://127.0.0.1:*", NULL};
    int second_status = dh_run (&second, again);
    bool alive = pid > 0 && !dh_gone ((void *)(intptr_t)pid);
    bool stopped = dh_stop_detached (pid, 10000);
    bool removed = tu_wait_for (dh_file_gone, pidfile, 5000);
    close (out);
    close (err);

    ck_assert (said);
    ck_assert_int_eq (status, 0);
    ck_assert (appeared);
    ck_assert_int_ne (pid, starter); //  detached: not the process we ran
    ck_assert (alive);
    ck_assert_int_eq (has_service, 0); //  it serves: mmi.service says 404
    ck_assert_int_eq (second_status, 1);
    ck_assert_ptr_nonnull (strstr (second.err, "already running"));
    ck_assert (stopped);
    ck_assert (removed);
}
END_TEST

//  SIGHUP applies a changed config file without dropping connections; a bad
//  file is logged and the settings in force stay. max_queue shows it: once
//  it is 1, a request joining a queue that is full gets 503 at once.
START_TEST (test_sighup_reloads_config)
{
    char config[128];
    dh_path (config, sizeof config, "broker.json");
    dh_write_file (config, "{\"endpoints\": [\"tcp://127.0.0.1:*\"], \"max_queue\": 5}");
    int out, err;
    const char *args[] = {"-c", config, NULL};
    pid_t pid = dh_spawn (args, &out, &err);
    char endpoint[256];
    ck_assert (dh_endpoint (err, endpoint, sizeof endpoint, 10000));
    zsock_t *client = zsock_new_dealer (endpoint);
    ck_assert_ptr_nonnull (client);

    //  max_queue 5: two requests for a service nobody offers wait quietly;
    //  the MMI answer after them is the first thing to come back.
    s_request (client, "nobody", "job.1");
    s_request (client, "nobody", "job.2");
    s_request (client, "mmi.service", "nobody");
    s_expect_reply (client, "mmi.service 404");

    dh_write_file (config, "{\"endpoints\": [\"tcp://127.0.0.1:*\"], \"max_queue\": 1}");
    kill (pid, SIGHUP);
    char *line = tu_read_line_with (err, "reloaded", 10000);
    ck_assert_ptr_nonnull (line);
    free (line);
    s_request (client, "nobody", "job.3");
    s_expect_error (client, "nobody", 503); //  queue full, at once

    //  A bad file: logged, naming the key; max_queue stays 1.
    dh_write_file (config, "{\"endpoints\": [\"tcp://127.0.0.1:*\"], \"max_queue\": \"x\"}");
    kill (pid, SIGHUP);
    line = tu_read_line_with (err, "reload failed", 10000);
    ck_assert_ptr_nonnull (line);
    ck_assert_ptr_nonnull (strstr (line, "max_queue"));
    free (line);
    s_request (client, "nobody", "job.4");
    s_expect_error (client, "nobody", 503);

    //  New endpoints wait for a restart, and say so.
    dh_write_file (config, "{\"endpoints\": [\"tcp://127.0.0.1:1\"], \"max_queue\": 1}");
    kill (pid, SIGHUP);
    line = tu_read_line_with (err, "endpoints changed", 10000);
    ck_assert_ptr_nonnull (line);
    free (line);
    s_request (client, "mmi.service", "nobody");
    s_expect_reply (client, "mmi.service 404"); //  the same connection still works

    //  SIGTERM: the two queued requests hear 503, the broker exits 0.
    int status = tu_stop (pid, SIGTERM, 10000);
    ck_assert (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    s_expect_error (client, "nobody", 503);
    s_expect_error (client, "nobody", 503);
    zsock_destroy (&client);
    close (out);
    close (err);
}
END_TEST

int main (void)
{
    Suite *suite = suite_create ("e2e-daemon");
    TCase *tc = tcase_create ("daemon");
    tcase_add_checked_fixture (tc, dh_setup, dh_teardown);
    tcase_set_timeout (tc, tu_scale (30));
    tcase_add_test (tc, test_daemon_with_pidfile);
    tcase_add_test (tc, test_sighup_reloads_config);
    suite_add_tcase (suite, tc);
    return tu_run_suite (suite);
}
