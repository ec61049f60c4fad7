/*  bridge_harness.h - what test_bridge.c stands on: a private RabbitMQ for
    the suite (tools/rabbit-up.sh on a free port, an unchecked fixture), an
    in-process MDP broker and a scratch directory per test, child processes
    that die with the test, the bridge with a config of the test's routes,
    our Neon/nuropb services (pika), a raw AMQP echo and client in C, and an
    MDP echo worker that streams. Static functions: include it once.
*/
#ifndef BRIDGE_HARNESS_H_INCLUDED
#define BRIDGE_HARNESS_H_INCLUDED

#include "broker.h"
#include "mdp.h"
#include "testutil.h"
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <arpa/inet.h>
#include <check.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define PYTHON "/usr/bin/python3"
#define NEON "tests/interop/neon_service.py"
#define NUROPB "tests/interop/nuropb_service.py"
#define MAX_CHILDREN 8

#define NEON_ECHO "\"vhost\": \"/neon_api\", \"queue\": \"neon_echo_input\""

static int s_port;                     //  RabbitMQ's AMQP port, for the whole suite
static char s_base[96];                //  its state directory
static bool s_rabbit_ok;               //  it started
static zactor_t *s_broker;             //  per test: the MDP broker, in-process
static char *s_endpoint;               //  its endpoint
static char s_dir[64];                 //  per test: config and logs
static pid_t s_children[MAX_CHILDREN]; //  per test: processes to stop
static int s_nchildren;
static pid_t s_bridge_pid; //  per test: the bridge, whose exit we check

//  ---------------------------------------------------------------------------
//  RabbitMQ for the suite (an unchecked fixture: runs once, in the parent)

static inline bool s_port_free (int port)
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

//  A port in 10000..12699 with PORT+20000 (Erlang distribution) free too:
//  both below the ephemeral range, so tcp://127.0.0.1:* binds never race us.
static inline int s_pick_port (void)
{
    unsigned int seed = (unsigned int)getpid () ^ (unsigned int)zclock_usecs ();
    for (int tries = 0; tries < 500; tries++) {
        int port = 10000 + (int)(rand_r (&seed) % 2700);
        if (s_port_free (port) && s_port_free (port + 20000))
            return port;
    }
    return -1;
}

