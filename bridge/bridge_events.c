/*  bridge_events.c - the bridge's "events" list: Domogik-style MDP events
    (the broker's forwarder) to and from a topic exchange in nuropb's event
    format. Each entry has its own AMQP connection and MDP socket, both in the
    bridge's poll loop. Events are fire-and-forget: what cannot go is counted
    as dropped. spec/amqp-bridge.md ("Events") has the mapping.
*/
#include "bridge.h"
#include <amqp_tcp_socket.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EV_CHANNEL 1        //  the one channel of an event connection
#define EV_FRAME_MAX 131072 //  bytes
#define EV_PER_TURN 256     //  messages read per loop turn, then others go
#define EV_GUARD 64         //  events from AMQP remembered against echoes
#define EV_GUARD_MSECS 5000 //  for this long

struct _event_route_t {
    const bridge_config_t *cfg;   //  server, port, timeouts, instance
    size_t index;                 //  position in "events"
    bool to_amqp;                 //  MDP -> AMQP, else AMQP -> MDP
    char *endpoint;               //  forwarder side: sub (to_amqp) or pub (from_amqp)
    char *prefix;                 //  to_amqp: MDP category prefix
    char *binding;                //  from_amqp: AMQP binding key
    char *vhost;                  //  AMQP vhost
    char *user;                   //  key into "users"
    char *username;               //  resolved credentials
    char *password;               //  resolved credentials
    char *exchange;               //  the topic exchange
    bridge_t *bridge;             //  set by bridge_events_start
    mdp_subscriber_t *sub;        //  to_amqp
    mdp_publisher_t *pub;         //  from_amqp
    amqp_connection_state_t conn; //  NULL while down
    int backoff;                  //  next reconnect wait, msecs
    int64_t reconnect_at;         //  when to try, while down
    uint64_t forwarded;           //  events passed on
    uint64_t dropped;             //  events not passed on
};

//  Categories published from AMQP recently: the to_amqp side must not send
//  them back (they carry no origin on the MDP side).
typedef struct bridge_events_guard_t {
    char *key[EV_GUARD];  //  "category\n{json}", owned
    int64_t at[EV_GUARD]; //  when remembered
    size_t next;          //  ring position
} ev_guard_t;

//  ---------------------------------------------------------------------------
//  Config

static int s_fail (size_t index, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    fprintf (stderr, "mdp-amqp-bridge: config: events[%zu]: ", index);
    vfprintf (stderr, fmt, args);
    fputc ('\n', stderr);
    va_end (args);
    return -1;
}

//  A string member; required unless fallback is given. 0 or -1.
static int s_str (const cJSON *obj, const char *key, const char *fallback, char **out, size_t index)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive (obj, key);
    if (item && !cJSON_IsString (item))
        return s_fail (index, "\"%s\" must be a string", key);
    const char *value = item ? item->valuestring : fallback;
    if (!value)
        return s_fail (index, "\"%s\" is required", key);
    *out = strdup (value);
    return *out ? 0 : s_fail (index, "out of memory");
}

static int s_entry_keys (const cJSON *obj, bool to_amqp, size_t index)
{
    static const char *const keys[] = {"direction", "sub_endpoint", "pub_endpoint", "prefix",
                                       "binding",   "vhost",        "user",         "exchange"};
    for (const cJSON *item = obj->child; item; item = item->next) {
        size_t k = 0;
        while (k < sizeof keys / sizeof keys[0] && strcmp (keys[k], item->string) != 0)
            k++;
        if (k == sizeof keys / sizeof keys[0])
            return s_fail (index, "unknown key \"%s\"", item->string);
        if (streq (item->string, to_amqp ? "pub_endpoint" : "sub_endpoint") ||
            streq (item->string, to_amqp ? "binding" : "prefix"))
            return s_fail (index, "\"%s\" is not for direction \"%s\"", item->string,
                           to_amqp ? "to_amqp" : "from_amqp");
    }
    return 0;
}

