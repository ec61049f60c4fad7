/*  test_security.c - CURVE on the broker's ROUTER, access rules for offering
    and calling services, key revocation on reload, and the per-client cap.
    Peers are raw DEALERs with their own key pairs, made fresh per test.
*/
#include "access.h"
#include "broker_harness.h"
#include "setup.h"
#include <unistd.h>

static char keydir[64]; //  temp folder: server cert, keys/
static char keys[96];   //  allowed public keys
static zcert_t *server_cert, *alice, *worker_cert, *rogue, *stranger;

//  A DEALER speaking CURVE with the given key pair to the broker.
static zsock_t *s_secure_peer (zcert_t *cert)
{
    zsock_t *peer = zsock_new (ZMQ_DEALER);
    zsock_set_linger (peer, 0);
    zcert_apply (cert, peer);
    zsock_set_curve_serverkey (peer, zcert_public_txt (server_cert));
    zsock_connect (peer, "%s", endpoint);
    return peer;
}

static void s_allow (zcert_t *cert, const char *name)
{
    char path[160];
    snprintf (path, sizeof path, "%s/%s.cert", keys, name);
    ck_assert_int_eq (zcert_save_public (cert, path), 0);
}

//  A CURVE broker that allows alice, the worker and the rogue, not the stranger.
static void s_secure_setup (const char *access_json, size_t max_client_requests)
{
    snprintf (keydir, sizeof keydir, "/tmp/mdp-sec-XXXXXX");
    ck_assert_ptr_nonnull (mkdtemp (keydir));
    snprintf (keys, sizeof keys, "%s/keys", keydir);
    zsys_dir_create ("%s", keys);
    server_cert = zcert_new ();
    char path[160];
    snprintf (path, sizeof path, "%s/server.cert", keydir);
    zcert_save (server_cert, path);
    alice = zcert_new ();
    worker_cert = zcert_new ();
    rogue = zcert_new ();
    stranger = zcert_new ();
    s_allow (alice, "alice");
    s_allow (worker_cert, "worker");
    s_allow (rogue, "rogue");

    broker_config_t cfg;
    broker_config_defaults (&cfg);
    cfg.max_client_requests = max_client_requests;
    broker = broker_new (&cfg);
    char error[256] = "";
    ck_assert_msg (broker_set_curve (broker, path, keys, error, sizeof error) == 0, "%s", error);
    if (access_json) {
        cJSON *json = cJSON_Parse (access_json);
        access_t *access = access_new (json, error, sizeof error);
        ck_assert_msg (access != NULL, "%s", error);
        broker_set_access (broker, &access);
        cJSON_Delete (json);
    }
    ck_assert_int_eq (broker_bind (broker, "tcp://127.0.0.1:*"), 0);
    endpoint = strdup (broker_endpoint (broker));
}

static void s_secure_teardown (void)
{
    broker_destroy (&broker);
    free (endpoint);
    zcert_destroy (&server_cert);
    zcert_destroy (&alice);
    zcert_destroy (&worker_cert);
    zcert_destroy (&rogue);
    zcert_destroy (&stranger);
    char command[128];
    snprintf (command, sizeof command, "rm -rf '%s'", keydir);
    ck_assert_int_eq (system (command), 0);
}

static zframe_t *s_token_of (zsock_t *worker)
{
    zmsg_t *msg = s_recv (worker, 2000);
    ck_assert_ptr_nonnull (msg);
    zframe_t *frame = zmsg_first (msg);
    for (int i = 0; i < 3; i++)
        frame = zmsg_next (msg);
    zframe_t *token = zframe_dup (frame);
    zmsg_destroy (&msg);
    return token;
}

static void s_reply (zsock_t *worker, zframe_t **token)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "");
    zmsg_addstr (msg, MDPW01);
    zmsg_addmem (msg, (char[]){MDPW01_REPLY}, 1);
    zmsg_append (msg, token);
    zmsg_addstr (msg, "");
    zmsg_addstr (msg, "x.result");
    zmsg_send (&msg, worker);
}

