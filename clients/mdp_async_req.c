/*  mdp_async_req.c - mdp-async-req, the example program of the async client:
    COUNT requests go out at once on one socket and every reply, partial or
    final, is printed as one JSON line as it arrives, tagged with its request
    id. It runs on a zloop through mdp_async_attach, the callback style.
    Exit 0 all answered, 1 an mdp.error reply, 2 usage, 3 a request timed out
    (no reply in time, or the broker's mdp.error 504).
*/
#include "mdp.h"
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_REPLY 0     //  every request got its final reply
#define EXIT_FAILED 1    //  an mdp.error reply, or the exchange failed
#define EXIT_USAGE 2     //  bad arguments
#define EXIT_TIMEOUT 3   //  some request timed out or got a 504 (and none failed)
#define MAX_COUNT 1000   //  requests at once: what the socket's send queue holds
#define MAX_ENDPOINTS 16 //  brokers, as many as mdp_async_t takes

//  The command line, parsed.
typedef struct {
    const char *endpoints[MAX_ENDPOINTS]; //  -e, in order (the default if none)
    int nendpoints;                       //  -e options given
    int timeout;                          //  msecs per request
    int count;                            //  requests to send
    const char *service;                  //  SERVICE
    const char *action;                   //  ACTION
    const char *json;                     //  JSON, or NULL
} args_t;

//  What came back so far.
typedef struct {
    int sent;      //  requests sent
    int finals;    //  final replies
    int partials;  //  partial replies
    int errors;    //  final replies that are mdp.error, but 504
    int timeouts;  //  requests that timed out, here or at the broker (504)
    int broken;    //  final replies that could not be decoded
    zloop_t *loop; //  the loop to end once every request is done
} tally_t;

static void s_usage (FILE *out)
{
    fprintf (out,
             "usage: mdp-async-req [-e ENDPOINT]... [-t MS] [-n COUNT] SERVICE ACTION [JSON]\n"
             "  -e ENDPOINT  broker endpoint (default %s); repeat it (or give a\n"
             "               comma-separated list) to fail over between brokers\n"
             "  -t MS        timeout of each request, in msecs (default %d); partial\n"
             "               replies restart it\n"
             "  -n COUNT     requests to send at once (default 1, at most %d); a JSON\n"
             "               object gets \"seq\": i added, i from 0\n"
             "  JSON         request data (default {})\n"
             "Prints each reply, partial or final, as it arrives:\n"
             "  {\"id\": N, \"final\": true|false, \"action\": ..., \"data\": ...}\n"
             "then a summary on stderr. Exit 0 when all were answered, 1 on any\n"
             "mdp.error reply or failure, else 3 if any timed out (no reply in time,\n"
             "or the broker's mdp.error 504, printed too); 2 on a usage error.\n",
             MDP_DEFAULT_ENDPOINT, MDP_DEFAULT_TIMEOUT, MAX_COUNT);
}

//  Parse a whole decimal number in [min, max] into *value. 0, or -1.
static int s_number (const char *text, int min, int max, int *value)
{
    char *end = NULL;
    errno = 0;
    long number = strtol (text, &end, 10);
    if (errno || end == text || *end || number < min || number > max)
        return -1;
    *value = (int)number;
    return 0;
}

//  Parse options and arguments. Returns -1 when done, else the exit code.
static int s_parse (int argc, char *argv[], args_t *args)
{
    *args = (args_t){{MDP_DEFAULT_ENDPOINT}, 0, MDP_DEFAULT_TIMEOUT, 1, NULL, NULL, NULL};
    int opt;
    while ((opt = getopt (argc, argv, "e:t:n:h")) != -1) {
        if (opt == 'e' && args->nendpoints < MAX_ENDPOINTS)
            args->endpoints[args->nendpoints++] = optarg;
        else if (opt == 't' && s_number (optarg, 1, 86400000, &args->timeout) == 0)
            continue;
        else if (opt == 'n' && s_number (optarg, 1, MAX_COUNT, &args->count) == 0)
            continue;
        else if (opt == 'h') {
            s_usage (stdout);
            return EXIT_REPLY;
        } else {
            if (opt == 't' || opt == 'n')
                fprintf (stderr, "mdp-async-req: -%c needs a whole number in range, not '%s'\n",
                         opt, optarg);
            if (opt == 'e')
                fprintf (stderr, "mdp-async-req: at most %d brokers\n", MAX_ENDPOINTS);
            s_usage (stderr);
            return EXIT_USAGE;
        }
    }
    if (argc - optind < 2 || argc - optind > 3) {
        s_usage (stderr);
        return EXIT_USAGE;
    }
    args->service = argv[optind];
    args->action = argv[optind + 1];
    args->json = argc - optind == 3 ? argv[optind + 2] : NULL;
    return -1;
}

//  A client for every broker given with -e (the first one, then the others
//  to fail over to). NULL, after saying which, when one is not valid.
static mdp_async_t *s_client_new (const args_t *args)
{
    mdp_async_t *client = mdp_async_new (args->endpoints[0]);
    const char *bad = client ? NULL : args->endpoints[0];
    for (int index = 1; client && index < args->nendpoints; index++)
        if (mdp_async_add_endpoint (client, args->endpoints[index]) != 0) {
            bad = args->endpoints[index];
            mdp_async_destroy (&client);
        }
    if (bad)
        fprintf (stderr, "mdp-async-req: invalid endpoint '%s'\n", bad);
    return client;
}