static int s_entry (event_route_t *self, const cJSON *obj, const cJSON *users)
{
    size_t index = self->index;
    if (!cJSON_IsObject (obj))
        return s_fail (index, "must be an object");
    const char *dir = cJSON_GetStringValue (cJSON_GetObjectItemCaseSensitive (obj, "direction"));
    if (!dir || (!streq (dir, "to_amqp") && !streq (dir, "from_amqp")))
        return s_fail (index, "\"direction\" must be \"to_amqp\" or \"from_amqp\"");
    self->to_amqp = streq (dir, "to_amqp");
    if (s_entry_keys (obj, self->to_amqp, index) ||
        s_str (obj, self->to_amqp ? "sub_endpoint" : "pub_endpoint", NULL, &self->endpoint,
               index) ||
        (self->to_amqp ? s_str (obj, "prefix", NULL, &self->prefix, index)
                       : s_str (obj, "binding", NULL, &self->binding, index)) ||
        s_str (obj, "vhost", "/", &self->vhost, index) ||
        s_str (obj, "user", NULL, &self->user, index) ||
        s_str (obj, "exchange", "nuropb-events-exchange", &self->exchange, index))
        return -1;
    if (!*self->endpoint)
        return s_fail (index, "the endpoint must not be empty");
    if (self->binding && (!*self->binding || strlen (self->binding) > 255))
        return s_fail (index, "\"binding\" must be 1 to 255 bytes");
    if (!*self->exchange || strlen (self->exchange) > 255)
        return s_fail (index, "\"exchange\" must be 1 to 255 bytes");
    const cJSON *entry = cJSON_GetObjectItemCaseSensitive (users, self->user);
    const char *name = cJSON_GetStringValue (cJSON_GetObjectItemCaseSensitive (entry, "username"));
    const char *pass = cJSON_GetStringValue (cJSON_GetObjectItemCaseSensitive (entry, "password"));
    if (!name || !pass)
        return s_fail (index, "no \"users\" entry \"%s\" with a username and password", self->user);
    self->username = strdup (name);
    self->password = strdup (pass);
    return self->username && self->password ? 0 : s_fail (index, "out of memory");
}

int bridge_events_config_parse (bridge_config_t *cfg, const cJSON *root)
{
    const cJSON *events = cJSON_GetObjectItemCaseSensitive (root, "events");
    if (!events)
        return 0;
    if (!cJSON_IsArray (events)) {
        fprintf (stderr, "mdp-amqp-bridge: config: events: must be an array\n");
        return -1;
    }
    size_t count = (size_t)cJSON_GetArraySize (events);
    cfg->events = calloc (count + 1, sizeof (event_route_t *));
    if (!cfg->events)
        return -1;
    const cJSON *users = cJSON_GetObjectItemCaseSensitive (root, "users");
    for (const cJSON *item = events->child; item; item = item->next) {
        event_route_t *self = calloc (1, sizeof (event_route_t));
        if (!self)
            return -1;
        self->cfg = cfg;
        self->index = cfg->nevents;
        cfg->events[cfg->nevents++] = self;
        if (s_entry (self, item, users))
            return -1;
    }
    return 0;
}

void bridge_events_config_clear (bridge_config_t *cfg)
{
    for (size_t index = 0; cfg->events && index < cfg->nevents; index++) {
        event_route_t *self = cfg->events[index];
        free (self->endpoint);
        free (self->prefix);
        free (self->binding);
        free (self->vhost);
        free (self->user);
        free (self->username);
        free (self->password);
        free (self->exchange);
        free (self);
    }
    free (cfg->events);
    cfg->events = NULL;
    cfg->nevents = 0;
}

//  ---------------------------------------------------------------------------
//  The echo guard

static char *s_guard_key (const char *category, const cJSON *data)
{
    char *json = data ? mdp_json_print (data) : NULL;
    size_t size = strlen (category) + (json ? strlen (json) : 2) + 2;
    char *key = malloc (size);
    if (key)
        snprintf (key, size, "%s\n%s", category, json ? json : "{}");
    cJSON_free (json);
    return key;
}

static void s_guard_add (ev_guard_t *guard, const char *category, const cJSON *data)
{
    free (guard->key[guard->next]);
    guard->key[guard->next] = s_guard_key (category, data);
    guard->at[guard->next] = zclock_mono ();
    guard->next = (guard->next + 1) % EV_GUARD;
}

//  True (and forgotten) if the event came from AMQP lately.
static bool s_guard_take (ev_guard_t *guard, const char *category, const cJSON *data)
{
    char *key = s_guard_key (category, data);
    int64_t now = zclock_mono ();
    bool found = false;
    for (size_t index = 0; key && index < EV_GUARD && !found; index++)
        if (guard->key[index] && now - guard->at[index] < EV_GUARD_MSECS &&
            streq (guard->key[index], key)) {
            free (guard->key[index]);
            guard->key[index] = NULL;
            found = true;
        }
    free (key);
    return found;
}

