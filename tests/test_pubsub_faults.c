/*  test_pubsub_faults.c - Check suite for events under bad input and at the
    edges: malformed publications and subscriber junk that the forwarder must
    drop and count, a publisher with no forwarder, and the exit codes of
    mdp-pub and mdp-sub (their event flow is in test_e2e_pubsub.c).
*/
#include "mdp_topic.h"
#include "pubsub_harness.h"
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

//  A raw publisher: XPUB connected to the forwarder, ready once the
//  forwarder's catch-all subscription has arrived.
static zsock_t *s_raw_publisher (void)
{
    zsock_t *raw = zsock_new_xpub (NULL);
    ck_assert_int_eq (zsock_connect (raw, "%s", pub_ep), 0);
    zsock_set_rcvtimeo (raw, tu_scale (3000));
    zframe_t *subscription = zframe_recv (raw);
    ck_assert_ptr_nonnull (subscription);
    ck_assert (zframe_size (subscription) == 1 && zframe_data (subscription)[0] == 1);
    zframe_destroy (&subscription);
    return raw;
}

static void s_send_frames (zsock_t *sock, int count, const char *frames[])
{
    zmsg_t *msg = zmsg_new ();
    for (int i = 0; i < count; i++)
        zmsg_addmem (msg, frames[i], strlen (frames[i]));
    ck_assert_int_eq (zmsg_send (&msg, sock), 0);
}

START_TEST (test_forwarder_survives_malformed_publications)
{
    mdp_subscriber_t *subscriber = s_subscriber ("");
    zsock_t *raw = s_raw_publisher ();
    const char *one[] = {"plugin.status.1_2.0_1"};
    const char *three[] = {"plugin.status.1_2.0_1", "{}", "extra"};
    const char *empty[] = {"", "{}"};
    const char *junk[] = {"\xff\xfe\x01\x02", "\x03"};
    const char *no_version[] = {"plugin.status.1_2", "{}"};
    const char *reserved[] = {"mdp.sync.forged.1_2.0_1", "{}"};
    const char *bad_json[] = {"plugin.status.1_2.0_1", "{not json"};
    const char *good[] = {"plugin.status.1371476851_54.0_1", "{\"n\": 7}"};
    s_send_frames (raw, 1, one);
    s_send_frames (raw, 3, three);
    s_send_frames (raw, 2, empty);
    s_send_frames (raw, 2, junk);
    s_send_frames (raw, 2, no_version);
    s_send_frames (raw, 2, reserved);
    s_send_frames (raw, 2, bad_json); //  the forwarder does not parse JSON...
    s_send_frames (raw, 2, good);
    s_expect (subscriber, "plugin.status", 7);
    ck_assert_uint_eq (mdp_subscriber_dropped (subscriber), 1); //  ...the subscriber does
    forwarder_stats_t stats;
    forwarder_stats (forwarder, &stats);
    ck_assert_uint_eq (stats.dropped[FWD_DROP_FRAMES], 2);
    ck_assert_uint_eq (stats.dropped[FWD_DROP_TOPIC], 3);
    ck_assert_uint_eq (stats.dropped[FWD_DROP_RESERVED], 1);
    ck_assert_uint_eq (stats.forwarded, 2);
    zsock_destroy (&raw);
    mdp_subscriber_destroy (&subscriber);
}
END_TEST

START_TEST (test_forwarder_survives_junk_from_subscribers)
{
    //  A raw XSUB may send anything up; only 0x00/0x01 messages mean something.
    zsock_t *raw = zsock_new (ZMQ_XSUB);
    ck_assert_int_eq (zsock_connect (raw, "%s", sub_ep), 0);
    zsock_set_rcvtimeo (raw, tu_scale (3000));
    const char *user[] = {"hello"};
    const char *other[] = {"\x02"
                           "junk"};
    const char *empty[] = {""};
    s_send_frames (raw, 1, user);
    s_send_frames (raw, 1, other);
    s_send_frames (raw, 1, empty);
    //  A sync probe sent after them: its answer means they were handled.
    const char *probe[] = {"\x01"
                           "mdp.sync.test."};
    s_send_frames (raw, 1, probe);
    zmsg_t *answer = zmsg_recv (raw);
    ck_assert_ptr_nonnull (answer);
    ck_assert_int_eq (zmsg_size (answer), 2);
    char *topic = zmsg_popstr (answer);
    ck_assert_uint_eq (mdp_topic_parse (topic, strlen (topic)), strlen ("mdp.sync.test"));
    zstr_free (&topic);
    zmsg_destroy (&answer);
    forwarder_stats_t stats;
    forwarder_stats (forwarder, &stats);
    ck_assert_uint_eq (stats.dropped[FWD_DROP_UPSTREAM], 3);
    ck_assert_uint_eq (stats.syncs, 1);
    zsock_destroy (&raw);
    //  Still forwarding
    mdp_subscriber_t *subscriber = s_subscriber ("x.");
    mdp_publisher_t *publisher = s_publisher ();
    s_publish (publisher, "x.y", 1);
    s_expect (subscriber, "x.y", 1);
    mdp_publisher_destroy (&publisher);
    mdp_subscriber_destroy (&subscriber);
}
END_TEST