//  zloop timer: end the loop (a handler returning -1 stops zloop_start).
static int s_stop_loop (zloop_t *loop, int timer_id, void *arg)
{
    return -1;
}

//  Print one reply line: {"id": N, "final": ..., "action": ..., "data": ...}.
static void s_print (uint64_t id, mdp_msg_t *reply, bool final)
{
    cJSON *line = cJSON_CreateObject ();
    cJSON_AddNumberToObject (line, "id", (double)id);
    cJSON_AddBoolToObject (line, "final", final);
    cJSON_AddStringToObject (line, "action", mdp_msg_action (reply));
    cJSON_AddItemToObject (line, "data", cJSON_Duplicate (mdp_msg_data (reply), 1));
    char *text = mdp_json_print (line);
    if (text)
        printf ("%s\n", text);
    fflush (stdout);
    free (text);
    cJSON_Delete (line);
}

//  The async client's handler, called from the zloop.
static void s_on_reply (mdp_async_t *client, uint64_t id, mdp_msg_t *reply, bool final, int status,
                        void *arg)
{
    tally_t *tally = arg;
    if (reply)
        s_print (id, reply, final);
    if (!final) {
        tally->partials++;
        return;
    }
    tally->finals++;
    if (status == ETIMEDOUT) {
        tally->timeouts++;
        fprintf (stderr, "mdp-async-req: request %" PRIu64 " timed out\n", id);
    } else if (!reply) {
        tally->broken++;
        fprintf (stderr, "mdp-async-req: request %" PRIu64 ": malformed reply\n", id);
    } else if (mdp_msg_error_code (reply) == 504) {
        tally->timeouts++; //  the broker's deadline, just before ours
        fprintf (stderr, "mdp-async-req: request %" PRIu64 " timed out at the broker (504)\n", id);
    } else if (mdp_msg_is_error (reply))
        tally->errors++;
    if (mdp_async_pending (client) == 0)
        zloop_timer (tally->loop, 0, 1, s_stop_loop, NULL); //  all done: end the loop
}

//  Send every request; each JSON object gets "seq": i. Returns how many went.
static int s_send_all (mdp_async_t *client, const args_t *args, cJSON *data)
{
    int sent = 0;
    for (int index = 0; index < args->count; index++) {
        cJSON *copy = data ? cJSON_Duplicate (data, 1) : cJSON_CreateObject ();
        if (cJSON_IsObject (copy))
            cJSON_AddNumberToObject (copy, "seq", index);
        mdp_msg_t *request = mdp_msg_new (args->action, copy);
        if (!request || !mdp_async_send (client, args->service, &request)) {
            fprintf (stderr, "mdp-async-req: request %d could not be sent: %s\n", index,
                     strerror (errno));
            mdp_msg_destroy (&request);
            break;
        }
        sent++;
    }
    return sent;
}

//  Send, run the loop until every request ended, and return the exit code.
//  Takes the client and destroys it.
static int s_run (mdp_async_t *client, const args_t *args, cJSON *data)
{
    zloop_t *loop = zloop_new ();
    tally_t tally = {.loop = loop};
    mdp_async_set_handler (client, s_on_reply, &tally);
    if (!loop || mdp_async_attach (client, loop) != 0) {
        fprintf (stderr, "mdp-async-req: cannot set up the loop\n");
        mdp_async_destroy (&client);
        zloop_destroy (&loop);
        return EXIT_FAILED;
    }
    tally.sent = s_send_all (client, args, data);
    if (tally.sent > 0)
        zloop_start (loop); //  until the last final reply, or SIGINT/SIGTERM
    int unanswered = tally.sent - tally.finals;
    fprintf (stderr,
             "mdp-async-req: %d sent, %d answered (%d partial replies), %d mdp.error, "
             "%d timed out, %d malformed, %d unanswered\n",
             tally.sent, tally.finals - tally.timeouts - tally.broken, tally.partials, tally.errors,
             tally.timeouts, tally.broken, unanswered);
    mdp_async_destroy (&client); //  before the loop it is attached to
    zloop_destroy (&loop);
    if (tally.errors || tally.broken || unanswered || tally.sent < args->count)
        return EXIT_FAILED;
    return tally.timeouts ? EXIT_TIMEOUT : EXIT_REPLY;
}

int main (int argc, char *argv[])
{
    args_t args;
    int rc = s_parse (argc, argv, &args);
    if (rc >= 0)
        return rc;
    cJSON *data = NULL;
    if (args.json && !(data = mdp_json_parse (args.json, strlen (args.json)))) {
        fprintf (stderr, "mdp-async-req: invalid JSON argument: %s\n", args.json);
        return EXIT_USAGE;
    }
    if (!*args.action || !*args.service || strlen (args.service) > 255) {
        fprintf (stderr, "mdp-async-req: invalid service or action\n");
        cJSON_Delete (data);
        return EXIT_USAGE;
    }
    mdp_async_t *client = s_client_new (&args);
    if (!client) {
        cJSON_Delete (data);
        return EXIT_USAGE;
    }
    mdp_async_set_timeout (client, args.timeout);
    rc = s_run (client, &args, data);
    cJSON_Delete (data);
    return rc;
}
