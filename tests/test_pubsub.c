/*  test_pubsub.c - Check suite for events: the topic codec (mdp_topic.h), the
    forwarder (daemon/forwarder.c) run in-process, and mdp_publisher_t /
    mdp_subscriber_t through it: delivery, prefix filtering, the slow-joiner
    handshake (repeated, to catch races), many peers each getting every event
    exactly once, malformed traffic that must be dropped and counted; and the
    exit codes of mdp-pub and mdp-sub.
*/
#include "access.h"
#include "forwarder.h"
#include "mdp.h"
#include "mdp_topic.h"
#include "testutil.h"
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static forwarder_t *forwarder;
static const char *pub_ep; //  where publishers connect (XSUB)
static const char *sub_ep; //  where subscribers connect (XPUB)

static void s_setup (void)
{
    forwarder = forwarder_new ("tcp://127.0.0.1:*", "tcp://127.0.0.1:*");
    ck_assert_ptr_nonnull (forwarder);
    pub_ep = forwarder_pub_endpoint (forwarder);
    sub_ep = forwarder_sub_endpoint (forwarder);
}

static void s_teardown (void)
{
    forwarder_destroy (&forwarder);
}

static mdp_subscriber_t *s_subscriber (const char *prefix)
{
    mdp_subscriber_t *subscriber = mdp_subscriber_new (sub_ep);
    ck_assert_ptr_nonnull (subscriber);
    mdp_subscriber_set_sync_timeout (subscriber, tu_scale (3000));
    if (prefix)
        ck_assert_int_eq (mdp_subscriber_subscribe (subscriber, prefix), 0);
    return subscriber;
}

static mdp_publisher_t *s_publisher (void)
{
    mdp_publisher_t *publisher = mdp_publisher_new (pub_ep);
    ck_assert_ptr_nonnull (publisher);
    mdp_publisher_set_sync_timeout (publisher, tu_scale (3000));
    return publisher;
}

//  Publish category with data {"n": n}.
static void s_publish (mdp_publisher_t *publisher, const char *category, int n)
{
    cJSON *data = cJSON_CreateObject ();
    cJSON_AddNumberToObject (data, "n", n);
    ck_assert_int_eq (mdp_publisher_send (publisher, category, data), 0);
    cJSON_Delete (data);
}

//  Receive the next event (bounded wait) and check category and n.
static void s_expect (mdp_subscriber_t *subscriber, const char *category, int n)
{
    char *got = NULL;
    cJSON *data = NULL;
    ck_assert_int_eq (mdp_subscriber_recv (subscriber, &got, &data, tu_scale (3000)), 0);
    ck_assert_str_eq (got, category);
    ck_assert_int_eq (cJSON_GetObjectItem (data, "n")->valueint, n);
    free (got);
    cJSON_Delete (data);
}

//  ---------------------------------------------------------------------------
//  The topic codec

//  Category length of a topic given as a C string.
static size_t s_parse (const char *topic)
{
    return mdp_topic_parse (topic, strlen (topic));
}

START_TEST (test_topic_parse_accepts_domogik_topics)
{
    ck_assert_uint_eq (s_parse ("plugin.status.1371476851_54.0_1"), strlen ("plugin.status"));
    ck_assert_uint_eq (s_parse ("device.update.1700000000_1234567.0_1"), strlen ("device.update"));
    ck_assert_uint_eq (s_parse ("device-stats.1371476851.0_1"), strlen ("device-stats"));
    ck_assert_uint_eq (s_parse ("a.1.0_1"), 1);
    ck_assert_uint_eq (s_parse ("a.b.c.d.1_0.12_34"), strlen ("a.b.c.d"));
    ck_assert_uint_eq (s_parse ("caf\xc3\xa9.status.1_2.0_1"), strlen ("caf\xc3\xa9.status"));
}
END_TEST

