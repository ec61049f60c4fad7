/*  test_load_bounds.c - the broker's --max-msg-size bound, through real
    processes (load_harness.h): a request over the bound is dropped with its
    connection, while the broker lives on and serves another client, and the
    offender too once it sends something of a proper size.
*/
#include "load_harness.h"
#include <check.h>
#include <errno.h>

//  True when reply is an echo of {"id": id}.
static bool s_echoes (mdp_msg_t *reply, const char *id)
{
    cJSON *item = reply ? cJSON_GetObjectItemCaseSensitive (mdp_msg_data (reply), "id") : NULL;
    return cJSON_IsString (item) && streq (item->valuestring, id) && !mdp_msg_is_error (reply);
}

START_TEST (test_max_msg_size_drops_only_the_offender)
{
    const char *extra[] = {"--max-msg-size", "1000", NULL};
    LOAD_ASSERT (s_broker_start ("tcp://127.0.0.1:*", extra) == 0, "no broker");
    s_workers[0] = s_worker_start (0);
    LOAD_ASSERT (s_wait_echo (), "no echo worker registered");
    //  A 10,000-byte JSON frame: libzmq closes that client's connection, so
    //  the request never reaches the broker and gets no answer at all.
    mdp_client_t *big = mdp_client_new (s_endpoint), *other = mdp_client_new (s_endpoint);
    LOAD_ASSERT (big && other, "cannot create clients");
    mdp_client_set_timeout (big, 2000);
    mdp_client_set_retries (big, 1);
    mdp_client_set_timeout (other, 5000);
    cJSON *data = cJSON_CreateObject ();
    char *pad = calloc (10001, 1);
    memset (pad, 'x', 10000);
    cJSON_AddStringToObject (data, "pad", pad);
    free (pad);
    mdp_msg_t *request = mdp_msg_new ("config.get", data);
    mdp_msg_t *big_reply = mdp_client_request (big, "echo", &request);
    bool big_silent = !big_reply && errno == EAGAIN;
    //  The broker lives on and serves another client, and the offender too
    //  once it sends something of a proper size (on its fresh socket).
    request = mdp_msg_new ("config.get", cJSON_Parse ("{\"id\": \"other\"}"));
    mdp_msg_t *other_reply = mdp_client_request (other, "echo", &request);
    request = mdp_msg_new ("config.get", cJSON_Parse ("{\"id\": \"small\"}"));
    mdp_client_set_timeout (big, 5000);
    mdp_msg_t *small_reply = mdp_client_request (big, "echo", &request);
    bool alive = waitpid (s_broker, NULL, WNOHANG) == 0;
    bool other_ok = s_echoes (other_reply, "other"), small_ok = s_echoes (small_reply, "small");
    mdp_msg_destroy (&big_reply);
    mdp_msg_destroy (&other_reply);
    mdp_msg_destroy (&small_reply);
    mdp_client_destroy (&big);
    mdp_client_destroy (&other);
    LOAD_ASSERT (alive, "the broker died");
    int status = tu_stop (s_broker, SIGTERM, 5000);
    s_broker = 0;
    s_stop_all ();
    ck_assert_msg (big_silent, "the 10,000-byte request was answered");
    ck_assert_msg (other_ok, "another client was not served");
    ck_assert_msg (small_ok, "the offender was not served afterwards");
    ck_assert (WIFEXITED (status) && WEXITSTATUS (status) == 0);
}
END_TEST

int main (void)
{
    s_log_init ("test_load_bounds");
    Suite *suite = suite_create ("load_bounds");
    struct {
        const char *name;
        const TTest *test;
    } cases[] = {{"bounds", test_max_msg_size_drops_only_the_offender}};
    for (size_t index = 0; index < sizeof cases / sizeof cases[0]; index++) {
        TCase *tc = tcase_create (cases[index].name);
        tcase_add_checked_fixture (tc, s_setup, s_teardown);
        tcase_set_timeout (tc, 300);
        tcase_add_test (tc, cases[index].test);
        suite_add_tcase (suite, tc);
    }
    return tu_run_suite (suite);
}