//  Run tools/rabbit-up.sh or rabbit-down.sh for our port; output to BASE.log.
static inline int s_rabbit (const char *script, const char *env)
{
    char command[512];
    snprintf (command, sizeof command,
              "RABBIT_BASE=%s RABBIT_VHOSTS=/neon_api RABBIT_TIMEOUT=120 %s bash tools/%s %d "
              ">>%s.log 2>&1",
              s_base, env, script, s_port, s_base);
    int status = system (command);
    return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

static inline void s_rabbit_setup (void)
{
    s_port = s_pick_port ();
    snprintf (s_base, sizeof s_base, "/tmp/mdp-test-rabbit-%d", s_port);
    s_rabbit_ok = s_port > 0 && s_rabbit ("rabbit-up.sh", "") == 0;
    if (!s_rabbit_ok) {
        char command[200];
        snprintf (command, sizeof command, "tail -n 40 %s.log >&2", s_base);
        fprintf (stderr, "test_bridge: RabbitMQ did not start on 127.0.0.1:%d:\n", s_port);
        if (system (command) != 0)
            fprintf (stderr, "(no log)\n");
    }
}

//  The deployment case: our node also listens for amqps (certificates made
//  here with openssl: a CA, a server certificate for localhost and
//  127.0.0.1, and a second, unrelated CA), and a second, independent node
//  for failover. Both nodes start at once.
static int s_port2;         //  the second node's AMQP port
static char s_base2[96];    //  its state directory
static int s_tls_port;      //  the first node's amqps port
static char s_tls_dir[128]; //  ca.pem, server.pem/key, wrong-ca.pem

static inline int s_make_certs (void)
{
    char command[1400];
    snprintf (command, sizeof command,
              "(set -e; mkdir -p %s; cd %s; "
              "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 "
              "-subj /CN=mdp-test-ca; "
              "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr "
              "-subj /CN=localhost; "
              "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >ext; "
              "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
              "-out server.pem -days 2 -extfile ext; "
              "openssl req -x509 -newkey rsa:2048 -nodes -keyout wrong.key -out wrong-ca.pem "
              "-days 2 -subj /CN=wrong-ca; chmod 644 *) >/dev/null 2>&1",
              s_tls_dir, s_tls_dir);
    int status = system (command);
    return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

static inline void s_rabbit_pair_setup (void)
{
    s_port = s_pick_port ();
    do
        s_port2 = s_pick_port ();
    while (s_port2 == s_port || s_port2 == s_port + 1);
    s_tls_port = s_port + 1; //  checked free below by rabbit-up.sh
    snprintf (s_base, sizeof s_base, "/tmp/mdp-test-rabbit-%d", s_port);
    snprintf (s_base2, sizeof s_base2, "/tmp/mdp-test-rabbit-%d", s_port2);
    snprintf (s_tls_dir, sizeof s_tls_dir, "%s-tls", s_base);
    char command[1024];
    snprintf (command, sizeof command,
              "export RABBIT_VHOSTS=/neon_api RABBIT_TIMEOUT=120; "
              "RABBIT_BASE=%s RABBIT_TLS_PORT=%d RABBIT_TLS_DIR=%s bash tools/rabbit-up.sh %d "
              ">>%s.log 2>&1 & a=$!; "
              "RABBIT_BASE=%s bash tools/rabbit-up.sh %d >>%s.log 2>&1 & b=$!; "
              "wait $a && wait $b",
              s_base, s_tls_port, s_tls_dir, s_port, s_base, s_base2, s_port2, s_base2);
    int status = s_make_certs () == 0 ? system (command) : -1;
    s_rabbit_ok = WIFEXITED (status) && WEXITSTATUS (status) == 0;
    if (!s_rabbit_ok) {
        snprintf (command, sizeof command, "tail -n 40 %s.log %s.log >&2", s_base, s_base2);
        fprintf (stderr, "test_bridge: RabbitMQ did not start on 127.0.0.1:%d/%d/%d:\n", s_port,
                 s_tls_port, s_port2);
        if (system (command) != 0)
            fprintf (stderr, "(no log)\n");
    }
}

static inline void s_rabbit_teardown (void);

static inline void s_rabbit_pair_teardown (void)
{
    char command[768];
    snprintf (command, sizeof command,
              "RABBIT_BASE=%s RABBIT_PURGE=1 RABBIT_KEEP_EPMD=1 bash tools/rabbit-down.sh %d "
              ">>%s.log 2>&1; rm -rf %s.log %s",
              s_base2, s_port2, s_base2, s_base2, s_tls_dir);
    if (system (command) != 0)
        fprintf (stderr, "test_bridge: could not stop the second node\n");
    s_rabbit_teardown ();
}

static inline void s_rabbit_teardown (void)
{
    s_rabbit ("rabbit-down.sh", "RABBIT_PURGE=1");
    char command[160];
    snprintf (command, sizeof command, "rm -rf %s.log /tmp/mdp-test-bridge-%d-*", s_base,
              (int)getpid ());
    if (system (command) != 0)
        fprintf (stderr, "test_bridge: could not clean up /tmp\n");
}

static inline void s_url (char *url, size_t size, const char *vhost)
{
    snprintf (url, size, "amqp://guest:guest@127.0.0.1:%d/%s", s_port, vhost);
}

//  ---------------------------------------------------------------------------
//  Per test: an MDP broker, a scratch directory, child processes

static inline void s_setup (void)
{
    ck_assert_msg (s_rabbit_ok, "RabbitMQ did not start on 127.0.0.1:%d (see stderr)", s_port);
    static broker_config_t cfg;
    broker_config_defaults (&cfg);
    broker_actor_args_t args = {NULL, &cfg};
    s_broker = zactor_new (broker_actor, &args);
    ck_assert_ptr_nonnull (s_broker);
    zstr_send (s_broker, "ENDPOINT");
    s_endpoint = zstr_recv (s_broker);
    //  Named after the suite's process, which removes what a failed test left
    snprintf (s_dir, sizeof s_dir, "/tmp/mdp-test-bridge-%d-XXXXXX", (int)getppid ());
    ck_assert_ptr_nonnull (mkdtemp (s_dir));
    s_nchildren = 0;
    s_bridge_pid = 0;
}

static inline void s_teardown (void)
{
    //  The bridge first, while RabbitMQ and the broker are there: it must
    //  shut down cleanly (exit 0; under ASan that also means no leaks)
    int status = s_bridge_pid > 0 ? tu_stop (s_bridge_pid, SIGTERM, 20000) : 0;
    bool clean = WIFEXITED (status) && WEXITSTATUS (status) == 0;
    char command[128];
    snprintf (command, sizeof command, "tail -n 60 %s/bridge.log >&2", s_dir);
    if (!clean && system (command) != 0)
        fprintf (stderr, "test_bridge: no bridge log\n");
    while (s_nchildren > 0)
        tu_stop (s_children[--s_nchildren], SIGTERM, 10000);
    zactor_destroy (&s_broker);
    zstr_free (&s_endpoint);
    snprintf (command, sizeof command, "rm -rf %s", s_dir);
    if (system (command) != 0)
        fprintf (stderr, "test_bridge: could not remove %s\n", s_dir);
    ck_assert_msg (clean, "the bridge did not exit cleanly (status 0x%x)", (unsigned)status);
}

//  Start a child with stdout and stderr to DIR/log. If this test process
//  dies (a failed check exits at once), the child gets SIGTERM.
static inline pid_t s_start (char *const argv[], const char *log)
{
    char path[128];
    snprintf (path, sizeof path, "%s/%s", s_dir, log);
    int fd = open (path, O_CREAT | O_WRONLY | O_APPEND, 0644);
    ck_assert_int_ge (fd, 0);
    ck_assert_int_lt (s_nchildren, MAX_CHILDREN);
    pid_t parent = getpid ();
    pid_t pid = fork ();
    if (pid == 0) {
        prctl (PR_SET_PDEATHSIG, SIGTERM);
        if (getppid () != parent)
            _exit (127);
        dup2 (fd, STDOUT_FILENO);
        dup2 (fd, STDERR_FILENO);
        execv (argv[0], argv);
        _exit (127);
    }
    close (fd);
    ck_assert_int_gt (pid, 0);
    s_children[s_nchildren++] = pid;
    return pid;
}

typedef struct {
    const char *log;    //  file in s_dir
    const char *needle; //  text to find
    int count;          //  how many times
} log_wait_t;

static inline int s_count_in (const char *log, const char *needle)
{
    char path[128];
    snprintf (path, sizeof path, "%s/%s", s_dir, log);
    FILE *file = fopen (path, "r");
    char line[4096];
    int count = 0;
    while (file && fgets (line, sizeof line, file))
        count += strstr (line, needle) != NULL;
    if (file)
        fclose (file);
    return count;
}

static inline bool s_log_has (void *arg)
{
    log_wait_t *wait = arg;
    return s_count_in (wait->log, wait->needle) >= wait->count;
}

static inline void s_wait_log (const char *log, const char *needle, int count, int timeout)
{
    log_wait_t wait = {log, needle, count};
    ck_assert_msg (tu_wait_for (s_log_has, &wait, timeout), "%s/%s: '%s' not seen %d times", s_dir,
                   log, needle, count);
}

//  Run argv to its end; its stdout (the caller frees it).
static inline char *s_output (char *const argv[], int timeout)
{
    static int counter = 0;
    char path[128], errpath[128];
    snprintf (path, sizeof path, "%s/out-%d", s_dir, counter++);
    snprintf (errpath, sizeof errpath, "%s/calls.log", s_dir);
    int fd = open (path, O_CREAT | O_RDWR | O_TRUNC, 0644);
    int errfd = open (errpath, O_CREAT | O_WRONLY | O_APPEND, 0644);
    pid_t pid = tu_spawn_err (argv, fd, errfd);
    close (errfd);
    ck_assert_msg (tu_wait_exit (pid, timeout) == 0, "%s did not end well (see %s)", argv[1],
                   errpath);
    char *text = calloc (1, 65536);
    ssize_t size = pread (fd, text, 65535, 0);
    close (fd);
    ck_assert_int_gt (size, 0);
    return text;
}

//  ---------------------------------------------------------------------------
//  The bridge and its peers

#define FWD(service, profile, extra)                                                               \
    "{\"service\": \"" service "\", \"direction\": \"mdp-to-amqp\", \"profile\": \"" profile       \
    "\", \"user\": \"bridge\", " extra "}"
#define REV(service, profile, extra)                                                               \
    "{\"service\": \"" service "\", \"direction\": \"amqp-to-mdp\", \"profile\": \"" profile       \
    "\", \"user\": \"bridge\", " extra "}"

//  Start the bridge on our broker with the config file DIR/bridge.json.
static inline void s_bridge_start (void)
{
    char path[128];
    snprintf (path, sizeof path, "%s/bridge.json", s_dir);
    char *const argv[] = {
        (char *)tu_program ("mdp-amqp-bridge"), "-c", path, "-e", s_endpoint, "-v", NULL};
    s_bridge_pid = s_start (argv, "bridge.log");
    s_nchildren--; //  stopped on its own in s_teardown
}

//  Write DIR/bridge.json (printf-style) and start the bridge with it.
static inline void s_bridge_config (const char *format, ...)
{
    char path[128];
    snprintf (path, sizeof path, "%s/bridge.json", s_dir);
    FILE *file = fopen (path, "w");
    ck_assert_ptr_nonnull (file);
    va_list args;
    va_start (args, format);
    vfprintf (file, format, args);
    va_end (args);
    fclose (file);
    s_bridge_start ();
}

//  Write the config (RabbitMQ on our port, 2 s AMQP heartbeats) and start
//  the bridge on our broker.
static inline void s_bridge (const char *routes)
{
    s_bridge_config (
        "{\"server\": \"127.0.0.1\", \"port\": %d, \"amqp_heartbeat\": 2,\n"
        " \"amqp_reconnect_max\": 1000, \"mdp_reconnect_max\": 1000,\n"
        " \"users\": {\"bridge\": {\"username\": \"guest\", \"password\": \"guest\"}},\n"
        " \"routes\": [%s]}\n",
        s_port, routes);
}

static inline void s_neon_serve (const char *queue1, const char *queue2, const char *queue3)
{
    char url[128];
    s_url (url, sizeof url, "%2Fneon_api");
    char *argv[] = {
        PYTHON,    NEON,           "serve",   "--url",        url, "--queue", (char *)queue1,
        "--queue", (char *)queue2, "--queue", (char *)queue3, NULL};
    s_start (argv, "neon.log");
    s_wait_log ("neon.log", "READY", 1, 20000);
}

static inline void s_nuropb_serve (const char *service)
{
    char url[128];
    s_url (url, sizeof url, "%2f");
    char *argv[] = {PYTHON,      NUROPB,          "serve",      "--url", url,
                    "--service", (char *)service, "--prefetch", "8",     NULL};
    s_start (argv, "nuropb.log");
    s_wait_log ("nuropb.log", "READY", 1, 20000);
}

typedef struct {
    mdp_client_t *client; //  asking
    const char *service;  //  wanted
} has_t;

static inline bool s_has_service (void *arg)
{
    has_t *has = arg;
    return mdp_client_has_service (has->client, has->service) == 1;
}

static inline void s_wait_service (const char *service)
{
    mdp_client_t *client = mdp_client_new (s_endpoint);
    mdp_client_set_timeout (client, 500);
    mdp_client_set_retries (client, 1);
    has_t has = {client, service};
    bool found = tu_wait_for (s_has_service, &has, 20000);
    char command[128];
    snprintf (command, sizeof command, "tail -n 40 %s/bridge.log >&2", s_dir);
    if (!found && system (command) != 0)
        fprintf (stderr, "test_bridge: no bridge log\n");
    ck_assert_msg (found, "no worker for %s", service);
    mdp_client_destroy (&client);
}

//  One request with libmdp's blocking client; the reply (the caller destroys it).
static inline mdp_msg_t *s_call (const char *service, const char *action, const char *json,
                                 int timeout)
{
    mdp_client_t *client = mdp_client_new (s_endpoint);
    mdp_client_set_timeout (client, tu_scale (timeout));
    mdp_client_set_retries (client, 1);
    mdp_msg_t *request = mdp_msg_new (action, mdp_json_parse (json, strlen (json)));
    mdp_msg_t *reply = mdp_client_request (client, service, &request);
    mdp_client_destroy (&client);
    ck_assert_msg (reply != NULL, "no reply from %s", service);
    return reply;
}

static const char *s_field (mdp_msg_t *msg, const char *key)
{
    return cJSON_GetStringValue (cJSON_GetObjectItemCaseSensitive (mdp_msg_data (msg), key));
}

static inline void s_expect_error (const char *service, const char *action, const char *json,
                                   int code, const char *reason)
{
    mdp_msg_t *reply = s_call (service, action, json, 10000);
    char *text = mdp_msg_to_json (reply);
    ck_assert_msg (mdp_msg_error_code (reply) == code, "%s: expected %d, got %s", service, code,
                   text);
    ck_assert_msg (!reason || strstr (text, reason), "%s: no '%s' in %s", service, reason, text);
    free (text);
    mdp_msg_destroy (&reply);
}

//  ---------------------------------------------------------------------------
//  Raw AMQP peers in C (rabbitmq-c): an echo service and a client

static inline amqp_connection_state_t s_amqp_open (void)
{
    amqp_connection_state_t conn = amqp_new_connection ();
    amqp_socket_t *socket = amqp_tcp_socket_new (conn);
    ck_assert_int_eq (amqp_socket_open (socket, "127.0.0.1", s_port), AMQP_STATUS_OK);
    amqp_rpc_reply_t reply =
        amqp_login (conn, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest");
    ck_assert_int_eq (reply.reply_type, AMQP_RESPONSE_NORMAL);
    amqp_channel_open (conn, 1);
    ck_assert_int_eq (amqp_get_rpc_reply (conn).reply_type, AMQP_RESPONSE_NORMAL);
    return conn;
}

static inline void s_amqp_close (amqp_connection_state_t conn)
{
    amqp_connection_close (conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection (conn);
}

static inline void s_raw_publish (amqp_connection_state_t conn, amqp_bytes_t to,
                                  amqp_bytes_t correlation, const char *status, cJSON *body)
{
    char *text = mdp_json_print (body); //  numbers as they came
    cJSON_Delete (body);
    amqp_table_entry_t header = {amqp_cstring_bytes ("status"),
                                 {AMQP_FIELD_KIND_UTF8, {.bytes = amqp_cstring_bytes (status)}}};
    amqp_basic_properties_t props = {0};
    props._flags = AMQP_BASIC_CORRELATION_ID_FLAG | AMQP_BASIC_HEADERS_FLAG;
    props.correlation_id = correlation;
    props.headers = (amqp_table_t){1, &header};
    amqp_basic_publish (conn, 1, amqp_empty_bytes, to, 0, 0, &props, amqp_cstring_bytes (text));
    free (text);
}

//  {"action": "echo"|"stream"|"fail"|"plain", "data": D}: echo -> echo.result,
//  stream -> two partials then the final, fail -> status error 409, plain ->
//  the bare data (no action wrapper).
static inline void s_raw_answer (amqp_connection_state_t conn, amqp_envelope_t *envelope)
{
    amqp_basic_properties_t *props = &envelope->message.properties;
    cJSON *body = mdp_json_parse (envelope->message.body.bytes, envelope->message.body.len);
    const char *action = cJSON_GetStringValue (cJSON_GetObjectItemCaseSensitive (body, "action"));
    cJSON *data = cJSON_DetachItemFromObjectCaseSensitive (body, "data");
    action = action ? action : "?";
    if (streq (action, "stream"))
        for (int index = 0; index < 2; index++) {
            cJSON *part = cJSON_CreateObject ();
            cJSON_AddStringToObject (part, "action", "stream.partial");
            cJSON_AddNumberToObject (cJSON_AddObjectToObject (part, "data"), "n", index);
            s_raw_publish (conn, props->reply_to, props->correlation_id, "partial", part);
        }
    cJSON *reply = cJSON_CreateObject ();
    if (streq (action, "fail")) {
        cJSON_AddNumberToObject (reply, "code", 409);
        cJSON_AddStringToObject (reply, "reason", "conflict in the raw service");
        cJSON_Delete (data);
    } else if (streq (action, "plain")) {
        cJSON_Delete (reply);
        reply = data;
    } else {
        cJSON_AddStringToObject (reply, "action",
                                 streq (action, "stream") ? "stream.result" : "echo.result");
        cJSON_AddItemToObject (reply, "data", data);
    }
    s_raw_publish (conn, props->reply_to, props->correlation_id,
                   streq (action, "fail") ? "error" : "final", reply);
    cJSON_Delete (body);
}

static inline void s_raw_service (zsock_t *pipe, void *args)
{
    amqp_connection_state_t conn = s_amqp_open ();
    amqp_queue_declare (conn, 1, amqp_cstring_bytes ("raw_echo_input"), 0, 0, 0, 0,
                        amqp_empty_table);
    amqp_basic_consume (conn, 1, amqp_cstring_bytes ("raw_echo_input"), amqp_empty_bytes, 0, 1, 0,
                        amqp_empty_table);
    zsock_signal (pipe, 0);
    while (!(zsock_events (pipe) & ZMQ_POLLIN)) {
        amqp_envelope_t envelope;
        struct timeval wait = {0, 50000};
        amqp_maybe_release_buffers (conn);
        amqp_rpc_reply_t reply = amqp_consume_message (conn, &envelope, &wait, 0);
        if (reply.reply_type == AMQP_RESPONSE_NORMAL) {
            s_raw_answer (conn, &envelope);
            amqp_destroy_envelope (&envelope);
        } else if (reply.library_error != AMQP_STATUS_TIMEOUT)
            break;
    }
    s_amqp_close (conn);
    char *term = zstr_recv (pipe);
    zstr_free (&term);
}

//  A raw RPC: publish body to queue with reply_to and correlation_id; the
//  reply's body (the caller frees it) and its status header into status.
static inline char *s_raw_call (const char *queue, const char *body, char *status, size_t size)
{
    amqp_connection_state_t conn = s_amqp_open ();
    amqp_queue_declare_ok_t *ok =
        amqp_queue_declare (conn, 1, amqp_empty_bytes, 0, 0, 1, 1, amqp_empty_table);
    ck_assert_ptr_nonnull (ok);
    amqp_bytes_t reply_to = amqp_bytes_malloc_dup (ok->queue);
    amqp_basic_consume (conn, 1, reply_to, amqp_empty_bytes, 0, 1, 0, amqp_empty_table);
    amqp_basic_properties_t props = {0};
    props._flags = AMQP_BASIC_CORRELATION_ID_FLAG | AMQP_BASIC_REPLY_TO_FLAG;
    props.correlation_id = amqp_cstring_bytes ("raw-1");
    props.reply_to = reply_to;
    amqp_basic_publish (conn, 1, amqp_empty_bytes, amqp_cstring_bytes (queue), 0, 0, &props,
                        amqp_cstring_bytes (body));
    char *text = NULL;
    int64_t deadline = zclock_mono () + tu_scale (10000);
    while (!text && zclock_mono () < deadline) {
        amqp_envelope_t envelope;
        struct timeval wait = {0, 100000};
        amqp_maybe_release_buffers (conn);
        if (amqp_consume_message (conn, &envelope, &wait, 0).reply_type != AMQP_RESPONSE_NORMAL)
            continue;
        amqp_basic_properties_t *got = &envelope.message.properties;
        text = strndup (envelope.message.body.bytes, envelope.message.body.len);
        snprintf (status, size, "%s", "");
        for (int index = 0; index < got->headers.num_entries; index++)
            if (got->headers.entries[index].value.kind == AMQP_FIELD_KIND_UTF8)
                snprintf (status, size, "%.*s",
                          (int)got->headers.entries[index].value.value.bytes.len,
                          (char *)got->headers.entries[index].value.value.bytes.bytes);
        amqp_destroy_envelope (&envelope);
    }
    amqp_bytes_free (reply_to);
    s_amqp_close (conn);
    ck_assert_msg (text != NULL, "no raw reply from %s", queue);
    return text;
}

//  ---------------------------------------------------------------------------
//  An MDP worker (libmdp, MDPW02) the AMQP side calls: echoes the data plus
//  "served_by": "libmdp"; {"parts": N} first sends N partials.

static inline mdp_msg_t *s_echo (mdp_worker_t *worker, mdp_msg_t *request, void *arg)
{
    cJSON *data = mdp_msg_data (request);
    int parts = (int)cJSON_GetNumberValue (cJSON_GetObjectItemCaseSensitive (data, "parts"));
    for (int index = 0; index < parts && index < 10; index++) {
        cJSON *part = cJSON_CreateObject ();
        cJSON_AddNumberToObject (part, "n", index);
        mdp_msg_t *partial = mdp_msg_new ("part", part);
        mdp_worker_send_partial (worker, &partial);
        mdp_msg_destroy (&partial);
    }
    cJSON *copy = cJSON_Duplicate (data, 1);
    cJSON_AddStringToObject (copy, "served_by", "libmdp");
    char action[300];
    snprintf (action, sizeof action, "%s.result", mdp_msg_action (request));
    return mdp_msg_new (action, copy);
}

static inline void s_worker_actor (zsock_t *pipe, void *args)
{
    mdp_worker_t *worker = mdp_worker_new (s_endpoint, "echo");
    mdp_worker_set_protocol (worker, 2);
    mdp_worker_set_handler (worker, s_echo, NULL);
    mdp_worker_set_reconnect (worker, 20, 200);
    zpoller_t *poller = zpoller_new (pipe, mdp_worker_socket (worker), NULL);
    zsock_signal (pipe, 0);
    while (zpoller_wait (poller, -1) == mdp_worker_socket (worker))
        mdp_worker_process (worker);
    zpoller_destroy (&poller);
    mdp_worker_destroy (&worker);
}

//  Run a Python client (neon_service.py / nuropb_service.py call ...) and
//  parse the JSON line it prints.
static inline cJSON *s_python_call (char *const argv[])
{
    char *out = s_output (argv, 60000);
    cJSON *json = mdp_json_parse (out, strlen (out));
    ck_assert_msg (json != NULL, "%s printed %s", argv[1], out);
    free (out);
    return json;
}

static inline cJSON *s_neon_call (const char *queue, const char *data, const char *count)
{
    char url[128];
    s_url (url, sizeof url, "%2Fneon_api");
    char *const argv[] = {PYTHON,        NEON,          "call",   "--url",      url,
                          "--queue",     (char *)queue, "--data", (char *)data, "--count",
                          (char *)count, "--timeout",   "30",     NULL};
    return s_python_call (argv);
}

static inline cJSON *s_nuropb_call (const char *service, const char *method, const char *params)
{
    char url[128];
    s_url (url, sizeof url, "%2f");
    char *const argv[] = {PYTHON,
                          NUROPB,
                          "call",
                          "--url",
                          url,
                          "--service",
                          (char *)service,
                          "--method",
                          (char *)method,
                          "--params",
                          (char *)params,
                          "--timeout",
                          "30",
                          NULL};
    return s_python_call (argv);
}

static inline cJSON *s_path (cJSON *json, const char *a, const char *b)
{
    cJSON *item = cJSON_GetObjectItemCaseSensitive (json, a);
    return b ? cJSON_GetObjectItemCaseSensitive (item, b) : item;
}

static inline mdp_msg_t *s_async_final (mdp_async_t *async, uint64_t want, int timeout)
{
    uint64_t id = 0;
    bool final = false;
    mdp_msg_t *reply = mdp_async_recv (async, &id, &final, tu_scale (timeout));
    ck_assert_msg (reply && final && id == want, "no final reply for request %llu (errno %d)",
                   (unsigned long long)want, errno);
    return reply;
}

//  RabbitMQ goes away under a request: it gets 502; the service leaves the
//  broker while the link is down; a request sent meanwhile is served once
//  RabbitMQ is back, and so is everything after, both ways.

#endif
