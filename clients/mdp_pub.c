/*  mdp_pub.c - mdp-pub, publish one Domogik-style event from a shell script:
    CATEGORY with JSON data, through the broker's forwarder. It waits for the
    forwarder to take the connection (at most -t msecs), so the event reaches
    every subscriber already subscribed, then exits; the exit code says how it
    went (0 published, 2 usage, 3 no forwarder).
*/
#include "mdp.h"
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_SENT 0         //  the event went to the forwarder
#define EXIT_USAGE 2        //  bad arguments, invalid JSON or category
#define EXIT_NO_FORWARDER 3 //  no forwarder took the connection in time

static void s_usage (FILE *out)
{
    fprintf (out,
             "usage: mdp-pub [-e ENDPOINT] [-t MS] [--curve-server KEY --curve-cert FILE]\n"
             "               CATEGORY [JSON]\n"
             "  -e ENDPOINT  the forwarder's publisher side (default %s)\n"
             "  -t MS        how long to wait for the forwarder (default %d)\n"
             "  --curve-server KEY  the broker's CURVE public key (Z85): speak CURVE\n"
             "  --curve-cert FILE   our certificate (mdp-keygen), with --curve-server\n"
             "  CATEGORY     e.g. plugin.status (dot-separated words, no spaces)\n"
             "  JSON         the event's data (default {})\n"
             "Exit 0 when published, 2 on a usage error, invalid JSON or category,\n"
             "3 when no forwarder answered in time (the event is lost).\n",
             MDP_DEFAULT_PUB_ENDPOINT, MDP_DEFAULT_SYNC_TIMEOUT);
}

//  Parse a whole number from 0 to 86400000 into *value; -1 if it is not one.
static int s_number (const char *text, int *value)
{
    char *end = NULL;
    errno = 0;
    long number = strtol (text, &end, 10);
    if (errno || end == text || *end || number < 0 || number > 86400000)
        return -1;
    *value = (int)number;
    return 0;
}

int main (int argc, char *argv[])
{
    const char *endpoint = MDP_DEFAULT_PUB_ENDPOINT;
    int timeout = MDP_DEFAULT_SYNC_TIMEOUT;
    const char *curve_server = NULL, *curve_cert = NULL;
    static const struct option options[] = {{"help", no_argument, NULL, 'h'},
                                            {"curve-server", required_argument, NULL, 'S'},
                                            {"curve-cert", required_argument, NULL, 'C'},
                                            {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long (argc, argv, "e:t:h", options, NULL)) != -1) {
        if (opt == 'e')
            endpoint = optarg;
        else if (opt == 'S')
            curve_server = optarg;
        else if (opt == 'C')
            curve_cert = optarg;
        else if (opt == 't' && s_number (optarg, &timeout) == 0)
            continue;
        else if (opt == 'h') {
            s_usage (stdout);
            return EXIT_SENT;
        } else {
            if (opt == 't')
                fprintf (stderr, "mdp-pub: -t needs a whole number of msecs, not '%s'\n", optarg);
            s_usage (stderr);
            return EXIT_USAGE;
        }
    }
    if (argc - optind < 1 || argc - optind > 2 || !curve_server != !curve_cert) {
        if (!curve_server != !curve_cert)
            fprintf (stderr, "mdp-pub: --curve-server and --curve-cert go together\n");
        s_usage (stderr);
        return EXIT_USAGE;
    }
    const char *category = argv[optind];
    const char *text = argc - optind == 2 ? argv[optind + 1] : "{}";
    cJSON *data = mdp_json_parse (text, strlen (text));
    if (!data) {
        fprintf (stderr, "mdp-pub: invalid JSON argument: %s\n", text);
        return EXIT_USAGE;
    }
    mdp_publisher_t *publisher = mdp_publisher_new (endpoint);
    if (!publisher) {
        fprintf (stderr, "mdp-pub: invalid endpoint '%s'\n", endpoint);
        cJSON_Delete (data);
        return EXIT_USAGE;
    }
    if (curve_server && mdp_publisher_set_curve (publisher, curve_server, curve_cert) != 0) {
        fprintf (stderr, "mdp-pub: --curve-server '%s', --curve-cert '%s': %s\n", curve_server,
                 curve_cert,
                 errno == EACCES   ? "its _secret file is readable by group or others"
                 : errno == EINVAL ? "a key does not decode, or the pair does not match"
                                   : "no readable certificate with a secret key");
        cJSON_Delete (data);
        mdp_publisher_destroy (&publisher);
        return EXIT_USAGE;
    }
    mdp_publisher_set_sync_timeout (publisher, timeout);
    int rc = EXIT_SENT;
    if (mdp_publisher_send (publisher, category, data) != 0) {
        rc = errno == EINVAL ? EXIT_USAGE : EXIT_NO_FORWARDER;
        if (errno == EINVAL)
            fprintf (stderr, "mdp-pub: invalid or reserved category '%s'\n", category);
        else
            fprintf (stderr, "mdp-pub: no forwarder at %s within %d msecs: %s\n", endpoint, timeout,
                     strerror (errno));
    }
    cJSON_Delete (data);
    mdp_publisher_destroy (&publisher);
    return rc;
}
