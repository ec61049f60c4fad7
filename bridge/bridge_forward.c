/*  bridge_forward.c - the MDP -> AMQP direction. A request a slot got
    from the broker becomes one AMQP message in the route's profile (neon,
    nuropb or raw), published mandatory with an expiration and a fresh id;
    replies on the link's reply queue are matched back by that id and go out
    on the slot as MDP partials or the final reply. Unroutable -> 404, no
    reply in time -> 504, link lost -> 502, a service's error payload -> 500.
*/
#include "bridge.h"
#include <stdlib.h>
#include <string.h>

#define EXCHANGE_RECHECK 1000 //  msecs between looks for a missing nuropb exchange
#define PROBE_CACHE 1000      //  msecs a queue's consumer count is trusted
#define RETRY_FIRST 100       //  msecs: first wait for a missing queue, doubling
#define RETRY_MAX 2000        //  msecs: at most this between publishes

//  ---------------------------------------------------------------------------
//  Ending a request

//  Forget the slot's request: out of the id table, state cleared.
static void s_clear (bridge_t *bridge, slot_t *slot)
{
    slot_request_t *request = bridge_slot_request (slot);
    if (request->id[0])
        zhashx_delete (bridge->forward, request->id);
    request->id[0] = 0;
    free (request->action);
    request->action = NULL;
    mdp_msg_destroy (&request->msg);
    request->retry_at = 0;
    request->retry_delay = 0;
    request->confirm_tag = 0;
}

void bridge_forward_abandon (slot_t *slot)
{
    s_clear (bridge_slot_bridge (slot), slot);
}

//  Send the final reply (taking *reply_p) and clear the request.
static void s_finish (slot_t *slot, mdp_msg_t **reply_p)
{
    slot_request_t *request = bridge_slot_request (slot);
    uint64_t gen = request->gen;
    bridge_t *bridge = bridge_slot_bridge (slot);
    if (bridge->verbose)
        zsys_info ("amqp-bridge: %s: %s -> %s", bridge_slot_route (slot)->service,
                   request->action ? request->action : "?", mdp_msg_action (*reply_p));
    s_clear (bridge, slot);
    bridge_slot_reply (slot, gen, reply_p, true);
}

//  An error reply: {"code": code, "reason": reason} plus "source" when given.
static void s_fail (slot_t *slot, int code, const char *reason, const char *source)
{
    mdp_msg_t *reply = mdp_msg_new_error (code, reason);
    if (reply && source)
        cJSON_AddStringToObject (mdp_msg_data (reply), "source", source);
    if (reply)
        s_finish (slot, &reply);
}

//  A success reply under Domogik's result action (x.get -> x.result), or a
//  partial under x.partial. Takes data.
static void s_answer (slot_t *slot, cJSON *data, bool final)
{
    slot_request_t *request = bridge_slot_request (slot);
    char *action = bridge_result_action (request->action, final ? ".result" : ".partial");
    mdp_msg_t *reply = NULL;
    if (action)
        reply = mdp_msg_new (action, data); //  takes data, even when it fails
    else
        cJSON_Delete (data);
    free (action);
    if (!reply) {
        s_fail (slot, 500, "out of memory", NULL);
    } else if (final)
        s_finish (slot, &reply);
    else {
        request->parts++;
        bridge_slot_reply (slot, request->gen, &reply, false);
    }
}

//  ---------------------------------------------------------------------------
//  Publishing a request, per profile

//  Properties shared by every profile: our id, expiry, where replies go.
static void s_props (amqp_basic_properties_t *props, const route_t *route, const char *id,
                     char *expiration, size_t size, bool reply_to)
{
    memset (props, 0, sizeof *props);
    snprintf (expiration, size, "%d", route->ttl);
    props->_flags = AMQP_BASIC_EXPIRATION_FLAG | AMQP_BASIC_CORRELATION_ID_FLAG;
    props->expiration = amqp_cstring_bytes (expiration);
    props->correlation_id = amqp_cstring_bytes (id);
    if (reply_to) {
        props->_flags |= AMQP_BASIC_REPLY_TO_FLAG;
        props->reply_to = amqp_cstring_bytes (bridge_link_reply_queue (route->link));
    }
}

