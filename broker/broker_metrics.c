/*  broker_metrics.c - per-service figures for mmi.stats and the periodic stats
    log: requests, replies, a one-minute request rate and service-time
    percentiles. They live in a table keyed by name, because service_t is freed
    whenever a service falls idle; the table is bounded (least recently used
    names without a worker go first) and each request or reply costs O(1).
*/
#include "broker_metrics.h"
#include <stdarg.h>
#include <string.h>

#define RATE_SLOTS 60         //  one-second request counts: the last minute
#define SUB_BITS 2            //  4 histogram buckets per power of two
#define EXACT (1 << SUB_BITS) //  service times below this many msecs are exact
#define MAX_OCTAVE 26         //  times are capped just under 2^27 msecs (37 h)
#define BUCKETS (EXACT + (MAX_OCTAVE - SUB_BITS + 1) * EXACT)
#define EVICT_TRIES 8 //  names with workers skipped before giving up
#define TOP 3         //  busiest services named in the stats log

#define JBUF_LITERAL(buf, text) jbuf_append (buf, text, sizeof (text) - 1)

//  Upper bounds (msecs) of the cumulative service-time buckets since start,
//  for a Prometheus histogram (mdp-http's /metrics); a last one is +Inf.
static const int s_le_ms[] = {1,   2,    5,    10,   25,    50,    100,  250,
                              500, 1000, 2500, 5000, 10000, 30000, 60000};
#define LE_COUNT (sizeof s_le_ms / sizeof s_le_ms[0])

//  Service times of the replies of the current and the previous minute.
typedef struct {
    int64_t minute;              //  minute (since start) counted in counts[minute & 1]
    uint32_t counts[2][BUCKETS]; //  counts[m & 1][bucket]: replies of minute m
    uint64_t le[LE_COUNT + 1];   //  replies since start by s_le_ms bucket (+Inf last)
    uint64_t sum_ms;             //  their service times added up, msecs
} histogram_t;

//  The figures of one service name.
typedef struct {
    hnode_t hnode;              //  in metrics->names, keyed by name
    dlink_t lru;                //  in metrics->lru, least recently used first
    uint64_t requests;          //  requests accepted for this name
    uint64_t replies;           //  worker replies forwarded
    int64_t last_second;        //  second (since start) of the newest slot
    uint32_t slots[RATE_SLOTS]; //  requests in second s at slots[s % RATE_SLOTS]
    histogram_t *times;         //  service times, allocated at the first reply
    size_t namelen;             //  name length in bytes
    char name[];                //  the name, NUL-terminated
} entry_t;

typedef struct {
    htab_t names;     //  entry_t by name
    dlink_t lru;      //  every entry, least recently used first
    int64_t next_log; //  when the next stats line is due; 0 = unset
    int log_interval; //  the stats_interval next_log was set for
} metrics_t;

//  ---------------------------------------------------------------------------
//  The table

static metrics_t *s_metrics (broker_t *self)
{
    if (!self->metrics) {
        metrics_t *metrics = calloc (1, sizeof (metrics_t));
        if (!metrics || htab_init (&metrics->names) != 0) {
            free (metrics);
            return NULL;
        }
        dlist_init (&metrics->lru);
        self->metrics = metrics;
    }
    return self->metrics;
}

static void s_entry_free (metrics_t *metrics, entry_t *entry)
{
    htab_remove (&metrics->names, &entry->hnode);
    dlist_remove (&entry->lru);
    free (entry->times);
    free (entry);
}

//  Make room for one more name by forgetting the least recently used name
//  that has no worker; names with workers met on the way move to the back.
//  Returns -1 if the first few all have workers.
static int s_make_room (broker_t *self, metrics_t *metrics)
{
    for (int tries = 0; tries < EVICT_TRIES && !dlist_empty (&metrics->lru); tries++) {
        entry_t *entry = DLIST_ITEM (metrics->lru.next, entry_t, lru);
        service_t *service = broker_service_lookup (self, entry->name, entry->namelen);
        if (!service || service->nworkers == 0) {
            s_entry_free (metrics, entry);
            return 0;
        }
        dlist_remove (&entry->lru);
        dlist_append (&metrics->lru, &entry->lru);
    }
    return -1;
}