//  ---------------------------------------------------------------------------
//  The AMQP connection

static void s_down (event_route_t *self, const char *reason)
{
    if (self->conn) {
        zsys_warning ("amqp-bridge: events[%zu] lost: %s", self->index, reason);
        amqp_destroy_connection (self->conn);
        self->conn = NULL;
    }
    self->reconnect_at = zclock_mono () + self->backoff;
    int max = self->cfg->amqp_reconnect_max;
    self->backoff = self->backoff > max / 2 ? max : self->backoff * 2;
}

static int s_rpc_ok (event_route_t *self, const char *what)
{
    amqp_rpc_reply_t reply = amqp_get_rpc_reply (self->conn);
    if (reply.reply_type == AMQP_RESPONSE_NORMAL)
        return 0;
    zsys_error ("amqp-bridge: events[%zu]: %s failed (%s)", self->index, what,
                reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION
                    ? amqp_error_string2 (reply.library_error)
                    : "refused by the server");
    return -1;
}

static int s_login (event_route_t *self)
{
    amqp_socket_t *socket = amqp_tcp_socket_new (self->conn);
    int msecs = self->cfg->amqp_connect_timeout;
    struct timeval tv = {msecs / 1000, (msecs % 1000) * 1000};
    if (!socket || amqp_socket_open_noblock (socket, self->cfg->server, self->cfg->port, &tv) !=
                       AMQP_STATUS_OK)
        return -1;
    amqp_set_handshake_timeout (self->conn, &tv);
    amqp_set_rpc_timeout (self->conn, &tv);
    amqp_rpc_reply_t reply =
        amqp_login (self->conn, self->vhost, 0, EV_FRAME_MAX, self->cfg->amqp_heartbeat,
                    AMQP_SASL_METHOD_PLAIN, self->username, self->password);
    if (reply.reply_type != AMQP_RESPONSE_NORMAL)
        return -1;
    amqp_channel_open (self->conn, EV_CHANNEL);
    return s_rpc_ok (self, "channel.open");
}

//  The exchange as nuropb declares it (durable topic); from_amqp also gets
//  an exclusive auto-delete queue bound with the binding key.
static int s_topology (event_route_t *self)
{
    amqp_bytes_t exchange = amqp_cstring_bytes (self->exchange);
    amqp_exchange_declare (self->conn, EV_CHANNEL, exchange, amqp_cstring_bytes ("topic"), 0, 1, 0,
                           0, amqp_empty_table);
    if (s_rpc_ok (self, "declare the events exchange"))
        return -1;
    if (self->to_amqp)
        return 0;
    amqp_queue_declare_ok_t *ok =
        amqp_queue_declare (self->conn, EV_CHANNEL, amqp_empty_bytes, 0, 0, 1, 1, amqp_empty_table);
    if (s_rpc_ok (self, "declare the events queue") || !ok)
        return -1;
    amqp_bytes_t queue = amqp_bytes_malloc_dup (ok->queue);
    amqp_queue_bind (self->conn, EV_CHANNEL, queue, exchange, amqp_cstring_bytes (self->binding),
                     amqp_empty_table);
    int rc = s_rpc_ok (self, "bind the events queue");
    if (rc == 0) {
        amqp_basic_consume (self->conn, EV_CHANNEL, queue, amqp_empty_bytes, 0, 1, 1,
                            amqp_empty_table);
        rc = s_rpc_ok (self, "consume the events queue");
    }
    amqp_bytes_free (queue);
    return rc;
}

static void s_connect (event_route_t *self)
{
    self->conn = amqp_new_connection ();
    if (!self->conn || s_login (self) || s_topology (self)) {
        if (self->conn)
            amqp_destroy_connection (self->conn);
        self->conn = NULL;
        s_down (self, "cannot connect");
        zsys_warning ("amqp-bridge: events[%zu]: cannot connect to %s:%d, next try in %d ms",
                      self->index, self->cfg->server, self->cfg->port,
                      (int)(self->reconnect_at - zclock_mono ()));
        return;
    }
    self->backoff = self->cfg->amqp_reconnect_initial;
    zsys_info ("amqp-bridge: events[%zu] up (%s %s on %s)", self->index,
               self->to_amqp ? "to" : "from", self->exchange, self->vhost);
}

//  ---------------------------------------------------------------------------
//  MDP -> AMQP