//  The request data as an object: objects as they are, anything else as {"data": D}.
static cJSON *s_data_object (mdp_msg_t *msg)
{
    cJSON *data = cJSON_Duplicate (mdp_msg_data (msg), 1);
    if (!data || cJSON_IsObject (data))
        return data;
    cJSON *wrapper = cJSON_CreateObject ();
    if (wrapper)
        cJSON_AddItemToObject (wrapper, "data", data);
    else
        cJSON_Delete (data);
    return wrapper;
}

//  Neon: "" / queue, body = Neon codec of data + message_id + routing_key.
//  Returns 0, -1 (link lost), or an MDP error code.
static int s_publish_neon (route_t *route, const char *id, mdp_msg_t *msg)
{
    const char *action = mdp_msg_action (msg);
    const char *queue = route->queue;
    if (route->action_queues) {
        const char *named =
            cJSON_GetStringValue (cJSON_GetObjectItemCaseSensitive (route->action_queues, action));
        queue = named ? named : queue;
    }
    if (!queue)
        return 404;
    cJSON *data = s_data_object (msg);
    if (!data)
        return 500;
    if (route->action_key) {
        cJSON_DeleteItemFromObjectCaseSensitive (data, route->action_key);
        cJSON_AddStringToObject (data, route->action_key, action);
    }
    cJSON_DeleteItemFromObjectCaseSensitive (data, "message_id");
    cJSON_DeleteItemFromObjectCaseSensitive (data, "routing_key");
    cJSON_AddStringToObject (data, "message_id", id);
    cJSON_AddStringToObject (data, "routing_key", bridge_link_reply_queue (route->link));
    size_t size = 0;
    char *body = bridge_neon_encode (data, &size);
    cJSON_Delete (data);
    if (!body)
        return 400;
    amqp_basic_properties_t props;
    char expiration[16];
    s_props (&props, route, id, expiration, sizeof expiration, false);
    props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
    props.message_id = amqp_cstring_bytes (id);
    int rc =
        bridge_link_publish (route->link, BRIDGE_CH_FORWARD, "", queue, true, &props, body, size);
    free (body);
    return rc;
}

//  The nuropb headers every message carries; type is request or response.
void bridge_forward_nuropb_headers (amqp_table_entry_t entries[5], const char *type,
                                    const char *trace_id)
{
    static const char *const keys[5] = {"nuropb_protocol", "nuropb_version", "nuropb_type",
                                        "trace_id", "encrypted"};
    const char *values[5] = {"0.1.1", "0.1.8", type, trace_id ? trace_id : "", ""};
    for (int index = 0; index < 5; index++) {
        entries[index].key = amqp_cstring_bytes (keys[index]);
        entries[index].value.kind = AMQP_FIELD_KIND_UTF8;
        entries[index].value.value.bytes = amqp_cstring_bytes (values[index]);
    }
    if (!trace_id)
        entries[3].value.kind = AMQP_FIELD_KIND_VOID;
}

//  Is the rpc exchange there? A missing exchange would close the channel, so
//  we look (passively) first, and again at most once a second while missing.
static int s_nuropb_exchange (route_t *route)
{
    if (route->exchange_known)
        return 0;
    int64_t now = zclock_mono ();
    if (route->exchange_checked && now - route->exchange_checked < EXCHANGE_RECHECK)
        return 404;
    route->exchange_checked = now;
    int found = bridge_link_exchange_exists (route->link, route->exchange);
    route->exchange_known = found == 1;
    return found == 1 ? 0 : found == 0 ? 404 : -1;
}