//  The entry for service's name, created if need be and marked most recently
//  used; NULL if there is no room or no memory (the figures are then lost).
static entry_t *s_entry (broker_t *self, service_t *service)
{
    metrics_t *metrics = s_metrics (self);
    if (!metrics)
        return NULL;
    //  Same hash function as the services table, so its cached hash serves.
    hnode_t *node =
        htab_find (&metrics->names, service->name, service->namelen, service->hnode.hash);
    entry_t *entry = node ? HTAB_ITEM (node, entry_t, hnode) : NULL;
    if (entry)
        dlist_remove (&entry->lru);
    else {
        if (metrics->names.count >= BROKER_METRICS_MAX_NAMES && s_make_room (self, metrics) != 0)
            return NULL;
        entry = calloc (1, sizeof (entry_t) + service->namelen + 1);
        if (!entry)
            return NULL;
        memcpy (entry->name, service->name, service->namelen);
        entry->namelen = service->namelen;
        entry->hnode.key = entry->name;
        entry->hnode.keylen = entry->namelen;
        entry->hnode.hash = service->hnode.hash;
        htab_insert (&metrics->names, &entry->hnode);
    }
    dlist_append (&metrics->lru, &entry->lru);
    return entry;
}

size_t broker_metrics_names (broker_t *self)
{
    metrics_t *metrics = self->metrics;
    return metrics ? metrics->names.count : 0;
}

//  ---------------------------------------------------------------------------
//  Request rate: a ring of one-second counts

static void s_count_request (entry_t *entry, int64_t second)
{
    if (second < entry->last_second)
        second = entry->last_second;
    if (second - entry->last_second >= RATE_SLOTS)
        memset (entry->slots, 0, sizeof entry->slots);
    else
        for (int64_t s = entry->last_second + 1; s <= second; s++)
            entry->slots[s % RATE_SLOTS] = 0;
    entry->last_second = second;
    entry->slots[second % RATE_SLOTS]++;
}

//  Requests per second over the last minute, or since start if shorter.
static double s_rate (broker_t *self, const entry_t *entry, int64_t now)
{
    int64_t elapsed = now - self->started, second = elapsed / 1000;
    uint64_t sum = 0;
    for (int64_t s = second - (RATE_SLOTS - 1); s <= entry->last_second; s++)
        if (s >= 0)
            sum += entry->slots[s % RATE_SLOTS];
    //  The ring covers the whole seconds before this one, plus this one so far.
    int64_t covered =
        elapsed < RATE_SLOTS * 1000 ? elapsed : (RATE_SLOTS - 1) * 1000 + elapsed % 1000;
    return (double)sum / (covered < 1000 ? 1.0 : covered / 1000.0);
}

//  ---------------------------------------------------------------------------
//  Service times: log-scale buckets, exact below EXACT msecs, then EXACT
//  buckets per power of two, so a bucket's middle is within 12.5% of any
//  time in it.

static int s_bucket (int64_t msecs)
{
    if (msecs < EXACT)
        return msecs < 0 ? 0 : (int)msecs;
    if (msecs >= (1LL << (MAX_OCTAVE + 1)))
        msecs = (1LL << (MAX_OCTAVE + 1)) - 1;
    int octave = 63 - __builtin_clzll ((unsigned long long)msecs);
    int sub = (int)(msecs >> (octave - SUB_BITS)) & (EXACT - 1);
    return EXACT + (octave - SUB_BITS) * EXACT + sub;
}

