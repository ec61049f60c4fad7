/*  test_pubsub_curve.c - Check suite for the forwarder with CURVE, as the
    broker runs it with curve_cert/curve_keys: only the publishers and
    subscribers whose keys are allowed get through.
*/
#include "access.h"
#include "pubsub_harness.h"
#include <check.h>
#include <errno.h>
#include <unistd.h>

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
    forwarder =
        forwarder_new_secure ("tcp://127.0.0.1:*", "tcp://127.0.0.1:*", zcert_secret_key (server));
    ck_assert_ptr_nonnull (forwarder);
    pub_ep = forwarder_pub_endpoint (forwarder);
    sub_ep = forwarder_sub_endpoint (forwarder);
    snprintf (rules, sizeof rules,
              "{\"publish\": {\"%s\": [\"sensor.\"]}, "
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
    ck_assert_int_eq (mdp_subscriber_subscribe (plain, "sensor."), -1); //  no handshake
    mdp_publisher_t *publisher = s_publisher ();
    snprintf (path, sizeof path, "%s/sensor", secure_dir);
    ck_assert_int_eq (mdp_publisher_set_curve (publisher, server_key, path), 0);
    s_publish (publisher, "admin.reset", 1); //  not this key's to publish
    s_publish (publisher, "sensor.temp", 2);
    s_expect (allowed, "sensor.temp", 2);
    char *category = NULL;
    cJSON *data = NULL;
    ck_assert_int_eq (mdp_subscriber_recv (refused, &category, &data, tu_scale (300)), -1);
    forwarder_stats_t stats;
    forwarder_stats (forwarder, &stats);
    ck_assert_uint_eq (stats.forwarded, 1);
    ck_assert_uint_eq (stats.dropped[FWD_DROP_DENIED], 2); //  bob's subscription, admin.reset
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
    Suite *suite = suite_create ("pubsub_curve");
    TCase *secure = tcase_create ("curve");
    tcase_set_timeout (secure, 60);
    tcase_add_test (secure, test_secure_forwarder_enforces_rules);
    suite_add_tcase (suite, secure);
    return tu_run_suite (suite);
}