static int s_publish_nuropb (route_t *route, const char *id, mdp_msg_t *msg)
{
    int rc = s_nuropb_exchange (route);
    if (rc != 0)
        return rc;
    cJSON *body = cJSON_CreateObject ();
    cJSON *params = s_data_object (msg);
    cJSON *context = route->context ? cJSON_Duplicate (route->context, 1) : cJSON_CreateObject ();
    cJSON_AddStringToObject (body, "tag", "request");
    cJSON_AddStringToObject (body, "service", route->routing_key);
    cJSON_AddStringToObject (body, "method", mdp_msg_action (msg));
    cJSON_AddItemToObject (body, "params", params ? params : cJSON_CreateObject ());
    cJSON_AddStringToObject (body, "correlation_id", id);
    cJSON_AddItemToObject (body, "context", context ? context : cJSON_CreateObject ());
    cJSON_AddStringToObject (body, "trace_id", id);
    char *text = mdp_json_print (body);
    cJSON_Delete (body);
    if (!text)
        return 500;
    amqp_basic_properties_t props;
    char expiration[16];
    s_props (&props, route, id, expiration, sizeof expiration, true);
    amqp_table_entry_t headers[5];
    bridge_forward_nuropb_headers (headers, "request", id);
    props._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_HEADERS_FLAG;
    props.content_type = amqp_cstring_bytes ("application/json");
    props.headers = (amqp_table_t){5, headers};
    rc = bridge_link_publish (route->link, BRIDGE_CH_FORWARD, route->exchange, route->routing_key,
                              true, &props, text, strlen (text));
    free (text);
    return rc;
}

//  Raw: "" / queue, body {"action": A, "data": D}, reply_to + correlation_id.
static int s_publish_raw (route_t *route, const char *id, mdp_msg_t *msg)
{
    cJSON *body = cJSON_CreateObject ();
    cJSON_AddStringToObject (body, "action", mdp_msg_action (msg));
    cJSON_AddItemToObject (body, "data", cJSON_Duplicate (mdp_msg_data (msg), 1));
    char *text = mdp_json_print (body);
    cJSON_Delete (body);
    if (!text)
        return 500;
    amqp_basic_properties_t props;
    char expiration[16];
    s_props (&props, route, id, expiration, sizeof expiration, true);
    props._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
    props.content_type = amqp_cstring_bytes ("application/json");
    int rc = bridge_link_publish (route->link, BRIDGE_CH_FORWARD, "", route->queue, true, &props,
                                  text, strlen (text));
    free (text);
    return rc;
}

//  The queue a request for this action goes to (nuropb: the service queue).
static void s_target_queue (route_t *route, const char *action, char *queue, size_t size)
{
    const char *named = NULL;
    if (route->profile == PROFILE_NUROPB) {
        snprintf (queue, size, "nuropb-%s-service", route->routing_key);
        return;
    }
    if (route->action_queues)
        named =
            cJSON_GetStringValue (cJSON_GetObjectItemCaseSensitive (route->action_queues, action));
    snprintf (queue, size, "%s", named ? named : route->queue ? route->queue : "");
}

//  fail_fast_no_consumer: the target queue's consumer count (passive
//  declare on the probe channel, trusted for PROBE_CACHE). 0 when the
//  request may go, 503 when the queue has no consumer, 404 when there is no
//  queue and the route does not wait for it, -1 when the link was lost.
static int s_probe (route_t *route, const char *action)
{
    char queue[300];
    s_target_queue (route, action, queue, sizeof queue);
    int64_t now = zclock_mono ();
    if (!route->probe_queue || !streq (route->probe_queue, queue) ||
        now - route->probe_at >= PROBE_CACHE) {
        int count = bridge_link_queue_consumers (route->link, queue);
        if (count == -1)
            return bridge_link_up (route->link) ? 0 : -1; //  cannot tell: let it go
        free (route->probe_queue);
        route->probe_queue = strdup (queue);
        route->probe_consumers = count;
        route->probe_at = now;
    }
    if (route->probe_consumers == 0)
        return 503;
    if (route->probe_consumers == -2 && !route->missing_wait)
        return 404;
    return 0;
}

//  Publish in the route's profile; with publisher confirms, remember the
//  tag RabbitMQ will confirm.
static int s_publish (route_t *route, slot_request_t *request, mdp_msg_t *msg)
{
    const char *id = request->id;
    int rc = route->profile == PROFILE_NEON     ? s_publish_neon (route, id, msg)
             : route->profile == PROFILE_NUROPB ? s_publish_nuropb (route, id, msg)
                                                : s_publish_raw (route, id, msg);
    if (rc == 0)
        request->confirm_tag = bridge_link_publish_tag (route->link);
    return rc;
}

