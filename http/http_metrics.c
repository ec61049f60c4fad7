/*  http_metrics.c - GET /metrics: the broker's mmi.stats and mmi.workers in
    Prometheus text exposition format 0.0.4 (counters end in _total, times in
    seconds, a histogram per service), plus mdp-http's own answers by service
    and HTTP status. Names and labels are documented in spec/http.md.
*/
#include "http.h"
#include <string.h>

#define MAX_COUNTERS 10000 //  (service, status) pairs kept; more are lumped

struct _http_counters_t {
    http_counters_t *next; //  the next pair
    uint64_t count;        //  answers so far
    int status;            //  HTTP status
    char service[];        //  service name
};

void http_counters_add (http_counters_t **self_p, const char *service, int status)
{
    size_t kept = 0;
    for (http_counters_t *item = *self_p; item; item = item->next, kept++)
        if (item->status == status && strcmp (item->service, service) == 0) {
            item->count++;
            return;
        }
    if (kept >= MAX_COUNTERS)
        service = "(other)";
    http_counters_t *item = malloc (sizeof (http_counters_t) + strlen (service) + 1);
    if (!item)
        return;
    item->count = 1;
    item->status = status;
    strcpy (item->service, service);
    item->next = *self_p;
    *self_p = item;
}

void http_counters_destroy (http_counters_t **self_p)
{
    while (self_p && *self_p) {
        http_counters_t *next = (*self_p)->next;
        free (*self_p);
        *self_p = next;
    }
}

//  ---------------------------------------------------------------------------

typedef struct {
    char *data;       //  the text so far
    size_t size, cap; //  bytes used and allocated
    bool failed;      //  an allocation failed
} text_t;

