/*  echo_worker.c - mdp-echo-worker, the smallest useful worker: it answers each
    request with the request's own data under Domogik's result action
    (config.get -> config.result, cmd.send -> cmd.send.result). It is what
    `make run` and the end-to-end tests put behind the broker.
*/
#include "mdp.h"
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool s_verbose = false; //  -v: log each request

static void s_usage (FILE *out)
{
    fprintf (out,
             "usage: mdp-echo-worker [-e ENDPOINT] [-H MS] [-v] [SERVICE]\n"
             "  -e ENDPOINT         broker endpoint (default %s); repeat -e, or give a\n"
             "                      comma-separated list, to serve several brokers\n"
             "  -H, --heartbeat MS  heartbeat interval, as the broker's (default %d)\n"
             "  -v                  log each request\n"
             "  --curve-server KEY  the broker's CURVE public key (Z85): encrypt\n"
             "  --curve-cert FILE   our certificate (mdp-keygen), with --curve-server\n"
             "  SERVICE             service to offer (default echo)\n",
             MDP_DEFAULT_ENDPOINT, MDP_DEFAULT_HEARTBEAT);
}

//  Domogik's reply action: a trailing ".get" or ".do" becomes ".result",
//  anything else gets ".result" appended. The caller frees the string.
static char *s_result_action (const char *action)
{
    size_t length = strlen (action);
    const char *suffixes[] = {".get", ".do"};
    for (size_t index = 0; index < 2; index++) {
        size_t size = strlen (suffixes[index]);
        if (length > size && streq (action + length - size, suffixes[index])) {
            length -= size;
            break;
        }
    }
    char *result = malloc (length + sizeof ".result");
    if (result)
        snprintf (result, length + sizeof ".result", "%.*s.result", (int)length, action);
    return result;
}

static mdp_msg_t *s_echo (mdp_worker_t *worker, mdp_msg_t *request, void *arg)
{
    if (s_verbose)
        zsys_info ("echo: %s on %s", mdp_msg_action (request), mdp_worker_service (worker));
    char *action = s_result_action (mdp_msg_action (request));
    cJSON *data = cJSON_Duplicate (mdp_msg_data (request), 1);
    mdp_msg_t *reply = NULL;
    if (action && data) {
        reply = mdp_msg_new (action, data);
        data = NULL; //  mdp_msg_new took it
    }
    cJSON_Delete (data);
    free (action);
    if (!reply)
        reply = mdp_msg_new_error (500, "out of memory");
    return reply;
}

//  Append one -e value to the comma-separated list *list (NULL at first).
static void s_add_endpoint (char **list, const char *endpoint)
{
    char *joined = *list ? zsys_sprintf ("%s,%s", *list, endpoint) : strdup (endpoint);
    zstr_free (list);
    *list = joined;
}

int main (int argc, char *argv[])
{
    char *endpoints = NULL; //  every -e, comma-separated
    const char *endpoint = MDP_DEFAULT_ENDPOINT;
    int heartbeat = MDP_DEFAULT_HEARTBEAT;
    const char *curve_server = NULL, *curve_cert = NULL;
    struct option options[] = {{"heartbeat", required_argument, NULL, 'H'},
                               {"help", no_argument, NULL, 'h'},
                               {"curve-server", required_argument, NULL, 'S'},
                               {"curve-cert", required_argument, NULL, 'C'},
                               {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long (argc, argv, "e:H:vh", options, NULL)) != -1) {
        if (opt == 'e')
            s_add_endpoint (&endpoints, optarg);
        else if (opt == 'H' && atoi (optarg) > 0)
            heartbeat = atoi (optarg);
        else if (opt == 'v')
            s_verbose = true;
        else if (opt == 'S')
            curve_server = optarg;
        else if (opt == 'C')
            curve_cert = optarg;
        else if (opt == 'h') {
            s_usage (stdout);
            return 0;
        } else {
            s_usage (stderr);
            zstr_free (&endpoints);
            return 2;
        }
    }
    if (argc - optind > 1) {
        s_usage (stderr);
        zstr_free (&endpoints);
        return 2;
    }
    if (endpoints)
        endpoint = endpoints;
    const char *service = optind < argc ? argv[optind] : "echo";
    mdp_worker_t *worker = mdp_worker_new (endpoint, service);
    if (!worker) {
        fprintf (stderr, "mdp-echo-worker: invalid service '%s' or endpoint '%s'\n", service,
                 endpoint);
        zstr_free (&endpoints);
        return 2;
    }
    if ((curve_server || curve_cert) &&
        mdp_worker_set_curve (worker, curve_server, curve_cert) != 0) {
        fprintf (stderr, "mdp-echo-worker: --curve-server needs a Z85 public key and "
                         "--curve-cert a readable certificate\n");
        mdp_worker_destroy (&worker);
        zstr_free (&endpoints);
        return 2;
    }
    mdp_worker_set_heartbeat (worker, heartbeat, MDP_DEFAULT_LIVENESS);
    mdp_worker_set_handler (worker, s_echo, NULL);
    if (s_verbose)
        zsys_info ("echo: serving '%s' on %s", service, endpoint);
    int rc = mdp_worker_run (worker); //  until SIGINT or SIGTERM
    mdp_worker_destroy (&worker);
    zstr_free (&endpoints);
    return rc == 0 ? 0 : 1;
}