START_TEST (test_topic_parse_refuses_malformed)
{
    const char *bad[] = {"",
                         "plugin.status",
                         "plugin.status.1371476851_54",
                         ".1_2.0_1",
                         "a..1_2.0_1",
                         ".a.1_2.0_1",
                         "a b.1_2.0_1",
                         "a.x1_2.0_1",
                         "a.1_.0_1",
                         "a._1.0_1",
                         "a.1_2.0",
                         "a.1_2.0_1_2",
                         "a.1_2.0_x",
                         "a.1_2._1",
                         "a.1_2.0_1.",
                         "a.1.2.0_1x",
                         "\x01\x02\xff",
                         "a\t.1_2.0_1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg (s_parse (bad[i]) == 0, "accepted '%s'", bad[i]);
    //  A NUL inside, and a topic one byte too long
    ck_assert_uint_eq (mdp_topic_parse ("a\0b.1_2.0_1", 11), 0);
    char big[MDP_TOPIC_MAX + 1];
    memset (big, 'x', sizeof big);
    memcpy (big + MDP_TOPIC_MAX - 8, ".1_2.0_1", 8);
    ck_assert_uint_eq (mdp_topic_parse (big, MDP_TOPIC_MAX), MDP_TOPIC_MAX - 8);
    memcpy (big + MDP_TOPIC_MAX + 1 - 8, ".1_2.0_1", 8);
    ck_assert_uint_eq (mdp_topic_parse (big, MDP_TOPIC_MAX + 1), 0);
    ck_assert_uint_eq (mdp_topic_parse (NULL, 0), 0);
}
END_TEST

START_TEST (test_topic_format_round_trips)
{
    char topic[MDP_TOPIC_MAX + 1];
    size_t len = mdp_topic_format (topic, sizeof topic, "plugin.status");
    ck_assert_uint_gt (len, 0);
    ck_assert_uint_eq (len, strlen (topic));
    ck_assert_uint_eq (mdp_topic_parse (topic, len), strlen ("plugin.status"));
    ck_assert_str_eq (topic + len - 4, ".0_1");
    //  plugin.status.<seconds>_<fraction>.0_1, seconds about now
    long long seconds = atoll (topic + strlen ("plugin.status."));
    ck_assert (llabs (seconds - (long long)time (NULL)) < 5);
    ck_assert_ptr_nonnull (strchr (topic + strlen ("plugin.status."), '_'));
    const char *bad[] = {"", ".a", "a.", "a..b", "a b", "a\nb"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_uint_eq (mdp_topic_format (topic, sizeof topic, bad[i]), 0);
    ck_assert_uint_eq (mdp_topic_format (topic, sizeof topic, NULL), 0);
    ck_assert_uint_eq (mdp_topic_format (topic, 10, "plugin.status"), 0); //  too small
}
END_TEST

START_TEST (test_topic_reserved_and_probe)
{
    ck_assert (mdp_topic_reserved ("mdp.sync", 8));
    ck_assert (mdp_topic_reserved ("mdp.sync.x", 10));
    ck_assert (!mdp_topic_reserved ("mdp.syncx", 9));
    ck_assert (!mdp_topic_reserved ("mdp", 3));
    ck_assert (!mdp_topic_reserved ("plugin.status", 13));
    ck_assert (mdp_topic_is_sync_probe ("mdp.sync.AB09_-z.", 17));
    ck_assert (!mdp_topic_is_sync_probe ("mdp.sync.ab", 11)); //  no final dot
    ck_assert (!mdp_topic_is_sync_probe ("mdp.sync..", 10));  //  empty nonce
    ck_assert (!mdp_topic_is_sync_probe ("mdp.sync.a b.", 13));
    ck_assert (!mdp_topic_is_sync_probe ("mdp.sync.a.b.", 13));
    ck_assert (!mdp_topic_is_sync_probe ("plugin.", 7));
}
END_TEST

//  ---------------------------------------------------------------------------
//  The forwarder and the library

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

//  ---------------------------------------------------------------------------
//  CURVE: the forwarder as the broker runs it with curve_cert/curve_keys

static char secure_dir[64];

//  A key pair saved as NAME and NAME_secret in secure_dir; with allowed,
//  its public half also goes into keys/.
static zcert_t *s_cert (const char *name, bool allowed)
{
    zcert_t *cert = zcert_new ();
    char path[128];
    snprintf (path, sizeof path, "%s/%s", secure_dir, name);
    ck_assert_int_eq (zcert_save (cert, path), 0);
    snprintf (path, sizeof path, "%s/keys/%s", secure_dir, name);
    if (allowed)
        ck_assert_int_eq (zcert_save_public (cert, path), 0);
    return cert;
}

//  Both sides authenticate (ZAP with the allowed keys); the publish rules
//  drop what a key may not publish, the subscribe rules what a key may not
//  subscribe to; a plain subscriber gets nothing.
START_TEST (test_secure_forwarder_enforces_rules)
{
    snprintf (secure_dir, sizeof secure_dir, "/tmp/mdp-fwd-XXXXXX");
    ck_assert_ptr_nonnull (mkdtemp (secure_dir));
    char keys[96], path[128], rules[512];
    snprintf (keys, sizeof keys, "%s/keys", secure_dir);
    zsys_dir_create ("%s", keys);
    zcert_t *server = s_cert ("server", false), *sensor = s_cert ("sensor", true);
    zcert_t *alice = s_cert ("alice", true), *bob = s_cert ("bob", true);
    zactor_t *auth = zactor_new (zauth, NULL);
    zstr_sendx (auth, "CURVE", keys, NULL);
    zsock_wait (auth);
    forwarder = forwarder_new_secure ("tcp://127.0.0.1:*", "tcp://127.0.0.1:*",
                                      zcert_secret_key (server));
    ck_assert_ptr_nonnull (forwarder);
    pub_ep = forwarder_pub_endpoint (forwarder);
    sub_ep = forwarder_sub_endpoint (forwarder);
    snprintf (rules, sizeof rules, "{\"publish\": {\"%s\": [\"sensor.\"]}, "
              "\"subscribe\": {\"%s\": [\"sensor.\"], \"%s\": [\"other.\"]}}",
              zcert_public_txt (sensor), zcert_public_txt (alice), zcert_public_txt (bob));
    cJSON *json = cJSON_Parse (rules);
    char error[256] = "";
    access_t *access = access_new (json, error, sizeof error);
    ck_assert_msg (access != NULL, "%s", error);
    cJSON_Delete (json);
    forwarder_set_access (forwarder, &access);

    const char *server_key = zcert_public_txt (server);
    mdp_subscriber_t *allowed = mdp_subscriber_new (sub_ep), *refused = mdp_subscriber_new (sub_ep);
    mdp_subscriber_t *plain = mdp_subscriber_new (sub_ep);
    snprintf (path, sizeof path, "%s/alice", secure_dir);
    ck_assert_int_eq (mdp_subscriber_set_curve (allowed, server_key, path), 0);
    snprintf (path, sizeof path, "%s/bob", secure_dir);
    ck_assert_int_eq (mdp_subscriber_set_curve (refused, server_key, path), 0);
    mdp_subscriber_set_sync_timeout (allowed, tu_scale (3000));
    mdp_subscriber_set_sync_timeout (refused, tu_scale (3000));
    mdp_subscriber_set_sync_timeout (plain, 300);
    ck_assert_int_eq (mdp_subscriber_subscribe (allowed, "sensor."), 0);
    ck_assert_int_eq (mdp_subscriber_subscribe (refused, "sensor."), 0);
    ck_assert_int_eq (mdp_subscriber_subscribe (plain, "sensor."), -1);   //  no handshake
    mdp_publisher_t *publisher = s_publisher ();
    snprintf (path, sizeof path, "%s/sensor", secure_dir);
    ck_assert_int_eq (mdp_publisher_set_curve (publisher, server_key, path), 0);
    s_publish (publisher, "admin.reset", 1);   //  not this key's to publish
    s_publish (publisher, "sensor.temp", 2);
    s_expect (allowed, "sensor.temp", 2);
    char *category = NULL;
    cJSON *data = NULL;
    ck_assert_int_eq (mdp_subscriber_recv (refused, &category, &data, tu_scale (300)), -1);
    forwarder_stats_t stats;
    forwarder_stats (forwarder, &stats);
    ck_assert_uint_eq (stats.forwarded, 1);
    ck_assert_uint_eq (stats.dropped[FWD_DROP_DENIED], 2);   //  bob's subscription, admin.reset
    mdp_publisher_destroy (&publisher);
    mdp_subscriber_destroy (&allowed);
    mdp_subscriber_destroy (&refused);
    mdp_subscriber_destroy (&plain);
    forwarder_destroy (&forwarder);
    zactor_destroy (&auth);
    zcert_destroy (&server);
    zcert_destroy (&sensor);
    zcert_destroy (&alice);
    zcert_destroy (&bob);
    char command[128];
    snprintf (command, sizeof command, "rm -rf '%s'", secure_dir);
    ck_assert_int_eq (system (command), 0);
}
END_TEST

int main (void)
{
    Suite *suite = suite_create ("pubsub");
    TCase *codec = tcase_create ("topic");
    tcase_add_test (codec, test_topic_parse_accepts_domogik_topics);
    tcase_add_test (codec, test_topic_parse_refuses_malformed);
    tcase_add_test (codec, test_topic_format_round_trips);
    tcase_add_test (codec, test_topic_reserved_and_probe);
    suite_add_tcase (suite, codec);
    TCase *tc = tcase_create ("forwarder");
    tcase_add_checked_fixture (tc, s_setup, s_teardown);
    tcase_set_timeout (tc, 60);
    tcase_add_test (tc, test_forwarder_binds_and_refuses);
    tcase_add_test (tc, test_publish_and_receive);
    tcase_add_test (tc, test_prefix_filtering);
    tcase_add_test (tc, test_no_slow_joiner);
    tcase_add_test (tc, test_many_publishers_and_subscribers);
    tcase_add_test (tc, test_callback_with_a_poll_loop);
    tcase_add_test (tc, test_forwarder_survives_malformed_publications);
    tcase_add_test (tc, test_forwarder_survives_junk_from_subscribers);
    tcase_add_test (tc, test_no_forwarder);
    suite_add_tcase (suite, tc);
    TCase *secure = tcase_create ("curve");
    tcase_set_timeout (secure, 60);
    tcase_add_test (secure, test_secure_forwarder_enforces_rules);
    suite_add_tcase (suite, secure);
    TCase *programs = tcase_create ("programs");
    tcase_add_checked_fixture (programs, s_setup, s_teardown);
    tcase_set_timeout (programs, 120);
    tcase_add_test (programs, test_mdp_pub_exit_codes);
    tcase_add_test (programs, test_mdp_sub_exit_codes);
    suite_add_tcase (suite, programs);
    SRunner *runner = srunner_create (suite);
    srunner_run_all (runner, CK_NORMAL);
    int failed = srunner_ntests_failed (runner);
    srunner_free (runner);
    return failed ? 1 : 0;
}
