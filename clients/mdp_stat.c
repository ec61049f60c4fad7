/*  mdp_stat.c - mdp-stat, the broker at a glance: asks mmi.workers and
    mmi.stats (spec/mdp.md section 11) and prints one row per service, once or
    every few seconds, or the two raw answers as JSON for scripts. Exit 0 on
    an answer, 1 on a bad one, 2 on a usage error, 3 when the broker is silent.
*/
#include "mdp.h"
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXIT_ANSWER 0  //  the broker answered
#define EXIT_FAILED 1  //  it answered something that is not the JSON expected
#define EXIT_USAGE 2   //  bad arguments
#define EXIT_TIMEOUT 3 //  no answer
#define NAME_WIDTH 24  //  service names are cut to this many columns

//  The command line, parsed.
typedef struct {
    const char *endpoint; //  broker endpoint
    int timeout;          //  msecs to wait for each answer
    int watch;            //  msecs between reports, 0 = once
    bool json;            //  print the raw answers
} args_t;

static void s_usage (FILE *out)
{
    fprintf (out,
             "usage: mdp-stat [-e ENDPOINT] [-t MS] [--watch S] [--json]\n"
             "  -e ENDPOINT  broker endpoint (default %s)\n"
             "  -t MS        wait for each answer, in msecs (default %d)\n"
             "  --watch S    report again every S seconds until Ctrl-C\n"
             "  --json       print {\"workers\": <mmi.workers>, \"stats\": <mmi.stats>}\n"
             "Prints one row per service: workers, idle, queued, requests, replies,\n"
             "requests per second over the last minute, p50 and p99 service times.\n"
             "Exit 0 on an answer, 1 on an unexpected one, 2 on a usage error, 3 when\n"
             "the broker does not answer.\n",
             MDP_DEFAULT_ENDPOINT, MDP_DEFAULT_TIMEOUT);
}

//  Ask one MMI service; return its answer parsed as a JSON object (the caller
//  deletes it), or NULL with errno: EAGAIN no answer, EPROTO not an object
//  (a broker without this service answers "501").
static cJSON *s_ask (mdp_client_t *client, const char *service)
{
    char *text = mdp_client_mmi (client, service, "all");
    if (!text && errno == EPROTO)
        fprintf (stderr, "mdp-stat: %s answered several frames, not a JSON object\n", service);
    if (!text)
        return NULL;
    cJSON *json = mdp_json_parse (text, strlen (text)); //  counters as sent
    if (!cJSON_IsObject (json)) {
        fprintf (stderr, "mdp-stat: %s answered '%.40s', not a JSON object\n", service, text);
        cJSON_Delete (json);
        json = NULL;
        errno = EPROTO;
    }
    free (text);
    return json;
}

//  ---------------------------------------------------------------------------
//  The table

static double s_number (const cJSON *object, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive (object, key);
    return cJSON_IsNumber (item) ? item->valuedouble : 0;
}

//  The sum of an object's numbers, e.g. every error code's count.
static double s_total (const cJSON *object)
{
    double total = 0;
    for (const cJSON *item = object ? object->child : NULL; item; item = item->next)
        total += cJSON_IsNumber (item) ? item->valuedouble : 0;
    return total;
}

//  "3d04h", "1h02m03s", "5m03s", "42s".
static void s_duration (double seconds, char *out, size_t size)
{
    long s = (long)seconds;
    if (s >= 86400)
        snprintf (out, size, "%ldd%02ldh", s / 86400, s % 86400 / 3600);
    else if (s >= 3600)
        snprintf (out, size, "%ldh%02ldm%02lds", s / 3600, s % 3600 / 60, s % 60);
    else if (s >= 60)
        snprintf (out, size, "%ldm%02lds", s / 60, s % 60);
    else
        snprintf (out, size, "%lds", s);
}

static int s_compare (const void *a, const void *b)
{
    return strcmp (*(const char *const *)a, *(const char *const *)b);
}

