/*  test_e2e_pubsub.c - events end to end through an in-process forwarder:
    our publisher to a pyzmq subscriber shaped like Domogik's MQAsyncSub, a
    pyzmq publisher shaped like MQPub to our subscriber, the two Domogik
    shapes to each other through our forwarder, and the mdp-pub and mdp-sub
    programs as a script would use them.
*/
#include "mdp_topic.h"
#include "pubsub_harness.h"
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#define PYTHON "/usr/bin/python3"
#define SCRIPT "tests/interop/domogik_pubsub.py"
#define EVENTS 20

//  A child process with pipes: we write its stdin, read its stdout/stderr.
typedef struct {
    pid_t pid;      //  the child
    int in;         //  its stdin, ours to write; -1 when closed
    int out;        //  its stdout, ours to read
    int err;        //  its stderr, ours to read
    char buf[8192]; //  stdout bytes not yet returned as lines
    size_t used;    //  bytes in buf
} child_t;

static void s_spawn (child_t *child, char *const argv[])
{
    int in[2], out[2], err[2];
    ck_assert_int_eq (pipe2 (in, O_CLOEXEC), 0);
    ck_assert_int_eq (pipe2 (out, O_CLOEXEC), 0);
    ck_assert_int_eq (pipe2 (err, O_CLOEXEC), 0);
    child->pid = fork ();
    ck_assert_int_ge (child->pid, 0);
    if (child->pid == 0) {
        dup2 (in[0], STDIN_FILENO);
        dup2 (out[1], STDOUT_FILENO);
        dup2 (err[1], STDERR_FILENO);
        execv (argv[0], argv);
        _exit (127);
    }
    close (in[0]);
    close (out[1]);
    close (err[1]);
    child->in = in[1];
    child->out = out[0];
    child->err = err[0];
    child->used = 0;
}

//  Wait for the child to end by itself; close our ends. Returns its exit code.
static int s_reap (child_t *child, int msecs)
{
    if (child->in >= 0)
        close (child->in);
    int code = tu_wait_exit (child->pid, msecs);
    close (child->out);
    close (child->err);
    return code;
}

//  The next whole line of the child's stdout within msecs (the caller frees
//  it), or NULL. Partial lines are kept for the next call.
static char *s_line (child_t *child, int msecs)
{
    int64_t deadline = zclock_mono () + msecs;
    while (true) {
        char *newline = memchr (child->buf, '\n', child->used);
        if (newline) {
            size_t len = (size_t)(newline - child->buf);
            char *line = strndup (child->buf, len);
            memmove (child->buf, newline + 1, child->used - len - 1);
            child->used -= len + 1;
            return line;
        }
        long left = (long)(deadline - zclock_mono ());
        zmq_pollitem_t item = {NULL, child->out, ZMQ_POLLIN, 0};
        if (left <= 0 || child->used == sizeof child->buf || zmq_poll (&item, 1, left) <= 0)
            return NULL;
        ssize_t got = read (child->out, child->buf + child->used, sizeof child->buf - child->used);
        if (got <= 0)
            return NULL;
        child->used += (size_t)got;
    }
}

//  The next stdout line holding needle, skipping others, within msecs.
static char *s_line_with (child_t *child, const char *needle, int msecs)
{
    int64_t deadline = zclock_mono () + tu_scale (msecs);
    while (zclock_mono () < deadline) {
        char *line = s_line (child, (int)(deadline - zclock_mono ()));
        if (!line || strstr (line, needle))
            return line;
        free (line);
    }
    return NULL;
}

//  Parse a line {"category": ..., "data": ...} and check both; returns seq.
static int s_check_line (const char *line, const char *category, const char *key, int value)
{
    cJSON *event = cJSON_Parse (line);
    ck_assert_msg (event != NULL, "not JSON: %s", line);
    ck_assert_str_eq (cJSON_GetObjectItem (event, "category")->valuestring, category);
    cJSON *data = cJSON_GetObjectItem (event, "data");
    ck_assert_int_eq (cJSON_GetObjectItem (data, key)->valueint, value);
    cJSON *seq = cJSON_GetObjectItem (data, "seq");
    int result = cJSON_IsNumber (seq) ? seq->valueint : -1;
    cJSON_Delete (event);
    return result;
}

