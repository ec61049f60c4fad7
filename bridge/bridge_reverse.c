/*  bridge_reverse.c - the AMQP -> MDP direction. For each amqp-to-mdp
    route the bridge consumes a queue (manual ack, prefetch = concurrency),
    turns each message into an MDP request sent with libmdp's async client,
    and answers the way the profile's clients expect (Neon: to the body's
    routing_key by message_id; nuropb: a response to reply_to; raw: reply_to
    and correlation_id). A message is acknowledged only once answered.
*/
#include "bridge.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

//  One AMQP request waiting for its MDP reply.
typedef struct {
    uint64_t request_id;   //  the async client's id; the hash key points here
    route_t *route;        //  the route it came on
    link_t *link;          //  the link it came on
    uint64_t link_gen;     //  link generation: acks are void after a reconnect
    uint64_t channel_gen;  //  route's channel generation, likewise
    uint64_t delivery_tag; //  to ack it
    char *reply_to;        //  neon: the body's routing_key; nuropb/raw: reply_to
    char *correlation;     //  neon: message_id; nuropb/raw: correlation_id
    char *trace_id;        //  nuropb
    cJSON *context;        //  nuropb: echoed in the response
    char *action;          //  the MDP request's action
    int parts;             //  partials published
    bool answered;         //  nuropb command: acked at once, no response
} inbound_t;

static void s_inbound_destroy (void **item)
{
    inbound_t *self = *item;
    if (self) {
        free (self->reply_to);
        free (self->correlation);
        free (self->trace_id);
        cJSON_Delete (self->context);
        free (self->action);
        free (self);
    }
    *item = NULL;
}

static size_t s_id_hash (const void *key)
{
    uint64_t id = *(const uint64_t *)key;
    return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 17);
}