//  A request that may not leave (no pipe yet): freed if it does not.
static void s_try_send (zsock_t *peer)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "");
    zmsg_addstr (msg, MDPC01);
    zmsg_addstr (msg, "echo");
    zmsg_addstr (msg, "x.get");
    zmsg_addstr (msg, "{}");
    if (zmsg_send (&msg, peer) != 0)
        zmsg_destroy (&msg);
}

START_TEST (test_allowed_key_works_stranger_does_not)
{
    s_secure_setup (NULL, 0);
    zsock_t *worker = s_secure_peer (worker_cert), *client = s_secure_peer (alice);
    zsock_t *outsider = s_secure_peer (stranger), *plain = s_peer ();
    s_ready (worker, "echo");
    s_send (client, "sssss", "", MDPC01, "echo", "x.get", "{}");
    zframe_t *token = s_token_of (worker);
    s_reply (worker, &token);
    zmsg_t *reply = s_recv (client, 2000);
    s_expect (&reply, "", MDPC01, "echo", "x.result", NULL);
    //  Unknown key and plain peer: the handshake fails, nothing gets through.
    //  Their sends must not block: between failed handshakes they have no pipe.
    zsock_set_sndtimeo (outsider, 0);
    zsock_set_sndtimeo (plain, 0);
    s_try_send (outsider);
    s_try_send (plain);
    s_pump (tu_scale (300));
    ck_assert (!(zsock_events (worker) & ZMQ_POLLIN));
    ck_assert (!(zsock_events (outsider) & ZMQ_POLLIN));
    ck_assert (!(zsock_events (plain) & ZMQ_POLLIN));
    ck_assert_int_eq (broker_stats (broker)->requests, 1);
    zsock_destroy (&worker);
    zsock_destroy (&client);
    zsock_destroy (&outsider);
    zsock_destroy (&plain);
    s_secure_teardown ();
}
END_TEST

START_TEST (test_revoked_key_refused_after_reload)
{
    s_secure_setup (NULL, 0);
    zsock_t *worker = s_secure_peer (worker_cert), *client = s_secure_peer (alice);
    s_ready (worker, "echo");
    //  Alice's connection is up (a round trip proves the handshake is done).
    s_send (client, "ssss", "", MDPC01, "mmi.service", "echo");
    zmsg_t *answer = s_recv (client, 2000);
    s_expect (&answer, "", MDPC01, "mmi.service", "200", NULL);
    char path[160];
    snprintf (path, sizeof path, "%s/alice.cert", keys);
    ck_assert_int_eq (unlink (path), 0);
    ck_assert_int_eq (broker_reload_keys (broker), 2);
    s_send (client, "sssss", "", MDPC01, "echo", "x.get", "{}");
    zmsg_t *reply = s_recv (client, 2000);
    s_expect (&reply, "", MDPC01, "echo", "mdp.error",
              "{\"code\": 403, \"reason\": \"not allowed\"}", NULL);
    //  The worker's key revoked too: it is disconnected at once.
    snprintf (path, sizeof path, "%s/worker.cert", keys);
    ck_assert_int_eq (unlink (path), 0);
    ck_assert_int_eq (broker_reload_keys (broker), 1);
    zmsg_t *msg = s_recv (worker, 2000);
    s_expect (&msg, "", MDPW01, "\x05", NULL);
    zsock_destroy (&worker);
    zsock_destroy (&client);
    s_secure_teardown ();
}
END_TEST

