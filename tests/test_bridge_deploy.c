/*  test_bridge_deploy.c - mdp-amqp-bridge as deployments need it (issue 16):
    Neon's own mq_config.json, fire-and-forget Neon requests, missing queues,
    services without consumers, nuropb's declares, publisher confirms, TLS
    with a CA the suite makes, and failover between two RabbitMQ nodes the
    suite starts once (one with a TLS listener) and always stops. See
    bridge_harness.h.
*/
#include "bridge_harness.h"

//  ---------------------------------------------------------------------------
//  Deployment: Neon's own config file, fire-and-forget, missing queues,
//  nuropb's declarations

//  Neon's mq_config.json as Neon reads it: "MQ" nesting, users.<name>.user,
//  and a RabbitMQ user of its own (not guest).
START_TEST (test_neon_config_file)
{
    char command[400];
    snprintf (command, sizeof command,
              "%s/ctl add_user neon_bridge_user 'n30n secret' >/dev/null 2>&1; "
              "%s/ctl set_permissions -p /neon_api neon_bridge_user '.*' '.*' '.*' >/dev/null 2>&1",
              s_base, s_base);
    ck_assert_int_eq (system (command), 0);
    s_neon_serve ("neon_echo_input", "unused_a", "unused_b");
    s_bridge_config ("{\"MQ\": {\"server\": \"127.0.0.1\", \"port\": %d,\n"
                     "        \"users\": {\"mq_bridge\": {\"user\": \"neon_bridge_user\",\n"
                     "                                  \"password\": \"n30n secret\"}}},\n"
                     " \"routes\": [{\"service\": \"neon.echo\", \"direction\": \"mdp-to-amqp\",\n"
                     "             \"profile\": \"neon\", \"user\": \"mq_bridge\", " NEON_ECHO
                     "}]}\n",
                     s_port);
    s_wait_service ("neon.echo");
    mdp_msg_t *reply = s_call ("neon.echo", "config.get", "{\"k\": 1}", 20000);
    ck_assert_str_eq (s_field (reply, "served_by"), "neon_service");
    mdp_msg_destroy (&reply);
    ck_assert_int_eq (s_count_in ("bridge.log", "link neon_bridge_user@/neon_api up"), 1);
}
END_TEST

//  Neon's send_mq_request(..., expect_response=False) sends no routing_key:
//  the request is served all the same; only the reply is dropped.
START_TEST (test_neon_fire_and_forget)
{
    zactor_t *worker = zactor_new (s_worker_actor, NULL);
    s_bridge (REV ("echo", "neon",
                   "\"vhost\": \"/neon_api\", \"queue\": \"mdp_fire_input\", "
                   "\"action\": \"fire\", \"timeout\": 20000"));
    s_wait_log ("bridge.log", "consuming mdp_fire_input", 1, 20000);
    char url[128];
    s_url (url, sizeof url, "%2Fneon_api");
    char *const argv[] = {PYTHON,           NEON,     "call",
                          "--url",          url,      "--queue",
                          "mdp_fire_input", "--data", "{\"what\": \"fire\"}",
                          "--no-reply",     NULL};
    cJSON *json = s_python_call (argv);
    ck_assert_ptr_nonnull (cJSON_GetStringValue (cJSON_GetObjectItem (json, "sent")));
    cJSON_Delete (json);
    s_wait_log ("bridge.log", "echo: fire -> fire.result", 1, 20000);
    ck_assert_int_eq (s_count_in ("bridge.log", "rejected"), 0);
    zactor_destroy (&worker);
}
END_TEST

