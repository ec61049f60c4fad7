/*  test_mmi_stats.c - the broker's observability: mmi.workers and mmi.stats
    (shapes and figures after known traffic), service-time percentiles, the
    bound on per-service names, and the periodic stats log. The broker runs in
    the test's thread (broker_poll); peers are raw DEALER sockets.
*/
#include "broker_harness.h"
#include "broker_metrics.h"
#include <cjson/cJSON.h>
#include <unistd.h>

static void s_start (const broker_config_t *cfg)
{
    broker = broker_new (cfg);
    ck_assert_ptr_nonnull (broker);
    ck_assert_int_eq (broker_bind (broker, "tcp://127.0.0.1:*"), 0);
    endpoint = strdup (broker_endpoint (broker));
}

//  Take a REQUEST; return its token frame (the body is dropped).
static zframe_t *s_take_request (zsock_t *worker)
{
    zmsg_t *msg = s_recv (worker, 2000);
    ck_assert_ptr_nonnull (msg);
    ck_assert_uint_ge (zmsg_size (msg), 6);
    zframe_t *frame = zmsg_first (msg);
    frame = zmsg_next (msg);
    frame = zmsg_next (msg);
    ck_assert (zframe_size (frame) == 1 && zframe_data (frame)[0] == MDPW01_REQUEST);
    zframe_t *token = zframe_dup (zmsg_next (msg));
    zmsg_destroy (&msg);
    return token;
}

static void s_reply (zsock_t *worker, zframe_t **token_p)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "");
    zmsg_addstr (msg, MDPW01);
    zmsg_addmem (msg, (char[]){MDPW01_REPLY}, 1);
    zmsg_append (msg, token_p);
    zmsg_addstr (msg, "");
    zmsg_addstr (msg, "x.result");
    zmsg_addstr (msg, "{}");
    zmsg_send (&msg, worker);
}

//  Ask an MMI service; its one answer frame must be JSON. The caller
//  deletes the result.
static cJSON *s_mmi_json (zsock_t *client, const char *service)
{
    s_send (client, "ssss", "", MDPC01, service, "x");
    zmsg_t *reply = s_recv (client, 5000);
    ck_assert_ptr_nonnull (reply);
    ck_assert_uint_eq (zmsg_size (reply), 4);
    ck_assert (zframe_streq (zmsg_first (reply), ""));
    ck_assert (zframe_streq (zmsg_next (reply), MDPC01));
    ck_assert (zframe_streq (zmsg_next (reply), service));
    char *text = zframe_strdup (zmsg_next (reply));
    const char *end = NULL;
    cJSON *json = cJSON_ParseWithOpts (text, &end, 1);
    ck_assert_msg (json != NULL, "%s answered invalid JSON: %.200s", service, text);
    free (text);
    zmsg_destroy (&reply);
    return json;
}

//  The number at a path of object keys (NULL-terminated); fails if absent.
static double s_number (const cJSON *json, ...)
{
    va_list args;
    va_start (args, json);
    const char *key;
    while (json && (key = va_arg (args, const char *)))
        json = cJSON_GetObjectItemCaseSensitive (json, key);
    va_end (args);
    ck_assert_msg (cJSON_IsNumber (json), "not a number");
    return json->valuedouble;
}

START_TEST (test_workers_shape)
{
    zsock_t *a1 = s_peer (), *a2 = s_peer (), *odd = s_peer (), *client = s_peer ();
    s_ready (a1, "alpha");
    s_ready (a2, "alpha");
    s_ready (odd, "q\"\x01\xc3\xa9\xff"); //  quote, control, é, a byte that is not UTF-8
    s_send (client, "sssss", "", MDPC01, "alpha", "x.get", "{}");
    zframe_t *token = s_take_request (a1); //  a1 busy, a2 idle
    s_send (client, "ssssss", "", MDPC01, "nobody", "5", "x.get", "{}");
    s_send (client, "ssssss", "", MDPC01, "nobody", "5", "x.get", "{}");
    cJSON *json = s_mmi_json (client, "mmi.workers");
    cJSON *services = cJSON_GetObjectItemCaseSensitive (json, "services");
    ck_assert_int_eq (cJSON_GetArraySize (services), 3);
    ck_assert_int_eq (s_number (services, "alpha", "workers", NULL), 2);
    ck_assert_int_eq (s_number (services, "alpha", "idle", NULL), 1);
    ck_assert_int_eq (s_number (services, "alpha", "queued", NULL), 0);
    ck_assert_int_eq (s_number (services, "nobody", "workers", NULL), 0);
    ck_assert_int_eq (s_number (services, "nobody", "idle", NULL), 0);
    ck_assert_int_eq (s_number (services, "nobody", "queued", NULL), 2);
    ck_assert_int_eq (s_number (services, "q\"\x01\xc3\xa9\xc3\xbf", "workers", NULL), 1);
    cJSON_Delete (json);
    zframe_destroy (&token);
    zsock_destroy (&a1);
    zsock_destroy (&a2);
    zsock_destroy (&odd);
    zsock_destroy (&client);
}
END_TEST

