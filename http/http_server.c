/*  http_server.c - the HTTP side of mdp-http and its one loop. libmicrohttpd
    runs in external epoll mode: its epoll descriptor, the async client's
    socket, the subscriber's socket and the signalfd are polled together, so
    no thread is ever started per request. A call suspends its connection
    until the reply comes; SSE responses read a bounded per-connection buffer.
*/
#include "http_server_impl.h"
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define KEEPALIVE_MSECS 15000 //  SSE comment interval: finds readers gone

//  ---------------------------------------------------------------------------
//  Responses

static void s_common_headers (struct MHD_Response *response, const char *type)
{
    MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header (response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header (response, "X-Content-Type-Options", "nosniff");
}

static void s_resume (req_t *req)
{
    if (req->suspended) {
        req->suspended = false;
        MHD_resume_connection (req->conn);
    }
}

void http_server_respond (req_t *req, unsigned int status, const char *type, const char *body,
                          size_t size)
{
    struct MHD_Response *response =
        MHD_create_response_from_buffer (size, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!response)
        return; //  out of memory: the connection closes without an answer
    s_common_headers (response, type);
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header (response, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                 "Bearer realm=\"mdp-http\"");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header (response, MHD_HTTP_HEADER_ALLOW,
                                 req->kind == REQ_CALL ? "POST" : "GET, HEAD");
    MHD_queue_response (req->conn, status, response);
    MHD_destroy_response (response);
    req->kind = REQ_ANSWERED;
    s_resume (req);
}

void http_server_error (req_t *req, unsigned int status, const char *reason)
{
    cJSON *body = cJSON_CreateObject ();
    cJSON_AddNumberToObject (body, "code", status);
    cJSON_AddStringToObject (body, "reason", reason);
    char *text = cJSON_PrintUnformatted (body);
    cJSON_Delete (body);
    if (text)
        http_server_respond (req, status, "application/json", text, strlen (text));
    free (text);
    if (req->service)
        http_counters_add (&req->server->counters, req->service, (int)status);
}

void http_server_suspend (req_t *req)
{
    if (!req->suspended) {
        req->suspended = true;
        MHD_suspend_connection (req->conn);
    }
}

void http_server_track (req_t *req, int slot, uint64_t id)
{
    char key[32];
    snprintf (key, sizeof key, "%016llx", (unsigned long long)id);
    req->ids[slot] = id;
    req->waiting++;
    zhashx_insert (req->server->pending, key, req);
}

static void s_untrack (req_t *req)
{
    for (int slot = 0; slot < 2; slot++)
        if (req->ids[slot]) {
            char key[32];
            snprintf (key, sizeof key, "%016llx", (unsigned long long)req->ids[slot]);
            zhashx_delete (req->server->pending, key);
            req->ids[slot] = 0;
        }
}

//  ---------------------------------------------------------------------------
//  Server-Sent Events: MHD pulls from req->out; an empty buffer suspends
//  the connection until http_server_push wakes it.

static ssize_t s_sse_reader (void *cls, uint64_t pos, char *buf, size_t max)
{
    req_t *req = cls;
    if (req->out_failed)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if (req->out_used == 0) {
        if (req->out_done)
            return MHD_CONTENT_READER_END_OF_STREAM;
        http_server_suspend (req);
        return 0;
    }
    size_t size = req->out_used < max ? req->out_used : max;
    memcpy (buf, req->out, size);
    memmove (req->out, req->out + size, req->out_used - size);
    req->out_used -= size;
    return (ssize_t)size;
}

int http_server_start_sse (req_t *req)
{
    req->out = malloc (HTTP_SSE_BUFFER);
    struct MHD_Response *response =
        req->out
            ? MHD_create_response_from_callback (MHD_SIZE_UNKNOWN, 16384, s_sse_reader, req, NULL)
            : NULL;
    if (!response)
        return -1;
    s_common_headers (response, "text/event-stream");
    MHD_add_response_header (response, "X-Accel-Buffering", "no");
    MHD_queue_response (req->conn, MHD_HTTP_OK, response);
    MHD_destroy_response (response);
    return 0;
}

void http_server_push (req_t *req, const char *text, size_t size)
{
    if (!req->out || req->out_failed || req->out_done)
        return;
    if (req->out_used + size > HTTP_SSE_BUFFER) {
        zsys_warning ("mdp-http: an SSE reader fell %d bytes behind; closing it", HTTP_SSE_BUFFER);
        req->out_failed = true;
    } else {
        memcpy (req->out + req->out_used, text, size);
        req->out_used += size;
    }
    s_resume (req);
}

void http_server_end_stream (req_t *req)
{
    req->out_done = true;
    s_resume (req);
}

//  ---------------------------------------------------------------------------
//  Request contexts

static req_t *s_req_new (http_server_t *server, struct MHD_Connection *conn)
{
    req_t *req = calloc (1, sizeof (req_t));
    if (!req)
        return NULL;
    req->server = server;
    req->conn = conn;
    req->next = server->reqs;
    if (server->reqs)
        server->reqs->prev = req;
    server->reqs = req;
    return req;
}

static void s_req_destroy (req_t **req_p)
{
    req_t *req = *req_p;
    if (!req)
        return;
    s_untrack (req);
    if (req->prev)
        req->prev->next = req->next;
    else
        req->server->reqs = req->next;
    if (req->next)
        req->next->prev = req->prev;
    free (req->body);
    free (req->service);
    free (req->action);
    free (req->answers[0]);
    free (req->answers[1]);
    free (req->out);
    for (size_t i = 0; i < req->nprefixes; i++)
        free (req->prefixes[i]);
    free (req->prefixes);
    free (req);
    *req_p = NULL;
}

static void s_completed (void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    req_t *req = *con_cls;
    s_req_destroy (&req);
    *con_cls = NULL;
}

//  ---------------------------------------------------------------------------
//  Routing: what the headers alone decide

//  Compare in time that depends only on the expected token's length.
static bool s_token_equal (const char *want, const char *got)
{
    size_t want_len = strlen (want), got_len = strlen (got);
    unsigned char diff = want_len != got_len;
    for (size_t i = 0; i < want_len; i++)
        diff |= (unsigned char)want[i] ^ (unsigned char)(i < got_len ? got[i] : 0);
    return diff == 0;
}

static bool s_authorized (req_t *req)
{
    const char *token = req->server->token;
    if (!token)
        return true;
    const char *header =
        MHD_lookup_connection_value (req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!header || strncasecmp (header, "Bearer ", 7) != 0)
        return false;
    return s_token_equal (token, header + 7);
}

//  /v1/services/{service}/{action}: split into req->service and req->action.
//  Returns 0, or -1 when the path is not of that shape.
static int s_call_path (req_t *req, const char *url)
{
    const char *service = url + strlen ("/v1/services/");
    const char *slash = strchr (service, '/');
    if (!slash || slash == service || slash - service > 255 || !slash[1] ||
        strchr (slash + 1, '/') || strlen (slash + 1) > 255)
        return -1;
    req->service = strndup (service, (size_t)(slash - service));
    req->action = strdup (slash + 1);
    return req->service && req->action ? 0 : -1;
}

//  Route by path and method. Returns the kind, or answers (REQ_ANSWERED).
static void s_route (req_t *req, const char *url, const char *method)
{
    bool get = strcmp (method, "GET") == 0 || strcmp (method, "HEAD") == 0;
    bool post = strcmp (method, "POST") == 0;
    req_kind_t kind = REQ_NEW;
    if (strcmp (url, "/") == 0 || strcmp (url, "/index.html") == 0) {
        //  The page holds no data: it loads without a token, its fetches need one.
        if (!get) {
            http_server_error (req, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET");
            return;
        }
        size_t size;
        const char *page = http_dashboard (&size);
        http_server_respond (req, MHD_HTTP_OK, "text/html; charset=utf-8", page, size);
        return;
    }
    if (strcmp (url, "/metrics") == 0)
        kind = REQ_METRICS;
    else if (strcmp (url, "/v1/services") == 0)
        kind = REQ_SERVICES;
    else if (strcmp (url, "/v1/stats") == 0)
        kind = REQ_STATS;
    else if (strcmp (url, "/v1/events") == 0)
        kind = REQ_EVENTS;
    else if (strncmp (url, "/v1/services/", 13) == 0 && s_call_path (req, url) == 0)
        kind = REQ_CALL;
    if (kind == REQ_NEW) {
        http_server_error (req, MHD_HTTP_NOT_FOUND, "no such path");
        return;
    }
    if (!s_authorized (req)) {
        free (req->service);
        req->service = NULL;
        http_server_error (req, MHD_HTTP_UNAUTHORIZED, "missing or wrong bearer token");
        return;
    }
    if ((kind == REQ_CALL && !post) || (kind != REQ_CALL && !get)) {
        req->kind = kind;
        char *service = req->service;
        req->service = NULL; //  not a call: counted nowhere
        http_server_error (req, MHD_HTTP_METHOD_NOT_ALLOWED,
                           kind == REQ_CALL ? "use POST" : "use GET");
        free (service);
        return;
    }
    req->kind = kind;
    const char *length =
        MHD_lookup_connection_value (req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (kind == REQ_CALL && length &&
        strtoull (length, NULL, 10) > (unsigned long long)req->server->config->max_body)
        http_server_error (req, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large");
}

static enum MHD_Result s_access (void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    http_server_t *server = cls;
    req_t *req = *con_cls;
    if (!req) {
        if (!(req = s_req_new (server, conn)))
            return MHD_NO;
        *con_cls = req;
        if (server->config->verbose)
            zsys_info ("mdp-http: %s %s", method, url);
        s_route (req, url, method);
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t size = *upload_data_size, max = server->config->max_body;
        *upload_data_size = 0;
        if (req->kind == REQ_ANSWERED || req->too_big)
            return MHD_YES;
        if (req->body_size + size > max) {
            req->too_big = true;
            return MHD_YES;
        }
        char *body = realloc (req->body, req->body_size + size);
        if (!body)
            return MHD_NO;
        memcpy (body + req->body_size, upload_data, size);
        req->body = body;
        req->body_size += size;
        return MHD_YES;
    }
    if (req->kind == REQ_ANSWERED || req->suspended || req->dispatched)
        return MHD_YES;
    req->dispatched = true;
    if (req->too_big)
        http_server_error (req, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large");
    else
        http_handlers_dispatch (req);
    return MHD_YES;
}

//  ---------------------------------------------------------------------------
//  Set-up

static void s_mhd_log (void *cls, const char *fmt, va_list args)
{
    char line[512];
    vsnprintf (line, sizeof line, fmt, args);
    line[strcspn (line, "\n")] = 0;
    zsys_warning ("mdp-http: %s", line);
}

//  HOST:PORT or [HOST]:PORT into addr. Returns 0, or -1.
static int s_address (const char *listen, struct sockaddr_storage *addr, socklen_t *len)
{
    char host[256];
    const char *colon = strrchr (listen, ':');
    if (!colon)
        return -1;
    const char *start = listen, *end = colon;
    if (*start == '[' && end > start && end[-1] == ']') {
        start++;
        end--;
    }
    snprintf (host, sizeof host, "%.*s", (int)(end - start), start);
    struct addrinfo hints = {.ai_flags = AI_NUMERICSERV, .ai_socktype = SOCK_STREAM}, *info;
    if (getaddrinfo (host, colon + 1, &hints, &info) != 0)
        return -1;
    memcpy (addr, info->ai_addr, info->ai_addrlen);
    *len = info->ai_addrlen;
    freeaddrinfo (info);
    return 0;
}

static int s_listen (http_server_t *self, char *err, size_t errlen)
{
    struct sockaddr_storage addr;
    socklen_t len;
    if (s_address (self->config->listen, &addr, &len) != 0) {
        snprintf (err, errlen, "cannot resolve listen address '%s'", self->config->listen);
        return -1;
    }
    unsigned int flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    self->daemon = MHD_start_daemon (
        flags, 0, NULL, NULL, s_access, self, MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log, self,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)self->config->client_timeout, MHD_OPTION_NOTIFY_COMPLETED, s_completed, self,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)20000, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)65536, MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int)1024, MHD_OPTION_END);
    if (!self->daemon) {
        snprintf (err, errlen, "cannot listen on %s: %s", self->config->listen,
                  strerror (errno ? errno : EADDRINUSE));
        return -1;
    }
    const union MHD_DaemonInfo *port =
        MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    char host[256];
    snprintf (host, sizeof host, "%.*s",
              (int)(strrchr (self->config->listen, ':') - self->config->listen),
              self->config->listen);
    snprintf (self->url, sizeof self->url, "http://%s:%u", host, port ? (unsigned)port->port : 0);
    return 0;
}

static int s_connect (http_server_t *self, char *err, size_t errlen)
{
    const http_config_t *config = self->config;
    self->async = mdp_async_new (config->endpoints[0]);
    if (!self->async) {
        snprintf (err, errlen, "cannot connect to broker '%s'", config->endpoints[0]);
        return -1;
    }
    //  Several brokers: calls fail over between them (spec/ha.md).
    for (size_t i = 1; i < config->nendpoints; i++)
        if (mdp_async_add_endpoint (self->async, config->endpoints[i]) != 0) {
            snprintf (err, errlen, "cannot add broker '%s'", config->endpoints[i]);
            return -1;
        }
    if (config->curve_server &&
        mdp_async_set_curve (self->async, config->curve_server, config->curve_cert) != 0) {
        snprintf (err, errlen, "CURVE: %s: %s", config->curve_cert, strerror (errno));
        return -1;
    }
    mdp_async_set_handler (self->async, http_handlers_on_reply, self);
    if (!config->events)
        return 0;
    self->subscriber = mdp_subscriber_new (config->events);
    if (!self->subscriber) {
        snprintf (err, errlen, "cannot connect to the event forwarder '%s'", config->events);
        return -1;
    }
    if (config->curve_server && mdp_subscriber_set_curve (self->subscriber, config->curve_server,
                                                          config->curve_cert) != 0) {
        snprintf (err, errlen, "CURVE (events): %s: %s", config->curve_cert, strerror (errno));
        return -1;
    }
    mdp_subscriber_set_handler (self->subscriber, http_handlers_on_event, self);
    //  Every category; each SSE client filters by its own prefixes.
    if (mdp_subscriber_subscribe (self->subscriber, "") != 0)
        zsys_warning ("mdp-http: event forwarder %s not reached yet; events flow once it is",
                      config->events);
    mdp_subscriber_process (self->subscriber);
    return 0;
}

http_server_t *http_server_new (const http_config_t *config, char *err, size_t errlen)
{
    http_server_t *self = calloc (1, sizeof (http_server_t));
    if (!self) {
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    self->config = config;
    self->pending = zhashx_new ();
    if (!self->pending || http_server_reload (self, config, err, errlen) != 0 ||
        s_connect (self, err, errlen) != 0 || s_listen (self, err, errlen) != 0)
        http_server_destroy (&self);
    return self;
}

void http_server_destroy (http_server_t **self_p)
{
    http_server_t *self = self_p ? *self_p : NULL;
    if (!self)
        return;
    if (self->daemon) {
        //  MHD requires every suspended connection resumed before it stops;
        //  a call still waiting is told why it gets no answer.
        for (req_t *req = self->reqs; req; req = req->next) {
            if (req->suspended && !req->out)
                http_server_error (req, MHD_HTTP_SERVICE_UNAVAILABLE, "mdp-http is stopping");
            req->out_done = true;
            s_resume (req);
        }
        MHD_run (self->daemon);
        MHD_stop_daemon (self->daemon);
    }
    mdp_async_destroy (&self->async);
    mdp_subscriber_destroy (&self->subscriber);
    zhashx_destroy (&self->pending);
    http_counters_destroy (&self->counters);
    free (self->token);
    free (self);
    *self_p = NULL;
}

const char *http_server_url (http_server_t *self)
{
    return self->url;
}

int http_server_reload (http_server_t *self, const http_config_t *config, char *err, size_t errlen)
{
    char *token = NULL;
    if (config->token_file && !(token = http_config_read_token (config->token_file, err, errlen)))
        return -1;
    free (self->token);
    self->token = token;
    self->config = config;
    return 0;
}

//  ---------------------------------------------------------------------------
//  The loop

static void s_keepalive (http_server_t *self)
{
    int64_t now = zclock_mono ();
    if (now < self->next_keepalive)
        return;
    self->next_keepalive = now + KEEPALIVE_MSECS;
    for (req_t *req = self->reqs; req; req = req->next)
        if ((req->kind == REQ_EVENTS || req->kind == REQ_STREAM) && req->out)
            http_server_push (req, ":\n\n", 3);
}

int http_server_run (http_server_t *self, int signal_fd, void (*on_signal) (void *arg), void *arg,
                     volatile bool *stop)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    int epoll_fd = info ? info->epoll_fd : -1;
    self->next_keepalive = zclock_mono () + KEEPALIVE_MSECS;
    while (!*stop) {
        zmq_pollitem_t items[4] = {
            {NULL, epoll_fd, ZMQ_POLLIN, 0},
            {NULL, signal_fd, ZMQ_POLLIN, 0},
            {zsock_resolve (mdp_async_socket (self->async)), 0, ZMQ_POLLIN, 0},
            {self->subscriber ? zsock_resolve (mdp_subscriber_socket (self->subscriber)) : NULL, 0,
             ZMQ_POLLIN, 0}};
        long timeout = KEEPALIVE_MSECS;
        MHD_UNSIGNED_LONG_LONG mhd_timeout;
        if (MHD_get_timeout (self->daemon, &mhd_timeout) == MHD_YES &&
            mhd_timeout < (MHD_UNSIGNED_LONG_LONG)timeout)
            timeout = (long)mhd_timeout;
        int async_timeout = mdp_async_next_timeout (self->async);
        if (async_timeout >= 0 && async_timeout < timeout)
            timeout = async_timeout;
        int rc = zmq_poll (items, self->subscriber ? 4 : 3, timeout);
        if (rc < 0 && errno != EINTR) {
            zsys_error ("mdp-http: poll: %s", zmq_strerror (errno));
            return -1;
        }
        if (rc > 0 && (items[1].revents & ZMQ_POLLIN))
            on_signal (arg);
        mdp_async_process (self->async);
        if (self->subscriber)
            mdp_subscriber_process (self->subscriber);
        s_keepalive (self);
        MHD_run (self->daemon);
    }
    return 0;
}