START_TEST (test_rogue_worker_cannot_take_a_service)
{
    char rules[256];
    s_secure_setup (NULL, 0); //  to learn the keys; rules come next
    snprintf (rules, sizeof rules, "{\"offer\": {\"%s\": [\"billing*\"], \"*\": [\"public.*\"]}}",
              zcert_public_txt (worker_cert));
    cJSON *json = cJSON_Parse (rules);
    char error[128];
    access_t *access = access_new (json, error, sizeof error);
    cJSON_Delete (json);
    broker_set_access (broker, &access);
    zsock_t *real = s_secure_peer (worker_cert), *fake = s_secure_peer (rogue);
    s_send (fake, "sscs", "", MDPW01, MDPW01_READY, "billing");
    zmsg_t *msg = s_recv (fake, 2000);
    s_expect (&msg, "", MDPW01, "\x05", NULL);
    ck_assert_int_eq (broker_stats (broker)->dropped[DROP_REFUSED], 1);
    s_ready (real, "billing");
    s_ready (fake, "public.echo"); //  what "*" allows is fine
    zsock_t *client = s_secure_peer (alice);
    s_send (client, "sssss", "", MDPC01, "billing", "x.get", "{}");
    zframe_t *token = s_token_of (real);
    s_reply (real, &token);
    msg = s_recv (client, 2000);
    s_expect (&msg, "", MDPC01, "billing", "x.result", NULL);
    zsock_destroy (&real);
    zsock_destroy (&fake);
    zsock_destroy (&client);
    s_secure_teardown ();
}
END_TEST

START_TEST (test_call_rules_give_403)
{
    s_secure_setup ("{\"call\": {\"*\": [\"echo\"]}}", 0);
    zsock_t *client = s_secure_peer (alice);
    s_send (client, "sssss", "", MDPC01, "payroll", "x.get", "{}");
    zmsg_t *reply = s_recv (client, 2000);
    s_expect (&reply, "", MDPC01, "payroll", "mdp.error",
              "{\"code\": 403, \"reason\": \"not allowed\"}", NULL);
    zsock_destroy (&client);
    s_secure_teardown ();
}
END_TEST

START_TEST (test_client_cap_gives_429)
{
    broker_config_t cfg;
    broker_config_defaults (&cfg);
    cfg.max_client_requests = 2;
    broker = broker_new (&cfg);
    broker_bind (broker, "tcp://127.0.0.1:*");
    endpoint = strdup (broker_endpoint (broker));
    zsock_t *greedy = s_peer (), *other = s_peer ();
    for (int i = 0; i < 3; i++)
        s_send (greedy, "ssssss", "", MDPC01, "slow", "30", "x.get", "{}");
    zmsg_t *reply = s_recv (greedy, 2000);
    s_expect (&reply, "", MDPC01, "slow", "mdp.error",
              "{\"code\": 429, \"reason\": \"too many requests\"}", NULL);
    //  Another connection still gets in; the cap is per connection.
    s_send (other, "ssssss", "", MDPC01, "slow", "30", "x.get", "{}");
    s_pump_until (0, 3);
    //  Once answered, the greedy client may send again.
    zsock_t *worker = s_peer ();
    s_ready (worker, "slow");
    for (int i = 0; i < 3; i++) {
        zframe_t *token = s_token_of (worker);
        s_reply (worker, &token);
    }
    for (int i = 0; i < 2; i++) {
        reply = s_recv (greedy, 2000);
        s_expect (&reply, "", MDPC01, "slow", "x.result", NULL);
    }
    s_send (greedy, "ssssss", "", MDPC01, "slow", "30", "x.get", "{}");
    zframe_t *token = s_token_of (worker);
    zframe_destroy (&token);
    zsock_destroy (&greedy);
    zsock_destroy (&other);
    zsock_destroy (&worker);
    s_teardown ();
}
END_TEST

START_TEST (test_access_rules_parse_errors)
{
    const char *bad[] = {"{\"offer\": {\"short\": [\"x\"]}}", "{\"call\": {\"*\": \"x\"}}",
                         "{\"call\": {\"*\": [1]}}", "{\"other\": {}}", "[]"};
    for (int i = 0; i < 5; i++) {
        cJSON *json = cJSON_Parse (bad[i]);
        char error[256] = "";
        access_t *access = access_new (json, error, sizeof error);
        ck_assert_msg (access == NULL, "accepted %s", bad[i]);
        ck_assert_msg (strlen (error) > 0, "no message for %s", bad[i]);
        cJSON_Delete (json);
    }
    cJSON *json = cJSON_Parse ("{\"call\": {\"*\": [\"plugin-*\", \"admin\"]}}");
    char error[256];
    access_t *access = access_new (json, error, sizeof error);
    ck_assert (access_may_call (access, "", "plugin-diskfree.host"));
    ck_assert (!access_may_call (access, "", "manager"));
    ck_assert (access_may_offer (access, "", "anything")); //  no offer rules: open
    access_destroy (&access);
    cJSON_Delete (json);
}
END_TEST