START_TEST (test_stats_after_known_traffic)
{
    //  Three requests, two replies, one left unanswered until its 504.
    zsock_t *worker = s_peer (), *client = s_peer (), *bad = s_peer ();
    s_ready (worker, "svc");
    for (int i = 0; i < 2; i++) {
        s_send (client, "sssss", "", MDPC01, "svc", "x.get", "{}");
        zframe_t *token = s_take_request (worker);
        s_reply (worker, &token);
        zmsg_t *reply = s_recv (client, 2000);
        ck_assert_ptr_nonnull (reply);
        zmsg_destroy (&reply);
    }
    s_send (client, "ssssss", "", MDPC01, "svc", "0.2", "x.get", "{}");
    zframe_t *ignored = s_take_request (worker);
    zmsg_t *reply = s_recv (client, 3000);
    ck_assert_ptr_nonnull (reply);
    ck_assert (zframe_streq (zmsg_last (reply),
                             "{\"code\": 504, \"reason\": \"worker did not answer in time\"}"));
    zmsg_destroy (&reply);
    s_send (bad, "ss", "", "NOTMDP"); //  one malformed message
    int64_t deadline = zclock_mono () + tu_scale (2000);
    while (broker_stats (broker)->dropped[DROP_MALFORMED] == 0 && zclock_mono () < deadline)
        broker_poll (broker, 5);

    cJSON *json = s_mmi_json (client, "mmi.stats");
    ck_assert_double_ge (s_number (json, "uptime", NULL), 0);
    ck_assert_int_eq (s_number (json, "requests", NULL), 4); //  the mmi.stats itself counts
    ck_assert_int_eq (s_number (json, "replies", NULL), 2);
    ck_assert_int_eq (s_number (json, "errors", "504", NULL), 1);
    ck_assert_int_eq (s_number (json, "errors", "503", NULL), 0);
    ck_assert_int_eq (s_number (json, "errors", "502", NULL), 0);
    ck_assert_int_eq (s_number (json, "dropped", "malformed", NULL), 1);
    ck_assert_int_eq (s_number (json, "dropped", "too_many_frames", NULL), 0);
    ck_assert_int_eq (s_number (json, "dropped", "bad_service", NULL), 0);
    ck_assert_int_eq (s_number (json, "dropped", "unexpected", NULL), 0);
    ck_assert_int_eq (s_number (json, "dropped", "stale_reply", NULL), 0);
    ck_assert_int_eq (s_number (json, "workers_expired", NULL), 0);
    cJSON *services = cJSON_GetObjectItemCaseSensitive (json, "services");
    ck_assert_int_eq (cJSON_GetArraySize (services), 1); //  MMI names are not services
    ck_assert_int_eq (s_number (services, "svc", "requests", NULL), 3);
    ck_assert_int_eq (s_number (services, "svc", "replies", NULL), 2);
    double rate = s_number (services, "svc", "rate", NULL);
    ck_assert_msg (rate > 0 && rate <= 3, "rate %g", rate); //  3 requests, over >= 1 s
    ck_assert_double_ge (s_number (services, "svc", "p50_ms", NULL), 0);
    ck_assert_double_ge (s_number (services, "svc", "p99_ms", NULL),
                         s_number (services, "svc", "p50_ms", NULL));
    cJSON_Delete (json);
    //  A name that never had a reply has no percentiles.
    s_send (client, "ssssss", "", MDPC01, "nobody", "0.1", "x.get", "{}");
    reply = s_recv (client, 3000);
    zmsg_destroy (&reply);
    json = s_mmi_json (client, "mmi.stats");
    cJSON *nobody = cJSON_GetObjectItemCaseSensitive (
        cJSON_GetObjectItemCaseSensitive (json, "services"), "nobody");
    ck_assert_int_eq (s_number (nobody, "requests", NULL), 1);
    ck_assert_int_eq (s_number (nobody, "replies", NULL), 0);
    ck_assert (cJSON_IsNull (cJSON_GetObjectItemCaseSensitive (nobody, "p50_ms")));
    ck_assert (cJSON_IsNull (cJSON_GetObjectItemCaseSensitive (nobody, "p99_ms")));
    ck_assert_int_eq (s_number (json, "errors", "504", NULL), 2);
    cJSON_Delete (json);
    zframe_destroy (&ignored);
    zsock_destroy (&worker);
    zsock_destroy (&client);
    zsock_destroy (&bad);
}
END_TEST

