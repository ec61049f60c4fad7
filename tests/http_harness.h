/*  http_harness.h - a small blocking HTTP/1.1 client for the suites that
    talk to mdp-http (no curl needed): one request per connection
    (Connection: close), chunked bodies decoded, Server-Sent Events read
    incrementally until a needle, and a strict parser of the Prometheus text
    format. Every wait is bounded. Then the processes every mdp-http
    end-to-end suite starts, and its fixtures.
*/
#ifndef HTTP_HARNESS_H_INCLUDED
#define HTTP_HARNESS_H_INCLUDED

#include "daemon_harness.h"
#include "mdp.h"
#include "testutil.h"
#include <arpa/inet.h>
#include <check.h>
#include <ctype.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    int status;      //  HTTP status, 0 if no answer came
    char head[8192]; //  status line and headers
    char *body;      //  body, decoded, NUL-terminated (free ())
    size_t size;     //  bytes in body
} hh_reply_t;

typedef struct {
    int fd;           //  the connection, -1 when closed
    char *data;       //  bytes read so far (NUL-terminated)
    size_t size, cap; //  used and allocated
    bool eof;         //  the server closed the connection
} hh_stream_t;

static int hh_port; //  mdp-http's port on 127.0.0.1

static inline int hh_connect (void)
{
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge (fd, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons ((uint16_t)hh_port)};
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    ck_assert_int_eq (connect (fd, (struct sockaddr *)&addr, sizeof addr), 0);
    return fd;
}

static inline bool hh_send_all (int fd, const char *data, size_t size)
{
    while (size) {
        ssize_t sent = send (fd, data, size, MSG_NOSIGNAL);
        if (sent <= 0)
            return false;
        data += sent;
        size -= (size_t)sent;
    }
    return true;
}

//  Read what is there within msecs into stream. False on timeout.
static inline bool hh_read_some (hh_stream_t *stream, int msecs)
{
    struct pollfd item = {stream->fd, POLLIN, 0};
    if (stream->eof || poll (&item, 1, msecs) <= 0)
        return false;
    if (stream->size + 65536 + 1 > stream->cap) {
        stream->cap = stream->cap * 2 + 65536 + 1;
        stream->data = realloc (stream->data, stream->cap);
        ck_assert_ptr_nonnull (stream->data);
    }
    ssize_t got = recv (stream->fd, stream->data + stream->size, 65536, 0);
    if (got <= 0)
        stream->eof = true;
    else
        stream->size += (size_t)got;
    stream->data[stream->size] = 0;
    return true;
}

//  Send a request on a new connection: method, path, extra header lines
//  (each ending "\r\n", or NULL), body (NULL: no body). Returns the stream.
static inline hh_stream_t hh_open (const char *method, const char *path, const char *headers,
                                   const char *body, size_t size)
{
    hh_stream_t stream = {hh_connect (), NULL, 0, 0, false};
    char length[64] = "";
    if (body)
        snprintf (length, sizeof length, "Content-Length: %zu\r\n", size);
    char *head = NULL;
    int len = asprintf (&head, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s%s\r\n",
                        method, path, headers ? headers : "", length);
    ck_assert_int_gt (len, 0);
    ck_assert (hh_send_all (stream.fd, head, (size_t)len));
    free (head);
    if (body && size)
        hh_send_all (stream.fd, body, size); //  the server may refuse it early
    return stream;
}

//  Read until needle appears after offset from (or the connection ends, or
//  msecs pass). Returns where it starts, or NULL.
static inline const char *hh_wait_for (hh_stream_t *stream, size_t from, const char *needle,
                                       int msecs)
{
    int64_t deadline = zclock_mono () + tu_scale (msecs);
    while (true) {
        const char *found =
            stream->data && stream->size > from ? strstr (stream->data + from, needle) : NULL;
        if (found || stream->eof || zclock_mono () >= deadline)
            return found;
        hh_read_some (stream, (int)(deadline - zclock_mono ()));
    }
}

static inline void hh_close (hh_stream_t *stream)
{
    if (stream->fd >= 0)
        close (stream->fd);
    stream->fd = -1;
    free (stream->data);
    stream->data = NULL;
}