START_TEST (test_our_publisher_to_domogik_subscriber)
{
    child_t sub;
    char *const argv[] = {PYTHON,    SCRIPT, "sub",       (char *)sub_ep, "plugin.", "--raw",
                          "--count", "1000", "--seconds", "60",           NULL};
    s_spawn (&sub, argv);
    //  A SUB that cannot tell us when its subscription is in: publish a
    //  warm-up event until one comes out, then the events that count.
    mdp_publisher_t *publisher = s_publisher ();
    cJSON *data = cJSON_CreateObject ();
    cJSON_AddNumberToObject (data, "id", 3);
    char *line = NULL;
    int64_t deadline = zclock_mono () + tu_scale (10000);
    while (!line && zclock_mono () < deadline) {
        ck_assert_int_eq (mdp_publisher_send (publisher, "plugin.warmup", data), 0);
        line = s_line (&sub, tu_scale (50));
    }
    ck_assert_msg (line && strstr (line, "plugin.warmup"), "no warm-up event came through");
    free (line);
    for (int i = 0; i < EVENTS; i++) {
        cJSON_DeleteItemFromObject (data, "seq");
        cJSON_AddNumberToObject (data, "seq", i);
        ck_assert_int_eq (mdp_publisher_send (publisher, "plugin.status", data), 0);
    }
    //  Domogik's split recovers the category; the raw topic is Domogik's
    for (int i = 0; i < EVENTS; i++) {
        line = s_line_with (&sub, "\"plugin.status\"", 5000);
        ck_assert_ptr_nonnull (line);
        ck_assert_int_eq (s_check_line (line, "plugin.status", "id", 3), i);
        cJSON *event = cJSON_Parse (line);
        const char *topic = cJSON_GetObjectItem (event, "topic")->valuestring;
        ck_assert_uint_eq (mdp_topic_parse (topic, strlen (topic)), strlen ("plugin.status"));
        ck_assert_str_eq (topic + strlen (topic) - 4, ".0_1");
        cJSON_Delete (event);
        free (line);
    }
    cJSON_Delete (data);
    mdp_publisher_destroy (&publisher);
    kill (sub.pid, SIGTERM);
    ck_assert_int_eq (s_reap (&sub, 5000), 0);
}
END_TEST

START_TEST (test_domogik_publisher_to_our_subscriber)
{
    mdp_subscriber_t *subscriber = mdp_subscriber_new (sub_ep);
    mdp_subscriber_set_sync_timeout (subscriber, tu_scale (3000));
    ck_assert_int_eq (mdp_subscriber_subscribe (subscriber, "device."), 0);
    child_t pub;
    char *const argv[] = {PYTHON,          SCRIPT,
                          "pub",           (char *)pub_ep,
                          "device.update", "{\"id\": 7, \"name\": \"caf\\u00e9\"}",
                          "--count",       "20",
                          "--seq",         "--warmup",
                          "device.warmup", NULL};
    s_spawn (&pub, argv);
    char *category = NULL;
    cJSON *data = NULL;
    ck_assert_int_eq (mdp_subscriber_recv (subscriber, &category, &data, tu_scale (10000)), 0);
    ck_assert_str_eq (category, "device.warmup");
    free (category);
    cJSON_Delete (data);
    ck_assert_int_eq (write (pub.in, "go\n", 3), 3);
    for (int i = 0; i < EVENTS;) {
        ck_assert_int_eq (mdp_subscriber_recv (subscriber, &category, &data, tu_scale (5000)), 0);
        if (streq (category, "device.update")) {
            ck_assert_int_eq (cJSON_GetObjectItem (data, "seq")->valueint, i);
            ck_assert_int_eq (cJSON_GetObjectItem (data, "id")->valueint, 7);
            ck_assert_str_eq (cJSON_GetObjectItem (data, "name")->valuestring, "caf\xc3\xa9");
            i++;
        } else
            ck_assert_str_eq (category, "device.warmup");
        free (category);
        cJSON_Delete (data);
    }
    ck_assert_int_eq (s_reap (&pub, 10000), 0);
    ck_assert_uint_eq (mdp_subscriber_dropped (subscriber), 0);
    forwarder_stats_t stats;
    forwarder_stats (forwarder, &stats);
    for (int i = 0; i < FWD_DROP_REASONS; i++)
        ck_assert_uint_eq (stats.dropped[i], 0);
    mdp_subscriber_destroy (&subscriber);
}
END_TEST

START_TEST (test_domogik_pair_through_our_forwarder)
{
    child_t sub, pub;
    char *const sargv[] = {PYTHON,    SCRIPT, "sub",       (char *)sub_ep, "plugin.",
                           "--count", "1000", "--seconds", "60",           NULL};
    char *const pargv[] = {PYTHON,          SCRIPT,        "pub",           (char *)pub_ep,
                           "plugin.status", "{\"id\": 1}", "--count",       "20",
                           "--seq",         "--warmup",    "plugin.warmup", NULL};
    s_spawn (&sub, sargv);
    s_spawn (&pub, pargv);
    char *line = s_line_with (&sub, "plugin.warmup", 10000);
    ck_assert_ptr_nonnull (line);
    free (line);
    ck_assert_int_eq (write (pub.in, "go\n", 3), 3);
    for (int i = 0; i < EVENTS; i++) {
        line = s_line_with (&sub, "\"plugin.status\"", 5000);
        ck_assert_ptr_nonnull (line);
        ck_assert_int_eq (s_check_line (line, "plugin.status", "id", 1), i);
        free (line);
    }
    ck_assert_int_eq (s_reap (&pub, 10000), 0);
    kill (sub.pid, SIGTERM);
    ck_assert_int_eq (s_reap (&sub, 5000), 0);
}
END_TEST