void bridge_forward_request (slot_t *slot, uint64_t gen, zmsg_t **body_p)
{
    bridge_t *bridge = bridge_slot_bridge (slot);
    route_t *route = bridge_slot_route (slot);
    slot_request_t *request = bridge_slot_request (slot);
    mdp_msg_t *msg = mdp_msg_decode (*body_p);
    zmsg_destroy (body_p);
    request->gen = gen;
    request->parts = 0;
    request->action = strdup (msg ? mdp_msg_action (msg) : "?");
    if (!msg || !request->action) {
        mdp_msg_destroy (&msg);
        s_fail (slot, 400, "invalid request body: expected [action][json]", "amqp-bridge");
        return;
    }
    if (!bridge_link_up (route->link)) {
        mdp_msg_destroy (&msg);
        s_fail (slot, 503, "AMQP connection down", "amqp-bridge");
        return;
    }
    bridge_new_id (bridge, request->id);
    request->deadline = zclock_mono () + route->timeout;
    request->link_gen = bridge_link_generation (route->link);
    zhashx_insert (bridge->forward, request->id, slot);
    int rc = route->fail_fast ? s_probe (route, request->action) : 0;
    if (rc == 0)
        rc = s_publish (route, request, msg);
    if (rc == 0 && route->missing_wait)
        request->msg = msg; //  kept to publish again if RabbitMQ returns it
    else
        mdp_msg_destroy (&msg);
    if (rc == 0 && bridge->verbose)
        zsys_info ("amqp-bridge: %s: %s sent as %s", route->service, request->action, request->id);
    if (rc == 503)
        s_fail (slot, 503, "the AMQP service's queue has no consumer", "amqp-bridge");
    else if (rc == 404 && route->fail_fast && route->probe_consumers == -2)
        s_fail (slot, 404, "no such queue", "amqp-bridge");
    else if (rc == 404)
        s_fail (slot, 404,
                route->profile == PROFILE_NUROPB ? "no such nuropb exchange"
                                                 : "no queue for this action",
                "amqp-bridge");
    else if (rc > 0)
        s_fail (slot, rc, "cannot encode the request for AMQP", "amqp-bridge");
    //  rc -1: the link was lost while publishing, and the request got its 502
}

//  ---------------------------------------------------------------------------
//  Replies

//  A JSON value as a reason text: strings as they are, objects by their
//  message/description/reason, anything else printed.
static char *s_reason (const cJSON *error)
{
    if (cJSON_IsString (error))
        return strdup (error->valuestring);
    const char *keys[] = {"description", "message", "reason"};
    for (size_t index = 0; index < 3; index++) {
        const char *text =
            cJSON_GetStringValue (cJSON_GetObjectItemCaseSensitive (error, keys[index]));
        if (text)
            return strdup (text);
    }
    return mdp_json_print (error);
}

//  A service's error payload: mdp.error 500 with its reason, "source" and
//  the service's own error value under "error".
static void s_service_error (slot_t *slot, const cJSON *error, const char *reason,
                             const char *source)
{
    char *text = reason ? NULL : s_reason (error);
    mdp_msg_t *reply = mdp_msg_new_error (500, reason ? reason : text ? text : "service error");
    free (text);
    if (reply) {
        cJSON_AddStringToObject (mdp_msg_data (reply), "source", source);
        if (error)
            cJSON_AddItemToObject (mdp_msg_data (reply), "error", cJSON_Duplicate (error, 1));
        s_finish (slot, &reply);
    }
}

static bool s_truthy (const cJSON *item)
{
    return item && !cJSON_IsNull (item) && !cJSON_IsFalse (item) &&
           !(cJSON_IsString (item) && !*item->valuestring);
}

