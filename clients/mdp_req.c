/*  mdp_req.c - mdp-req, one MDP request from a shell script: send ACTION with
    JSON data to SERVICE, print the reply as one JSON line, and say how it went
    in the exit code (0 reply, 1 mdp.error reply or failure, 2 usage, 3 timeout,
    the broker's 504 included).
    For mmi.* services ACTION is the MMI body itself (e.g. the service name).
    With --stream it speaks MDP/0.2 and prints each partial reply as it comes.
*/
#include "mdp.h"
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_REPLY 0     //  a reply came back
#define EXIT_FAILED 1    //  an mdp.error reply, or the exchange failed
#define EXIT_USAGE 2     //  bad arguments
#define EXIT_TIMEOUT 3   //  no reply after every attempt, or the broker's 504
#define MAX_ENDPOINTS 16 //  brokers, as many as mdp_client_t takes

static void s_usage (FILE *out)
{
    fprintf (out,
             "usage: mdp-req [-e ENDPOINT]... [-t MS] [-r RETRIES] [-s] SERVICE ACTION [JSON]\n"
             "  -e ENDPOINT  broker endpoint (default %s); repeat it (or give a\n"
             "               comma-separated list) to fail over between brokers\n"
             "  -t MS        wait per attempt, in msecs (default %d); with --stream,\n"
             "               the longest silence between two replies\n"
             "  -r RETRIES   attempts in all (default %d); with --stream, no retry\n"
             "               once a partial reply has come\n"
             "  --curve-server KEY  the broker's CURVE public key (Z85): encrypt\n"
             "  --curve-cert FILE   our certificate (mdp-keygen), with --curve-server\n"
             "  -s, --stream MDP/0.2: print each partial reply on its own line as it\n"
             "               arrives, then the final one (not for mmi.* services)\n"
             "  JSON         request data (default {}); not used with mmi.* services,\n"
             "               where ACTION is sent alone (e.g. mdp-req mmi.service echo)\n"
             "Prints the reply as {\"action\": ..., \"data\": ...}. Exit 0 on a reply,\n"
             "1 on an mdp.error reply or a failure, 2 on a usage error, 3 on timeout:\n"
             "no reply, or the broker's mdp.error 504 (printed too).\n",
             MDP_DEFAULT_ENDPOINT, MDP_DEFAULT_TIMEOUT, MDP_DEFAULT_RETRIES);
}

//  Parse a whole decimal number >= min into *value. 0, or -1 if it is not one.
static int s_number (const char *text, int min, int *value)
{
    char *end = NULL;
    errno = 0;
    long number = strtol (text, &end, 10);
    if (errno || end == text || *end || number < min || number > 86400000)
        return -1;
    *value = (int)number;
    return 0;
}

//  An MMI request: the body is the bare ACTION frame, and the reply's single
//  frame comes back as the action of a message with empty data.
static mdp_msg_t *s_mmi (mdp_client_t *client, const char *service, const char *action)
{
    char *answer = mdp_client_mmi (client, service, action);
    if (!answer)
        return NULL;
    mdp_msg_t *msg = *answer ? mdp_msg_new (answer, NULL) : NULL;
    if (!*answer)
        errno = EPROTO;
    free (answer);
    return msg;
}

//  Print one partial reply as soon as it arrives (--stream); arg counts them.
static void s_print_partial (mdp_msg_t *partial, void *arg)
{
    (*(int *)arg)++;
    char *json = mdp_msg_to_json (partial);
    if (json)
        printf ("%s\n", json);
    free (json);
    fflush (stdout);
}

//  Print the reply and return the exit code; or explain why there is none.
static int s_report (mdp_msg_t *reply, const char *service, int timeout, int retries, int partials)
{
    if (reply) {
        char *json = mdp_msg_to_json (reply);
        if (json)
            printf ("%s\n", json);
        free (json);
        //  The broker answers 504 just before our own deadline: a timeout too.
        if (mdp_msg_is_error (reply))
            return mdp_msg_error_code (reply) == 504 ? EXIT_TIMEOUT : EXIT_FAILED;
        return EXIT_REPLY;
    }
    if (errno == EAGAIN && partials > 0) {
        fprintf (stderr, "mdp-req: '%s' went silent for %d msecs after %d partial replies\n",
                 service, timeout, partials);
        return EXIT_TIMEOUT;
    }
    if (errno == EAGAIN) {
        fprintf (stderr, "mdp-req: no reply from '%s' after %d attempt(s) of %d msecs\n", service,
                 retries, timeout);
        return EXIT_TIMEOUT;
    }
    if (errno == EINVAL) {
        fprintf (stderr, "mdp-req: invalid service name '%s'\n", service);
        return EXIT_USAGE;
    }
    fprintf (stderr, "mdp-req: request to '%s' failed: %s\n", service,
             errno == EPROTO ? "malformed reply" : strerror (errno));
    return EXIT_FAILED;
}

//  The command line, parsed.
typedef struct {
    const char *endpoints[MAX_ENDPOINTS]; //  -e, in order (the default if none)
    int nendpoints;                       //  -e options given
    int timeout;                          //  msecs per attempt
    int retries;                          //  attempts in all
    const char *service;                  //  SERVICE
    const char *action;                   //  ACTION, or the MMI body
    const char *json;                     //  JSON, or NULL
    bool stream;                          //  --stream: MDP/0.2 with partial replies
    const char *curve_server;             //  --curve-server KEY, or NULL
    const char *curve_cert;               //  --curve-cert FILE, or NULL
} args_t;