//  Decode a chunked body in place. Returns its size.
static inline size_t hh_dechunk (char *body, size_t size)
{
    size_t in = 0, out = 0;
    while (in < size) {
        char *end;
        unsigned long chunk = strtoul (body + in, &end, 16);
        char *line_end = strstr (body + in, "\r\n");
        if (!line_end || end == body + in || chunk == 0)
            break;
        in = (size_t)(line_end - body) + 2;
        if (in + chunk > size)
            chunk = size - in;
        memmove (body + out, body + in, chunk);
        out += chunk;
        in += chunk + 2;
    }
    body[out] = 0;
    return out;
}

//  One whole exchange: the connection is read to its end (at most msecs).
static inline hh_reply_t hh_request_within (const char *method, const char *path,
                                            const char *headers, const char *body, size_t size,
                                            int msecs)
{
    hh_stream_t stream = hh_open (method, path, headers, body, size);
    int64_t deadline = zclock_mono () + tu_scale (msecs);
    while (!stream.eof && zclock_mono () < deadline)
        hh_read_some (&stream, (int)(deadline - zclock_mono ()));
    hh_reply_t reply = {0, "", NULL, 0};
    char *split = stream.data ? strstr (stream.data, "\r\n\r\n") : NULL;
    if (split && sscanf (stream.data, "HTTP/1.%*d %d", &reply.status) == 1) {
        snprintf (reply.head, sizeof reply.head, "%.*s", (int)(split - stream.data), stream.data);
        reply.size = stream.size - (size_t)(split + 4 - stream.data);
        reply.body = strndup (split + 4, reply.size);
        if (strcasestr (reply.head, "transfer-encoding: chunked"))
            reply.size = hh_dechunk (reply.body, reply.size);
    } else
        reply.body = strdup ("");
    hh_close (&stream);
    return reply;
}

static inline hh_reply_t hh_request (const char *method, const char *path, const char *headers,
                                     const char *body)
{
    return hh_request_within (method, path, headers, body, body ? strlen (body) : 0, 10000);
}

static inline void hh_free (hh_reply_t *reply)
{
    free (reply->body);
    reply->body = NULL;
}

//  The value of header name in reply, copied into buf (empty if absent).
static inline const char *hh_header (const hh_reply_t *reply, const char *name, char *buf,
                                     size_t size)
{
    buf[0] = 0;
    char pattern[128];
    snprintf (pattern, sizeof pattern, "\r\n%s:", name);
    const char *at = strcasestr (reply->head, pattern);
    if (at) {
        at += strlen (pattern);
        while (*at == ' ')
            at++;
        snprintf (buf, size, "%.*s", (int)strcspn (at, "\r\n"), at);
    }
    return buf;
}

//  ---------------------------------------------------------------------------
//  Prometheus text format 0.0.4, checked strictly: every sample belongs to a
//  family declared by # TYPE before it; names and labels are well formed;
//  counters end in _total; each histogram series has cumulative buckets
//  ending in le="+Inf", equal to its _count, and a _sum.

static inline bool hh_metric_name_ok (const char *name, size_t len)
{
    if (len == 0 || !(isalpha ((unsigned char)name[0]) || name[0] == '_' || name[0] == ':'))
        return false;
    for (size_t i = 1; i < len; i++)
        if (!(isalnum ((unsigned char)name[i]) || name[i] == '_' || name[i] == ':'))
            return false;
    return true;
}