//  on_missing_queue "wait" (the default): a request to a queue that does
//  not exist yet is published again until the service declares it; with
//  no queue by the deadline, 504. "fail" is tested in test_forward_errors.
START_TEST (test_missing_queue_wait)
{
    s_bridge (
        FWD ("neon.late", "neon", "\"vhost\": \"/neon_api\", \"queue\": \"neon_late_input\", \"timeout\": 30000") "," FWD (
            "neon.never", "neon",
            "\"vhost\": \"/neon_api\", \"queue\": \"neon_never_input\", \"timeout\": 1500"));
    s_wait_service ("neon.late");
    s_wait_service ("neon.never");
    mdp_async_t *async = mdp_async_new (s_endpoint);
    mdp_async_set_timeout (async, tu_scale (60000));
    mdp_msg_t *request = mdp_msg_new ("config.get", cJSON_Parse ("{\"early\": true}"));
    uint64_t id = mdp_async_send (async, "neon.late", &request);
    s_wait_log ("bridge.log", "unroutable, again", 2, 20000);
    s_neon_serve ("neon_late_input", "unused_a", "unused_b");
    mdp_msg_t *reply = s_async_final (async, id, 40000);
    char *text = mdp_msg_to_json (reply);
    ck_assert_msg (streq (mdp_msg_action (reply), "config.result"), "reply %s", text);
    free (text);
    ck_assert_str_eq (s_field (reply, "served_by"), "neon_service");
    mdp_msg_destroy (&reply);
    mdp_async_destroy (&async);
    s_expect_error ("neon.never", "config.get", "{}", 504, "no queue for the AMQP service");
}
END_TEST

//  fail_fast_no_consumer: a queue nobody consumes gives 503 at once, not
//  after the route's timeout; a queue with a consumer is served; no queue
//  at all with on_missing_queue "fail" gives 404.
START_TEST (test_fail_fast_no_consumer)
{
    amqp_connection_state_t conn = s_amqp_open ();
    amqp_queue_declare (conn, 1, amqp_cstring_bytes ("idle_input"), 0, 0, 0, 0, amqp_empty_table);
    ck_assert_int_eq (amqp_get_rpc_reply (conn).reply_type, AMQP_RESPONSE_NORMAL);
    s_amqp_close (conn);
    zactor_t *service = zactor_new (s_raw_service, NULL);
    s_bridge (FWD (
        "raw.idle", "raw",
        "\"queue\": \"idle_input\", \"fail_fast_no_consumer\": true, "
        "\"timeout\": 60000") "," FWD ("raw.echo", "raw",
                                       "\"queue\": \"raw_echo_input\", \"fail_fast_no_consumer\": "
                                       "true") "," FWD ("raw.none", "raw",
                                                        "\"queue\": \"no_queue_at_all\", "
                                                        "\"fail_fast_no_consumer\": true, "
                                                        "\"on_missing_queue\": \"fail\""));
    s_wait_service ("raw.idle");
    s_wait_service ("raw.echo");
    s_wait_service ("raw.none");
    int64_t started = zclock_mono ();
    s_expect_error ("raw.idle", "echo", "{}", 503, "no consumer");
    //  Bounded far below the route's 60 s: the answer did not wait for it
    ck_assert_int_lt (zclock_mono () - started, 20000);
    mdp_msg_t *reply = s_call ("raw.echo", "echo", "{\"k\": \"v\"}", 20000);
    ck_assert_str_eq (s_field (reply, "k"), "v");
    mdp_msg_destroy (&reply);
    s_expect_error ("raw.none", "echo", "{}", 404, "no such queue");
    zactor_destroy (&service);
}
END_TEST

//  The bridge and a nuropb service declare the same topology (names,
//  durability, dead-letter arguments) in either order, without a 406.
START_TEST (test_nuropb_declares)
{
    s_nuropb_serve ("mdpfirst");
    zactor_t *worker = zactor_new (s_worker_actor, NULL);
    s_bridge (REV ("echo", "nuropb", "\"routing_key\": \"mdpfirst\", \"timeout\": 20000") "," REV (
        "echo", "nuropb", "\"routing_key\": \"mdpsecond\", \"timeout\": 20000"));
    s_wait_log ("bridge.log", "consuming nuropb-mdpfirst-service", 1, 20000);
    s_wait_log ("bridge.log", "consuming nuropb-mdpsecond-service", 1, 20000);
    char url[128];
    s_url (url, sizeof url, "%2f");
    char *argv[] = {PYTHON,      NUROPB,      "serve",      "--url", url,
                    "--service", "mdpsecond", "--prefetch", "8",     NULL};
    s_start (argv, "nuropb.log");
    s_wait_log ("nuropb.log", "READY", 2, 20000);
    ck_assert_int_eq (s_count_in ("bridge.log", "PRECONDITION_FAILED"), 0);
    ck_assert_int_eq (s_count_in ("nuropb.log", "PRECONDITION_FAILED"), 0);
    cJSON *json = s_nuropb_call ("mdpsecond", "echo", "{\"a\": 1}");
    ck_assert (cJSON_IsNull (s_path (json, "error", NULL)));
    cJSON_Delete (json);
    zactor_destroy (&worker);
}
END_TEST