//  Parse options and arguments. Returns -1 when done, else the exit code.
static int s_parse (int argc, char *argv[], args_t *args)
{
    *args = (args_t){{MDP_DEFAULT_ENDPOINT},
                     0,
                     MDP_DEFAULT_TIMEOUT,
                     MDP_DEFAULT_RETRIES,
                     NULL,
                     NULL,
                     NULL,
                     false,
                     NULL,
                     NULL};
    static const struct option options[] = {{"stream", no_argument, NULL, 's'},
                                            {"help", no_argument, NULL, 'h'},
                                            {"curve-server", required_argument, NULL, 'S'},
                                            {"curve-cert", required_argument, NULL, 'C'},
                                            {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long (argc, argv, "e:t:r:sh", options, NULL)) != -1) {
        if (opt == 'e' && args->nendpoints < MAX_ENDPOINTS)
            args->endpoints[args->nendpoints++] = optarg;
        else if (opt == 't' && s_number (optarg, 1, &args->timeout) == 0)
            continue;
        else if (opt == 'r' && s_number (optarg, 1, &args->retries) == 0)
            continue;
        else if (opt == 's')
            args->stream = true;
        else if (opt == 'S')
            args->curve_server = optarg;
        else if (opt == 'C')
            args->curve_cert = optarg;
        else if (opt == 'h') {
            s_usage (stdout);
            return EXIT_REPLY;
        } else {
            if (opt == 't' || opt == 'r')
                fprintf (stderr, "mdp-req: -%c needs a whole number > 0, not '%s'\n", opt, optarg);
            if (opt == 'e')
                fprintf (stderr, "mdp-req: at most %d brokers\n", MAX_ENDPOINTS);
            s_usage (stderr);
            return EXIT_USAGE;
        }
    }
    if (argc - optind < 2 || argc - optind > 3 || !args->curve_server != !args->curve_cert) {
        if (!args->curve_server != !args->curve_cert)
            fprintf (stderr, "mdp-req: --curve-server and --curve-cert go together\n");
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
static mdp_client_t *s_client_new (const args_t *args)
{
    mdp_client_t *client = mdp_client_new (args->endpoints[0]);
    const char *bad = client ? NULL : args->endpoints[0];
    for (int index = 1; client && index < args->nendpoints; index++)
        if (mdp_client_add_endpoint (client, args->endpoints[index]) != 0) {
            bad = args->endpoints[index];
            mdp_client_destroy (&client);
        }
    if (bad)
        fprintf (stderr, "mdp-req: invalid endpoint '%s'\n", bad);
    return client;
}

int main (int argc, char *argv[])
{
    args_t args;
    int rc = s_parse (argc, argv, &args);
    if (rc >= 0)
        return rc;
    bool mmi = strncmp (args.service, "mmi.", 4) == 0;
    if (mmi && args.json) {
        fprintf (stderr, "mdp-req: no JSON with an mmi.* service: ACTION is the whole body\n");
        return EXIT_USAGE;
    }
    if (mmi && args.stream) {
        fprintf (stderr, "mdp-req: --stream is not for mmi.* services\n");
        return EXIT_USAGE;
    }
    cJSON *data = NULL;
    if (args.json && !(data = mdp_json_parse (args.json, strlen (args.json)))) {
        fprintf (stderr, "mdp-req: invalid JSON argument: %s\n", args.json);
        return EXIT_USAGE;
    }
    mdp_msg_t *request = mmi ? NULL : mdp_msg_new (args.action, data);
    if (!mmi && !request) {
        fprintf (stderr, "mdp-req: invalid action '%s'\n", args.action);
        return EXIT_USAGE;
    }
    mdp_client_t *client = s_client_new (&args);
    if (!client) {
        mdp_msg_destroy (&request);
        return EXIT_USAGE;
    }
    if (args.curve_server && mdp_client_set_curve (client, args.curve_server, args.curve_cert)) {
        fprintf (stderr, "mdp-req: --curve-server '%s', --curve-cert '%s': %s\n", args.curve_server,
                 args.curve_cert ? args.curve_cert : "",
                 errno == EINVAL   ? "a key does not decode, or the key pair does not match"
                 : errno == EACCES ? "its _secret file is readable by group or others"
                                   : "no readable certificate with a secret key");
        mdp_msg_destroy (&request);
        mdp_client_destroy (&client);
        return EXIT_USAGE;
    }
    mdp_client_set_timeout (client, args.timeout);
    mdp_client_set_retries (client, args.retries);
    mdp_msg_t *reply = NULL;
    int partials = 0;
    if (mmi)
        reply = s_mmi (client, args.service, args.action);
    else if (args.stream)
        reply =
            mdp_client_request_stream (client, args.service, &request, s_print_partial, &partials);
    else
        reply = mdp_client_request (client, args.service, &request);
    rc = s_report (reply, args.service, args.timeout, args.retries, partials);
    mdp_msg_destroy (&reply);
    mdp_client_destroy (&client);
    return rc;
}