//  The middle of a bucket's range of whole msecs.
static double s_bucket_value (int bucket)
{
    if (bucket < EXACT)
        return bucket;
    int octave = (bucket - EXACT) / EXACT + SUB_BITS, sub = bucket % EXACT;
    int64_t width = 1LL << (octave - SUB_BITS);
    return (double)((1LL << octave) + sub * width) + (double)(width - 1) / 2;
}

//  Start minute's counts, dropping those older than the minute before.
static void s_rotate (histogram_t *times, int64_t minute)
{
    if (minute <= times->minute)
        return;
    if (minute > times->minute + 1)
        memset (times->counts[times->minute & 1], 0, sizeof times->counts[0]);
    memset (times->counts[minute & 1], 0, sizeof times->counts[0]);
    times->minute = minute;
}

//  The pct-th percentile of counts (total > 0): the smallest bucket holding
//  at least pct% of the replies, by its middle.
static double s_percentile (const uint64_t *counts, uint64_t total, int pct)
{
    uint64_t rank = (total * pct + 99) / 100, seen = 0;
    for (int bucket = 0; bucket < BUCKETS; bucket++)
        if ((seen += counts[bucket]) >= rank)
            return s_bucket_value (bucket);
    return s_bucket_value (BUCKETS - 1);
}

//  p50 and p99 over this minute and the last. False if there were no replies.
static bool s_percentiles (const histogram_t *times, int64_t minute, double *p50, double *p99)
{
    if (!times || times->minute < minute - 1)
        return false;
    uint64_t counts[BUCKETS], total = 0;
    for (int bucket = 0; bucket < BUCKETS; bucket++) {
        counts[bucket] = times->counts[times->minute & 1][bucket];
        if (times->minute == minute) //  the other half holds the minute before
            counts[bucket] += times->counts[(minute + 1) & 1][bucket];
        total += counts[bucket];
    }
    if (total == 0)
        return false;
    *p50 = s_percentile (counts, total, 50);
    *p99 = s_percentile (counts, total, 99);
    return true;
}

//  ---------------------------------------------------------------------------
//  The engine's hooks

void broker_metrics_request (broker_t *self, service_t *service)
{
    entry_t *entry = s_entry (self, service);
    if (entry) {
        entry->requests++;
        s_count_request (entry, (broker_now () - self->started) / 1000);
    }
}

void broker_metrics_reply (broker_t *self, service_t *service, int64_t service_msecs)
{
    entry_t *entry = s_entry (self, service);
    if (!entry)
        return;
    entry->replies++;
    if (!entry->times && !(entry->times = calloc (1, sizeof (histogram_t))))
        return;
    int64_t minute = (broker_now () - self->started) / 60000;
    s_rotate (entry->times, minute);
    entry->times->counts[minute & 1][s_bucket (service_msecs)]++;
    size_t le = 0;
    while (le < LE_COUNT && service_msecs > s_le_ms[le])
        le++;
    entry->times->le[le]++;
    entry->times->sum_ms += service_msecs > 0 ? (uint64_t)service_msecs : 0;
}

void broker_metrics_destroy (broker_t *self)
{
    metrics_t *metrics = self->metrics;
    if (!metrics)
        return;
    while (!dlist_empty (&metrics->lru))
        s_entry_free (metrics, DLIST_ITEM (metrics->lru.next, entry_t, lru));
    htab_fini (&metrics->names);
    free (metrics);
    self->metrics = NULL;
}

//  ---------------------------------------------------------------------------
//  The stats log

static const int s_error_codes[] = {400, 403, 429, 502, 503, 504};
#define ERROR_CODES (sizeof s_error_codes / sizeof s_error_codes[0])
static const char *s_drop_names[] = {"malformed",  "too_many_frames", "bad_service",
                                     "unexpected", "stale_reply",     "refused"};
#define DROP_NAMES (sizeof s_drop_names / sizeof s_drop_names[0])