static void s_on_event (mdp_subscriber_t *sub, const char *category, cJSON *data, void *arg)
{
    (void)sub;
    event_route_t *self = arg;
    if (s_guard_take (self->bridge->guard, category, data))
        return; //  it came from AMQP through us
    char trace[BRIDGE_ID_SIZE], correlation[BRIDGE_ID_SIZE];
    bridge_new_id (self->bridge, trace);
    bridge_new_id (self->bridge, correlation);
    cJSON *body = cJSON_CreateObject ();
    cJSON *context = cJSON_AddObjectToObject (body, "context");
    cJSON_AddStringToObject (body, "tag", "event");
    cJSON_AddStringToObject (body, "topic", category);
    cJSON_AddItemToObject (body, "event", data ? cJSON_Duplicate (data, 1) : cJSON_CreateObject ());
    cJSON_AddStringToObject (context, "source", "mdp");
    cJSON_AddStringToObject (body, "trace_id", trace);
    cJSON_AddStringToObject (body, "correlation_id", correlation);
    cJSON_AddNullToObject (body, "target");
    char *text = mdp_json_print (body);
    cJSON_Delete (body);
    amqp_table_entry_t entries[6];
    bridge_forward_nuropb_headers (entries, "event", trace);
    entries[5].key = amqp_cstring_bytes ("mdp_origin");
    entries[5].value.kind = AMQP_FIELD_KIND_UTF8;
    entries[5].value.value.bytes = amqp_cstring_bytes (self->cfg->instance);
    amqp_basic_properties_t props = {0};
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_HEADERS_FLAG |
                   AMQP_BASIC_CORRELATION_ID_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
    props.content_type = amqp_cstring_bytes ("application/json");
    props.correlation_id = amqp_cstring_bytes (correlation);
    props.delivery_mode = AMQP_DELIVERY_NONPERSISTENT;
    props.headers = (amqp_table_t){6, entries};
    if (!text || !self->conn ||
        amqp_basic_publish (self->conn, EV_CHANNEL, amqp_cstring_bytes (self->exchange),
                            amqp_cstring_bytes (category), 0, 0, &props,
                            amqp_cstring_bytes (text)) != AMQP_STATUS_OK) {
        self->dropped++;
        if (self->conn)
            s_down (self, "cannot publish");
    } else
        self->forwarded++;
    cJSON_free (text);
}

//  ---------------------------------------------------------------------------
//  AMQP -> MDP

//  Whether a header is present with exactly this value.
static bool s_header_is (const amqp_basic_properties_t *props, const char *key, const char *value)
{
    char *text = bridge_link_props_header (props, key);
    bool same = text && streq (text, value);
    free (text);
    return same;
}

static void s_on_delivery (event_route_t *self, amqp_envelope_t *envelope)
{
    amqp_basic_properties_t *props = &envelope->message.properties;
    if (s_header_is (props, "mdp_origin", self->cfg->instance))
        return; //  ours, back from the exchange
    cJSON *body = NULL;
    bool ok =
        s_header_is (props, "nuropb_type", "event") && !s_header_is (props, "encrypted", "yes");
    if (ok)
        body = mdp_json_parse (envelope->message.body.bytes, envelope->message.body.len);
    const char *topic = cJSON_GetStringValue (cJSON_GetObjectItemCaseSensitive (body, "topic"));
    char *key = topic ? NULL : bridge_link_bytes_dup (envelope->routing_key);
    cJSON *event = cJSON_GetObjectItemCaseSensitive (body, "event");
    ok = ok && cJSON_IsObject (body) && (topic || key) && (!event || !cJSON_IsNull (event));
    if (ok) {
        s_guard_add (self->bridge->guard, topic ? topic : key, event);
        ok = mdp_publisher_send (self->pub, topic ? topic : key, event) == 0;
    }
    if (ok)
        self->forwarded++;
    else
        self->dropped++;
    free (key);
    cJSON_Delete (body);
}