//  Publisher confirms (on by default): a message RabbitMQ refuses (a full
//  queue with x-overflow reject-publish nacks it) gives 502 at once, not
//  504 after the route's timeout; confirmed requests are served as before.
START_TEST (test_publisher_confirms)
{
    amqp_connection_state_t conn = s_amqp_open ();
    amqp_table_entry_t args[2] = {
        {amqp_cstring_bytes ("x-max-length"), {AMQP_FIELD_KIND_I32, {.i32 = 0}}},
        {amqp_cstring_bytes ("x-overflow"),
         {AMQP_FIELD_KIND_UTF8, {.bytes = amqp_cstring_bytes ("reject-publish")}}}};
    amqp_queue_declare (conn, 1, amqp_cstring_bytes ("full_input"), 0, 0, 0, 0,
                        (amqp_table_t){2, args});
    ck_assert_int_eq (amqp_get_rpc_reply (conn).reply_type, AMQP_RESPONSE_NORMAL);
    s_amqp_close (conn);
    zactor_t *service = zactor_new (s_raw_service, NULL);
    s_bridge (FWD ("raw.full", "raw", "\"queue\": \"full_input\", \"timeout\": 60000") "," FWD (
        "raw.echo", "raw", "\"queue\": \"raw_echo_input\""));
    s_wait_service ("raw.full");
    s_wait_service ("raw.echo");
    int64_t started = zclock_mono ();
    s_expect_error ("raw.full", "echo", "{}", 502, "basic.nack");
    ck_assert_int_lt (zclock_mono () - started, 20000);
    mdp_msg_t *reply = s_call ("raw.echo", "echo", "{\"k\": \"confirmed\"}", 20000);
    ck_assert_str_eq (s_field (reply, "k"), "confirmed");
    mdp_msg_destroy (&reply);
    zactor_destroy (&service);
}
END_TEST

//  TLS to RabbitMQ: our CA and the server's name check out, requests flow.
START_TEST (test_tls)
{
    s_neon_serve ("neon_echo_input", "unused_a", "unused_b");
    s_bridge_config (
        "{\"server\": \"localhost\", \"port\": %d,\n"
        " \"tls\": {\"ca\": \"%s/ca.pem\", \"verify_peer\": true, \"verify_hostname\": true},\n"
        " \"users\": {\"bridge\": {\"user\": \"guest\", \"password\": \"guest\"}},\n"
        " \"routes\": [" FWD ("neon.echo", "neon", NEON_ECHO) "]}\n",
        s_tls_port, s_tls_dir);
    s_wait_service ("neon.echo");
    mdp_msg_t *reply = s_call ("neon.echo", "config.get", "{\"secure\": true}", 20000);
    ck_assert_str_eq (s_field (reply, "served_by"), "neon_service");
    mdp_msg_destroy (&reply);
    ck_assert_int_eq (s_count_in ("bridge.log", ", TLS)"), 1);
}
END_TEST

//  A CA that did not sign the server's certificate: refused at start-up
//  with a clear error and exit 2.
START_TEST (test_tls_wrong_ca)
{
    s_bridge_config ("{\"server\": \"localhost\", \"port\": %d,\n"
                     " \"tls\": {\"ca\": \"%s/wrong-ca.pem\"},\n"
                     " \"users\": {\"bridge\": {\"user\": \"guest\", \"password\": \"guest\"}},\n"
                     " \"routes\": [" FWD ("neon.echo", "neon", NEON_ECHO) "]}\n",
                     s_tls_port, s_tls_dir);
    int code = tu_wait_exit (s_bridge_pid, tu_scale (30000));
    s_bridge_pid = 0;
    ck_assert_int_eq (code, 2);
    ck_assert_int_eq (s_count_in ("bridge.log", "refused"), 1);
    ck_assert_int_eq (s_count_in ("bridge.log", "check \"tls\""), 1);
}
END_TEST