//  Copy a service name for a log line: printable ASCII, at most 40 bytes.
static void s_printable (char *out, size_t size, const char *name, size_t len)
{
    size_t used = 0;
    for (size_t i = 0; i < len && used + 4 < size && i < 40; i++)
        out[used++] = name[i] >= 32 && name[i] < 127 ? name[i] : '?';
    if (len > 40 && used + 4 < size)
        out[used++] = '~';
    out[used] = 0;
}

//  "echo 20.5/s, db 3.1/s": the services with the highest rates, or "-".
static void s_busiest (broker_t *self, metrics_t *metrics, int64_t now, char *out, size_t size)
{
    const entry_t *top[TOP] = {NULL};
    double rates[TOP] = {0};
    for (dlink_t *link = metrics->lru.next; link != &metrics->lru; link = link->next) {
        const entry_t *entry = DLIST_ITEM (link, entry_t, lru);
        double rate = s_rate (self, entry, now);
        int place = TOP;
        while (place > 0 && rate > rates[place - 1])
            place--;
        if (place == TOP)
            continue;
        memmove (top + place + 1, top + place, (TOP - place - 1) * sizeof top[0]);
        memmove (rates + place + 1, rates + place, (TOP - place - 1) * sizeof rates[0]);
        top[place] = entry;
        rates[place] = rate;
    }
    size_t used = snprintf (out, size, "%s", top[0] ? "" : "-");
    for (int i = 0; i < TOP && top[i] && used < size; i++) {
        char name[48];
        s_printable (name, sizeof name, top[i]->name, top[i]->namelen);
        used += snprintf (out + used, size - used, "%s%s %.1f/s", i ? ", " : "", name, rates[i]);
    }
}

static void s_log_stats (broker_t *self, metrics_t *metrics, int64_t now)
{
    const broker_stats_t *stats = &self->stats;
    uint64_t errors = 0, dropped = 0;
    char codes[160] = "", busiest[200];
    size_t used = 0;
    for (size_t i = 0; i < ERROR_CODES; i++) {
        errors += stats->errors[i];
        if (stats->errors[i] && used < sizeof codes)
            used += snprintf (codes + used, sizeof codes - used, "%s%d: %" PRIu64,
                              used ? ", " : " (", s_error_codes[i], stats->errors[i]);
    }
    if (used && used < sizeof codes)
        snprintf (codes + used, sizeof codes - used, ")");
    for (size_t i = 0; i < DROP_REASONS; i++)
        dropped += stats->dropped[i];
    s_busiest (self, metrics, now, busiest, sizeof busiest);
    zsys_info ("broker: stats: up %" PRId64 "s, %" PRIu64 " requests, %" PRIu64 " replies, %" PRIu64
               " errors%s, %" PRIu64 " dropped, %zu workers, %zu queued, busiest: %s",
               (now - self->started) / 1000, stats->requests, stats->replies, errors, codes,
               dropped, self->workers.count, self->queued_total, busiest);
}

int64_t broker_metrics_due (broker_t *self)
{
    metrics_t *metrics = self->metrics;
    return self->cfg.stats_interval > 0 && metrics ? metrics->next_log : 0;
}

void broker_metrics_tick (broker_t *self, int64_t now)
{
    int interval = self->cfg.stats_interval;
    metrics_t *metrics = interval > 0 ? s_metrics (self) : NULL;
    if (!metrics)
        return;
    if (metrics->next_log == 0 || metrics->log_interval != interval) {
        metrics->log_interval = interval;
        metrics->next_log = now + interval;
    }
    if (now < metrics->next_log)
        return;
    s_log_stats (self, metrics, now);
    metrics->next_log += interval;
    if (metrics->next_log <= now)
        metrics->next_log = now + interval;
}

//  ---------------------------------------------------------------------------
//  mmi.stats

static int s_compare (const void *a, const void *b)
{
    const entry_t *x = *(const entry_t *const *)a, *y = *(const entry_t *const *)b;
    int rc = memcmp (x->name, y->name, x->namelen < y->namelen ? x->namelen : y->namelen);
    return rc ? rc : (x->namelen > y->namelen) - (x->namelen < y->namelen);
}