START_TEST (test_no_forwarder)
{
    //  Nobody at the endpoint: the publisher says so after its wait, the
    //  subscriber after its own; neither blocks for longer.
    forwarder_destroy (&forwarder);
    mdp_publisher_t *publisher = mdp_publisher_new ("tcp://127.0.0.1:1");
    mdp_publisher_set_sync_timeout (publisher, 50);
    errno = 0;
    ck_assert_int_eq (mdp_publisher_send (publisher, "plugin.status", NULL), -1);
    ck_assert_int_eq (errno, EAGAIN);
    ck_assert_int_eq (mdp_publisher_send (publisher, "plugin.status", NULL), -1);
    mdp_publisher_destroy (&publisher);
    mdp_subscriber_t *subscriber = mdp_subscriber_new ("tcp://127.0.0.1:1");
    mdp_subscriber_set_sync_timeout (subscriber, 50);
    errno = 0;
    ck_assert_int_eq (mdp_subscriber_subscribe (subscriber, "plugin."), -1);
    ck_assert_int_eq (errno, EAGAIN);
    mdp_subscriber_destroy (&subscriber);
}
END_TEST

//  ---------------------------------------------------------------------------
//  The programs' exit codes and edges (their event flow is in test_e2e_pubsub)

//  Run a program to its end, output discarded. Returns its exit code.
static int s_run (char *const argv[])
{
    int null = open ("/dev/null", O_WRONLY);
    pid_t pid = tu_spawn_err (argv, null, null);
    close (null);
    return tu_wait_exit (pid, 30000);
}

START_TEST (test_mdp_pub_exit_codes)
{
    mdp_subscriber_t *subscriber = s_subscriber ("plugin.");
    char *pub = strdup (tu_program ("mdp-pub"));
    char wait[16];
    snprintf (wait, sizeof wait, "%d", tu_scale (5000));
    char *const no_json[] = {pub, "-e", (char *)pub_ep, "-t", wait, "plugin.status", NULL};
    char *const bad_json[] = {pub, "-e", (char *)pub_ep, "plugin.status", "{nope", NULL};
    char *const bad_cat[] = {pub, "-e", (char *)pub_ep, "plugin status", NULL};
    char *const reserved[] = {pub, "-e", (char *)pub_ep, "mdp.sync.x", NULL};
    char *const nobody[] = {pub, "-e", "tcp://127.0.0.1:1", "-t", "100", "plugin.status", NULL};
    char *const no_args[] = {pub, "-e", (char *)pub_ep, NULL};
    char *const bad_t[] = {pub, "-t", "soon", "plugin.status", NULL};
    ck_assert_int_eq (s_run (no_json), 0);
    char *category = NULL;
    cJSON *data = NULL;
    ck_assert_int_eq (mdp_subscriber_recv (subscriber, &category, &data, tu_scale (3000)), 0);
    ck_assert_str_eq (category, "plugin.status");
    ck_assert (cJSON_IsObject (data) && !data->child); //  no JSON argument: {}
    free (category);
    cJSON_Delete (data);
    ck_assert_int_eq (s_run (bad_json), 2);
    ck_assert_int_eq (s_run (bad_cat), 2);
    ck_assert_int_eq (s_run (reserved), 2);
    ck_assert_int_eq (s_run (nobody), 3);
    ck_assert_int_eq (s_run (no_args), 2);
    ck_assert_int_eq (s_run (bad_t), 2);
    free (pub);
    mdp_subscriber_destroy (&subscriber);
}
END_TEST

START_TEST (test_mdp_sub_exit_codes)
{
    char *sub = strdup (tu_program ("mdp-sub"));
    char wait[16];
    snprintf (wait, sizeof wait, "%d", tu_scale (5000));
    char *const no_prefix[] = {sub, "-e", (char *)sub_ep, NULL};
    char *const bad_n[] = {sub, "-n", "0", "plugin.", NULL};
    char *const quiet[] = {sub,  "-e", (char *)sub_ep, "-t", wait, "-w", "100",
                           "-n", "1",  "nothing.",     NULL};
    ck_assert_int_eq (s_run (no_prefix), 2);
    ck_assert_int_eq (s_run (bad_n), 2);
    ck_assert_int_eq (s_run (quiet), 3);
    //  SIGTERM once subscribed (and listening to everything): exit 0
    int fds[2];
    ck_assert_int_eq (pipe (fds), 0);
    char *const all[] = {sub, "-e", (char *)sub_ep, "-t", wait, "", NULL};
    pid_t pid = tu_spawn_err (all, -1, fds[1]);
    close (fds[1]);
    char *line = tu_read_line_with (fds[0], "mdp-sub: subscribed", 10000);
    ck_assert_ptr_nonnull (line);
    free (line);
    int status = tu_stop (pid, SIGTERM, 5000);
    ck_assert (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    close (fds[0]);
    free (sub);
}
END_TEST

int main (void)
{
    Suite *suite = suite_create ("pubsub_faults");
    TCase *tc = tcase_create ("forwarder");
    tcase_add_checked_fixture (tc, s_setup, s_teardown);
    tcase_set_timeout (tc, 60);
    tcase_add_test (tc, test_forwarder_survives_malformed_publications);
    tcase_add_test (tc, test_forwarder_survives_junk_from_subscribers);
    tcase_add_test (tc, test_no_forwarder);
    suite_add_tcase (suite, tc);
    TCase *programs = tcase_create ("programs");
    tcase_add_checked_fixture (programs, s_setup, s_teardown);
    tcase_set_timeout (programs, 120);
    tcase_add_test (programs, test_mdp_pub_exit_codes);
    tcase_add_test (programs, test_mdp_sub_exit_codes);
    suite_add_tcase (suite, programs);
    return tu_run_suite (suite);
}
