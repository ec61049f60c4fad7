/*  test_daemon_events.c - the event forwarder inside the real mdp-broker
    program: --pub-endpoint and --sub-endpoint turn it on beside the ROUTER;
    an event from our publisher reaches our subscriber through it.
*/
#include "mdp.h"
#include "testutil.h"
#include <check.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

START_TEST (test_broker_forwards_events)
{
    int fds[2];
    ck_assert_int_eq (pipe (fds), 0);
    char *broker = strdup (tu_program ("mdp-broker"));
    char *const argv[] = {broker,
                          "-e",
                          "tcp://127.0.0.1:*",
                          "--pub-endpoint",
                          "tcp://127.0.0.1:*",
                          "--sub-endpoint",
                          "tcp://127.0.0.1:*",
                          NULL};
    pid_t pid = tu_spawn_err (argv, -1, fds[1]);
    close (fds[1]);
    char *line = tu_read_line_with (fds[0], "events: publishers connect to ", 10000);
    ck_assert_ptr_nonnull (line);
    //  "... publishers connect to tcp://A, subscribers to tcp://B"
    char *pub = strstr (line, "connect to ") + strlen ("connect to ");
    char *comma = strchr (pub, ',');
    ck_assert_ptr_nonnull (comma);
    *comma = 0;
    char *sub = strstr (comma + 1, "tcp://");
    ck_assert_ptr_nonnull (sub);

    mdp_subscriber_t *subscriber = mdp_subscriber_new (sub);
    ck_assert_ptr_nonnull (subscriber);
    ck_assert_int_eq (mdp_subscriber_subscribe (subscriber, "plugin."), 0);
    mdp_publisher_t *publisher = mdp_publisher_new (pub);
    ck_assert_ptr_nonnull (publisher);
    cJSON *data = cJSON_Parse ("{\"id\": \"diskfree\", \"status\": \"alive\"}");
    ck_assert_int_eq (mdp_publisher_send (publisher, "device.update", data), 0);
    ck_assert_int_eq (mdp_publisher_send (publisher, "plugin.status", data), 0);
    char *category = NULL;
    cJSON *got = NULL;
    ck_assert_int_eq (mdp_subscriber_recv (subscriber, &category, &got, tu_scale (5000)), 0);
    ck_assert_str_eq (category, "plugin.status"); //  device.update was filtered out
    ck_assert_str_eq (cJSON_GetStringValue (cJSON_GetObjectItem (got, "status")), "alive");
    free (category);
    cJSON_Delete (got);
    cJSON_Delete (data);
    mdp_publisher_destroy (&publisher);
    mdp_subscriber_destroy (&subscriber);
    int status = tu_stop (pid, SIGTERM, 5000);
    ck_assert (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    close (fds[0]);
    free (line);
    free (broker);
}
END_TEST

int main (void)
{
    Suite *suite = suite_create ("daemon-events");
    TCase *tc = tcase_create ("events");
    tcase_set_timeout (tc, 60);
    tcase_add_test (tc, test_broker_forwards_events);
    suite_add_tcase (suite, tc);
    return tu_run_suite (suite);
}