//  Two independent nodes in "servers": the node in use stops, the bridge
//  moves to the other, where the service has its queue too.
START_TEST (test_failover)
{
    s_neon_serve ("neon_echo_input", "unused_a", "unused_b");
    char url[128];
    snprintf (url, sizeof url, "amqp://guest:guest@127.0.0.1:%d/%%2Fneon_api", s_port2);
    char *argv[] = {PYTHON, NEON, "serve", "--url", url, "--queue", "neon_echo_input", NULL};
    s_start (argv, "neon2.log");
    s_wait_log ("neon2.log", "READY", 1, 20000);
    s_bridge_config (
        "{\"servers\": [\"127.0.0.1:%d\", \"127.0.0.1:%d\"], \"amqp_heartbeat\": 2,\n"
        " \"amqp_reconnect_max\": 1000, \"mdp_reconnect_max\": 1000,\n"
        " \"users\": {\"bridge\": {\"user\": \"guest\", \"password\": \"guest\"}},\n"
        " \"routes\": [" FWD ("neon.echo", "neon", NEON_ECHO ", \"timeout\": 20000") "]}\n",
        s_port, s_port2);
    s_wait_service ("neon.echo");
    mdp_msg_t *reply = s_call ("neon.echo", "config.get", "{\"node\": 1}", 20000);
    ck_assert_str_eq (s_field (reply, "served_by"), "neon_service");
    mdp_msg_destroy (&reply);
    char up[64];
    snprintf (up, sizeof up, "up (127.0.0.1:%d)", s_port);
    ck_assert_int_eq (s_count_in ("bridge.log", up), 1);
    ck_assert_int_eq (s_rabbit ("rabbit-down.sh", "RABBIT_KEEP_EPMD=1"), 0);
    snprintf (up, sizeof up, "up (127.0.0.1:%d)", s_port2);
    s_wait_log ("bridge.log", up, 1, 30000);
    s_wait_service ("neon.echo");
    reply = s_call ("neon.echo", "config.get", "{\"node\": 2}", 20000);
    ck_assert_str_eq (s_field (reply, "served_by"), "neon_service");
    ck_assert_int_eq (cJSON_GetObjectItem (mdp_msg_data (reply), "node")->valueint, 2);
    mdp_msg_destroy (&reply);
}
END_TEST

int main (void)
{
    //  MDP_BRIDGE_TEST=test_name runs that one test of the deployment case
#define s_add_test(tc, test)                                                                       \
    do {                                                                                           \
        const char *only = getenv ("MDP_BRIDGE_TEST");                                             \
        if (!only || streq (only, #test))                                                          \
            tcase_add_test (tc, test);                                                             \
    } while (0)
    Suite *suite = suite_create ("bridge_deploy");
    TCase *tc;
    //  Its own RabbitMQ with a TLS listener, and a second node for failover
    tc = tcase_create ("deployment");
    tcase_set_timeout (tc, 300);
    tcase_add_unchecked_fixture (tc, s_rabbit_pair_setup, s_rabbit_pair_teardown);
    tcase_add_checked_fixture (tc, s_setup, s_teardown);
    s_add_test (tc, test_neon_config_file);
    s_add_test (tc, test_neon_fire_and_forget);
    s_add_test (tc, test_missing_queue_wait);
    s_add_test (tc, test_fail_fast_no_consumer);
    s_add_test (tc, test_nuropb_declares);
    s_add_test (tc, test_publisher_confirms);
    s_add_test (tc, test_tls);
    s_add_test (tc, test_tls_wrong_ca);
    s_add_test (tc, test_failover); //  last: it stops the first node
    suite_add_tcase (suite, tc);
    return tu_run_suite (suite);
}