//  Read what waits, without blocking; deliveries for from_amqp, and the
//  heartbeats rabbitmq-c handles inside.
static void s_read (event_route_t *self)
{
    for (int turn = 0; self->conn && turn < EV_PER_TURN; turn++) {
        amqp_maybe_release_buffers (self->conn);
        struct timeval zero = {0, 0};
        amqp_envelope_t envelope;
        amqp_rpc_reply_t reply = amqp_consume_message (self->conn, &envelope, &zero, 0);
        if (reply.reply_type == AMQP_RESPONSE_NORMAL) {
            if (!self->to_amqp)
                s_on_delivery (self, &envelope);
            amqp_destroy_envelope (&envelope);
            continue;
        }
        if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            reply.library_error == AMQP_STATUS_TIMEOUT)
            return;
        amqp_frame_t frame;
        if (reply.reply_type != AMQP_RESPONSE_LIBRARY_EXCEPTION ||
            reply.library_error != AMQP_STATUS_UNEXPECTED_STATE ||
            amqp_simple_wait_frame_noblock (self->conn, &frame, &zero) != AMQP_STATUS_OK) {
            s_down (self, "cannot read");
            return;
        }
        if (frame.frame_type == AMQP_FRAME_METHOD &&
            (frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
             frame.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD ||
             frame.payload.method.id == AMQP_BASIC_CANCEL_METHOD)) {
            s_down (self, "closed by the server");
            return;
        }
    }
}

//  ---------------------------------------------------------------------------
//  The bridge's side

int bridge_events_start (bridge_t *bridge)
{
    if (bridge->cfg->nevents && !bridge->guard &&
        !(bridge->guard = calloc (1, sizeof (ev_guard_t))))
        return -1;
    for (size_t index = 0; index < bridge->cfg->nevents; index++) {
        event_route_t *self = bridge->cfg->events[index];
        self->bridge = bridge;
        self->backoff = self->cfg->amqp_reconnect_initial;
        self->reconnect_at = zclock_mono ();
        if (self->to_amqp) {
            self->sub = mdp_subscriber_new (self->endpoint);
            if (!self->sub)
                return -1;
            mdp_subscriber_set_handler (self->sub, s_on_event, self);
            mdp_subscriber_set_sync_timeout (self->sub, 200);
            mdp_subscriber_subscribe (self->sub, self->prefix); //  EAGAIN: flows later
        } else {
            self->pub = mdp_publisher_new (self->endpoint);
            if (!self->pub)
                return -1;
            mdp_publisher_set_sync_timeout (self->pub, 1000);
        }
    }
    return 0;
}

void bridge_events_stop (bridge_t *bridge)
{
    for (size_t index = 0; bridge->cfg && index < bridge->cfg->nevents; index++) {
        event_route_t *self = bridge->cfg->events[index];
        if (self->conn) {
            amqp_connection_close (self->conn, AMQP_REPLY_SUCCESS);
            amqp_destroy_connection (self->conn);
            self->conn = NULL;
        }
        if (self->sub || self->pub)
            zsys_info ("amqp-bridge: events[%zu]: %llu forwarded, %llu dropped", index,
                       (unsigned long long)self->forwarded, (unsigned long long)self->dropped);
        mdp_subscriber_destroy (&self->sub);
        mdp_publisher_destroy (&self->pub);
    }
    ev_guard_t *guard = bridge->guard;
    for (size_t index = 0; guard && index < EV_GUARD; index++)
        free (guard->key[index]);
    free (guard);
    bridge->guard = NULL;
}

size_t bridge_events_poll_size (bridge_t *bridge)
{
    return 2 * bridge->cfg->nevents;
}

int bridge_events_prepare (bridge_t *bridge, zmq_pollitem_t *items, size_t *count, int64_t now)
{
    int64_t wait = INT_MAX;
    for (size_t index = 0; index < bridge->cfg->nevents; index++) {
        event_route_t *self = bridge->cfg->events[index];
        if (self->sub)
            items[(*count)++] = (zmq_pollitem_t){zsock_resolve (mdp_subscriber_socket (self->sub)),
                                                 0, ZMQ_POLLIN, 0};
        if (self->conn) {
            items[(*count)++] = (zmq_pollitem_t){NULL, amqp_get_sockfd (self->conn), ZMQ_POLLIN, 0};
            if (amqp_frames_enqueued (self->conn) || amqp_data_in_buffer (self->conn))
                wait = 0;
        } else if (self->reconnect_at - now < wait)
            wait = self->reconnect_at - now < 0 ? 0 : self->reconnect_at - now;
    }
    return (int)wait;
}

void bridge_events_process (bridge_t *bridge, int64_t now)
{
    for (size_t index = 0; index < bridge->cfg->nevents; index++) {
        event_route_t *self = bridge->cfg->events[index];
        if (!self->conn && !bridge->stopping && now >= self->reconnect_at)
            s_connect (self);
        if (self->conn)
            s_read (self);
        if (self->sub)
            mdp_subscriber_process (self->sub);
    }
}