//  Parse name{labels} value at line. Returns false with a reason in err.
static inline bool hh_sample (const char *line, char *name, char *labels, double *value, char *err)
{
    size_t len = strcspn (line, "{ ");
    if (!hh_metric_name_ok (line, len))
        return sprintf (err, "bad metric name in '%s'", line), false;
    snprintf (name, 256, "%.*s", (int)len, line);
    const char *at = line + len;
    labels[0] = 0;
    if (*at == '{') {
        const char *start = ++at;
        while (*at != '}') {
            size_t key = strcspn (at, "=");
            if (!hh_metric_name_ok (at, key) || at[key] != '=' || at[key + 1] != '"')
                return sprintf (err, "bad label in '%s'", line), false;
            at += key + 2;
            while (*at && *at != '"') {
                if (*at == '\\' && !strchr ("\\\"n", at[1]))
                    return sprintf (err, "bad escape in '%s'", line), false;
                at += *at == '\\' ? 2 : 1;
            }
            if (*at != '"')
                return sprintf (err, "unterminated label in '%s'", line), false;
            at++;
            if (*at == ',')
                at++;
            else if (*at != '}')
                return sprintf (err, "bad label list in '%s'", line), false;
        }
        snprintf (labels, 1024, "%.*s", (int)(at - start), start);
        at++;
    }
    if (*at != ' ')
        return sprintf (err, "no value in '%s'", line), false;
    char *end;
    *value = strtod (at + 1, &end);
    if (end == at + 1 || *end)
        return sprintf (err, "bad value in '%s'", line), false;
    return true;
}

//  Check text; fails the test with the first fault.
static inline void hh_check_prometheus (const char *text)
{
    char *copy = strdup (text), *save = NULL, err[1400] = "";
    char types[128][256], kinds[128][32];
    int ntypes = 0;
    char last_series[1280] = "";
    double last_bucket = -1, inf_count = -1;
    ck_assert_msg (text[strlen (text) - 1] == '\n', "exposition must end with a newline");
    for (char *line = strtok_r (copy, "\n", &save); line; line = strtok_r (NULL, "\n", &save)) {
        if (strncmp (line, "# HELP ", 7) == 0)
            continue;
        if (strncmp (line, "# TYPE ", 7) == 0) {
            char name[256], kind[32];
            ck_assert_msg (sscanf (line + 7, "%255s %31s", name, kind) == 2, "bad '%s'", line);
            ck_assert_msg (hh_metric_name_ok (name, strlen (name)), "bad name in '%s'", line);
            ck_assert_msg (strcmp (kind, "counter") == 0 || strcmp (kind, "gauge") == 0 ||
                               strcmp (kind, "histogram") == 0,
                           "unexpected type in '%s'", line);
            for (int i = 0; i < ntypes; i++)
                ck_assert_msg (strcmp (types[i], name) != 0, "TYPE twice for %s", name);
            ck_assert_msg (
                strcmp (kind, "counter") != 0 ||
                    (strlen (name) > 6 && strcmp (name + strlen (name) - 6, "_total") == 0),
                "counter %s does not end in _total", name);
            ck_assert_int_lt (ntypes, 128);
            snprintf (types[ntypes], 256, "%s", name);
            snprintf (kinds[ntypes++], 32, "%s", kind);
            continue;
        }
        ck_assert_msg (line[0] != '#', "unexpected comment '%s'", line);
        char name[256], labels[1024];
        double value;
        ck_assert_msg (hh_sample (line, name, labels, &value, err), "%s", err);
        const char *kind = NULL;
        for (int i = 0; i < ntypes && !kind; i++) {
            size_t len = strlen (types[i]);
            if (strcmp (name, types[i]) == 0)
                kind = kinds[i];
            else if (strcmp (kinds[i], "histogram") == 0 && strncmp (name, types[i], len) == 0 &&
                     (!strcmp (name + len, "_bucket") || !strcmp (name + len, "_sum") ||
                      !strcmp (name + len, "_count")))
                kind = kinds[i];
        }
        ck_assert_msg (kind != NULL, "sample '%s' before its # TYPE", line);
        ck_assert_msg (strcmp (kind, "counter") != 0 || value >= 0, "negative counter '%s'", line);
        if (strstr (name, "_bucket")) {
            char *le = strstr (labels, "le=\"");
            ck_assert_msg (le != NULL, "bucket without le: '%s'", line);
            char series[1280];
            snprintf (series, sizeof series, "%s|%.*s", name, (int)(le - labels), labels);
            if (strcmp (series, last_series) != 0) {
                snprintf (last_series, sizeof last_series, "%s", series);
                last_bucket = -1;
            }
            ck_assert_msg (value >= last_bucket, "buckets not cumulative at '%s'", line);
            last_bucket = value;
            if (strncmp (le, "le=\"+Inf\"", 9) == 0)
                inf_count = value;
        } else if (strstr (name, "_count") && inf_count >= 0) {
            ck_assert_msg (value == inf_count, "_count %g != +Inf bucket %g", value, inf_count);
            inf_count = -1;
        }
    }
    free (copy);
}

