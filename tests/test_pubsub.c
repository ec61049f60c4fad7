/*  test_pubsub.c - Check suite for events through the forwarder (run
    in-process, pubsub_harness.h) with mdp_publisher_t and mdp_subscriber_t:
    delivery, prefix filtering, the slow-joiner handshake (repeated, to catch
    races), many peers each getting every event exactly once, and the
    callback driven from a poll loop. Topics: test_pubsub_topic.c; bad input
    and the programs: test_pubsub_faults.c; CURVE: test_pubsub_curve.c.
*/
#include "pubsub_harness.h"
#include <check.h>
#include <errno.h>

START_TEST (test_forwarder_binds_and_refuses)
{
    ck_assert (strncmp (pub_ep, "tcp://127.0.0.1:", 16) == 0 && !strchr (pub_ep, '*'));
    ck_assert (strncmp (sub_ep, "tcp://127.0.0.1:", 16) == 0 && !strchr (sub_ep, '*'));
    errno = 0;
    ck_assert_ptr_null (forwarder_new (NULL, "tcp://127.0.0.1:*"));
    ck_assert_int_eq (errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null (forwarder_new (pub_ep, "tcp://127.0.0.1:*")); //  taken
    ck_assert_int_eq (errno, EADDRINUSE);
    ck_assert_ptr_null (forwarder_new ("tcp://127.0.0.1:*", "nonsense"));
    forwarder_destroy (NULL);
    ck_assert_ptr_null (mdp_publisher_new (""));
    ck_assert_ptr_null (mdp_publisher_new ("nonsense://x"));
    ck_assert_ptr_null (mdp_subscriber_new (NULL));
}
END_TEST

START_TEST (test_publish_and_receive)
{
    mdp_subscriber_t *subscriber = s_subscriber ("plugin.");
    mdp_publisher_t *publisher = s_publisher ();
    cJSON *data = cJSON_Parse ("{\"id\": \"diskfree\", \"status\": \"alive\"}");
    ck_assert_int_eq (mdp_publisher_send (publisher, "plugin.status", data), 0);
    ck_assert (cJSON_HasObjectItem (data, "id")); //  borrowed, not taken
    cJSON_Delete (data);
    ck_assert_int_eq (mdp_publisher_send (publisher, "plugin.list", NULL), 0);
    char *category = NULL;
    ck_assert_int_eq (mdp_subscriber_recv (subscriber, &category, &data, tu_scale (3000)), 0);
    ck_assert_str_eq (category, "plugin.status");
    ck_assert_str_eq (cJSON_GetObjectItem (data, "status")->valuestring, "alive");
    free (category);
    cJSON_Delete (data);
    ck_assert_int_eq (mdp_subscriber_recv (subscriber, &category, &data, tu_scale (3000)), 0);
    ck_assert_str_eq (category, "plugin.list");
    ck_assert (cJSON_IsObject (data) && !data->child); //  NULL data went as {}
    free (category);
    cJSON_Delete (data);
    //  Nothing else waits
    errno = 0;
    ck_assert_int_eq (mdp_subscriber_recv (subscriber, &category, &data, 0), -1);
    ck_assert_int_eq (errno, EAGAIN);
    //  Bad and reserved categories are refused at the source
    errno = 0;
    ck_assert_int_eq (mdp_publisher_send (publisher, "plugin status", NULL), -1);
    ck_assert_int_eq (errno, EINVAL);
    ck_assert_int_eq (mdp_publisher_send (publisher, "mdp.sync.x", NULL), -1);
    ck_assert_int_eq (mdp_publisher_send (publisher, NULL, NULL), -1);
    forwarder_stats_t stats;
    forwarder_stats (forwarder, &stats);
    ck_assert_uint_eq (stats.forwarded, 2);
    ck_assert_uint_eq (stats.subscribes, 1);
    ck_assert_uint_ge (stats.syncs, 1);
    ck_assert_uint_eq (mdp_subscriber_dropped (subscriber), 0);
    mdp_publisher_destroy (&publisher);
    mdp_subscriber_destroy (&subscriber);
    ck_assert_ptr_null (subscriber);
    mdp_subscriber_destroy (NULL);
    mdp_publisher_destroy (NULL);
}
END_TEST

START_TEST (test_prefix_filtering)
{
    //  The catch-all subscriber comes first: it sees the later subscribers'
    //  sync answers on the wire, and must not report them as events.
    mdp_subscriber_t *all = s_subscriber ("");
    mdp_subscriber_t *plugin = s_subscriber ("plugin.");
    mdp_subscriber_t *device = s_subscriber ("device.");
    mdp_subscriber_t *bare = s_subscriber ("plugin"); //  a byte prefix, not a word
    //  Two of its prefixes match plugin.status: it still comes once
    ck_assert_int_eq (mdp_subscriber_subscribe (bare, "plugin.st"), 0);
    mdp_publisher_t *publisher = s_publisher ();
    forwarder_set_verbose (forwarder, true); //  logs each event (zsys_debug)
    s_publish (publisher, "plugin.status", 1);
    s_publish (publisher, "device.update", 2);
    s_publish (publisher, "pluginx.other", 3);
    s_publish (publisher, "plugin.list", 4);
    //  One publisher, one forwarder: order is kept, so an unwanted event
    //  would show up before the next wanted one.
    s_expect (plugin, "plugin.status", 1);
    s_expect (plugin, "plugin.list", 4);
    s_expect (device, "device.update", 2);
    s_expect (bare, "plugin.status", 1);
    s_expect (bare, "pluginx.other", 3);
    s_expect (bare, "plugin.list", 4);
    s_expect (all, "plugin.status", 1);
    s_expect (all, "device.update", 2);
    s_expect (all, "pluginx.other", 3);
    s_expect (all, "plugin.list", 4);
    //  Unsubscribe: plugin.* stops, device.* still comes after it
    ck_assert_int_eq (mdp_subscriber_unsubscribe (plugin, "plugin."), 0);
    ck_assert_int_eq (mdp_subscriber_subscribe (plugin, "device."), 0);
    s_publish (publisher, "plugin.status", 5);
    s_publish (publisher, "device.update", 6);
    s_expect (plugin, "device.update", 6);
    ck_assert_uint_eq (mdp_subscriber_dropped (all), 0);
    mdp_publisher_destroy (&publisher);
    mdp_subscriber_destroy (&all);
    mdp_subscriber_destroy (&plugin);
    mdp_subscriber_destroy (&device);
    mdp_subscriber_destroy (&bare);
}
END_TEST

//  Every round makes new peers, in one of three orders, and the first event
//  published after both constructors (and the subscribe) have returned must
//  arrive. Round kinds: subscriber first; a fresh publisher already in use
//  first; a publisher that lives through all the rounds.
START_TEST (test_no_slow_joiner)
{
    mdp_publisher_t *veteran = s_publisher ();
    s_publish (veteran, "warm.up", 0);
    for (int round = 0; round < 50; round++) {
        mdp_subscriber_t *subscriber = NULL;
        mdp_publisher_t *publisher = NULL;
        int kind = round % 3;
        if (kind == 0) {
            subscriber = s_subscriber ("round.");
            publisher = s_publisher ();
        } else if (kind == 1) {
            publisher = s_publisher ();
            s_publish (publisher, "warm.up", round); //  synced before the subscriber
            subscriber = s_subscriber ("round.");
        } else
            subscriber = s_subscriber ("round.");
        s_publish (publisher ? publisher : veteran, "round.event", round);
        s_expect (subscriber, "round.event", round);
        mdp_publisher_destroy (&publisher);
        mdp_subscriber_destroy (&subscriber);
    }
    mdp_publisher_destroy (&veteran);
}
END_TEST

#define PEERS 5
#define EVENTS 100

//  PEERS publishers send EVENTS events each, then an end marker; PEERS
//  subscribers each count every publisher's events: all of them, once, in
//  order, and nothing after the markers.
START_TEST (test_many_publishers_and_subscribers)
{
    mdp_subscriber_t *subscribers[PEERS];
    mdp_publisher_t *publishers[PEERS];
    for (int i = 0; i < PEERS; i++)
        subscribers[i] = s_subscriber (i % 2 ? "load." : "");
    for (int i = 0; i < PEERS; i++)
        publishers[i] = s_publisher ();
    char category[32];
    for (int n = 0; n < EVENTS; n++)
        for (int p = 0; p < PEERS; p++) {
            snprintf (category, sizeof category, "load.p%d", p);
            s_publish (publishers[p], category, n);
        }
    for (int p = 0; p < PEERS; p++)
        s_publish (publishers[p], "load.end", p);
    for (int s = 0; s < PEERS; s++) {
        int next[PEERS] = {0}, ends = 0;
        while (ends < PEERS) {
            char *got = NULL;
            cJSON *data = NULL;
            ck_assert_int_eq (mdp_subscriber_recv (subscribers[s], &got, &data, tu_scale (5000)),
                              0);
            int n = cJSON_GetObjectItem (data, "n")->valueint;
            if (streq (got, "load.end"))
                ends++;
            else {
                int p = got[6] - '0';
                ck_assert_int_eq (next[p] < EVENTS ? next[p] : -1, n); //  in order, once
                next[p]++;
            }
            free (got);
            cJSON_Delete (data);
        }
        for (int p = 0; p < PEERS; p++)
            ck_assert_int_eq (next[p], EVENTS);
        char *got = NULL;
        cJSON *data = NULL;
        ck_assert_int_eq (mdp_subscriber_recv (subscribers[s], &got, &data, 0), -1);
    }
    forwarder_stats_t stats;
    forwarder_stats (forwarder, &stats);
    ck_assert_uint_eq (stats.forwarded, PEERS * (EVENTS + 1));
    for (int i = 0; i < PEERS; i++) {
        mdp_publisher_destroy (&publishers[i]);
        mdp_subscriber_destroy (&subscribers[i]);
    }
}
END_TEST

typedef struct {
    int calls; //  events seen
    int last;  //  the last n
} seen_t;

static void s_on_event (mdp_subscriber_t *subscriber, const char *category, cJSON *data, void *arg)
{
    seen_t *seen = arg;
    ck_assert_str_eq (category, "device.update");
    seen->last = cJSON_GetObjectItem (data, "n")->valueint;
    seen->calls++;
}

START_TEST (test_callback_with_a_poll_loop)
{
    mdp_subscriber_t *subscriber = s_subscriber ("device.");
    ck_assert_int_eq (mdp_subscriber_process (subscriber), -1); //  no hook yet
    seen_t seen = {0, -1};
    mdp_subscriber_set_handler (subscriber, s_on_event, &seen);
    ck_assert_int_eq (mdp_subscriber_process (subscriber), 0);
    mdp_publisher_t *publisher = s_publisher ();
    for (int n = 0; n < 3; n++)
        s_publish (publisher, "device.update", n);
    zpoller_t *poller = zpoller_new (mdp_subscriber_socket (subscriber), NULL);
    while (seen.calls < 3) {
        ck_assert_ptr_nonnull (zpoller_wait (poller, tu_scale (3000)));
        ck_assert_int_ge (mdp_subscriber_process (subscriber), 0);
    }
    ck_assert_int_eq (seen.calls, 3);
    ck_assert_int_eq (seen.last, 2);
    zpoller_destroy (&poller);
    mdp_publisher_destroy (&publisher);
    mdp_subscriber_destroy (&subscriber);
}
END_TEST

int main (void)
{
    Suite *suite = suite_create ("pubsub");
    TCase *tc = tcase_create ("forwarder");
    tcase_add_checked_fixture (tc, s_setup, s_teardown);
    tcase_set_timeout (tc, 60);
    tcase_add_test (tc, test_forwarder_binds_and_refuses);
    tcase_add_test (tc, test_publish_and_receive);
    tcase_add_test (tc, test_prefix_filtering);
    tcase_add_test (tc, test_no_slow_joiner);
    tcase_add_test (tc, test_many_publishers_and_subscribers);
    tcase_add_test (tc, test_callback_with_a_poll_loop);
    suite_add_tcase (suite, tc);
    return tu_run_suite (suite);
}