//  The figures of one name, straight from broker_metrics_stats_json.
static cJSON *s_service_stats (cJSON **root_p, const char *name)
{
    char *text = broker_metrics_stats_json (broker);
    ck_assert_ptr_nonnull (text);
    const char *end = NULL;
    *root_p = cJSON_ParseWithOpts (text, &end, 1);
    ck_assert_msg (*root_p != NULL, "invalid JSON: %.200s", text);
    free (text);
    cJSON *figures = cJSON_GetObjectItemCaseSensitive (
        cJSON_GetObjectItemCaseSensitive (*root_p, "services"), name);
    ck_assert_msg (figures != NULL, "no figures for '%s'", name);
    return figures;
}

//  Assert a reported time is within the histogram's precision (12.5%) of want.
static void s_assert_close (double got, double want)
{
    ck_assert_msg (got >= want - want / 8 - 0.5 && got <= want + want / 8 + 0.5,
                   "percentile %g, want %g within 12.5%%", got, want);
}

START_TEST (test_percentiles_from_known_times)
{
    //  The engine's reply hook, fed exact service times: 98 of 20 ms and 2 of
    //  1000 ms put p50 in 20's bucket and p99 in 1000's.
    service_t *service = broker_service_require (broker, "timed", 5);
    ck_assert_ptr_nonnull (service);
    for (int i = 0; i < 100; i++) {
        broker_metrics_request (broker, service);
        broker_metrics_reply (broker, service, i < 98 ? 20 : 1000);
    }
    broker_service_release (broker, service);
    cJSON *root;
    cJSON *figures = s_service_stats (&root, "timed");
    ck_assert_int_eq (s_number (figures, "requests", NULL), 100);
    ck_assert_int_eq (s_number (figures, "replies", NULL), 100);
    s_assert_close (s_number (figures, "p50_ms", NULL), 20);
    s_assert_close (s_number (figures, "p99_ms", NULL), 1000);
    cJSON_Delete (root);
    //  Every scale, from exact small times to a day.
    const int64_t times[] = {0, 1, 3, 4, 7, 8, 23, 100, 999, 1024, 65537, 86400000};
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
        char name[32];
        snprintf (name, sizeof name, "t%zu", i);
        service = broker_service_require (broker, name, strlen (name));
        broker_metrics_reply (broker, service, times[i]);
        broker_service_release (broker, service);
        figures = s_service_stats (&root, name);
        s_assert_close (s_number (figures, "p50_ms", NULL), (double)times[i]);
        s_assert_close (s_number (figures, "p99_ms", NULL), (double)times[i]);
        cJSON_Delete (root);
    }
}
END_TEST

START_TEST (test_percentiles_from_a_slow_worker)
{
    //  A worker that answers 9 requests after at least 30 ms and one after at
    //  least 300 ms. Only lower bounds hold whatever the machine's load.
    zsock_t *worker = s_peer (), *client = s_peer ();
    s_ready (worker, "slow");
    for (int i = 0; i < 10; i++) {
        s_send (client, "sssss", "", MDPC01, "slow", "x.get", "{}");
        zframe_t *token = s_take_request (worker);
        s_pump (i == 9 ? 300 : 30);
        s_reply (worker, &token);
        zmsg_t *reply = s_recv (client, 5000);
        ck_assert_ptr_nonnull (reply);
        zmsg_destroy (&reply);
    }
    cJSON *root;
    cJSON *figures = s_service_stats (&root, "slow");
    double p50 = s_number (figures, "p50_ms", NULL), p99 = s_number (figures, "p99_ms", NULL);
    ck_assert_msg (p50 >= 30 - 30 / 8.0, "p50 %g under 30 ms", p50);
    ck_assert_msg (p99 >= 300 - 300 / 8.0, "p99 %g under 300 ms", p99);
    ck_assert_double_le (p50, p99);
    cJSON_Delete (root);
    zsock_destroy (&worker);
    zsock_destroy (&client);
}
END_TEST