//  "call": {} or "offer": {} is present, so closed: it allows nothing.
START_TEST (test_empty_rules_are_closed)
{
    const char *closed[] = {"{\"call\": {}}", "{\"offer\": {}}"};
    for (int i = 0; i < 2; i++) {
        cJSON *json = cJSON_Parse (closed[i]);
        char error[256] = "";
        access_t *access = access_new (json, error, sizeof error);
        ck_assert_msg (access != NULL, "%s", error);
        bool call = i == 0;
        ck_assert (access_may_call (access, "", "echo") == !call);
        ck_assert (access_may_offer (access, "", "echo") == call);
        access_destroy (&access);
        cJSON_Delete (json);
    }
    s_secure_setup ("{\"call\": {}, \"offer\": {}}", 0);
    zsock_t *client = s_secure_peer (alice), *worker = s_secure_peer (worker_cert);
    s_send (client, "sssss", "", MDPC01, "echo", "x.get", "{}");
    zmsg_t *reply = s_recv (client, 2000);
    s_expect (&reply, "", MDPC01, "echo", "mdp.error",
              "{\"code\": 403, \"reason\": \"not allowed\"}", NULL);
    s_send (worker, "sscs", "", MDPW01, MDPW01_READY, "echo");
    zmsg_t *msg = s_recv (worker, 2000);
    s_expect (&msg, "", MDPW01, "\x05", NULL);
    zsock_destroy (&client);
    zsock_destroy (&worker);
    s_secure_teardown ();
}
END_TEST

//  SIGHUP with rules that cannot be built keeps the rules in force; rules
//  that no longer let a registered worker offer its service disconnect it.
START_TEST (test_reload_keeps_rules_and_applies_tighter_offer)
{
    s_secure_setup ("{\"call\": {\"*\": [\"echo\"]}, \"offer\": {\"*\": [\"echo\"]}}", 0);
    zsock_t *worker = s_secure_peer (worker_cert), *client = s_secure_peer (alice);
    s_ready (worker, "echo");
    config_t *old = config_new (), *fresh = config_new ();
    //  Built by hand: config_apply would refuse it, as it does at start-up.
    fresh->access = cJSON_Parse ("{\"call\": {\"*\": \"payroll\"}}");
    ck_assert_int_eq (setup_reload (broker, NULL, old, fresh), -1);
    s_send (client, "sssss", "", MDPC01, "payroll", "x.get", "{}");
    zmsg_t *reply = s_recv (client, 2000);
    s_expect (&reply, "", MDPC01, "payroll", "mdp.error",
              "{\"code\": 403, \"reason\": \"not allowed\"}", NULL);
    //  Tighter offer rules: the echo worker is told to go.
    cJSON_Delete (fresh->access);
    fresh->access = cJSON_Parse ("{\"offer\": {\"*\": [\"other\"]}}");
    ck_assert_int_eq (setup_reload (broker, NULL, old, fresh), 0);
    zmsg_t *msg = s_recv (worker, 2000);
    s_expect (&msg, "", MDPW01, "\x05", NULL);
    size_t services, workers, queued;
    broker_counts (broker, &services, &workers, &queued);
    ck_assert_uint_eq (workers, 0);
    config_destroy (&old);
    config_destroy (&fresh);
    zsock_destroy (&worker);
    zsock_destroy (&client);
    s_secure_teardown ();
}
END_TEST