//  ', "time_le_ms": {"1": N, ..., "+Inf": N}, "time_sum_ms": N' (replies
//  since start at or under each bound, cumulative), when there were replies.
static void s_le_json (jbuf_t *buf, const histogram_t *times)
{
    if (!times)
        return;
    JBUF_LITERAL (buf, ", \"time_le_ms\": {");
    uint64_t cumulative = 0;
    for (size_t le = 0; le <= LE_COUNT; le++) {
        cumulative += times->le[le];
        if (le < LE_COUNT)
            jbuf_printf (buf, "%s\"%d\": %" PRIu64, le ? ", " : "", s_le_ms[le], cumulative);
        else
            jbuf_printf (buf, ", \"+Inf\": %" PRIu64, cumulative);
    }
    jbuf_printf (buf, "}, \"time_sum_ms\": %" PRIu64, times->sum_ms);
}

//  "name": {...} for every name kept, sorted bytewise.
static void s_services_json (broker_t *self, jbuf_t *buf, int64_t now)
{
    metrics_t *metrics = self->metrics;
    size_t count = metrics ? metrics->names.count : 0, index = 0;
    const entry_t **sorted = count ? malloc (count * sizeof (entry_t *)) : NULL;
    if (count && !sorted) {
        buf->failed = true;
        return;
    }
    for (dlink_t *link = count ? metrics->lru.next : NULL; link && link != &metrics->lru;
         link = link->next)
        sorted[index++] = DLIST_ITEM (link, entry_t, lru);
    if (count)
        qsort (sorted, count, sizeof (entry_t *), s_compare);
    int64_t minute = (now - self->started) / 60000;
    for (index = 0; index < count; index++) {
        const entry_t *entry = sorted[index];
        double p50, p99;
        jbuf_append (buf, index ? ", " : "", index ? 2 : 0);
        jbuf_string (buf, entry->name, entry->namelen);
        //  Numbers in integer arithmetic: float formatting would dominate.
        uint64_t milli = (uint64_t)(s_rate (self, entry, now) * 1000 + 0.5);
        jbuf_printf (buf,
                     ": {\"requests\": %" PRIu64 ", \"replies\": %" PRIu64 ", \"rate\": %" PRIu64
                     ".%03u",
                     entry->requests, entry->replies, milli / 1000, (unsigned)(milli % 1000));
        if (s_percentiles (entry->times, minute, &p50, &p99)) {
            int64_t half50 = (int64_t)(p50 * 2), half99 = (int64_t)(p99 * 2);
            jbuf_printf (buf, ", \"p50_ms\": %" PRId64 "%s, \"p99_ms\": %" PRId64 "%s", half50 / 2,
                         half50 % 2 ? ".5" : "", half99 / 2, half99 % 2 ? ".5" : "");
        } else
            JBUF_LITERAL (buf, ", \"p50_ms\": null, \"p99_ms\": null");
        s_le_json (buf, entry->times);
        JBUF_LITERAL (buf, "}");
    }
    free (sorted);
}

char *broker_metrics_stats_json (broker_t *self)
{
    int64_t now = broker_now ();
    const broker_stats_t *stats = &self->stats;
    jbuf_t buf = {0};
    jbuf_printf (&buf,
                 "{\"uptime\": %" PRId64 ", \"requests\": %" PRIu64 ", \"replies\": %" PRIu64
                 ", \"errors\": {",
                 (now - self->started) / 1000, stats->requests, stats->replies);
    for (size_t i = 0; i < ERROR_CODES; i++)
        jbuf_printf (&buf, "%s\"%d\": %" PRIu64, i ? ", " : "", s_error_codes[i], stats->errors[i]);
    JBUF_LITERAL (&buf, "}, \"dropped\": {");
    for (size_t i = 0; i < DROP_REASONS; i++) {
        if (i < DROP_NAMES)
            jbuf_printf (&buf, "%s\"%s\": %" PRIu64, i ? ", " : "", s_drop_names[i],
                         stats->dropped[i]);
        else
            jbuf_printf (&buf, ", \"reason_%zu\": %" PRIu64, i, stats->dropped[i]);
    }
    jbuf_printf (&buf, "}, \"workers_expired\": %" PRIu64 ", \"services\": {",
                 stats->workers_expired);
    s_services_json (self, &buf, now);
    JBUF_LITERAL (&buf, "}}");
    return jbuf_take (&buf);
}