//  Neon: {_part: int, _is_final: false} is a partial, anything else final.
static void s_reply_neon (slot_t *slot, route_t *route, cJSON *dict)
{
    cJSON_DeleteItemFromObjectCaseSensitive (dict, "routing_key");
    const cJSON *part = cJSON_GetObjectItemCaseSensitive (dict, "_part");
    const cJSON *is_final = cJSON_GetObjectItemCaseSensitive (dict, "_is_final");
    if (cJSON_IsNumber (part) && cJSON_IsFalse (is_final)) {
        if (route->stream)
            s_answer (slot, cJSON_Duplicate (dict, 1), false);
        return;
    }
    const cJSON *error =
        route->error_key ? cJSON_GetObjectItemCaseSensitive (dict, route->error_key) : NULL;
    if (s_truthy (error))
        s_service_error (slot, error, NULL, "neon");
    else
        s_answer (slot, cJSON_Duplicate (dict, 1), true);
}

static void s_reply_nuropb (slot_t *slot, cJSON *body)
{
    const cJSON *error = cJSON_GetObjectItemCaseSensitive (body, "error");
    if (!cJSON_IsObject (body))
        s_fail (slot, 502, "nuropb reply is not a JSON object", "amqp-bridge");
    else if (s_truthy (error)) {
        const char *type = cJSON_GetStringValue (cJSON_GetObjectItemCaseSensitive (error, "error"));
        const char *description =
            cJSON_GetStringValue (cJSON_GetObjectItemCaseSensitive (error, "description"));
        char reason[1024];
        snprintf (reason, sizeof reason, "%s%s%s", type ? type : "",
                  type && description ? ": " : "", description ? description : "");
        s_service_error (slot, error, *reason ? reason : NULL, "nuropb");
    } else {
        cJSON *result = cJSON_DetachItemFromObjectCaseSensitive (body, "result");
        s_answer (slot, result ? result : cJSON_CreateNull (), true);
    }
}

//  Raw: header status "partial" / "error" / anything else (final).
static void s_reply_raw (slot_t *slot, route_t *route, cJSON *body, const char *status)
{
    if (!body) {
        s_fail (slot, 502, "reply is not JSON", "amqp-bridge");
        return;
    }
    if (status && streq (status, "error")) {
        const cJSON *code = cJSON_GetObjectItemCaseSensitive (body, "code");
        int value = cJSON_IsNumber (code) && code->valueint >= 400 && code->valueint <= 599
                        ? code->valueint
                        : 500;
        char *reason = s_reason (body);
        mdp_msg_t *reply = mdp_msg_new_error (value, reason ? reason : "service error");
        free (reason);
        if (reply) {
            cJSON_AddStringToObject (mdp_msg_data (reply), "source", "raw");
            s_finish (slot, &reply);
        }
        return;
    }
    bool partial = status && streq (status, "partial");
    if (partial && !route->stream)
        return;
    const cJSON *action = cJSON_GetObjectItemCaseSensitive (body, "action");
    if (cJSON_IsString (action) && cJSON_HasObjectItem (body, "data")) {
        mdp_msg_t *reply = mdp_msg_new (action->valuestring,
                                        cJSON_DetachItemFromObjectCaseSensitive (body, "data"));
        slot_request_t *request = bridge_slot_request (slot);
        if (reply && !partial)
            s_finish (slot, &reply);
        else if (reply) {
            request->parts++;
            bridge_slot_reply (slot, request->gen, &reply, false);
        }
    } else
        s_answer (slot, cJSON_Duplicate (body, 1), !partial);
}

//  Find the request a reply belongs to: by correlation_id, else (neon) by
//  the body's context.mq.message_id or message_id. *dict gets the decoded
//  Neon body when that is how it was found.
static slot_t *s_lookup (bridge_t *bridge, delivery_t *delivery, cJSON **dict)
{
    amqp_basic_properties_t *props = &delivery->message.properties;
    if (props->_flags & AMQP_BASIC_CORRELATION_ID_FLAG) {
        char *id = bridge_link_bytes_dup (props->correlation_id);
        slot_t *slot = id ? zhashx_lookup (bridge->forward, id) : NULL;
        free (id);
        if (slot)
            return slot;
    }
    if (delivery->returned)
        return NULL;
    *dict = bridge_neon_decode (delivery->message.body.bytes, delivery->message.body.len);
    const cJSON *mq = cJSON_GetObjectItemCaseSensitive (
        cJSON_GetObjectItemCaseSensitive (*dict, "context"), "mq");
    const char *id = cJSON_GetStringValue (cJSON_GetObjectItemCaseSensitive (mq, "message_id"));
    if (!id)
        id = cJSON_GetStringValue (cJSON_GetObjectItemCaseSensitive (*dict, "message_id"));
    return id ? zhashx_lookup (bridge->forward, id) : NULL;
}