//  The names in either answer's "services", sorted, each once. The caller
//  frees the array (not the names, which the answers own).
static const char **s_names (const cJSON *workers, const cJSON *stats, size_t *count)
{
    size_t size = (size_t)cJSON_GetArraySize (workers) + (size_t)cJSON_GetArraySize (stats);
    const char **names = calloc (size + 1, sizeof (char *));
    size_t used = 0;
    *count = 0;
    if (!names)
        return NULL;
    for (const cJSON *item = workers ? workers->child : NULL; item; item = item->next)
        names[used++] = item->string;
    for (const cJSON *item = stats ? stats->child : NULL; item; item = item->next)
        names[used++] = item->string;
    qsort (names, used, sizeof (char *), s_compare);
    for (size_t i = 0; i < used; i++)
        if (*count == 0 || strcmp (names[*count - 1], names[i]) != 0)
            names[(*count)++] = names[i];
    return names;
}

//  A service name cut to NAME_WIDTH columns, control bytes as '?'.
static void s_name_cell (const char *name, char *out)
{
    size_t used = 0;
    for (; name[used] && used < NAME_WIDTH; used++)
        out[used] = (unsigned char)name[used] < 32 || name[used] == 127 ? '?' : name[used];
    if (name[used])
        out[NAME_WIDTH - 1] = '~';
    out[used] = 0;
}

//  "12.5" or "-" when the broker has no figure (no replies lately).
static void s_time_cell (const cJSON *figures, const char *key, char *out, size_t size)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive (figures, key);
    if (cJSON_IsNumber (item))
        snprintf (out, size, "%.1f", item->valuedouble);
    else
        snprintf (out, size, "-");
}

static void s_print_row (const char *name, const cJSON *live, const cJSON *figures)
{
    char cell[NAME_WIDTH + 1], p50[32], p99[32];
    s_name_cell (name, cell);
    s_time_cell (figures, "p50_ms", p50, sizeof p50);
    s_time_cell (figures, "p99_ms", p99, sizeof p99);
    printf ("%-*s %7.0f %5.0f %7.0f %9.0f %9.0f %8.1f %8s %8s\n", NAME_WIDTH, cell,
            s_number (live, "workers"), s_number (live, "idle"), s_number (live, "queued"),
            s_number (figures, "requests"), s_number (figures, "replies"),
            s_number (figures, "rate"), p50, p99);
}

static void s_print_table (const char *endpoint, const cJSON *workers, const cJSON *stats)
{
    const cJSON *live = cJSON_GetObjectItemCaseSensitive (workers, "services");
    const cJSON *figures = cJSON_GetObjectItemCaseSensitive (stats, "services");
    double nworkers = 0, queued = 0;
    for (const cJSON *item = live ? live->child : NULL; item; item = item->next) {
        nworkers += s_number (item, "workers");
        queued += s_number (item, "queued");
    }
    char uptime[32];
    s_duration (s_number (stats, "uptime"), uptime, sizeof uptime);
    printf ("%s  up %s  requests %.0f  replies %.0f  errors %.0f  dropped %.0f  "
            "workers %.0f  queued %.0f  expired %.0f\n",
            endpoint, uptime, s_number (stats, "requests"), s_number (stats, "replies"),
            s_total (cJSON_GetObjectItemCaseSensitive (stats, "errors")),
            s_total (cJSON_GetObjectItemCaseSensitive (stats, "dropped")), nworkers, queued,
            s_number (stats, "workers_expired"));
    printf ("%-*s %7s %5s %7s %9s %9s %8s %8s %8s\n", NAME_WIDTH, "SERVICE", "WORKERS", "IDLE",
            "QUEUED", "REQUESTS", "REPLIES", "RATE/S", "P50 MS", "P99 MS");
    size_t count;
    const char **names = s_names (live, figures, &count);
    for (size_t i = 0; i < count; i++)
        s_print_row (names[i], cJSON_GetObjectItemCaseSensitive (live, names[i]),
                     cJSON_GetObjectItemCaseSensitive (figures, names[i]));
    free (names);
}