//  With CURVE, the cap is per key: a second connection with the same key
//  shares the first one's budget; another key has its own.
START_TEST (test_client_cap_counts_per_key)
{
    s_secure_setup (NULL, 2);
    zsock_t *first = s_secure_peer (alice), *second = s_secure_peer (alice);
    zsock_t *other = s_secure_peer (rogue);
    for (int i = 0; i < 2; i++)
        s_send (first, "ssssss", "", MDPC01, "slow", "30", "x.get", "{}");
    s_pump_until (0, 2);
    s_send (second, "ssssss", "", MDPC01, "slow", "30", "x.get", "{}");
    zmsg_t *reply = s_recv (second, 2000);
    s_expect (&reply, "", MDPC01, "slow", "mdp.error",
              "{\"code\": 429, \"reason\": \"too many requests\"}", NULL);
    s_send (other, "ssssss", "", MDPC01, "slow", "30", "x.get", "{}");
    s_pump_until (0, 3);
    zsock_destroy (&first);
    zsock_destroy (&second);
    zsock_destroy (&other);
    s_secure_teardown ();
}
END_TEST

//  Info lines of the log file that say "refused" and hold needle.
static int s_log_lines_with (FILE *log, const char *needle)
{
    fflush (log);
    rewind (log);
    char line[1024];
    int count = 0;
    while (fgets (line, sizeof line, log))
        count += line[0] == 'I' && strstr (line, "refused") && strstr (line, needle);
    return count;
}

//  403s, 429s and refused READYs are logged at info level with the key, at
//  most 10 lines a second however many there are.
START_TEST (test_refusals_logged_with_key)
{
    FILE *log = tmpfile ();
    ck_assert_ptr_nonnull (log);
    zsys_set_logstream (log);
    s_secure_setup ("{\"call\": {}, \"offer\": {}}", 0);
    const char *key = zcert_public_txt (alice);
    zsock_t *client = s_secure_peer (alice), *worker = s_secure_peer (worker_cert);
    s_send (worker, "sscs", "", MDPW01, MDPW01_READY, "echo");
    zmsg_t *msg = s_recv (worker, 2000);
    s_expect (&msg, "", MDPW01, "\x05", NULL);
    ck_assert_int_eq (s_log_lines_with (log, zcert_public_txt (worker_cert)), 1);
    for (int i = 0; i < 30; i++)
        s_send (client, "sssss", "", MDPC01, "echo", "x.get", "{}");
    for (int i = 0; i < 30; i++) {
        zmsg_t *reply = s_recv (client, 2000);
        ck_assert_ptr_nonnull (reply);
        zmsg_destroy (&reply);
    }
    int lines = s_log_lines_with (log, key);
    ck_assert_int_ge (lines, 1);
    ck_assert_int_le (lines, 20); //  two one-second windows at most
    ck_assert_int_ge (s_log_lines_with (log, "403"), 1);
    zsys_set_logstream (stdout);
    fclose (log);
    zsock_destroy (&client);
    zsock_destroy (&worker);
    s_secure_teardown ();
}
END_TEST

int main (void)
{
    Suite *suite = suite_create ("security");
    TCase *tc = tcase_create ("curve");
    tcase_set_timeout (tc, 30);
    tcase_add_test (tc, test_allowed_key_works_stranger_does_not);
    tcase_add_test (tc, test_revoked_key_refused_after_reload);
    tcase_add_test (tc, test_rogue_worker_cannot_take_a_service);
    tcase_add_test (tc, test_call_rules_give_403);
    tcase_add_test (tc, test_client_cap_gives_429);
    tcase_add_test (tc, test_access_rules_parse_errors);
    tcase_add_test (tc, test_empty_rules_are_closed);
    tcase_add_test (tc, test_reload_keeps_rules_and_applies_tighter_offer);
    tcase_add_test (tc, test_client_cap_counts_per_key);
    tcase_add_test (tc, test_refusals_logged_with_key);
    suite_add_tcase (suite, tc);
    return tu_run_suite (suite);
}
