/*  http_harness.h - a small blocking HTTP/1.1 client for the suites that
    talk to mdp-http (no curl needed): one request per connection
    (Connection: close), chunked bodies decoded, Server-Sent Events read
    incrementally until a needle, and a strict parser of the Prometheus text
    format. Every wait is bounded.
*/
#ifndef HTTP_HARNESS_H_INCLUDED
#define HTTP_HARNESS_H_INCLUDED

#include "testutil.h"
#include <arpa/inet.h>
#include <check.h>
#include <ctype.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    int status;                  //  HTTP status, 0 if no answer came
    char head[8192];             //  status line and headers
    char *body;                  //  body, decoded, NUL-terminated (free ())
    size_t size;                 //  bytes in body
} hh_reply_t;

typedef struct {
    int fd;                      //  the connection, -1 when closed
    char *data;                  //  bytes read so far (NUL-terminated)
    size_t size, cap;            //  used and allocated
    bool eof;                    //  the server closed the connection
} hh_stream_t;

static int hh_port;              //  mdp-http's port on 127.0.0.1

static inline int hh_connect (void)
{
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge (fd, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons ((uint16_t) hh_port)};
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    ck_assert_int_eq (connect (fd, (struct sockaddr *) &addr, sizeof addr), 0);
    return fd;
}

static inline bool hh_send_all (int fd, const char *data, size_t size)
{
    while (size) {
        ssize_t sent = send (fd, data, size, MSG_NOSIGNAL);
        if (sent <= 0)
            return false;
        data += sent;
        size -= (size_t) sent;
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
        stream->size += (size_t) got;
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
    ck_assert (hh_send_all (stream.fd, head, (size_t) len));
    free (head);
    if (body && size)
        hh_send_all (stream.fd, body, size);   //  the server may refuse it early
    return stream;
}

//  Read until needle appears after offset from (or the connection ends, or
//  msecs pass). Returns where it starts, or NULL.
static inline const char *hh_wait_for (hh_stream_t *stream, size_t from, const char *needle,
                                       int msecs)
{
    int64_t deadline = zclock_mono () + tu_scale (msecs);
    while (true) {
        const char *found = stream->data && stream->size > from
                                ? strstr (stream->data + from, needle) : NULL;
        if (found || stream->eof || zclock_mono () >= deadline)
            return found;
        hh_read_some (stream, (int) (deadline - zclock_mono ()));
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
        in = (size_t) (line_end - body) + 2;
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
        hh_read_some (&stream, (int) (deadline - zclock_mono ()));
    hh_reply_t reply = {0, "", NULL, 0};
    char *split = stream.data ? strstr (stream.data, "\r\n\r\n") : NULL;
    if (split && sscanf (stream.data, "HTTP/1.%*d %d", &reply.status) == 1) {
        snprintf (reply.head, sizeof reply.head, "%.*s", (int) (split - stream.data),
                  stream.data);
        reply.size = stream.size - (size_t) (split + 4 - stream.data);
        reply.body = strndup (split + 4, reply.size);
        if (strcasestr (reply.head, "transfer-encoding: chunked"))
            reply.size = hh_dechunk (reply.body, reply.size);
    }
    else
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
        snprintf (buf, size, "%.*s", (int) strcspn (at, "\r\n"), at);
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
    if (len == 0 || !(isalpha ((unsigned char) name[0]) || name[0] == '_' || name[0] == ':'))
        return false;
    for (size_t i = 1; i < len; i++)
        if (!(isalnum ((unsigned char) name[i]) || name[i] == '_' || name[i] == ':'))
            return false;
    return true;
}

//  Parse name{labels} value at line. Returns false with a reason in err.
static inline bool hh_sample (const char *line, char *name, char *labels, double *value,
                              char *err)
{
    size_t len = strcspn (line, "{ ");
    if (!hh_metric_name_ok (line, len))
        return sprintf (err, "bad metric name in '%s'", line), false;
    snprintf (name, 256, "%.*s", (int) len, line);
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
            else
            if (*at != '}')
                return sprintf (err, "bad label list in '%s'", line), false;
        }
        snprintf (labels, 1024, "%.*s", (int) (at - start), start);
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
            ck_assert_msg (strcmp (kind, "counter") == 0 || strcmp (kind, "gauge") == 0
                               || strcmp (kind, "histogram") == 0,
                           "unexpected type in '%s'", line);
            for (int i = 0; i < ntypes; i++)
                ck_assert_msg (strcmp (types[i], name) != 0, "TYPE twice for %s", name);
            ck_assert_msg (strcmp (kind, "counter") != 0
                               || (strlen (name) > 6
                                   && strcmp (name + strlen (name) - 6, "_total") == 0),
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
            else
            if (strcmp (kinds[i], "histogram") == 0 && strncmp (name, types[i], len) == 0
                && (!strcmp (name + len, "_bucket") || !strcmp (name + len, "_sum")
                    || !strcmp (name + len, "_count")))
                kind = kinds[i];
        }
        ck_assert_msg (kind != NULL, "sample '%s' before its # TYPE", line);
        ck_assert_msg (strcmp (kind, "counter") != 0 || value >= 0, "negative counter '%s'",
                       line);
        if (strstr (name, "_bucket")) {
            char *le = strstr (labels, "le=\"");
            ck_assert_msg (le != NULL, "bucket without le: '%s'", line);
            char series[1280];
            snprintf (series, sizeof series, "%s|%.*s", name, (int) (le - labels), labels);
            if (strcmp (series, last_series) != 0) {
                snprintf (last_series, sizeof last_series, "%s", series);
                last_bucket = -1;
            }
            ck_assert_msg (value >= last_bucket, "buckets not cumulative at '%s'", line);
            last_bucket = value;
            if (strncmp (le, "le=\"+Inf\"", 9) == 0)
                inf_count = value;
        }
        else
        if (strstr (name, "_count") && inf_count >= 0) {
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

#endif