static void s_dispatch (slot_t *slot, delivery_t *delivery, cJSON *dict)
{
    route_t *route = bridge_slot_route (slot);
    amqp_bytes_t body = delivery->message.body;
    slot_request_t *request = bridge_slot_request (slot);
    if (delivery->returned && delivery->reply_code == AMQP_NO_ROUTE && request->msg) {
        //  on_missing_queue "wait": the service has not declared its queue
        //  (yet, or again after a RabbitMQ restart); publish again later
        request->retry_delay = request->retry_delay ? request->retry_delay * 2 : RETRY_FIRST;
        if (request->retry_delay > RETRY_MAX)
            request->retry_delay = RETRY_MAX;
        request->retry_at = zclock_mono () + request->retry_delay;
        if (bridge_slot_bridge (slot)->verbose)
            zsys_info ("amqp-bridge: %s: %s unroutable, again in %d ms", route->service,
                       request->id, request->retry_delay);
    } else if (delivery->returned) {
        char reason[300];
        snprintf (reason, sizeof reason, "unroutable: %d %s", delivery->reply_code,
                  delivery->reply_text);
        s_fail (slot, 404, reason, "amqp");
    } else if (route->profile == PROFILE_NEON) {
        if (cJSON_IsObject (dict))
            s_reply_neon (slot, route, dict);
    } else {
        cJSON *json = mdp_json_parse (body.bytes, body.len);
        if (route->profile == PROFILE_NUROPB)
            s_reply_nuropb (slot, json);
        else {
            char *status = bridge_link_props_header (&delivery->message.properties, "status");
            s_reply_raw (slot, route, json, status);
            free (status);
        }
        cJSON_Delete (json);
    }
}

void bridge_forward_on_delivery (bridge_t *bridge, link_t *link, delivery_t *delivery)
{
    cJSON *dict = NULL;
    slot_t *slot = s_lookup (bridge, delivery, &dict);
    if (slot && bridge_slot_route (slot)->link == link &&
        bridge_slot_request (slot)->link_gen == bridge_link_generation (link))
        s_dispatch (slot, delivery, dict);
    else if (bridge->verbose)
        zsys_debug ("amqp-bridge: link %s: dropped a %s for no request in flight",
                    bridge_link_name (link), delivery->returned ? "returned message" : "reply");
    cJSON_Delete (dict);
    if (!delivery->returned)
        bridge_link_ack_forward (link, delivery->delivery_tag);
}

//  ---------------------------------------------------------------------------
//  Time and failures

//  Publish a returned request again (on_missing_queue "wait").
static void s_retry (slot_t *slot)
{
    route_t *route = bridge_slot_route (slot);
    slot_request_t *request = bridge_slot_request (slot);
    request->retry_at = 0;
    if (request->link_gen != bridge_link_generation (route->link))
        return; //  the link went down meanwhile: the request has had its 502
    int rc = s_publish (route, request, request->msg);
    if (rc > 0)
        s_fail (slot, rc, "cannot publish the request again", "amqp-bridge");
}

void bridge_forward_tick (bridge_t *bridge, int64_t now)
{
    for (size_t r = 0; r < bridge->cfg->nroutes; r++) {
        route_t *route = &bridge->cfg->routes[r];
        for (int index = 0; route->slots && index < route->concurrency; index++) {
            slot_t *slot = bridge_slot_at (route, index);
            slot_request_t *request = bridge_slot_request (slot);
            if (request->id[0] && now >= request->deadline) {
                char reason[100];
                snprintf (reason, sizeof reason,
                          request->confirm_tag   ? "RabbitMQ did not confirm the request in %d ms"
                          : request->retry_delay ? "no queue for the AMQP service in %d ms"
                                                 : "no reply from the AMQP service in %d ms",
                          route->timeout);
                s_fail (slot, request->confirm_tag ? 502 : 504, reason, "amqp-bridge");
            } else if (request->id[0] && request->retry_at && now >= request->retry_at)
                s_retry (slot);
        }
    }
}

