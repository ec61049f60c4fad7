/*  mdp_sub.c - mdp-sub, follow Domogik-style events from a shell script:
    subscribe to each PREFIX at the broker's forwarder and print every event
    as one JSON line {"category": ..., "data": ...}, flushed at once. Once the
    forwarder has confirmed the subscriptions it says so on stderr, so a
    script knows from when on nothing is missed.
*/
#include "mdp.h"
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_DONE 0    //  --count events seen, or interrupted
#define EXIT_USAGE 2   //  bad arguments
#define EXIT_TIMEOUT 3 //  --wait passed before --count events

static void s_usage (FILE *out)
{
    fprintf (out,
             "usage: mdp-sub [-e ENDPOINT] [-n COUNT] [-w MS] [-t MS]\n"
             "               [--curve-server KEY --curve-cert FILE] PREFIX...\n"
             "  -e ENDPOINT  the forwarder's subscriber side (default %s)\n"
             "  --curve-server KEY  the broker's CURVE public key (Z85): speak CURVE\n"
             "  --curve-cert FILE   our certificate (mdp-keygen), with --curve-server\n"
             "  -n COUNT     exit 0 after COUNT events (default: run until SIGINT/SIGTERM)\n"
             "  -w MS        exit 3 if COUNT events have not come within MS msecs\n"
             "  -t MS        how long to wait for the forwarder to confirm (default %d)\n"
             "  PREFIX       category prefix, e.g. plugin. ('' for every event)\n"
             "Prints one line per event: {\"category\": ..., \"data\": ...}. On stderr,\n"
             "\"mdp-sub: subscribed\" once the forwarder holds every subscription.\n",
             MDP_DEFAULT_SUB_ENDPOINT, MDP_DEFAULT_SYNC_TIMEOUT);
}

//  Parse a whole number from min to 86400000 into *value; -1 if it is not one.
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

//  The command line, parsed.
typedef struct {
    const char *endpoint;     //  the forwarder's XPUB side
    int count;                //  events before exit, 0 for no limit
    int wait;                 //  msecs before giving up on count, -1 for ever
    int timeout;              //  sync timeout, msecs
    const char *curve_server; //  the broker's public key, or NULL: plain
    const char *curve_cert;   //  our certificate, with curve_server
} args_t;

//  Parse options. Returns -1 when done, else the exit code.
static int s_parse (int argc, char *argv[], args_t *args)
{
    *args = (args_t){MDP_DEFAULT_SUB_ENDPOINT, 0, -1, MDP_DEFAULT_SYNC_TIMEOUT, NULL, NULL};
    static const struct option options[] = {{"count", required_argument, NULL, 'n'},
                                            {"wait", required_argument, NULL, 'w'},
                                            {"curve-server", required_argument, NULL, 'S'},
                                            {"curve-cert", required_argument, NULL, 'C'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long (argc, argv, "e:n:w:t:h", options, NULL)) != -1) {
        if (opt == 'e')
            args->endpoint = optarg;
        else if (opt == 'S')
            args->curve_server = optarg;
        else if (opt == 'C')
            args->curve_cert = optarg;
        else if ((opt == 'n' && s_number (optarg, 1, &args->count) == 0) ||
                 (opt == 'w' && s_number (optarg, 0, &args->wait) == 0) ||
                 (opt == 't' && s_number (optarg, 0, &args->timeout) == 0))
            continue;
        else if (opt == 'h') {
            s_usage (stdout);
            return EXIT_DONE;
        } else {
            if (opt == 'n' || opt == 'w' || opt == 't')
                fprintf (stderr, "mdp-sub: -%c needs a whole number, not '%s'\n", opt, optarg);
            s_usage (stderr);
            return EXIT_USAGE;
        }
    }
    if (optind >= argc || !args->curve_server != !args->curve_cert) {
        if (!args->curve_server != !args->curve_cert)
            fprintf (stderr, "mdp-sub: --curve-server and --curve-cert go together\n");
        s_usage (stderr);
        return EXIT_USAGE;
    }
    return -1;
}

//  Print one event as a JSON line.
static void s_print (const char *category, cJSON *data)
{
    cJSON *line = cJSON_CreateObject ();
    char *text = NULL;
    if (line && cJSON_AddStringToObject (line, "category", category) &&
        cJSON_AddItemReferenceToObject (line, "data", data))
        text = mdp_json_print (line);
    cJSON_Delete (line);
    if (text)
        printf ("%s\n", text);
    fflush (stdout);
    free (text);
}

int main (int argc, char *argv[])
{
    args_t args;
    int rc = s_parse (argc, argv, &args);
    if (rc >= 0)
        return rc;
    mdp_subscriber_t *subscriber = mdp_subscriber_new (args.endpoint);
    if (!subscriber) {
        fprintf (stderr, "mdp-sub: invalid endpoint '%s'\n", args.endpoint);
        return EXIT_USAGE;
    }
    if (args.curve_server &&
        mdp_subscriber_set_curve (subscriber, args.curve_server, args.curve_cert) != 0) {
        fprintf (stderr, "mdp-sub: --curve-server '%s', --curve-cert '%s': %s\n", args.curve_server,
                 args.curve_cert,
                 errno == EACCES   ? "its _secret file is readable by group or others"
                 : errno == EINVAL ? "a key does not decode, or the pair does not match"
                                   : "no readable certificate with a secret key");
        mdp_subscriber_destroy (&subscriber);
        return EXIT_USAGE;
    }
    mdp_subscriber_set_sync_timeout (subscriber, args.timeout);
    bool confirmed = true;
    for (int i = optind; i < argc; i++)
        if (mdp_subscriber_subscribe (subscriber, argv[i]) != 0)
            confirmed = false;
    if (confirmed)
        fprintf (stderr, "mdp-sub: subscribed at %s\n", args.endpoint);
    else
        fprintf (stderr,
                 "mdp-sub: no forwarder confirmed within %d msecs at %s; listening anyway\n",
                 args.timeout, args.endpoint);
    int64_t deadline = args.wait >= 0 ? zclock_mono () + args.wait : -1;
    rc = EXIT_DONE;
    for (int seen = 0; args.count == 0 || seen < args.count; seen++) {
        int msecs = deadline < 0 ? -1 : (int)(deadline - zclock_mono ());
        char *category = NULL;
        cJSON *data = NULL;
        if (mdp_subscriber_recv (subscriber, &category, &data,
                                 msecs < 0 && deadline >= 0 ? 0 : msecs) != 0) {
            rc = errno == EAGAIN ? EXIT_TIMEOUT : EXIT_DONE; //  EINTR: SIGINT/SIGTERM
            break;
        }
        s_print (category, data);
        free (category);
        cJSON_Delete (data);
    }
    mdp_subscriber_destroy (&subscriber);
    return rc;
}