static int s_id_compare (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

//  ---------------------------------------------------------------------------
//  Answering

static uint16_t s_channel (const route_t *route)
{
    return (uint16_t)(BRIDGE_CH_REVERSE + route->index);
}

//  Still deliverable: same connection, same channel as the request came on.
static bool s_live (inbound_t *self)
{
    return bridge_link_up (self->link) && bridge_link_generation (self->link) == self->link_gen &&
           self->route->channel_gen == self->channel_gen;
}

static void s_publish (inbound_t *self, amqp_basic_properties_t *props, const char *body,
                       size_t size)
{
    if (self->reply_to && *self->reply_to)
        bridge_link_publish (self->link, s_channel (self->route), "", self->reply_to, true, props,
                             body, size);
}

//  Neon: the reply data (an object, else {"data": D}) with message_id, and
//  _part/_is_final when the route streams; errors as {"error": reason, "code": N}.
static void s_answer_neon (inbound_t *self, mdp_msg_t *reply, bool final)
{
    cJSON *dict;
    if (mdp_msg_is_error (reply)) {
        dict = cJSON_CreateObject ();
        const char *reason = cJSON_GetStringValue (
            cJSON_GetObjectItemCaseSensitive (mdp_msg_data (reply), "reason"));
        cJSON_AddStringToObject (dict, "error", reason ? reason : "error");
        cJSON_AddNumberToObject (dict, "code", mdp_msg_error_code (reply));
    } else {
        dict = cJSON_Duplicate (mdp_msg_data (reply), 1);
        if (!cJSON_IsObject (dict)) {
            cJSON *wrapper = cJSON_CreateObject ();
            cJSON_AddItemToObject (wrapper, "data", dict);
            dict = wrapper;
        }
    }
    if (self->route->action_key) {
        cJSON_DeleteItemFromObjectCaseSensitive (dict, self->route->action_key);
        cJSON_AddStringToObject (dict, self->route->action_key, mdp_msg_action (reply));
    }
    cJSON_DeleteItemFromObjectCaseSensitive (dict, "message_id");
    cJSON_AddStringToObject (dict, "message_id", self->correlation ? self->correlation : "");
    cJSON *mq =
        cJSON_GetObjectItemCaseSensitive (cJSON_GetObjectItemCaseSensitive (dict, "context"), "mq");
    if (cJSON_IsObject (mq)) { //  Neon clients look here first
        cJSON_DeleteItemFromObjectCaseSensitive (mq, "message_id");
        cJSON_AddStringToObject (mq, "message_id", self->correlation ? self->correlation : "");
    }
    if (self->route->stream) {
        cJSON_DeleteItemFromObjectCaseSensitive (dict, "_part");
        cJSON_DeleteItemFromObjectCaseSensitive (dict, "_is_final");
        cJSON_AddNumberToObject (dict, "_part", self->parts);
        cJSON_AddBoolToObject (dict, "_is_final", final);
    }
    size_t size = 0;
    char *body = bridge_neon_encode (dict, &size);
    cJSON_Delete (dict);
    amqp_basic_properties_t props = {0};
    char expiration[16];
    snprintf (expiration, sizeof expiration, "%d", self->route->ttl);
    props._flags = AMQP_BASIC_EXPIRATION_FLAG;
    props.expiration = amqp_cstring_bytes (expiration);
    if (body)
        s_publish (self, &props, body, size);
    free (body);
}

static const char *s_nuropb_error_type (int code)
{
    return code == 504   ? "NuropbTimeoutError"
           : code == 404 ? "NuropbNotDeliveredError"
                         : "NuropbHandlingError";
}

//  nuropb: a response payload to reply_to, correlation_id and headers kept.
static void s_answer_nuropb (inbound_t *self, mdp_msg_t *reply)
{
    cJSON *body = cJSON_CreateObject ();
    cJSON_AddStringToObject (body, "tag", "response");
    cJSON_AddStringToObject (body, "correlation_id", self->correlation ? self->correlation : "");
    cJSON_AddItemToObject (body, "context",
                           self->context ? cJSON_Duplicate (self->context, 1)
                                         : cJSON_CreateObject ());
    if (self->trace_id)
        cJSON_AddStringToObject (body, "trace_id", self->trace_id);
    else
        cJSON_AddNullToObject (body, "trace_id");
    if (mdp_msg_is_error (reply)) {
        char description[1024];
        const char *reason = cJSON_GetStringValue (
            cJSON_GetObjectItemCaseSensitive (mdp_msg_data (reply), "reason"));
        snprintf (description, sizeof description, "%s (mdp.error %d)", reason ? reason : "error",
                  mdp_msg_error_code (reply));
        cJSON *error = cJSON_CreateObject ();
        cJSON_AddStringToObject (error, "error", s_nuropb_error_type (mdp_msg_error_code (reply)));
        cJSON_AddStringToObject (error, "description", description);
        cJSON_AddNullToObject (body, "result");
        cJSON_AddItemToObject (body, "error", error);
    } else {
        cJSON_AddItemToObject (body, "result", cJSON_Duplicate (mdp_msg_data (reply), 1));
        cJSON_AddNullToObject (body, "error");
    }
    cJSON_AddNullToObject (body, "warning");
    cJSON_AddStringToObject (body, "reply_to", "");
    char *text = mdp_json_print (body);
    cJSON_Delete (body);
    amqp_table_entry_t headers[5];
    bridge_forward_nuropb_headers (headers, "response", self->trace_id);
    amqp_basic_properties_t props = {0};
    props._flags =
        AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_CORRELATION_ID_FLAG;
    props.content_type = amqp_cstring_bytes ("application/json");
    props.headers = (amqp_table_t){5, headers};
    props.correlation_id = amqp_cstring_bytes (self->correlation ? self->correlation : "");
    if (text)
        s_publish (self, &props, text, strlen (text));
    free (text);
}

//  raw: {"action": A, "data": D} with header status partial/final, or
//  {"code": N, "reason": R} with status error.
static void s_answer_raw (inbound_t *self, mdp_msg_t *reply, bool final)
{
    bool error = mdp_msg_is_error (reply);
    cJSON *body = error ? cJSON_Duplicate (mdp_msg_data (reply), 1) : cJSON_CreateObject ();
    if (!error) {
        cJSON_AddStringToObject (body, "action", mdp_msg_action (reply));
        cJSON_AddItemToObject (body, "data", cJSON_Duplicate (mdp_msg_data (reply), 1));
    }
    char *text = mdp_json_print (body);
    cJSON_Delete (body);
    amqp_table_entry_t status = {amqp_cstring_bytes ("status"),
                                 {AMQP_FIELD_KIND_UTF8,
                                  {.bytes = amqp_cstring_bytes (error   ? "error"
                                                                : final ? "final"
                                                                        : "partial")}}};
    amqp_basic_properties_t props = {0};
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_HEADERS_FLAG;
    props.content_type = amqp_cstring_bytes ("application/json");
    props.headers = (amqp_table_t){1, &status};
    if (self->correlation) {
        props._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
        props.correlation_id = amqp_cstring_bytes (self->correlation);
    }
    if (text)
        s_publish (self, &props, text, strlen (text));
    free (text);
}

//  Publish one reply (partial or final) in the route's profile.
static void s_answer (inbound_t *self, mdp_msg_t *reply, bool final)
{
    if (!s_live (self) || self->answered)
        return;
    route_t *route = self->route;
    if (route->profile == PROFILE_NEON)
        s_answer_neon (self, reply, final);
    else if (route->profile == PROFILE_NUROPB && final)
        s_answer_nuropb (self, reply);
    else if (route->profile == PROFILE_RAW)
        s_answer_raw (self, reply, final);
    self->parts++;
    if (final && s_live (self))
        bridge_link_ack (self->link, s_channel (route), self->delivery_tag);
}

static void s_on_reply (mdp_async_t *async, uint64_t request_id, mdp_msg_t *reply, bool final,
                        int status, void *arg)
{
    bridge_t *bridge = arg;
    inbound_t *self = zhashx_lookup (bridge->reverse, &request_id);
    if (!self)
        return;
    if (!final) {
        if (self->route->stream && reply && self->route->profile != PROFILE_NUROPB)
            s_answer (self, reply, false);
        return;
    }
    mdp_msg_t *made = NULL;
    if (!reply)
        made = mdp_msg_new_error (status == ETIMEDOUT ? 504 : 502,
                                  status == ETIMEDOUT ? "MDP service did not answer in time"
                                                      : "MDP reply was malformed");
    if (bridge->verbose)
        zsys_info ("amqp-bridge: %s: %s -> %s", self->route->service, self->action,
                   mdp_msg_action (reply ? reply : made));
    if (reply || made)
        s_answer (self, reply ? reply : made, true);
    mdp_msg_destroy (&made);
    zhashx_delete (bridge->reverse, &request_id);
}

//  ---------------------------------------------------------------------------
//  Taking requests

//  A JSON value as a string: strings as they are, others printed.
static char *s_text (const cJSON *item)
{
    if (!item || cJSON_IsNull (item))
        return NULL;
    return cJSON_IsString (item) ? strdup (item->valuestring) : mdp_json_print (item);
}

//  Neon: base64(repr(dict)) with message_id and routing_key (the reply queue).
static mdp_msg_t *s_take_neon (inbound_t *self, delivery_t *delivery)
{
    cJSON *dict = bridge_neon_decode (delivery->message.body.bytes, delivery->message.body.len);
    if (!cJSON_IsObject (dict)) {
        cJSON_Delete (dict);
        return NULL;
    }
    const cJSON *mq =
        cJSON_GetObjectItemCaseSensitive (cJSON_GetObjectItemCaseSensitive (dict, "context"), "mq");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive (dict, "message_id");
    self->correlation = s_text (id ? id : cJSON_GetObjectItemCaseSensitive (mq, "message_id"));
    self->reply_to = s_text (cJSON_GetObjectItemCaseSensitive (dict, "routing_key"));
    const char *action = self->route->action;
    cJSON *named = self->route->action_key
                       ? cJSON_DetachItemFromObjectCaseSensitive (dict, self->route->action_key)
                       : NULL;
    if (cJSON_IsString (named))
        action = named->valuestring;
    cJSON_DeleteItemFromObjectCaseSensitive (dict, "message_id");
    cJSON_DeleteItemFromObjectCaseSensitive (dict, "routing_key");
    //  No routing_key: Neon's send_mq_request (expect_response=False). The
    //  request is served all the same; only its reply goes nowhere.
    mdp_msg_t *msg = mdp_msg_new (action, dict); //  takes dict, even when it fails
    cJSON_Delete (named);
    return msg;
}

//  nuropb: headers say request (or command); body {tag, service, method,
//  params, correlation_id, context, trace_id}. Encrypted bodies get an error.
static mdp_msg_t *s_take_nuropb (inbound_t *self, delivery_t *delivery)
{
    amqp_basic_properties_t *props = &delivery->message.properties;
    char *type = bridge_link_props_header (props, "nuropb_type");
    char *encrypted = bridge_link_props_header (props, "encrypted");
    bool command = type && streq (type, "command");
    bool valid = type && (command || streq (type, "request"));
    bool secret = encrypted && streq (encrypted, "yes");
    free (type);
    free (encrypted);
    cJSON *body =
        valid ? mdp_json_parse (delivery->message.body.bytes, delivery->message.body.len) : NULL;
    if (props->_flags & AMQP_BASIC_REPLY_TO_FLAG)
        self->reply_to = bridge_link_bytes_dup (props->reply_to);
    if (props->_flags & AMQP_BASIC_CORRELATION_ID_FLAG)
        self->correlation = bridge_link_bytes_dup (props->correlation_id);
    else
        self->correlation = s_text (cJSON_GetObjectItemCaseSensitive (body, "correlation_id"));
    self->trace_id = s_text (cJSON_GetObjectItemCaseSensitive (body, "trace_id"));
    self->context = cJSON_DetachItemFromObjectCaseSensitive (body, "context");
    const char *method = cJSON_GetStringValue (cJSON_GetObjectItemCaseSensitive (body, "method"));
    cJSON *params = cJSON_DetachItemFromObjectCaseSensitive (body, "params");
    mdp_msg_t *msg = NULL;
    if (secret)
        msg = mdp_msg_new_error (501, "encrypted nuropb messages are not supported by the bridge");
    else if (method && *method)
        msg = mdp_msg_new (method, params ? params : cJSON_CreateObject ());
    else
        cJSON_Delete (params);
    cJSON_Delete (body);
    self->answered = command && msg && !secret;
    return msg;
}

//  raw: {"action": A, "data": D}, or any JSON as the data of the route's action.
static mdp_msg_t *s_take_raw (inbound_t *self, delivery_t *delivery)
{
    amqp_basic_properties_t *props = &delivery->message.properties;
    cJSON *body = mdp_json_parse (delivery->message.body.bytes, delivery->message.body.len);
    if (!body)
        return NULL;
    if (props->_flags & AMQP_BASIC_REPLY_TO_FLAG)
        self->reply_to = bridge_link_bytes_dup (props->reply_to);
    if (props->_flags & AMQP_BASIC_CORRELATION_ID_FLAG)
        self->correlation = bridge_link_bytes_dup (props->correlation_id);
    const char *action = cJSON_GetStringValue (cJSON_GetObjectItemCaseSensitive (body, "action"));
    if (action && *action) {
        cJSON *data = cJSON_DetachItemFromObjectCaseSensitive (body, "data");
        mdp_msg_t *msg = mdp_msg_new (action, data ? data : cJSON_CreateObject ());
        cJSON_Delete (body);
        return msg;
    }
    return mdp_msg_new (self->route->action, body);
}

void bridge_reverse_on_delivery (bridge_t *bridge, link_t *link, route_t *route,
                                 delivery_t *delivery)
{
    if (delivery->returned) {
        zsys_warning ("amqp-bridge: %s: a reply was unroutable (%d %s): the client has gone",
                      route->service, delivery->reply_code, delivery->reply_text);
        return;
    }
    inbound_t *self = calloc (1, sizeof (inbound_t));
    if (!self) {
        bridge_link_reject (link, delivery->channel, delivery->delivery_tag, true);
        return;
    }
    *self = (inbound_t){.route = route,
                        .link = link,
                        .link_gen = bridge_link_generation (link),
                        .channel_gen = route->channel_gen,
                        .delivery_tag = delivery->delivery_tag};
    mdp_msg_t *msg = route->profile == PROFILE_NEON     ? s_take_neon (self, delivery)
                     : route->profile == PROFILE_NUROPB ? s_take_nuropb (self, delivery)
                                                        : s_take_raw (self, delivery);
    if (!msg) { //  nothing we could answer: dead-letter it (or drop)
        amqp_bytes_t body = delivery->message.body;
        zsys_warning ("amqp-bridge: %s: rejected a message we cannot read: %.*s%s", route->service,
                      (int)(body.len > 120 ? 120 : body.len), (char *)body.bytes,
                      body.len > 120 ? "..." : "");
        bridge_link_reject (link, delivery->channel, delivery->delivery_tag, false);
        void *item = self;
        s_inbound_destroy (&item);
        return;
    }
    if (self->answered) //  a nuropb command: no response expected
        bridge_link_ack (link, delivery->channel, delivery->delivery_tag);
    self->action = strdup (mdp_msg_action (msg));
    if (mdp_msg_is_error (msg)) { //  refused here: answer at once
        s_answer (self, msg, true);
        mdp_msg_destroy (&msg);
        void *item = self;
        s_inbound_destroy (&item);
        return;
    }
    mdp_async_set_timeout (bridge->async, route->timeout);
    self->request_id = mdp_async_send (bridge->async, route->service, &msg);
    if (self->request_id == 0 || zhashx_insert (bridge->reverse, &self->request_id, self) != 0) {
        mdp_msg_t *error = mdp_msg_new_error (500, "cannot send the MDP request");
        s_answer (self, error, true);
        mdp_msg_destroy (&error);
        mdp_msg_destroy (&msg);
        void *item = self;
        s_inbound_destroy (&item);
    }
}

//  ---------------------------------------------------------------------------
//  Declaring and consuming

static int s_check (link_t *link, uint16_t channel, const char *what)
{
    int code = 0;
    if (bridge_link_rpc_check (link, channel, what, &code) == 0)
        return 0;
    if (code <= 0) //  the connection itself is broken
        bridge_link_fail (link, what);
    return -1;
}

//  nuropb's topology as its leader declares it (configure_nuropb_rmq and
//  RMQTransport, spec/amqp-bridge.md 4.2): the rpc exchange (direct,
//  durable), the dead-letter exchange (fanout, durable), the service queue
//  nuropb-<S>-service (durable, x-dead-letter-exchange) bound by service
//  name, and the dead-letter queue nuropb-<S>-dl (pika's defaults: not durable).
static int s_nuropb_topology (link_t *link, route_t *route, uint16_t channel, char *queue,
                              size_t size)
{
    amqp_connection_state_t conn = bridge_link_conn (link);
    const char *dlx = "nuropb-dl-exchange";
    char dlq[300];
    snprintf (queue, size, "nuropb-%s-service", route->routing_key);
    snprintf (dlq, sizeof dlq, "nuropb-%s-dl", route->routing_key);
    amqp_exchange_declare (conn, channel, amqp_cstring_bytes (route->exchange),
                           amqp_cstring_bytes ("direct"), 0, 1, 0, 0, amqp_empty_table);
    if (s_check (link, channel, "declare the nuropb rpc exchange"))
        return -1;
    amqp_exchange_declare (conn, channel, amqp_cstring_bytes (dlx), amqp_cstring_bytes ("fanout"),
                           0, 1, 0, 0, amqp_empty_table);
    if (s_check (link, channel, "declare the nuropb dead-letter exchange"))
        return -1;
    amqp_table_entry_t arg = {amqp_cstring_bytes ("x-dead-letter-exchange"),
                              {AMQP_FIELD_KIND_UTF8, {.bytes = amqp_cstring_bytes (dlx)}}};
    amqp_queue_declare (conn, channel, amqp_cstring_bytes (queue), 0, 1, 0, 0,
                        (amqp_table_t){1, &arg});
    if (s_check (link, channel, "declare the nuropb service queue"))
        return -1;
    amqp_queue_bind (conn, channel, amqp_cstring_bytes (queue),
                     amqp_cstring_bytes (route->exchange), amqp_cstring_bytes (route->routing_key),
                     amqp_empty_table);
    if (s_check (link, channel, "bind the nuropb service queue"))
        return -1;
    //  pika's defaults, as nuropb declares it: not durable, no arguments
    amqp_queue_declare (conn, channel, amqp_cstring_bytes (dlq), 0, 0, 0, 0, amqp_empty_table);
    if (s_check (link, channel, "declare the nuropb dead-letter queue"))
        return -1;
    amqp_queue_bind (conn, channel, amqp_cstring_bytes (dlq), amqp_cstring_bytes (dlx),
                     amqp_cstring_bytes (""), amqp_empty_table);
    return s_check (link, channel, "bind the nuropb dead-letter queue");
}

int bridge_reverse_subscribe (link_t *link, route_t *route)
{
    amqp_connection_state_t conn = bridge_link_conn (link);
    uint16_t channel = s_channel (route);
    char queue[300];
    if (route->profile == PROFILE_NUROPB) {
        if (s_nuropb_topology (link, route, channel, queue, sizeof queue))
            return -1;
    } else { //  plain, as Neon consumers declare theirs
        snprintf (queue, sizeof queue, "%s", route->queue);
        amqp_queue_declare (conn, channel, amqp_cstring_bytes (queue), 0, 0, 0, 0,
                            amqp_empty_table);
        if (s_check (link, channel, "declare a queue to consume"))
            return -1;
    }
    amqp_basic_qos (conn, channel, 0, (uint16_t)route->concurrency, 0);
    if (s_check (link, channel, "set the prefetch"))
        return -1;
    char tag[300];
    snprintf (tag, sizeof tag, "mdp-bridge-%s", route->service);
    amqp_basic_consume (conn, channel, amqp_cstring_bytes (queue), amqp_cstring_bytes (tag), 0, 0,
                        0, amqp_empty_table);
    if (s_check (link, channel, "consume"))
        return -1;
    zsys_info ("amqp-bridge: %s: consuming %s on %s", route->service, queue,
               bridge_link_name (link));
    return 0;
}

void bridge_reverse_channel_closed (bridge_t *bridge, link_t *link, route_t *route)
{
    if (route)
        route->channel_gen++; //  what came on the old channel can no longer be acked
}

void bridge_reverse_link_down (bridge_t *bridge, link_t *link)
{
    //  Nothing to do now: requests in flight see the new link generation when
    //  their MDP reply comes, and are then dropped unanswered; RabbitMQ has
    //  put their messages back in the queue for the next delivery.
}

//  ---------------------------------------------------------------------------
//  The async client

int bridge_reverse_start (bridge_t *bridge, const char *endpoint)
{
    bridge->async = mdp_async_new (endpoint);
    bridge->reverse = zhashx_new ();
    if (!bridge->async || !bridge->reverse)
        return -1;
    zhashx_set_key_hasher (bridge->reverse, s_id_hash);
    zhashx_set_key_comparator (bridge->reverse, s_id_compare);
    zhashx_set_key_duplicator (bridge->reverse, NULL);
    zhashx_set_key_destructor (bridge->reverse, NULL);
    zhashx_set_destructor (bridge->reverse, s_inbound_destroy);
    mdp_async_set_handler (bridge->async, s_on_reply, bridge);
    return 0;
}

void bridge_reverse_stop (bridge_t *bridge)
{
    zhashx_destroy (&bridge->reverse);
    mdp_async_destroy (&bridge->async);
}

zsock_t *bridge_reverse_socket (bridge_t *bridge)
{
    return bridge->async ? mdp_async_socket (bridge->async) : NULL;
}

int bridge_reverse_timeout (bridge_t *bridge)
{
    return bridge->async ? mdp_async_next_timeout (bridge->async) : -1;
}

void bridge_reverse_process (bridge_t *bridge)
{
    if (bridge->async)
        mdp_async_process (bridge->async);
}