int bridge_forward_timeout (bridge_t *bridge, int64_t now)
{
    int64_t next = -1;
    for (size_t r = 0; r < bridge->cfg->nroutes; r++) {
        route_t *route = &bridge->cfg->routes[r];
        for (int index = 0; route->slots && index < route->concurrency; index++) {
            slot_request_t *request = bridge_slot_request (bridge_slot_at (route, index));
            if (request->id[0] && (next < 0 || request->deadline < next))
                next = request->deadline;
            if (request->id[0] && request->retry_at && request->retry_at < next)
                next = request->retry_at;
        }
    }
    return next < 0 ? -1 : next <= now ? 0 : next - now > 3600000 ? 3600000 : (int)(next - now);
}

//  Fail every request in flight that matches (route NULL: any route; link
//  NULL: any link).
static void s_fail_where (bridge_t *bridge, link_t *link, int code, const char *reason)
{
    for (size_t r = 0; r < bridge->cfg->nroutes; r++) {
        route_t *route = &bridge->cfg->routes[r];
        if (!route->slots || (link && route->link != link))
            continue;
        for (int index = 0; index < route->concurrency; index++) {
            slot_t *slot = bridge_slot_at (route, index);
            if (bridge_slot_request (slot)->id[0])
                s_fail (slot, code, reason, "amqp-bridge");
        }
    }
}

void bridge_forward_link_down (bridge_t *bridge, link_t *link)
{
    s_fail_where (bridge, link, 502, "AMQP connection lost");
}

void bridge_forward_fail_all (bridge_t *bridge, int code, const char *reason)
{
    s_fail_where (bridge, NULL, code, reason);
}

void bridge_forward_on_confirm (bridge_t *bridge, link_t *link, uint64_t tag, bool multiple,
                                bool ack)
{
    for (size_t r = 0; r < bridge->cfg->nroutes; r++) {
        route_t *route = &bridge->cfg->routes[r];
        if (!route->slots || route->link != link)
            continue;
        for (int index = 0; index < route->concurrency; index++) {
            slot_t *slot = bridge_slot_at (route, index);
            slot_request_t *request = bridge_slot_request (slot);
            if (!request->id[0] || !request->confirm_tag ||
                request->link_gen != bridge_link_generation (link) ||
                (multiple ? request->confirm_tag > tag : request->confirm_tag != tag))
                continue;
            request->confirm_tag = 0;
            if (!ack)
                s_fail (slot, 502, "RabbitMQ refused the request (basic.nack)", "amqp-bridge");
        }
    }
}

//  A 404 on the forward channel names a missing exchange: the nuropb routes
//  using it forget it and fail what they have in flight with 404.
void bridge_forward_channel_closed (bridge_t *bridge, link_t *link, int code, const char *text)
{
    //  The reopened channel numbers its confirms afresh: forget the old tags
    for (size_t r = 0; r < bridge->cfg->nroutes; r++) {
        route_t *route = &bridge->cfg->routes[r];
        for (int index = 0; route->slots && route->link == link && index < route->concurrency;
             index++)
            bridge_slot_request (bridge_slot_at (route, index))->confirm_tag = 0;
    }
    for (size_t r = 0; r < bridge->cfg->nroutes; r++) {
        route_t *route = &bridge->cfg->routes[r];
        char quoted[300];
        snprintf (quoted, sizeof quoted, "'%s'", route->exchange);
        if (!route->slots || route->link != link || route->profile != PROFILE_NUROPB ||
            code != AMQP_NOT_FOUND || !strstr (text, quoted))
            continue;
        route->exchange_known = false;
        route->exchange_checked = zclock_mono ();
        for (int index = 0; index < route->concurrency; index++) {
            slot_t *slot = bridge_slot_at (route, index);
            if (bridge_slot_request (slot)->id[0])
                s_fail (slot, 404, text, "amqp");
        }
    }
}