START_TEST (test_names_are_bounded)
{
    //  No room in any queue: each request is answered 503 at once, and every
    //  distinct name passes through the table.
    s_teardown ();
    broker_config_t cfg;
    broker_config_defaults (&cfg);
    cfg.max_queued_total = 0;
    s_start (&cfg);
    zsock_t *worker = s_peer (), *client = s_peer ();
    s_ready (worker, "keeper"); //  a name with a worker is never forgotten
    s_send (client, "sssss", "", MDPC01, "keeper", "x.get", "{}");
    zframe_t *token = s_take_request (worker);
    s_reply (worker, &token);
    zmsg_t *reply = s_recv (client, 2000);
    zmsg_destroy (&reply);
    const int names = 2 * BROKER_METRICS_MAX_NAMES, batch = 500;
    for (int sent = 0; sent < names; sent += batch) {
        for (int i = sent; i < sent + batch; i++) {
            char name[32];
            snprintf (name, sizeof name, "flood-%d", i);
            s_send (client, "sssss", "", MDPC01, name, "x.get", "{}");
        }
        for (int i = 0; i < batch; i++) {
            reply = s_recv (client, 5000);
            ck_assert_ptr_nonnull (reply);
            ck_assert (
                zframe_streq (zmsg_last (reply), "{\"code\": 503, \"reason\": \"queue full\"}"));
            zmsg_destroy (&reply);
        }
        ck_assert_uint_le (broker_metrics_names (broker), BROKER_METRICS_MAX_NAMES);
    }
    ck_assert_uint_eq (broker_metrics_names (broker), BROKER_METRICS_MAX_NAMES);
    cJSON *json = s_mmi_json (client, "mmi.stats");
    cJSON *services = cJSON_GetObjectItemCaseSensitive (json, "services");
    ck_assert_int_eq (cJSON_GetArraySize (services), BROKER_METRICS_MAX_NAMES);
    ck_assert_ptr_nonnull (cJSON_GetObjectItemCaseSensitive (services, "keeper"));
    ck_assert_ptr_nonnull (cJSON_GetObjectItemCaseSensitive (services, "flood-19999"));
    ck_assert_ptr_null (cJSON_GetObjectItemCaseSensitive (services, "flood-0"));
    ck_assert_int_eq (s_number (services, "keeper", "replies", NULL), 1);
    ck_assert_int_eq (s_number (json, "errors", "503", NULL), names);
    cJSON_Delete (json);
    size_t count, workers, queued;
    broker_counts (broker, &count, &workers, &queued);
    ck_assert_uint_eq (count, 1); //  the broker itself kept only keeper
    zsock_destroy (&worker);
    zsock_destroy (&client);
}
END_TEST

typedef struct {
    const char *path;   //  the log file
    const char *needle; //  what a line must contain
    char line[1024];    //  the line found
} log_search_t;

static bool s_log_has (void *arg)
{
    log_search_t *search = arg;
    broker_poll (broker, 5);
    FILE *file = fopen (search->path, "r");
    bool found = false;
    while (file && !found && fgets (search->line, sizeof search->line, file))
        found = strstr (search->line, search->needle) != NULL;
    if (file)
        fclose (file);
    return found;
}

//  Send the broker's log to a fresh file; returns its path (caller frees).
static char *s_log_to_file (FILE **stream_p)
{
    char *path = strdup ("/tmp/test_mmi_stats.XXXXXX");
    int fd = mkstemp (path);
    ck_assert_int_ge (fd, 0);
    *stream_p = fdopen (fd, "w");
    ck_assert_ptr_nonnull (*stream_p);
    zsys_set_logstream (*stream_p);
    return path;
}