//  Run a program to its end; its stdout into out. Returns the exit code.
static int s_run (char *const argv[], char *out, size_t size)
{
    child_t child;
    s_spawn (&child, argv);
    close (child.in);
    child.in = -1;
    int code = tu_wait_exit (child.pid, 30000);
    ssize_t got = read (child.out, out, size - 1);
    out[got > 0 ? got : 0] = 0;
    close (child.out);
    close (child.err);
    return code;
}

START_TEST (test_mdp_pub_and_mdp_sub_programs)
{
    char *pub = strdup (tu_program ("mdp-pub")), *subp = strdup (tu_program ("mdp-sub"));
    char wait[16], out[4096];
    snprintf (wait, sizeof wait, "%d", tu_scale (5000));
    child_t sub;
    char *const sargv[] = {subp, "-e", (char *)sub_ep, "-t",      wait,
                           "-n", "2",  "plugin.",      "device.", NULL};
    s_spawn (&sub, sargv);
    //  It says when the forwarder holds its subscriptions: from then on
    //  nothing published is missed.
    char *line = tu_read_line_with (sub.err, "mdp-sub: subscribed", 10000);
    ck_assert_ptr_nonnull (line);
    free (line);
    char *const p1[] = {pub, "-e", (char *)pub_ep, "-t", wait, "plugin.status", "{\"a\": 1}", NULL};
    char *const p2[] = {pub, "-e", (char *)pub_ep, "-t", wait, "client.list", "{}", NULL};
    char *const p3[] = {pub, "-e", (char *)pub_ep, "-t", wait, "device.update", "[1, 2]", NULL};
    ck_assert_int_eq (s_run (p1, out, sizeof out), 0);
    ck_assert_int_eq (s_run (p2, out, sizeof out), 0);
    ck_assert_int_eq (s_run (p3, out, sizeof out), 0);
    //  mdp-sub exits by itself after 2 events, one JSON line each; client.list
    //  (published between them) matched neither prefix.
    line = s_line (&sub, tu_scale (10000));
    ck_assert_str_eq (line, "{\"category\":\"plugin.status\",\"data\":{\"a\":1}}");
    free (line);
    line = s_line (&sub, tu_scale (10000));
    ck_assert_str_eq (line, "{\"category\":\"device.update\",\"data\":[1,2]}");
    free (line);
    ck_assert_int_eq (s_reap (&sub, 10000), 0);
    free (pub);
    free (subp);
}
END_TEST

//  Issue 12 item 3: an event's numbers pass mdp-pub -> forwarder -> mdp-sub
//  as written.
START_TEST (test_mdp_pub_sub_numbers_as_written)
{
    char *pub = strdup (tu_program ("mdp-pub")), *subp = strdup (tu_program ("mdp-sub"));
    char wait[16], out[4096];
    snprintf (wait, sizeof wait, "%d", tu_scale (5000));
    child_t sub;
    char *const sargv[] = {subp, "-e", (char *)sub_ep, "-t", wait, "-n", "1", "num.", NULL};
    s_spawn (&sub, sargv);
    char *line = tu_read_line_with (sub.err, "mdp-sub: subscribed", 10000);
    ck_assert_ptr_nonnull (line);
    free (line);
    char *const pargv[] = {pub, "-e", (char *)pub_ep, "-t", wait, "num.x", TU_NUMBERS_IN, NULL};
    ck_assert_int_eq (s_run (pargv, out, sizeof out), 0);
    line = s_line (&sub, tu_scale (10000));
    ck_assert_str_eq (line, "{\"category\":\"num.x\",\"data\":" TU_NUMBERS "}");
    free (line);
    ck_assert_int_eq (s_reap (&sub, 10000), 0);
    free (pub);
    free (subp);
}
END_TEST

int main (void)
{
    Suite *suite = suite_create ("e2e-pubsub");
    TCase *tc = tcase_create ("pubsub");
    tcase_add_checked_fixture (tc, s_setup, s_teardown);
    tcase_set_timeout (tc, 120);
    tcase_add_test (tc, test_our_publisher_to_domogik_subscriber);
    tcase_add_test (tc, test_domogik_publisher_to_our_subscriber);
    tcase_add_test (tc, test_domogik_pair_through_our_forwarder);
    tcase_add_test (tc, test_mdp_pub_sub_numbers_as_written);
    tcase_add_test (tc, test_mdp_pub_and_mdp_sub_programs);
    suite_add_tcase (suite, tc);
    return tu_run_suite (suite);
}
