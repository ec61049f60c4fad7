/*  bridge_bench.c - mdp-bridge-bench: round trips per second through
    MDP client -> broker -> mdp-amqp-bridge -> RabbitMQ -> service and back,
    next to a direct rabbitmq-c RPC to the same service in the same run. The
    service is a raw-profile echo written with rabbitmq-c (a thread here); the
    broker runs in-process; the bridge is the real program. --rabbit starts a
    private RabbitMQ (tools/rabbit-up.sh) for the run and stops it after.
*/
#include "broker.h"
#include "mdp.h"
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define QUEUE "mdp.bench.echo" //  the echo service's queue

typedef struct {
    const char *host; //  RabbitMQ
    int port;
    int requests;     //  round trips per measurement
    int window;       //  requests in flight for the pipelined figures
    int size;         //  request body bytes (approximately: JSON data)
    bool json;        //  one JSON object instead of the table
    bool confirms;    //  the bridge's publisher_confirms (its default: on)
    char bridge[512]; //  path of mdp-amqp-bridge
} options_t;

typedef struct {
    const char *path; //  what was measured
    int window;       //  in flight
    double rate;      //  round trips per second
    double mean_ms;   //  mean latency
} result_t;

static amqp_connection_state_t s_connect (const options_t *opt)
{
    amqp_connection_state_t conn = amqp_new_connection ();
    amqp_socket_t *socket = amqp_tcp_socket_new (conn);
    if (!socket || amqp_socket_open (socket, opt->host, opt->port) != AMQP_STATUS_OK ||
        amqp_login (conn, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest").reply_type !=
            AMQP_RESPONSE_NORMAL ||
        !amqp_channel_open (conn, 1)) {
        fprintf (stderr, "mdp-bridge-bench: cannot connect to RabbitMQ at %s:%d\n", opt->host,
                 opt->port);
        exit (1);
    }
    return conn;
}

//  ---------------------------------------------------------------------------
//  The echo service: raw profile, replies with the request body, status final

static void s_echo_service (zsock_t *pipe, void *args)
{
    amqp_connection_state_t conn = s_connect (args);
    amqp_queue_declare (conn, 1, amqp_cstring_bytes (QUEUE), 0, 0, 0, 0, amqp_empty_table);
    amqp_basic_qos (conn, 1, 0, 256, 0);
    amqp_basic_consume (conn, 1, amqp_cstring_bytes (QUEUE), amqp_empty_bytes, 0, 1, 0,
                        amqp_empty_table);
    amqp_table_entry_t header = {amqp_cstring_bytes ("status"),
                                 {AMQP_FIELD_KIND_UTF8, {.bytes = amqp_cstring_bytes ("final")}}};
    zsock_signal (pipe, 0);
    while (!(zsock_events (pipe) & ZMQ_POLLIN)) {
        amqp_envelope_t envelope;
        struct timeval wait = {0, 100000};
        amqp_maybe_release_buffers (conn);
        amqp_rpc_reply_t reply = amqp_consume_message (conn, &envelope, &wait, 0);
        if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
            if (reply.library_error == AMQP_STATUS_TIMEOUT)
                continue;
            break;
        }
        amqp_basic_properties_t *in = &envelope.message.properties;
        amqp_basic_properties_t out = {0};
        out._flags = AMQP_BASIC_CORRELATION_ID_FLAG | AMQP_BASIC_HEADERS_FLAG;
        out.correlation_id = in->correlation_id;
        out.headers = (amqp_table_t){1, &header};
        amqp_basic_publish (conn, 1, amqp_empty_bytes, in->reply_to, 0, 0, &out,
                            envelope.message.body);
        amqp_destroy_envelope (&envelope);
    }
    amqp_connection_close (conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection (conn);
    char *term = zstr_recv (pipe);
    zstr_free (&term);
}

//  ---------------------------------------------------------------------------
//  Direct rabbitmq-c RPC: reply_to an exclusive queue, correlation_id

static void s_direct_send (amqp_connection_state_t conn, amqp_bytes_t reply_to, int id,
                           const char *body)
{
    char correlation[24];
    snprintf (correlation, sizeof correlation, "%d", id);
    amqp_basic_properties_t props = {0};
    props._flags =
        AMQP_BASIC_CORRELATION_ID_FLAG | AMQP_BASIC_REPLY_TO_FLAG | AMQP_BASIC_EXPIRATION_FLAG;
    props.correlation_id = amqp_cstring_bytes (correlation);
    props.reply_to = reply_to;
    props.expiration = amqp_cstring_bytes ("10000");
    amqp_basic_publish (conn, 1, amqp_empty_bytes, amqp_cstring_bytes (QUEUE), 1, 0, &props,
                        amqp_cstring_bytes (body));
}

static result_t s_direct (const options_t *opt, int window, const char *body)
{
    amqp_connection_state_t conn = s_connect (opt);
    amqp_queue_declare_ok_t *ok =
        amqp_queue_declare (conn, 1, amqp_empty_bytes, 0, 0, 1, 1, amqp_empty_table);
    amqp_bytes_t reply_to = amqp_bytes_malloc_dup (ok->queue);
    amqp_basic_consume (conn, 1, reply_to, amqp_empty_bytes, 0, 1, 0, amqp_empty_table);
    int64_t *sent_at = calloc ((size_t)opt->requests, sizeof (int64_t));
    int sent = 0, done = 0;
    double total_us = 0;
    int64_t start = zclock_usecs ();
    while (done < opt->requests) {
        while (sent < opt->requests && sent - done < window) {
            sent_at[sent] = zclock_usecs ();
            s_direct_send (conn, reply_to, sent++, body);
        }
        amqp_envelope_t envelope;
        amqp_maybe_release_buffers (conn);
        if (amqp_consume_message (conn, &envelope, NULL, 0).reply_type != AMQP_RESPONSE_NORMAL) {
            fprintf (stderr, "mdp-bridge-bench: direct RPC failed after %d replies\n", done);
            exit (1);
        }
        char text[24] = "";
        amqp_bytes_t correlation = envelope.message.properties.correlation_id;
        if (correlation.len < sizeof text)
            memcpy (text, correlation.bytes, correlation.len);
        int id = atoi (text);
        if (id >= 0 && id < sent)
            total_us += (double)(zclock_usecs () - sent_at[id]);
        done++;
        amqp_destroy_envelope (&envelope);
    }
    double seconds = (double)(zclock_usecs () - start) / 1e6;
    free (sent_at);
    amqp_bytes_free (reply_to);
    amqp_connection_close (conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection (conn);
    return (result_t){"direct rabbitmq-c RPC", window, opt->requests / seconds,
                      total_us / opt->requests / 1000.0};
}

//  ---------------------------------------------------------------------------
//  Through the bridge: mdp_async with window requests in flight

static result_t s_bridged (const options_t *opt, const char *endpoint, int window, cJSON *data)
{
    mdp_async_t *async = mdp_async_new (endpoint);
    mdp_async_set_timeout (async, 30000);
    int64_t *sent_at = calloc ((size_t)opt->requests + 1, sizeof (int64_t));
    int sent = 0, done = 0;
    double total_us = 0;
    int64_t start = zclock_usecs ();
    while (done < opt->requests) {
        while (sent < opt->requests && sent - done < window) {
            mdp_msg_t *request = mdp_msg_new ("echo", cJSON_Duplicate (data, 1));
            uint64_t id = mdp_async_send (async, "bench.echo", &request);
            if (id > 0 && id <= (uint64_t)opt->requests)
                sent_at[id] = zclock_usecs ();
            sent++;
        }
        uint64_t id = 0;
        bool final = false;
        mdp_msg_t *reply = mdp_async_recv (async, &id, &final, 30000);
        if (!reply || mdp_msg_is_error (reply)) {
            char *text = reply ? mdp_msg_to_json (reply) : NULL;
            fprintf (stderr, "mdp-bridge-bench: bridged request failed after %d replies: %s\n",
                     done, text ? text : "no reply");
            free (text);
            mdp_msg_destroy (&reply);
            break;
        }
        if (final) {
            if (id > 0 && id <= (uint64_t)opt->requests)
                total_us += (double)(zclock_usecs () - sent_at[id]);
            done++;
        }
        mdp_msg_destroy (&reply);
    }
    double seconds = (double)(zclock_usecs () - start) / 1e6;
    free (sent_at);
    mdp_async_destroy (&async);
    if (done < opt->requests) //  failed: no figures
        return (result_t){"MDP -> bridge -> RabbitMQ -> service", window, 0, 0};
    return (result_t){"MDP -> bridge -> RabbitMQ -> service", window, opt->requests / seconds,
                      total_us / opt->requests / 1000.0};
}

//  ---------------------------------------------------------------------------
//  Setting up: RabbitMQ (optional), broker, bridge

static bool s_port_free (int port)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons ((uint16_t)port),
                               .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    bool free_ = fd >= 0 && bind (fd, (struct sockaddr *)&addr, sizeof addr) == 0;
    if (fd >= 0)
        close (fd);
    return free_;
}

//  tools/rabbit-up.sh / rabbit-down.sh on a free port below the ephemeral
//  range (the node also takes PORT+20000). Returns 0 when it is up.
static int s_rabbit (const char *script, int port)
{
    char command[512];
    snprintf (command, sizeof command,
              "RABBIT_BASE=/tmp/mdp-bench-rabbit-%d RABBIT_PURGE=1 bash tools/%s %d >/dev/null "
              "2>>/tmp/mdp-bench-rabbit-%d.log",
              port, script, port, port);
    int status = system (command);
    return WIFEXITED (status) && WEXITSTATUS (status) == 0 ? 0 : -1;
}

static int s_rabbit_port (void)
{
    unsigned int seed = (unsigned int)getpid () ^ (unsigned int)zclock_usecs ();
    for (int tries = 0; tries < 500; tries++) {
        int port = 10000 + (int)(rand_r (&seed) % 2700);
        if (s_port_free (port) && s_port_free (port + 20000))
            return port;
    }
    return -1;
}

static pid_t s_start_bridge (const options_t *opt, const char *endpoint, char *config, size_t size)
{
    snprintf (config, size, "/tmp/mdp-bridge-bench-%d.json", (int)getpid ());
    FILE *file = fopen (config, "w");
    if (!file)
        return -1;
    fprintf (file,
             "{\"server\": \"%s\", \"port\": %d,\n"
             " \"users\": {\"bench\": {\"username\": \"guest\", \"password\": \"guest\"}},\n"
             " \"routes\": [{\"service\": \"bench.echo\", \"direction\": \"mdp-to-amqp\", "
             "\"profile\": \"raw\", \"user\": \"bench\", \"queue\": \"%s\", \"timeout\": 30000, "
             "\"concurrency\": %d}],\n"
             " \"publisher_confirms\": %s}\n",
             opt->host, opt->port, QUEUE, opt->window, opt->confirms ? "true" : "false");
    fclose (file);
    pid_t pid = fork ();
    if (pid == 0) {
        prctl (PR_SET_PDEATHSIG, SIGTERM); //  never outlive the bench
        int null = open ("/dev/null", O_WRONLY);
        if (null >= 0)
            dup2 (null, STDOUT_FILENO); //  our stdout is the report
        execl (opt->bridge, opt->bridge, "-c", config, "-e", endpoint, (char *)NULL);
        _exit (127);
    }
    return pid;
}

//  Wait until the broker knows bench.echo (the bridge registered its slots).
static bool s_wait_bridge (const char *endpoint)
{
    mdp_client_t *client = mdp_client_new (endpoint);
    mdp_client_set_timeout (client, 500);
    mdp_client_set_retries (client, 1);
    int has = 0;
    for (int tries = 0; tries < 60 && has != 1; tries++) {
        has = mdp_client_has_service (client, "bench.echo");
        if (has != 1)
            zclock_sleep (250);
    }
    mdp_client_destroy (&client);
    return has == 1;
}

static void s_report (const options_t *opt, result_t *results, size_t count)
{
    if (opt->json) {
        printf ("{\"requests\": %d, \"body_bytes\": %d, \"results\": [", opt->requests, opt->size);
        for (size_t index = 0; index < count; index++)
            printf ("%s{\"path\": \"%s\", \"in_flight\": %d, \"round_trips_per_s\": %.0f, "
                    "\"mean_ms\": %.3f}",
                    index ? ", " : "", results[index].path, results[index].window,
                    results[index].rate, results[index].mean_ms);
        printf ("]}\n");
        return;
    }
    printf ("mdp-bridge-bench: %d round trips each, ~%d-byte bodies, RabbitMQ %s:%d\n",
            opt->requests, opt->size, opt->host, opt->port);
    printf ("%-38s %9s %12s %9s\n", "path", "in flight", "round trips/s", "mean ms");
    for (size_t index = 0; index < count; index++)
        printf ("%-38s %9d %12.0f %9.3f\n", results[index].path, results[index].window,
                results[index].rate, results[index].mean_ms);
}

static void s_usage (FILE *out)
{
    fprintf (
        out,
        "usage: mdp-bridge-bench [--rabbit | --amqp HOST:PORT] [-n N] [-W WINDOW] [-s BYTES]\n"
        "                        [--bridge PATH] [--no-confirms] [--json]\n"
        "  --rabbit         start a private RabbitMQ (tools/rabbit-up.sh, run from the source\n"
        "                   tree) for this run and stop it after\n"
        "  --amqp HOST:PORT use a running RabbitMQ, user guest (default 127.0.0.1:5672)\n"
        "  -n N             round trips per measurement (default 10000)\n"
        "  -W WINDOW        requests in flight for the pipelined figures (default 16)\n"
        "  -s BYTES         request data size (default 64)\n"
        "  --bridge PATH    mdp-amqp-bridge to run (default: beside this program)\n"
        "  --no-confirms    run the bridge with publisher_confirms off (default on)\n"
        "  --json           one JSON object instead of the table\n"
        "Measures, in one run: a direct rabbitmq-c RPC to a C echo service, and MDP ->\n"
        "mdp-broker -> mdp-amqp-bridge (raw profile) -> RabbitMQ -> the same service,\n"
        "each with 1 and with WINDOW requests in flight.\n");
}

static int s_options (int argc, char *argv[], options_t *opt, bool *rabbit)
{
    struct option longs[] = {{"rabbit", no_argument, NULL, 'R'},
                             {"amqp", required_argument, NULL, 'A'},
                             {"bridge", required_argument, NULL, 'B'},
                             {"json", no_argument, NULL, 'J'},
                             {"no-confirms", no_argument, NULL, 'C'},
                             {"help", no_argument, NULL, 'h'},
                             {NULL, 0, NULL, 0}};
    static char host[256] = "127.0.0.1";
    *opt = (options_t){host, 5672, 10000, 16, 64, false, true, ""};
    char *self = strdup (argv[0]);
    snprintf (opt->bridge, sizeof opt->bridge, "%s/mdp-amqp-bridge", dirname (self));
    free (self);
    int c;
    while ((c = getopt_long (argc, argv, "n:W:s:h", longs, NULL)) != -1) {
        if (c == 'R')
            *rabbit = true;
        else if (c == 'A' && sscanf (optarg, "%255[^:]:%d", host, &opt->port) == 2)
            continue;
        else if (c == 'B')
            snprintf (opt->bridge, sizeof opt->bridge, "%s", optarg);
        else if (c == 'J')
            opt->json = true;
        else if (c == 'C')
            opt->confirms = false;
        else if (c == 'n' && atoi (optarg) > 0)
            opt->requests = atoi (optarg);
        else if (c == 'W' && atoi (optarg) > 0 && atoi (optarg) <= 256)
            opt->window = atoi (optarg);
        else if (c == 's' && atoi (optarg) >= 0)
            opt->size = atoi (optarg);
        else {
            s_usage (c == 'h' ? stdout : stderr);
            return c == 'h' ? 0 : 2;
        }
    }
    return optind == argc ? -1 : (s_usage (stderr), 2);
}

static int s_measure (const options_t *opt, const char *endpoint, result_t results[4])
{
    cJSON *data = cJSON_CreateObject ();
    char *pad = calloc (1, (size_t)opt->size + 1);
    memset (pad, 'x', (size_t)opt->size);
    cJSON_AddStringToObject (data, "pad", pad);
    free (pad);
    cJSON *body = cJSON_CreateObject ();
    cJSON_AddStringToObject (body, "action", "echo");
    cJSON_AddItemToObject (body, "data", cJSON_Duplicate (data, 1));
    char *text = cJSON_PrintUnformatted (body); //  what the bridge publishes, less its id
    cJSON_Delete (body);
    options_t warm = *opt;
    warm.requests = opt->requests / 10 > 0 ? opt->requests / 10 : 1;
    s_direct (&warm, opt->window, text);
    s_bridged (&warm, endpoint, opt->window, data);
    results[0] = s_direct (opt, 1, text);
    results[1] = s_bridged (opt, endpoint, 1, data);
    results[2] = s_direct (opt, opt->window, text);
    results[3] = s_bridged (opt, endpoint, opt->window, data);
    free (text);
    cJSON_Delete (data);
    return results[1].rate > 0 && results[3].rate > 0 ? 0 : -1;
}

int main (int argc, char *argv[])
{
    options_t opt;
    bool rabbit = false;
    int rc = s_options (argc, argv, &opt, &rabbit);
    if (rc >= 0)
        return rc;
    if (rabbit && ((opt.port = s_rabbit_port ()) < 0 || s_rabbit ("rabbit-up.sh", opt.port) != 0)) {
        fprintf (stderr,
                 "mdp-bridge-bench: RabbitMQ did not start (see /tmp/mdp-bench-rabbit-%d.log)\n",
                 opt.port);
        return 1;
    }
    broker_actor_args_t args = {NULL, NULL};
    zactor_t *broker = zactor_new (broker_actor, &args);
    zstr_send (broker, "ENDPOINT");
    char *endpoint = zstr_recv (broker);
    zactor_t *service = zactor_new (s_echo_service, &opt);
    char config[128];
    pid_t bridge = s_start_bridge (&opt, endpoint, config, sizeof config);
    rc = 1;
    if (bridge > 0 && s_wait_bridge (endpoint)) {
        result_t results[4];
        rc = s_measure (&opt, endpoint, results) == 0 ? 0 : 1;
        if (rc == 0)
            s_report (&opt, results, 4);
    } else
        fprintf (stderr, "mdp-bridge-bench: the bridge (%s) did not register\n", opt.bridge);
    if (bridge > 0) {
        kill (bridge, SIGTERM);
        waitpid (bridge, NULL, 0);
    }
    unlink (config);
    zactor_destroy (&service);
    zstr_free (&endpoint);
    zactor_destroy (&broker);
    if (rabbit && s_rabbit ("rabbit-down.sh", opt.port) == 0 && rc == 0) {
        char log[64];
        snprintf (log, sizeof log, "/tmp/mdp-bench-rabbit-%d.log", opt.port);
        unlink (log);
    }
    return rc;
}