//  The value of the sample named exactly series (e.g. 'x{a="b"}'), or NAN.
static inline double hh_metric (const char *text, const char *series)
{
    size_t len = strlen (series);
    for (const char *at = text; (at = strstr (at, series)); at += len)
        if ((at == text || at[-1] == '\n') && at[len] == ' ')
            return strtod (at + len + 1, NULL);
    return NAN;
}

//  ===========================================================================
//  The processes of the mdp-http end-to-end suites (test_e2e_http*.c):
//  mdp-broker with its event forwarder, mdp-echo-worker, mdp-http, and an
//  MDP/0.2 worker in a thread, service "test". Fixtures: s_setup (no
//  mdp-http yet), s_setup_running (mdp-http up, both services seen), s_teardown.

__attribute__ ((unused)) static pid_t broker_pid, echo_pid, http_pid;
static int broker_out, broker_err, http_out, http_err;
static char endpoint[256], pub_ep[256], sub_ep[256];
static zactor_t *worker;
static atomic_int seen; //  requests the thread worker received

//  ---------------------------------------------------------------------------
//  The thread worker, service "test" (MDPW02): "fail" answers mdp.error with
//  data's "code"; "sleep" waits data's "ms"; "stream" sends data's "partials"
//  partial replies {"part": i}; anything else echoes the data.

__attribute__ ((unused)) static mdp_msg_t *s_test_hook (mdp_worker_t *self, mdp_msg_t *request,
                                                        void *arg)
{
    atomic_fetch_add (&seen, 1);
    const char *action = mdp_msg_action (request);
    cJSON *data = mdp_msg_data (request);
    const cJSON *number = cJSON_GetObjectItem (data, "code");
    if (streq (action, "fail"))
        return mdp_msg_new_error (cJSON_IsNumber (number) ? number->valueint : 500,
                                  "failed as asked");
    if (streq (action, "sleep")) {
        number = cJSON_GetObjectItem (data, "ms");
        zclock_sleep (cJSON_IsNumber (number) ? number->valueint : 0);
        return mdp_msg_new ("sleep.result", NULL);
    }
    if (streq (action, "stream")) {
        number = cJSON_GetObjectItem (data, "partials");
        int parts = cJSON_IsNumber (number) ? number->valueint : 0;
        for (int part = 0; part < parts; part++) {
            cJSON *body = cJSON_CreateObject ();
            cJSON_AddNumberToObject (body, "part", part);
            mdp_msg_t *partial = mdp_msg_new ("stream.partial", body);
            mdp_worker_send_partial (self, &partial);
        }
        cJSON *body = cJSON_CreateObject ();
        cJSON_AddNumberToObject (body, "parts", parts);
        return mdp_msg_new ("stream.result", body);
    }
    return mdp_msg_new ("test.result", cJSON_Duplicate (data, 1));
}

__attribute__ ((unused)) static void s_worker_actor (zsock_t *pipe, void *arg)
{
    mdp_worker_t *self = mdp_worker_new (endpoint, "test");
    mdp_worker_set_protocol (self, 2);
    mdp_worker_set_handler (self, s_test_hook, NULL);
    mdp_worker_set_reconnect (self, 20, 200);
    tu_worker_run (pipe, &self);
}

//  ---------------------------------------------------------------------------
//  Processes

//  After "prefix", the first word of the line; copied to out.
__attribute__ ((unused)) static void s_word_after (const char *line, const char *prefix, char *out,
                                                   size_t size)
{
    const char *at = strstr (line, prefix);
    ck_assert_msg (at != NULL, "no '%s' in '%s'", prefix, line);
    at += strlen (prefix);
    snprintf (out, size, "%.*s", (int)strcspn (at, " ,"), at);
}