//  ---------------------------------------------------------------------------
//  The program

//  One report. Returns the exit code it calls for.
static int s_report (mdp_client_t *client, const args_t *args)
{
    cJSON *workers = s_ask (client, "mmi.workers");
    cJSON *stats = workers ? s_ask (client, "mmi.stats") : NULL;
    int rc = EXIT_ANSWER;
    if (!stats) {
        rc = errno == EAGAIN ? EXIT_TIMEOUT : EXIT_FAILED;
        if (errno == EAGAIN)
            fprintf (stderr, "mdp-stat: no answer from the broker at %s\n", args->endpoint);
        else if (errno != EPROTO && errno != EINTR)
            fprintf (stderr, "mdp-stat: asking %s failed: %s\n", args->endpoint, strerror (errno));
    } else if (args->json) {
        cJSON *both = cJSON_CreateObject ();
        cJSON_AddItemToObject (both, "workers", workers);
        cJSON_AddItemToObject (both, "stats", stats);
        workers = stats = NULL; //  both owns them now
        char *text = mdp_json_print (both);
        if (text)
            printf ("%s\n", text);
        free (text);
        cJSON_Delete (both);
    } else
        s_print_table (args->endpoint, workers, stats);
    fflush (stdout);
    cJSON_Delete (workers);
    cJSON_Delete (stats);
    return rc;
}

//  Parse options. Returns -1 when done, else the exit code.
static int s_parse (int argc, char *argv[], args_t *args)
{
    *args = (args_t){MDP_DEFAULT_ENDPOINT, MDP_DEFAULT_TIMEOUT, 0, false};
    struct option options[] = {{"watch", required_argument, NULL, 'w'},
                               {"json", no_argument, NULL, 'j'},
                               {"help", no_argument, NULL, 'h'},
                               {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long (argc, argv, "e:t:h", options, NULL)) != -1) {
        char *end = NULL;
        double number = opt == 't' || opt == 'w' ? strtod (optarg, &end) : 0;
        bool valid = end && end != optarg && !*end && number > 0 && number <= 86400000;
        if (opt == 'e')
            args->endpoint = optarg;
        else if (opt == 't' && valid)
            args->timeout = (int)number;
        else if (opt == 'w' && valid && number <= 86400)
            args->watch = number * 1000 < 1 ? 1 : (int)(number * 1000);
        else if (opt == 'j')
            args->json = true;
        else {
            if (opt == 't' || opt == 'w')
                fprintf (stderr, "mdp-stat: %s needs a number > 0, not '%s'\n",
                         opt == 't' ? "-t" : "--watch", optarg);
            s_usage (opt == 'h' ? stdout : stderr);
            return opt == 'h' ? EXIT_ANSWER : EXIT_USAGE;
        }
    }
    if (optind != argc) {
        s_usage (stderr);
        return EXIT_USAGE;
    }
    return -1;
}

int main (int argc, char *argv[])
{
    args_t args;
    int rc = s_parse (argc, argv, &args);
    if (rc >= 0)
        return rc;
    mdp_client_t *client = mdp_client_new (args.endpoint);
    if (!client) {
        fprintf (stderr, "mdp-stat: invalid endpoint '%s'\n", args.endpoint);
        return EXIT_USAGE;
    }
    mdp_client_set_timeout (client, args.timeout);
    mdp_client_set_retries (client, 1);
    bool clear = args.watch && !args.json && isatty (STDOUT_FILENO);
    do {
        if (clear)
            printf ("\033[H\033[2J");
        rc = s_report (client, &args);
        //  Wait for the next report in small steps, so Ctrl-C ends it at once.
        for (int64_t until = zclock_mono () + args.watch;
             args.watch && !zsys_interrupted && zclock_mono () < until;)
            zclock_sleep (20);
    } while (args.watch && !zsys_interrupted);
    mdp_client_destroy (&client);
    return args.watch ? EXIT_ANSWER : rc;
}