START_TEST (test_stats_log_line)
{
    s_teardown ();
    broker_config_t cfg;
    broker_config_defaults (&cfg);
    cfg.stats_interval = 50;
    s_start (&cfg);
    FILE *stream;
    char *path = s_log_to_file (&stream);
    zsock_t *worker = s_peer (), *client = s_peer ();
    s_ready (worker, "busy");
    s_send (client, "sssss", "", MDPC01, "busy", "x.get", "{}");
    zframe_t *token = s_take_request (worker);
    s_reply (worker, &token);
    zmsg_t *reply = s_recv (client, 2000);
    zmsg_destroy (&reply);
    log_search_t search = {path, "1 replies", ""};
    ck_assert_msg (tu_wait_for (s_log_has, &search, 3000), "no stats line in the log");
    ck_assert_msg (strstr (search.line, "broker: stats: up "), "%s", search.line);
    ck_assert_msg (strstr (search.line, "1 requests, 1 replies, 0 errors, 0 dropped, 1 workers, "
                                        "0 queued, busiest: busy "),
                   "%s", search.line);
    zsys_set_logstream (NULL);
    fclose (stream);
    unlink (path);
    free (path);
    zsock_destroy (&worker);
    zsock_destroy (&client);
}
END_TEST

START_TEST (test_stats_log_off_by_default)
{
    FILE *stream;
    char *path = s_log_to_file (&stream);
    zsys_info ("marker");
    zsock_t *client = s_peer ();
    cJSON *json = s_mmi_json (client, "mmi.stats"); //  some traffic
    cJSON_Delete (json);
    s_pump (300);
    log_search_t search = {path, "marker", ""};
    ck_assert (s_log_has (&search));
    search.needle = "stats:";
    ck_assert_msg (!s_log_has (&search), "%s", search.line);
    zsys_set_logstream (NULL);
    fclose (stream);
    unlink (path);
    free (path);
    zsock_destroy (&client);
}
END_TEST

START_TEST (test_cumulative_time_buckets)
{
    //  time_le_ms counts replies since start at or under each bound, for a
    //  Prometheus histogram: times 0, 1, 2, 3, 40, 40 and 100000 ms.
    service_t *service = broker_service_require (broker, "le", 2);
    ck_assert_ptr_nonnull (service);
    const int64_t times[] = {0, 1, 2, 3, 40, 40, 100000};
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++)
        broker_metrics_reply (broker, service, times[i]);
    broker_service_release (broker, service);
    cJSON *root;
    cJSON *figures = s_service_stats (&root, "le");
    ck_assert_int_eq (s_number (figures, "time_le_ms", "1", NULL), 2);
    ck_assert_int_eq (s_number (figures, "time_le_ms", "2", NULL), 3);
    ck_assert_int_eq (s_number (figures, "time_le_ms", "5", NULL), 4);
    ck_assert_int_eq (s_number (figures, "time_le_ms", "25", NULL), 4);
    ck_assert_int_eq (s_number (figures, "time_le_ms", "50", NULL), 6);
    ck_assert_int_eq (s_number (figures, "time_le_ms", "60000", NULL), 6);
    ck_assert_int_eq (s_number (figures, "time_le_ms", "+Inf", NULL), 7);
    ck_assert_int_eq (s_number (figures, "time_sum_ms", NULL), 100086);
    cJSON_Delete (root);
    //  A name without replies has no buckets.
    service = broker_service_require (broker, "quiet", 5);
    broker_metrics_request (broker, service);
    broker_service_release (broker, service);
    figures = s_service_stats (&root, "quiet");
    ck_assert_ptr_null (cJSON_GetObjectItemCaseSensitive (figures, "time_le_ms"));
    cJSON_Delete (root);
}
END_TEST

int main (void)
{
    Suite *suite = suite_create ("mmi_stats");
    TCase *tc = tcase_create ("observability");
    tcase_add_checked_fixture (tc, s_setup, s_teardown);
    tcase_set_timeout (tc, 60);
    tcase_add_test (tc, test_workers_shape);
    tcase_add_test (tc, test_stats_after_known_traffic);
    tcase_add_test (tc, test_percentiles_from_known_times);
    tcase_add_test (tc, test_cumulative_time_buckets);
    tcase_add_test (tc, test_percentiles_from_a_slow_worker);
    tcase_add_test (tc, test_names_are_bounded);
    tcase_add_test (tc, test_stats_log_line);
    tcase_add_test (tc, test_stats_log_off_by_default);
    suite_add_tcase (suite, tc);
    return tu_run_suite (suite);
}