__attribute__ ((unused)) static void s_start_broker (void)
{
    const char *args[] = {"-e",
                          "tcp://127.0.0.1:*",
                          "--pub-endpoint",
                          "tcp://127.0.0.1:*",
                          "--sub-endpoint",
                          "tcp://127.0.0.1:*",
                          NULL};
    broker_pid = dh_spawn (args, &broker_out, &broker_err);
    char *line = tu_read_line_with (broker_err, "events: publishers connect to", 10000);
    ck_assert_ptr_nonnull (line);
    s_word_after (line, "publishers connect to ", pub_ep, sizeof pub_ep);
    s_word_after (line, "subscribers to ", sub_ep, sizeof sub_ep);
    free (line);
    ck_assert (dh_endpoint (broker_err, endpoint, sizeof endpoint, 10000));
}

//  Start mdp-http against our broker with extra args (NULL-ended); sets hh_port.
__attribute__ ((unused)) static void s_start_http (const char *const extra[])
{
    const char *args[DH_MAX_ARGS] = {"--listen", "127.0.0.1:0", "-e", endpoint, "--events", sub_ep};
    int count = 6;
    for (int i = 0; extra && extra[i] && count < DH_MAX_ARGS - 1; i++)
        args[count++] = extra[i];
    args[count] = NULL;
    http_pid = dh_spawn_program ("mdp-http", args, &http_out, &http_err);
    char *line = tu_read_line_with (http_err, "serving on http://", 10000);
    ck_assert_msg (line != NULL, "mdp-http did not start");
    char url[256];
    s_word_after (line, "serving on ", url, sizeof url);
    hh_port = atoi (strrchr (url, ':') + 1);
    ck_assert_int_gt (hh_port, 0);
    free (line);
}

__attribute__ ((unused)) static void s_stop_http (void)
{
    if (http_pid > 0) {
        ck_assert_int_eq (tu_stop (http_pid, SIGTERM, 10000), 0);
        close (http_out);
        close (http_err);
    }
    http_pid = 0;
}

//  True once the thread worker has had a request.
__attribute__ ((unused)) static bool s_worker_busy (void *arg)
{
    return atomic_load (&seen) > 0;
}

//  True when GET /v1/services lists both services with a worker each.
__attribute__ ((unused)) static bool s_services_up (void *arg)
{
    hh_reply_t reply = hh_request ("GET", "/v1/services", arg, NULL);
    cJSON *root = cJSON_Parse (reply.body ? reply.body : "");
    cJSON *services = cJSON_GetObjectItem (root, "services");
    bool up = reply.status == 200 &&
              cJSON_GetObjectItem (cJSON_GetObjectItem (services, "echo"), "workers") &&
              cJSON_GetObjectItem (cJSON_GetObjectItem (services, "test"), "workers");
    cJSON_Delete (root);
    hh_free (&reply);
    return up;
}

__attribute__ ((unused)) static void s_setup (void)
{
    dh_setup ();
    s_start_broker ();
    char *argv[] = {(char *)tu_program ("mdp-echo-worker"), "-e", endpoint, "echo", NULL};
    echo_pid = tu_spawn (argv, -1);
    ck_assert_int_gt (echo_pid, 0);
    worker = zactor_new (s_worker_actor, NULL);
    ck_assert_ptr_nonnull (worker);
}

//  The usual set-up plus mdp-http with no extra flags, both services up.
__attribute__ ((unused)) static void s_setup_running (void)
{
    s_setup ();
    s_start_http (NULL);
    ck_assert_msg (tu_wait_for (s_services_up, NULL, 10000), "services never came up");
}

__attribute__ ((unused)) static void s_teardown (void)
{
    s_stop_http ();
    zactor_destroy (&worker);
    tu_stop (echo_pid, SIGTERM, 5000);
    tu_stop (broker_pid, SIGTERM, 5000);
    close (broker_out);
    close (broker_err);
    dh_teardown ();
}

__attribute__ ((unused)) static cJSON *s_json (const hh_reply_t *reply)
{
    cJSON *root = cJSON_Parse (reply->body);
    ck_assert_msg (root != NULL, "not JSON: '%s'", reply->body);
    return root;
}

#endif
