/*  test_broker_faults.c - the routing engine when the system fails it: an
    allocation that fails is answered 503 "out of memory" (never 429, never
    silence), and an event loop whose ZeroMQ context dies reports it. This
    binary is linked with -Wl,--wrap=malloc, so the broker's own allocations
    (libbroker.a is linked in) can be made to fail one at a time; libzmq's are
    left alone.
*/
#include "broker_harness.h"
#include "broker_impl.h"
#include <errno.h>
#include <pthread.h>

void *__real_malloc (size_t size);
void *__wrap_malloc (size_t size);

static size_t s_fail_size;      //  fail the next malloc of this size, 0: none
static pthread_t s_fail_thread; //  only in this thread (the broker's)

void *__wrap_malloc (size_t size)
{
    if (s_fail_size && size == s_fail_size && pthread_equal (pthread_self (), s_fail_thread)) {
        s_fail_size = 0;
        return NULL;
    }
    return __real_malloc (size);
}

//  Make the next allocation of size bytes in this thread fail.
static void s_fail_next (size_t size)
{
    s_fail_thread = pthread_self ();
    s_fail_size = size;
}

//  A DEALER client whose routing id is "cli", so allocation sizes are known.
static zsock_t *s_client (void)
{
    zsock_t *client = zsock_new (ZMQ_DEALER);
    ck_assert_ptr_nonnull (client);
    zsock_set_linger (client, 0);
    zsock_set_identity (client, "cli");
    ck_assert_int_eq (zsock_connect (client, "%s", endpoint), 0);
    return client;
}

START_TEST (test_client_counter_out_of_memory_is_503_not_429)
{
    broker_config_t cfg;
    broker_config_defaults (&cfg);
    cfg.max_client_requests = 4; //  a counter per client: client_t
    broker_configure (broker, &cfg);
    zsock_t *client = s_client ();
    s_fail_next (sizeof (client_t) + 3);
    s_send (client, "sssss", "", MDPC01, "svc", "x.get", "{}");
    zmsg_t *reply = s_recv (client, 2000);
    s_expect (&reply, "", MDPC01, "svc", "mdp.error",
              "{\"code\": 503, \"reason\": \"out of memory\"}", NULL);
    ck_assert_uint_eq (s_fail_size, 0);                      //  the failure was used
    ck_assert_uint_eq (broker_stats (broker)->errors[2], 0); //  no 429
    ck_assert_uint_eq (broker_stats (broker)->errors[4], 1);
    size_t services, workers, queued;
    broker_counts (broker, &services, &workers, &queued);
    ck_assert_uint_eq (services, 0); //  nothing left behind
    zsock_destroy (&client);
}
END_TEST

START_TEST (test_request_record_out_of_memory_is_503)
{
    zsock_t *client = s_client ();
    //  [cli] envelope, body [x.get][{}]: three frames in the record
    s_fail_next (sizeof (request_t) + 3 * sizeof (zmq_msg_t));
    s_send (client, "sssss", "", MDPC01, "svc", "x.get", "{}");
    zmsg_t *reply = s_recv (client, 2000);
    s_expect (&reply, "", MDPC01, "svc", "mdp.error",
              "{\"code\": 503, \"reason\": \"out of memory\"}", NULL);
    ck_assert_uint_eq (s_fail_size, 0);
    zsock_destroy (&client);
}
END_TEST

typedef struct {
    int rc;    //  what broker_run returned
    int error; //  errno after it
} run_result_t;

static void *s_run (void *arg)
{
    run_result_t *result = arg;
    result->rc = broker_run (broker, NULL, -1, NULL, NULL);
    result->error = errno;
    return NULL;
}

//  A fatal poll error (here the context terminated under the broker) ends
//  broker_run with -1 and errno, so the daemon can exit non-zero and say why.
START_TEST (test_run_reports_a_dead_context)
{
    run_result_t result = {0, 0};
    pthread_t thread;
    ck_assert_int_eq (pthread_create (&thread, NULL, s_run, &result), 0);
    zmq_ctx_shutdown (zsys_init ()); //  every blocking call now fails with ETERM
    ck_assert_int_eq (pthread_join (thread, NULL), 0);
    ck_assert_int_eq (result.rc, -1);
    ck_assert_int_eq (result.error, ETERM);
}
END_TEST

int main (void)
{
    Suite *suite = suite_create ("broker_faults");
    TCase *tc = tcase_create ("faults");
    tcase_add_checked_fixture (tc, s_setup, s_teardown);
    tcase_set_timeout (tc, 30);
    tcase_add_test (tc, test_client_counter_out_of_memory_is_503_not_429);
    tcase_add_test (tc, test_request_record_out_of_memory_is_503);
    tcase_add_test (tc, test_run_reports_a_dead_context);
    suite_add_tcase (suite, tc);
    return tu_run_suite (suite);
}
