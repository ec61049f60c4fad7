/*  test_pubsub_topic.c - Check suite for the event topic codec (mdp_topic.h):
    Domogik topics accepted, malformed ones refused, format and parse round
    trips, the reserved names and the slow-joiner probe.
*/
#include "mdp_topic.h"
#include "testutil.h"
#include <check.h>

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

int main (void)
{
    Suite *suite = suite_create ("pubsub_topic");
    TCase *codec = tcase_create ("topic");
    tcase_add_test (codec, test_topic_parse_accepts_domogik_topics);
    tcase_add_test (codec, test_topic_parse_refuses_malformed);
    tcase_add_test (codec, test_topic_format_round_trips);
    tcase_add_test (codec, test_topic_reserved_and_probe);
    suite_add_tcase (suite, codec);
    return tu_run_suite (suite);
}
