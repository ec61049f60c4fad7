/*  http_handlers.c - what each route of mdp-http does on the MDP side: a
    POST becomes one request on the async client, answered as one JSON body
    or as Server-Sent Events (one per partial reply, then the final one);
    GET /v1/services, /v1/stats and /metrics ask the broker's MMI; events
    from the forwarder fan out to every /v1/events stream whose prefix fits.
*/
#include "http_server_impl.h"
#include <errno.h>
#include <string.h>

//  ---------------------------------------------------------------------------
//  Service calls

//  The deadline from ?timeout= or X-MDP-Timeout (query first), else the
//  configured default. Returns msecs, or -1 if the value given is not valid.
static int s_timeout (req_t *req)
{
    const char *text = MHD_lookup_connection_value (req->conn, MHD_GET_ARGUMENT_KIND, "timeout");
    if (!text)
        text = MHD_lookup_connection_value (req->conn, MHD_HEADER_KIND, "X-MDP-Timeout");
    if (!text)
        return req->server->config->timeout;
    char *end;
    errno = 0;
    long value = strtol (text, &end, 10);
    if (errno || end == text || *end || value < 1 || value > HTTP_MAX_TIMEOUT)
        return -1;
    return (int)value;
}

static bool s_wants_sse (req_t *req)
{
    const char *accept =
        MHD_lookup_connection_value (req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
    return accept && strstr (accept, "text/event-stream");
}

static void s_call (req_t *req)
{
    int timeout = s_timeout (req);
    if (timeout < 0) {
        http_server_error (req, MHD_HTTP_BAD_REQUEST,
                           "timeout must be a whole number of milliseconds, 1 to 86400000");
        return;
    }
    if (strncmp (req->service, "mmi.", 4) == 0) {
        http_server_error (req, MHD_HTTP_BAD_REQUEST,
                           "mmi.* belongs to the broker: use GET /v1/services or /v1/stats");
        return;
    }
    cJSON *data =
        req->body_size ? mdp_json_parse (req->body, req->body_size) : cJSON_CreateObject ();
    if (!data) {
        http_server_error (req, MHD_HTTP_BAD_REQUEST, "the body is not valid JSON");
        return;
    }
    mdp_msg_t *request = mdp_msg_new (req->action, data);
    if (!request) {
        cJSON_Delete (data);
        http_server_error (req, MHD_HTTP_BAD_REQUEST, "not a valid action");
        return;
    }
    mdp_async_set_timeout (req->server->async, timeout);
    uint64_t id = mdp_async_send (req->server->async, req->service, &request);
    mdp_msg_destroy (&request);
    if (!id) {
        http_server_error (req,
                           errno == EAGAIN ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_BAD_REQUEST,
                           errno == EAGAIN ? "too many calls in flight" : "not a valid call");
        return;
    }
    req->timeout = timeout;
    http_server_track (req, 0, id);
    if (s_wants_sse (req)) {
        req->kind = REQ_STREAM;
        if (http_server_start_sse (req) != 0)
            http_server_error (req, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    } else
        http_server_suspend (req);
}

//  {"action": ..., "data": ...} as mdp-req prints it; the caller frees it.
static char *s_reply_text (mdp_msg_t *reply)
{
    cJSON *root = cJSON_CreateObject ();
    cJSON_AddStringToObject (root, "action", mdp_msg_action (reply));
    cJSON_AddItemReferenceToObject (root, "data", mdp_msg_data (reply));
    char *text = root ? mdp_json_print (root) : NULL;
    cJSON_Delete (root);
    return text;
}

//  An mdp.error's data as {"code": N, "reason": "..."}, and its HTTP status
//  (the code when it is one of 400-599, else 502). The caller frees it.
static char *s_error_text (mdp_msg_t *reply, unsigned int *status)
{
    int code = mdp_msg_error_code (reply);
    *status = code >= 400 && code <= 599 ? (unsigned int)code : MHD_HTTP_BAD_GATEWAY;
    const cJSON *reason = cJSON_GetObjectItemCaseSensitive (mdp_msg_data (reply), "reason");
    cJSON *root = cJSON_CreateObject ();
    cJSON_AddNumberToObject (root, "code", code);
    cJSON_AddStringToObject (root, "reason",
                             cJSON_IsString (reason) ? reason->valuestring : "error");
    char *text = root ? mdp_json_print (root) : NULL;
    cJSON_Delete (root);
    return text;
}

//  Status and reason when no reply came: timed out, or malformed.
static void s_failure (req_t *req, int status, unsigned int *code, char *reason, size_t size)
{
    if (status == ETIMEDOUT) {
        *code = MHD_HTTP_GATEWAY_TIMEOUT;
        snprintf (reason, size, "no reply from '%s' within %d ms", req->service, req->timeout);
    } else {
        *code = MHD_HTTP_BAD_GATEWAY;
        snprintf (reason, size, "malformed reply from '%s'", req->service);
    }
}

static void s_call_final (req_t *req, mdp_msg_t *reply, int status)
{
    if (!reply) {
        char reason[512];
        unsigned int code;
        s_failure (req, status, &code, reason, sizeof reason);
        http_server_error (req, code, reason);
        return;
    }
    unsigned int code = MHD_HTTP_OK;
    char *text = mdp_msg_is_error (reply) ? s_error_text (reply, &code) : s_reply_text (reply);
    if (!text) {
        http_server_error (req, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
        return;
    }
    http_counters_add (&req->server->counters, req->service, (int)code);
    http_server_respond (req, code, "application/json", text, strlen (text));
    free (text);
}

//  One SSE event: "event: NAME\ndata: TEXT\n\n".
static void s_push_event (req_t *req, const char *name, const char *text)
{
    char *event = NULL;
    int size = asprintf (&event, "event: %s\ndata: %s\n\n", name, text);
    if (size > 0)
        http_server_push (req, event, (size_t)size);
    free (event);
}

static void s_stream_reply (req_t *req, mdp_msg_t *reply, bool final, int status)
{
    unsigned int code = MHD_HTTP_OK;
    char *text = NULL;
    if (!reply) {
        char reason[512];
        s_failure (req, status, &code, reason, sizeof reason);
        cJSON *root = cJSON_CreateObject ();
        cJSON_AddNumberToObject (root, "code", code);
        cJSON_AddStringToObject (root, "reason", reason);
        text = mdp_json_print (root);
        cJSON_Delete (root);
    } else
        text = mdp_msg_is_error (reply) ? s_error_text (reply, &code) : s_reply_text (reply);
    if (text)
        s_push_event (req, !final ? "partial" : code == MHD_HTTP_OK ? "final" : "error", text);
    free (text);
    if (final) {
        http_counters_add (&req->server->counters, req->service, (int)code);
        http_server_end_stream (req);
    }
}

//  ---------------------------------------------------------------------------
//  The broker's MMI: /v1/services, /v1/stats, /metrics

static void s_ask (req_t *req, int slot, const char *service)
{
    mdp_msg_t *request = mdp_msg_new ("get", NULL);
    mdp_async_set_timeout (req->server->async, req->server->config->timeout);
    uint64_t id = request ? mdp_async_send (req->server->async, service, &request) : 0;
    mdp_msg_destroy (&request);
    if (id)
        http_server_track (req, slot, id);
}

static void s_mmi (req_t *req)
{
    s_ask (req, 0, req->kind == REQ_STATS ? "mmi.stats" : "mmi.workers");
    if (req->kind == REQ_METRICS)
        s_ask (req, 1, "mmi.stats");
    if (req->waiting < (req->kind == REQ_METRICS ? 2 : 1)) {
        http_server_error (req, MHD_HTTP_SERVICE_UNAVAILABLE, "cannot ask the broker");
        return;
    }
    http_server_suspend (req);
}

//  An MMI answer is one frame of JSON text, which arrives as the action.
static void s_mmi_reply (req_t *req, int slot, mdp_msg_t *reply)
{
    if (reply && !mdp_msg_is_error (reply))
        req->answers[slot] = strdup (mdp_msg_action (reply));
    if (req->waiting > 0)
        return;
    cJSON *first =
        req->answers[0] ? mdp_json_parse (req->answers[0], strlen (req->answers[0])) : NULL;
    if (req->kind == REQ_METRICS) {
        cJSON *stats =
            req->answers[1] ? mdp_json_parse (req->answers[1], strlen (req->answers[1])) : NULL;
        char *text = http_metrics_render (first, stats, req->server->counters);
        if (text)
            http_server_respond (req, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text,
                                 strlen (text));
        else
            http_server_error (req, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
        free (text);
        cJSON_Delete (stats);
    } else if (first)
        http_server_respond (req, MHD_HTTP_OK, "application/json", req->answers[0],
                             strlen (req->answers[0]));
    else
        http_server_error (req, MHD_HTTP_GATEWAY_TIMEOUT, "the broker did not answer");
    cJSON_Delete (first);
}

//  ---------------------------------------------------------------------------
//  Events

static enum MHD_Result s_collect_prefix (void *cls, enum MHD_ValueKind kind, const char *key,
                                         const char *value)
{
    req_t *req = cls;
    if (strcmp (key, "prefix") != 0)
        return MHD_YES;
    char **prefixes = realloc (req->prefixes, (req->nprefixes + 1) * sizeof (char *));
    if (!prefixes)
        return MHD_NO;
    req->prefixes = prefixes;
    if ((prefixes[req->nprefixes] = strdup (value ? value : "")))
        req->nprefixes++;
    return MHD_YES;
}

static void s_events (req_t *req)
{
    if (!req->server->subscriber) {
        http_server_error (req, MHD_HTTP_SERVICE_UNAVAILABLE,
                           "no event forwarder configured (--events)");
        return;
    }
    MHD_get_connection_values (req->conn, MHD_GET_ARGUMENT_KIND, s_collect_prefix, req);
    if (http_server_start_sse (req) != 0) {
        http_server_error (req, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
        return;
    }
    http_server_push (req, ": subscribed\n\n", 14);
}

void http_handlers_on_event (mdp_subscriber_t *subscriber, const char *category, cJSON *data,
                             void *arg)
{
    http_server_t *server = arg;
    char *text = NULL;
    for (req_t *req = server->reqs; req; req = req->next) {
        if (req->kind != REQ_EVENTS || !req->out)
            continue;
        bool match = req->nprefixes == 0;
        for (size_t i = 0; !match && i < req->nprefixes; i++)
            match = strncmp (category, req->prefixes[i], strlen (req->prefixes[i])) == 0;
        if (match && (text || (text = mdp_json_print (data))))
            s_push_event (req, category, text);
    }
    free (text);
}

//  ---------------------------------------------------------------------------

void http_handlers_dispatch (req_t *req)
{
    switch (req->kind) {
    case REQ_CALL:
        s_call (req);
        break;
    case REQ_EVENTS:
        s_events (req);
        break;
    case REQ_SERVICES:
    case REQ_STATS:
    case REQ_METRICS:
        s_mmi (req);
        break;
    default:
        break;
    }
}

void http_handlers_on_reply (mdp_async_t *async, uint64_t id, mdp_msg_t *reply, bool final,
                             int status, void *arg)
{
    http_server_t *server = arg;
    char key[32];
    snprintf (key, sizeof key, "%016llx", (unsigned long long)id);
    req_t *req = zhashx_lookup (server->pending, key);
    if (!req)
        return; //  its client is gone
    int slot = req->ids[1] == id ? 1 : 0;
    if (final) {
        zhashx_delete (server->pending, key);
        req->ids[slot] = 0;
        req->waiting--;
    }
    if (req->kind == REQ_CALL && final)
        s_call_final (req, reply, status);
    else if (req->kind == REQ_STREAM)
        s_stream_reply (req, reply, final, status);
    else if (final &&
             (req->kind == REQ_SERVICES || req->kind == REQ_STATS || req->kind == REQ_METRICS))
        s_mmi_reply (req, slot, reply);
}