static void s_add (text_t *self, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
static void s_add (text_t *self, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    int need = vsnprintf (NULL, 0, fmt, args);
    va_end (args);
    if (self->failed || need < 0)
        return;
    if (self->size + (size_t)need + 1 > self->cap) {
        size_t cap = (self->cap ? self->cap * 2 : 4096) + (size_t)need;
        char *data = realloc (self->data, cap);
        if (!data) {
            self->failed = true;
            return;
        }
        self->data = data;
        self->cap = cap;
    }
    va_start (args, fmt);
    vsnprintf (self->data + self->size, self->cap - self->size, fmt, args);
    va_end (args);
    self->size += (size_t)need;
}

//  A label value with backslash, double quote and newline escaped.
static void s_label (text_t *self, const char *value)
{
    for (const char *c = value; *c; c++)
        if (*c == '\\' || *c == '"')
            s_add (self, "\\%c", *c);
        else if (*c == '\n')
            s_add (self, "\\n");
        else
            s_add (self, "%c", *c);
}

static void s_family (text_t *self, const char *name, const char *type, const char *help)
{
    s_add (self, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static double s_number (const cJSON *object, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive (object, key);
    return cJSON_IsNumber (item) ? item->valuedouble : 0;
}

//  name{service="..."} value, for each service in services that has key.
static void s_per_service (text_t *self, const cJSON *services, const char *name, const char *key,
                           double scale)
{
    const cJSON *service;
    cJSON_ArrayForEach (service, services)
    {
        if (!cJSON_IsNumber (cJSON_GetObjectItemCaseSensitive (service, key)))
            continue;
        s_add (self, "%s{service=\"", name);
        s_label (self, service->string);
        s_add (self, "\"} %.17g\n", s_number (service, key) * scale);
    }
}

//  mdp_service_time_seconds: a histogram per service from time_le_ms.
static void s_histograms (text_t *self, const cJSON *services)
{
    s_family (self, "mdp_service_time_seconds", "histogram",
              "Time from a request's dispatch to a worker to its reply, by service.");
    const cJSON *service;
    cJSON_ArrayForEach (service, services)
    {
        const cJSON *le = cJSON_GetObjectItemCaseSensitive (service, "time_le_ms"), *bucket;
        if (!cJSON_IsObject (le))
            continue;
        double count = 0;
        cJSON_ArrayForEach (bucket, le)
        {
            bool inf = strcmp (bucket->string, "+Inf") == 0;
            s_add (self, "mdp_service_time_seconds_bucket{service=\"");
            s_label (self, service->string);
            if (inf)
                s_add (self, "\",le=\"+Inf\"} %.17g\n", bucket->valuedouble);
            else
                s_add (self, "\",le=\"%g\"} %.17g\n", atof (bucket->string) / 1000,
                       bucket->valuedouble);
            if (inf)
                count = bucket->valuedouble;
        }
        s_add (self, "mdp_service_time_seconds_sum{service=\"");
        s_label (self, service->string);
        s_add (self, "\"} %.17g\n", s_number (service, "time_sum_ms") / 1000);
        s_add (self, "mdp_service_time_seconds_count{service=\"");
        s_label (self, service->string);
        s_add (self, "\"} %.17g\n", count);
    }
}

static void s_broker (text_t *self, const cJSON *stats)
{
    s_family (self, "mdp_broker_uptime_seconds", "gauge", "Seconds since the broker started.");
    s_add (self, "mdp_broker_uptime_seconds %.17g\n", s_number (stats, "uptime"));
    s_family (self, "mdp_broker_requests_total", "counter", "Client requests accepted.");
    s_add (self, "mdp_broker_requests_total %.17g\n", s_number (stats, "requests"));
    s_family (self, "mdp_broker_replies_total", "counter", "Worker replies forwarded.");
    s_add (self, "mdp_broker_replies_total %.17g\n", s_number (stats, "replies"));
    s_family (self, "mdp_broker_errors_total", "counter",
              "Error replies the broker made itself, by code.");
    const cJSON *item;
    cJSON_ArrayForEach (item, cJSON_GetObjectItemCaseSensitive (stats, "errors")) s_add (
        self, "mdp_broker_errors_total{code=\"%s\"} %.17g\n", item->string, item->valuedouble);
    s_family (self, "mdp_broker_dropped_total", "counter",
              "Messages the broker dropped, by reason.");
    cJSON_ArrayForEach (item, cJSON_GetObjectItemCaseSensitive (stats, "dropped"))
    {
        s_add (self, "mdp_broker_dropped_total{reason=\"");
        s_label (self, item->string);
        s_add (self, "\"} %.17g\n", item->valuedouble);
    }
    s_family (self, "mdp_broker_workers_expired_total", "counter",
              "Workers the broker declared dead.");
    s_add (self, "mdp_broker_workers_expired_total %.17g\n", s_number (stats, "workers_expired"));
}

static void s_services (text_t *self, const cJSON *workers, const cJSON *stats)
{
    const cJSON *live = cJSON_GetObjectItemCaseSensitive (workers, "services");
    const cJSON *figures = cJSON_GetObjectItemCaseSensitive (stats, "services");
    s_family (self, "mdp_service_workers", "gauge", "Workers registered, by service.");
    s_per_service (self, live, "mdp_service_workers", "workers", 1);
    s_family (self, "mdp_service_idle_workers", "gauge", "Workers waiting for a request.");
    s_per_service (self, live, "mdp_service_idle_workers", "idle", 1);
    s_family (self, "mdp_service_queue_depth", "gauge", "Requests queued, by service.");
    s_per_service (self, live, "mdp_service_queue_depth", "queued", 1);
    s_family (self, "mdp_service_requests_total", "counter", "Requests, by service.");
    s_per_service (self, figures, "mdp_service_requests_total", "requests", 1);
    s_family (self, "mdp_service_replies_total", "counter", "Replies, by service.");
    s_per_service (self, figures, "mdp_service_replies_total", "replies", 1);
    s_family (self, "mdp_service_request_rate", "gauge",
              "Requests per second over the last minute, by service.");
    s_per_service (self, figures, "mdp_service_request_rate", "rate", 1);
    s_histograms (self, figures);
}

char *http_metrics_render (const cJSON *workers, const cJSON *stats,
                           const http_counters_t *counters)
{
    text_t text = {0};
    s_family (&text, "mdp_broker_up", "gauge",
              "1 if the broker answered mmi.stats and "
              "mmi.workers for this scrape, else 0.");
    s_add (&text, "mdp_broker_up %d\n", workers && stats ? 1 : 0);
    if (stats)
        s_broker (&text, stats);
    if (workers && stats)
        s_services (&text, workers, stats);
    s_family (&text, "mdp_http_responses_total", "counter",
              "Service calls mdp-http answered, by service and HTTP status.");
    for (const http_counters_t *item = counters; item; item = item->next) {
        s_add (&text, "mdp_http_responses_total{service=\"");
        s_label (&text, item->service);
        s_add (&text, "\",code=\"%d\"} %llu\n", item->status, (unsigned long long)item->count);
    }
    if (text.failed) {
        free (text.data);
        return NULL;
    }
    return text.data;
}