//  ---------------------------------------------------------------------------
//  jbuf_t

static bool s_reserve (jbuf_t *self, size_t more)
{
    if (self->failed)
        return false;
    if (self->size + more + 1 <= self->cap)
        return true;
    size_t cap = self->cap ? self->cap : 256;
    while (cap < self->size + more + 1)
        cap *= 2;
    char *data = realloc (self->data, cap);
    if (!data) {
        self->failed = true;
        return false;
    }
    self->data = data;
    self->cap = cap;
    return true;
}

void jbuf_append (jbuf_t *self, const char *text, size_t len)
{
    if (!s_reserve (self, len))
        return;
    memcpy (self->data + self->size, text, len);
    self->size += len;
    self->data[self->size] = 0;
}

//  Formats straight into the buffer; only text longer than the room left
//  is formatted twice.
void jbuf_printf (jbuf_t *self, const char *format, ...)
{
    if (!s_reserve (self, 128))
        return;
    size_t room = self->cap - self->size;
    va_list args;
    va_start (args, format);
    int len = vsnprintf (self->data + self->size, room, format, args);
    va_end (args);
    if (len >= 0 && (size_t)len >= room && s_reserve (self, (size_t)len)) {
        va_start (args, format);
        vsnprintf (self->data + self->size, (size_t)len + 1, format, args);
        va_end (args);
    }
    if (len < 0)
        self->failed = true;
    if (!self->failed)
        self->size += (size_t)len;
}

//  Length of the well-formed UTF-8 sequence starting at p (len bytes
//  available), or 0 if there is none.
static size_t s_utf8_length (const unsigned char *p, size_t len)
{
    size_t n = p[0] >= 0xC2 && p[0] <= 0xDF   ? 2
               : p[0] >= 0xE0 && p[0] <= 0xEF ? 3
               : p[0] >= 0xF0 && p[0] <= 0xF4 ? 4
                                              : 0;
    if (n == 0 || n > len)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    if ((p[0] == 0xE0 && p[1] < 0xA0) || (p[0] == 0xED && p[1] > 0x9F) ||
        (p[0] == 0xF0 && p[1] < 0x90) || (p[0] == 0xF4 && p[1] > 0x8F))
        return 0; //  overlong, a surrogate, or past U+10FFFF
    return n;
}

void jbuf_string (jbuf_t *self, const char *text, size_t len)
{
    const unsigned char *p = (const unsigned char *)text;
    jbuf_append (self, "\"", 1);
    size_t i = 0;
    while (i < len) {
        size_t run = i; //  plain ASCII goes in whole runs
        while (run < len && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' && p[run] != '\\')
            run++;
        jbuf_append (self, text + i, run - i);
        if ((i = run) == len)
            break;
        size_t n = p[i] >= 0x80 ? s_utf8_length (p + i, len - i) : 0;
        if (n)
            jbuf_append (self, text + i, n);
        else if (p[i] == '"' || p[i] == '\\')
            jbuf_append (self, (const char[]){'\\', (char)p[i]}, 2);
        else
            jbuf_printf (self, "\\u%04x", p[i]);
        i += n ? n : 1;
    }
    jbuf_append (self, "\"", 1);
}

char *jbuf_take (jbuf_t *self)
{
    char *text = self->failed ? NULL : self->data ? self->data : strdup ("");
    if (self->failed)
        free (self->data);
    *self = (jbuf_t){0};
    return text;
}
