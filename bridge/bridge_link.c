/*  bridge_link.c - one AMQP connection (a "link") per vhost and user, on
    rabbitmq-c, driven by the bridge's poll loop: connect and log in with
    heartbeats, declare the reply queue and the reverse routes' queues, read
    every waiting frame (also those rabbitmq-c already buffered, which never
    make the fd readable), and reconnect with back-off when the server goes.
*/
#include "bridge.h"
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FRAMES_PER_TURN 512 //  then the MDP side gets a turn
#define FRAME_MAX 131072        //  bytes, rabbitmq-c's usual
#define FORCED_BACKOFF 1000     //  msecs at least after a 320 CONNECTION_FORCED

struct _link_t {
    bridge_t *bridge;             //  our owner
    const bridge_config_t *cfg;   //  server, port, timeouts
    char *vhost;                  //  this link's vhost
    char *username;               //  and credentials
    char *password;               //  (the same)
    char name[300];               //  "user@vhost" for logs
    route_t **routes;             //  routes using this link (not owned)
    size_t nroutes;               //  how many
    bool has_forward;             //  some route is mdp-to-amqp: we need a reply queue
    amqp_connection_state_t conn; //  NULL while down
    uint64_t generation;          //  counts successful connects
    int backoff;                  //  next reconnect wait, msecs
    int64_t reconnect_at;         //  when to try, while down
    int64_t service_at;           //  when to let rabbitmq-c do heartbeats
    char reply_queue[300];        //  mdp.reply.<instance>.<n>
    bool stopping;                //  shut down: never reconnect
    unsigned int seed;            //  jitter
    char why[128];                //  why the last connect failed
    uint64_t forward_ack;         //  highest reply delivery tag not yet acknowledged
    uint64_t publish_tag;         //  confirms: messages published on the forward channel
    size_t server;                //  index into cfg->hosts: the node we use or try next
    int tls_status;               //  rabbitmq-c status of the last TLS failure, else 0
};

//  ---------------------------------------------------------------------------
//  Small helpers

char *bridge_link_bytes_dup (amqp_bytes_t bytes)
{
    char *text = malloc (bytes.len + 1);
    if (text) {
        if (bytes.len)
            memcpy (text, bytes.bytes, bytes.len);
        text[bytes.len] = 0;
    }
    return text;
}

bool bridge_link_bytes_eq (amqp_bytes_t bytes, const char *text)
{
    size_t size = strlen (text);
    return bytes.len == size && (size == 0 || memcmp (bytes.bytes, text, size) == 0);
}

char *bridge_link_props_header (const amqp_basic_properties_t *props, const char *key)
{
    if (!(props->_flags & AMQP_BASIC_HEADERS_FLAG))
        return NULL;
    for (int index = 0; index < props->headers.num_entries; index++) {
        const amqp_table_entry_t *entry = &props->headers.entries[index];
        if (bridge_link_bytes_eq (entry->key, key) && (entry->value.kind == AMQP_FIELD_KIND_UTF8 ||
                                                       entry->value.kind == AMQP_FIELD_KIND_BYTES))
            return bridge_link_bytes_dup (entry->value.value.bytes);
    }
    return NULL;
}

static int64_t s_clamp (int64_t msecs)
{
    return msecs < 0 ? 0 : msecs > INT_MAX ? INT_MAX : msecs;
}

static struct timeval s_tv (int msecs)
{
    struct timeval tv = {msecs / 1000, (msecs % 1000) * 1000};
    return tv;
}

//  ---------------------------------------------------------------------------
//  Life cycle

link_t *bridge_link_new (bridge_t *bridge, const bridge_config_t *cfg, const route_t *route)
{
    link_t *self = calloc (1, sizeof (link_t));
    if (!self)
        return NULL;
    self->bridge = bridge;
    self->cfg = cfg;
    self->vhost = strdup (route->vhost);
    self->username = strdup (route->username);
    self->password = strdup (route->password);
    snprintf (self->name, sizeof self->name, "%s@%s", route->username, route->vhost);
    static unsigned counter = 0;
    snprintf (self->reply_queue, sizeof self->reply_queue, "mdp.reply.%s.%u", cfg->instance,
              counter++);
    self->backoff = cfg->amqp_reconnect_initial;
    self->reconnect_at = zclock_mono ();
    self->seed = (unsigned)zclock_usecs () ^ (unsigned)(uintptr_t)self;
    if (!self->vhost || !self->username || !self->password)
        bridge_link_destroy (&self);
    return self;
}

void bridge_link_destroy (link_t **self_p)
{
    link_t *self = self_p ? *self_p : NULL;
    if (!self)
        return;
    if (self->conn)
        amqp_destroy_connection (self->conn);
    free (self->vhost);
    free (self->username);
    free (self->password);
    free (self->routes);
    free (self);
    *self_p = NULL;
}

bool bridge_link_matches (link_t *self, const route_t *route)
{
    return streq (self->vhost, route->vhost) && streq (self->username, route->username) &&
           streq (self->password, route->password);
}

void bridge_link_add_route (link_t *self, route_t *route)
{
    route_t **routes = realloc (self->routes, (self->nroutes + 1) * sizeof (route_t *));
    if (!routes)
        return; //  caught by bridge startup: the route's link stays NULL
    self->routes = routes;
    self->routes[self->nroutes++] = route;
    self->has_forward = self->has_forward || route->direction == DIR_MDP_TO_AMQP;
    route->link = self;
}

bool bridge_link_up (link_t *self)
{
    return self->conn != NULL;
}

uint64_t bridge_link_generation (link_t *self)
{
    return self->generation;
}

const char *bridge_link_reply_queue (link_t *self)
{
    return self->reply_queue;
}

const char *bridge_link_name (link_t *self)
{
    return self->name;
}

amqp_connection_state_t bridge_link_conn (link_t *self)
{
    return self->conn;
}

//  ---------------------------------------------------------------------------
//  Losing and finding the server

//  The connection is gone (or unusable): forget it, tell the bridge, and
//  schedule the next attempt after the back-off plus up to 25% jitter.
static void s_lost (link_t *self, const char *reason, int min_backoff)
{
    if (self->conn) {
        zsys_warning ("amqp-bridge: link %s lost: %s", self->name, reason);
        amqp_destroy_connection (self->conn);
        self->conn = NULL;
        bridge_on_link_down (self->bridge, self);
    }
    if (self->cfg->nservers > 1) { //  several nodes: the next one, in turn
        self->server = (self->server + 1) % self->cfg->nservers;
        zsys_info ("amqp-bridge: link %s: next node %s:%d", self->name,
                   self->cfg->hosts[self->server], self->cfg->ports[self->server]);
    }
    if (self->backoff < min_backoff)
        self->backoff = min_backoff;
    int jitter =
        self->backoff >= 4 ? (int)(rand_r (&self->seed) % (unsigned)(self->backoff / 4)) : 0;
    self->reconnect_at = zclock_mono () + self->backoff + jitter;
    self->backoff = self->backoff > self->cfg->amqp_reconnect_max / 2
                        ? self->cfg->amqp_reconnect_max
                        : self->backoff * 2;
}

void bridge_link_fail (link_t *self, const char *reason)
{
    s_lost (self, reason, 0);
}

//  Describe a failed RPC; answers a server's channel.close with close-ok so
//  the channel can be opened again. Returns 0 if the reply was normal.
static int s_check (link_t *self, uint16_t channel, amqp_rpc_reply_t reply, const char *what,
                    int *code)
{
    if (code)
        *code = 0;
    if (reply.reply_type == AMQP_RESPONSE_NORMAL)
        return 0;
    char text[300] = "";
    if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
        snprintf (text, sizeof text, "%s", amqp_error_string2 (reply.library_error));
    else if (reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        amqp_channel_close_t *close = reply.reply.decoded;
        snprintf (text, sizeof text, "%u %.*s", close->reply_code, (int)close->reply_text.len,
                  (char *)close->reply_text.bytes);
        if (code)
            *code = close->reply_code;
        amqp_channel_close_ok_t ok = {0};
        amqp_send_method (self->conn, channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
    } else if (reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        amqp_connection_close_t *close = reply.reply.decoded;
        snprintf (text, sizeof text, "connection closed: %u %.*s", close->reply_code,
                  (int)close->reply_text.len, (char *)close->reply_text.bytes);
        if (code)
            *code = -1;
    } else
        snprintf (text, sizeof text, "unexpected server reply 0x%08x", reply.reply.id);
    zsys_error ("amqp-bridge: link %s: %s: %s", self->name, what, text);
    return -1;
}

int bridge_link_rpc_check (link_t *self, uint16_t channel, const char *what, int *code)
{
    return s_check (self, channel, amqp_get_rpc_reply (self->conn), what, code);
}

static int s_open_channel (link_t *self, uint16_t channel)
{
    amqp_channel_open (self->conn, channel);
    if (bridge_link_rpc_check (self, channel, "channel.open", NULL))
        return -1;
    if (channel != BRIDGE_CH_FORWARD || !self->cfg->confirms || !self->has_forward)
        return 0;
    //  Publisher confirms: RabbitMQ numbers our publishes from 1 on this channel
    self->publish_tag = 0;
    amqp_confirm_select (self->conn, channel);
    return bridge_link_rpc_check (self, channel, "confirm.select", NULL);
}

//  Declare our reply queue plain (no x-args, not exclusive, not auto-delete)
//  so that Neon services may declare it again with their defaults.
static int s_reply_consume (link_t *self)
{
    amqp_bytes_t queue = amqp_cstring_bytes (self->reply_queue);
    amqp_queue_declare (self->conn, BRIDGE_CH_FORWARD, queue, 0, 0, 0, 0, amqp_empty_table);
    if (bridge_link_rpc_check (self, BRIDGE_CH_FORWARD, "declare the reply queue", NULL))
        return -1;
    amqp_basic_consume (self->conn, BRIDGE_CH_FORWARD, queue,
                        amqp_cstring_bytes ("mdp-bridge-replies"), 0, 0, 0, amqp_empty_table);
    return bridge_link_rpc_check (self, BRIDGE_CH_FORWARD, "consume the reply queue", NULL);
}

//  amqps: rabbitmq-c's SSL socket with the configured CA, client
//  certificate and checks. NULL (and why) if the files do not load.
static amqp_socket_t *s_tls_socket (link_t *self)
{
    const bridge_config_t *cfg = self->cfg;
    amqp_socket_t *socket = amqp_ssl_socket_new (self->conn);
    if (!socket)
        return NULL;
    int rc = cfg->tls_ca ? amqp_ssl_socket_set_cacert (socket, cfg->tls_ca) : AMQP_STATUS_OK;
    if (rc == AMQP_STATUS_OK && cfg->tls_cert)
        rc = amqp_ssl_socket_set_key (socket, cfg->tls_cert, cfg->tls_key);
    if (rc != AMQP_STATUS_OK) {
        snprintf (self->why, sizeof self->why, "TLS files: %s", amqp_error_string2 (rc));
        return NULL;
    }
    amqp_ssl_socket_set_verify_peer (socket, cfg->tls_verify_peer);
    amqp_ssl_socket_set_verify_hostname (socket, cfg->tls_verify_hostname);
    return socket;
}

static bool s_tls_failure (int rc)
{
    return rc == AMQP_STATUS_SSL_ERROR || rc == AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED ||
           rc == AMQP_STATUS_SSL_PEER_VERIFY_FAILED || rc == AMQP_STATUS_SSL_CONNECTION_FAILED;
}

static int s_login (link_t *self)
{
    const char *host = self->cfg->hosts[self->server];
    int port = self->cfg->ports[self->server];
    amqp_socket_t *socket = self->cfg->tls ? s_tls_socket (self) : amqp_tcp_socket_new (self->conn);
    struct timeval tv = s_tv (self->cfg->amqp_connect_timeout);
    int rc = socket ? amqp_socket_open_noblock (socket, host, port, &tv) : AMQP_STATUS_NO_MEMORY;
    self->tls_status = self->cfg->tls && (!socket || s_tls_failure (rc)) ? rc : 0;
    if (rc != AMQP_STATUS_OK) {
        if (socket)
            snprintf (self->why, sizeof self->why, "%s%s", self->cfg->tls ? "TLS: " : "",
                      amqp_error_string2 (rc));
        return -1;
    }
    int one = 1; //  requests and acks are small: never let Nagle hold them back
    setsockopt (amqp_socket_get_sockfd (socket), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    amqp_set_handshake_timeout (self->conn, &tv);
    amqp_set_rpc_timeout (self->conn, &tv);
    char connection_name[300];
    snprintf (connection_name, sizeof connection_name, "mdp-amqp-bridge %s", self->cfg->instance);
    amqp_table_entry_t entry = {
        amqp_cstring_bytes ("connection_name"),
        {AMQP_FIELD_KIND_UTF8, {.bytes = amqp_cstring_bytes (connection_name)}}};
    amqp_table_t properties = {1, &entry};
    amqp_rpc_reply_t reply = amqp_login_with_properties (
        self->conn, self->vhost, 0, FRAME_MAX, self->cfg->amqp_heartbeat, &properties,
        AMQP_SASL_METHOD_PLAIN, self->username, self->password);
    if (reply.reply_type != AMQP_RESPONSE_NORMAL)
        return s_check (self, 0, reply, "login", NULL);
    return 0;
}

static int s_setup (link_t *self)
{
    if (s_open_channel (self, BRIDGE_CH_FORWARD) || s_open_channel (self, BRIDGE_CH_PROBE))
        return -1;
    if (self->has_forward && s_reply_consume (self))
        return -1;
    for (size_t index = 0; index < self->nroutes; index++) {
        route_t *route = self->routes[index];
        if (route->direction != DIR_AMQP_TO_MDP)
            continue;
        if (s_open_channel (self, (uint16_t)(BRIDGE_CH_REVERSE + route->index)))
            return -1;
        if (bridge_reverse_subscribe (self, route) != 0 && !self->conn)
            return -1; //  a route that cannot subscribe stays idle; a dead link is fatal
    }
    return 0;
}

static void s_connect (link_t *self)
{
    snprintf (self->why, sizeof self->why, "see the errors above");
    self->conn = amqp_new_connection ();
    if (!self->conn || s_login (self) || s_setup (self)) {
        if (self->conn)
            amqp_destroy_connection (self->conn);
        self->conn = NULL;
        size_t tried = self->server;
        s_lost (self, "cannot connect", 0);
        if (self->tls_status && self->generation == 0) {
            //  Never up and TLS refused: a configuration error, not an outage
            zsys_error ("amqp-bridge: link %s: TLS to %s:%d refused (%s): check \"tls\" "
                        "(ca, cert, key, verify_peer, verify_hostname); stopping",
                        self->name, self->cfg->hosts[tried], self->cfg->ports[tried], self->why);
            self->bridge->exit_code = 2;
            return;
        }
        zsys_warning ("amqp-bridge: link %s: cannot connect to %s:%d (%s), next try in %d ms",
                      self->name, self->cfg->hosts[tried], self->cfg->ports[tried], self->why,
                      (int)(self->reconnect_at - zclock_mono ()));
        return;
    }
    self->generation++;
    self->forward_ack = 0;
    self->backoff = self->cfg->amqp_reconnect_initial;
    self->service_at = zclock_mono ();
    zsys_info ("amqp-bridge: link %s up (%s:%d%s)", self->name, self->cfg->hosts[self->server],
               self->cfg->ports[self->server], self->cfg->tls ? ", TLS" : "");
    bridge_on_link_up (self->bridge, self);
}

//  ---------------------------------------------------------------------------
//  Reading frames

static void s_read_message (link_t *self, delivery_t *delivery)
{
    amqp_rpc_reply_t reply =
        amqp_read_message (self->conn, delivery->channel, &delivery->message, 0);
    if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
        s_lost (self, "cannot read a message body", 0);
        return;
    }
    if (delivery->channel == BRIDGE_CH_FORWARD)
        bridge_forward_on_delivery (self->bridge, self, delivery);
    else {
        route_t *route = bridge_route_by_channel (self->bridge, delivery->channel);
        if (route && route->link == self)
            bridge_reverse_on_delivery (self->bridge, self, route, delivery);
        else if (!delivery->returned)
            bridge_link_reject (self, delivery->channel, delivery->delivery_tag, false);
    }
    amqp_destroy_message (&delivery->message);
}

//  The server closed one channel: acknowledge, open it again, resubscribe.
static void s_channel_closed (link_t *self, uint16_t channel, amqp_channel_close_t *close)
{
    char text[300];
    snprintf (text, sizeof text, "%.*s", (int)close->reply_text.len,
              (char *)close->reply_text.bytes);
    int code = close->reply_code;
    zsys_warning ("amqp-bridge: link %s: server closed channel %u: %d %s", self->name, channel,
                  code, text);
    amqp_channel_close_ok_t ok = {0};
    if (amqp_send_method (self->conn, channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok) < 0 ||
        s_open_channel (self, channel)) {
        s_lost (self, "cannot reopen a channel", 0);
        return;
    }
    if (channel == BRIDGE_CH_FORWARD) {
        self->forward_ack = 0; //  the old channel's tags mean nothing on the new one
        bridge_forward_channel_closed (self->bridge, self, code, text);
        if (self->conn && s_reply_consume (self))
            s_lost (self, "cannot consume the reply queue again", 0);
    } else if (channel >= BRIDGE_CH_REVERSE) {
        route_t *route = bridge_route_by_channel (self->bridge, channel);
        bridge_reverse_channel_closed (self->bridge, self, route);
        if (route && self->conn)
            bridge_reverse_subscribe (self, route);
    }
}

//  The server cancelled a consumer (its queue was deleted): subscribe again.
static void s_cancelled (link_t *self, uint16_t channel)
{
    zsys_warning ("amqp-bridge: link %s: consumer on channel %u cancelled by the server",
                  self->name, channel);
    if (channel == BRIDGE_CH_FORWARD) {
        if (s_reply_consume (self))
            s_lost (self, "cannot consume the reply queue again", 0);
    } else {
        route_t *route = bridge_route_by_channel (self->bridge, channel);
        if (route)
            bridge_reverse_subscribe (self, route);
    }
}

static void s_method (link_t *self, amqp_frame_t *frame)
{
    delivery_t delivery = {.channel = frame->channel};
    amqp_method_t *method = &frame->payload.method;
    if (method->id == AMQP_BASIC_DELIVER_METHOD) {
        delivery.delivery_tag = ((amqp_basic_deliver_t *)method->decoded)->delivery_tag;
        s_read_message (self, &delivery);
    } else if (method->id == AMQP_BASIC_RETURN_METHOD) {
        amqp_basic_return_t *ret = method->decoded;
        delivery.returned = true;
        delivery.reply_code = ret->reply_code;
        snprintf (delivery.reply_text, sizeof delivery.reply_text, "%.*s", (int)ret->reply_text.len,
                  (char *)ret->reply_text.bytes);
        s_read_message (self, &delivery);
    } else if (method->id == AMQP_CHANNEL_CLOSE_METHOD)
        s_channel_closed (self, frame->channel, method->decoded);
    else if (method->id == AMQP_CONNECTION_CLOSE_METHOD) {
        amqp_connection_close_t *close = method->decoded;
        char text[300];
        snprintf (text, sizeof text, "server closed the connection: %u %.*s", close->reply_code,
                  (int)close->reply_text.len, (char *)close->reply_text.bytes);
        amqp_connection_close_ok_t ok = {0};
        amqp_send_method (self->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
        s_lost (self, text, close->reply_code == AMQP_CONNECTION_FORCED ? FORCED_BACKOFF : 0);
    } else if (method->id == AMQP_BASIC_ACK_METHOD && frame->channel == BRIDGE_CH_FORWARD) {
        amqp_basic_ack_t *ack = method->decoded;
        bridge_forward_on_confirm (self->bridge, self, ack->delivery_tag, ack->multiple, true);
    } else if (method->id == AMQP_BASIC_NACK_METHOD && frame->channel == BRIDGE_CH_FORWARD) {
        amqp_basic_nack_t *nack = method->decoded;
        bridge_forward_on_confirm (self->bridge, self, nack->delivery_tag, nack->multiple, false);
    } else if (method->id == AMQP_BASIC_CANCEL_METHOD)
        s_cancelled (self, frame->channel);
    else if (method->id == AMQP_CONNECTION_BLOCKED_METHOD)
        zsys_warning ("amqp-bridge: link %s: the server blocks publishing", self->name);
    else if (method->id == AMQP_CONNECTION_UNBLOCKED_METHOD)
        zsys_info ("amqp-bridge: link %s: the server unblocked publishing", self->name);
}

void bridge_link_process (link_t *self)
{
    struct timeval zero = {0, 0};
    //  One read from the socket takes all it holds; after that, only what
    //  rabbitmq-c buffered (asking the socket again is a recv that fails
    //  with EAGAIN and a poll, per turn: the fd wakes us when more comes)
    for (int count = 0;
         self->conn && count < MAX_FRAMES_PER_TURN && (count == 0 || bridge_link_buffered (self));
         count++) {
        amqp_frame_t frame;
        int rc = amqp_simple_wait_frame_noblock (self->conn, &frame, &zero);
        if (rc == AMQP_STATUS_TIMEOUT)
            break;
        if (rc != AMQP_STATUS_OK) {
            s_lost (self, amqp_error_string2 (rc), 0);
            return;
        }
        if (frame.frame_type == AMQP_FRAME_METHOD)
            s_method (self, &frame);
    }
    //  Replies are handled as they are read, in order: one ack covers them all
    if (self->conn && self->forward_ack) {
        uint64_t tag = self->forward_ack;
        self->forward_ack = 0;
        int rc = amqp_basic_ack (self->conn, BRIDGE_CH_FORWARD, tag, 1);
        if (rc != AMQP_STATUS_OK)
            s_lost (self, amqp_error_string2 (rc), 0);
    }
    if (self->conn)
        amqp_maybe_release_buffers (self->conn);
}

void bridge_link_ack_forward (link_t *self, uint64_t tag)
{
    if (tag > self->forward_ack)
        self->forward_ack = tag;
}

//  ---------------------------------------------------------------------------
//  Polling and time

int bridge_link_fd (link_t *self)
{
    return self->conn ? amqp_get_sockfd (self->conn) : -1;
}

bool bridge_link_buffered (link_t *self)
{
    return self->conn && (amqp_frames_enqueued (self->conn) || amqp_data_in_buffer (self->conn));
}

//  While up with heartbeats on, rabbitmq-c must be called at least a few
//  times per heartbeat to send ours and notice a silent server.
static int s_service_interval (link_t *self)
{
    return self->cfg->amqp_heartbeat > 0 ? self->cfg->amqp_heartbeat * 1000 / 4 : 5000;
}

int bridge_link_timeout (link_t *self, int64_t now)
{
    if (self->stopping)
        return -1;
    if (!self->conn)
        return (int)s_clamp (self->reconnect_at - now);
    if (bridge_link_buffered (self))
        return 0;
    return (int)s_clamp (self->service_at - now);
}

void bridge_link_tick (link_t *self, int64_t now)
{
    if (!self->conn && !self->stopping && now >= self->reconnect_at)
        s_connect (self);
    else if (self->conn && now >= self->service_at) {
        self->service_at = now + s_service_interval (self);
        bridge_link_process (self);
    }
}

//  ---------------------------------------------------------------------------
//  Sending

int bridge_link_publish (link_t *self, uint16_t channel, const char *exchange,
                         const char *routing_key, bool mandatory,
                         const amqp_basic_properties_t *props, const void *body, size_t size)
{
    if (!self->conn)
        return -1;
    amqp_bytes_t bytes = {size, (void *)body};
    int rc = amqp_basic_publish (self->conn, channel, amqp_cstring_bytes (exchange),
                                 amqp_cstring_bytes (routing_key), mandatory, 0, props, bytes);
    if (rc != AMQP_STATUS_OK) {
        s_lost (self, amqp_error_string2 (rc), 0);
        return -1;
    }
    if (channel == BRIDGE_CH_FORWARD && self->cfg->confirms)
        self->publish_tag++;
    return 0;
}

uint64_t bridge_link_publish_tag (link_t *self)
{
    return self->cfg->confirms ? self->publish_tag : 0;
}

int bridge_link_ack (link_t *self, uint16_t channel, uint64_t tag)
{
    if (!self->conn)
        return -1;
    int rc = amqp_basic_ack (self->conn, channel, tag, 0);
    if (rc != AMQP_STATUS_OK)
        s_lost (self, amqp_error_string2 (rc), 0);
    return rc == AMQP_STATUS_OK ? 0 : -1;
}

int bridge_link_reject (link_t *self, uint16_t channel, uint64_t tag, bool requeue)
{
    if (!self->conn)
        return -1;
    int rc = amqp_basic_reject (self->conn, channel, tag, requeue);
    if (rc != AMQP_STATUS_OK)
        s_lost (self, amqp_error_string2 (rc), 0);
    return rc == AMQP_STATUS_OK ? 0 : -1;
}

int bridge_link_exchange_exists (link_t *self, const char *exchange)
{
    if (!self->conn)
        return -1;
    amqp_exchange_declare (self->conn, BRIDGE_CH_PROBE, amqp_cstring_bytes (exchange),
                           amqp_cstring_bytes ("direct"), 1, 0, 0, 0, amqp_empty_table);
    int code = 0;
    if (bridge_link_rpc_check (self, BRIDGE_CH_PROBE, "look for an exchange", &code) == 0)
        return 1;
    if (code > 0 && s_open_channel (self, BRIDGE_CH_PROBE) == 0)
        return code == AMQP_NOT_FOUND ? 0 : -1;
    s_lost (self, "probe channel failed", 0);
    return -1;
}

int bridge_link_queue_consumers (link_t *self, const char *queue)
{
    if (!self->conn)
        return -1;
    amqp_queue_declare_ok_t *ok = amqp_queue_declare (
        self->conn, BRIDGE_CH_PROBE, amqp_cstring_bytes (queue), 1, 0, 0, 0, amqp_empty_table);
    int code = 0;
    if (bridge_link_rpc_check (self, BRIDGE_CH_PROBE, "look for a queue", &code) == 0 && ok)
        return ok->consumer_count > INT_MAX ? INT_MAX : (int)ok->consumer_count;
    if (code > 0 && s_open_channel (self, BRIDGE_CH_PROBE) == 0)
        return code == AMQP_NOT_FOUND ? -2 : -1;
    s_lost (self, "probe channel failed", 0);
    return -1;
}

void bridge_link_shutdown (link_t *self)
{
    self->stopping = true;
    if (!self->conn)
        return;
    if (self->has_forward) {
        amqp_queue_delete (self->conn, BRIDGE_CH_PROBE, amqp_cstring_bytes (self->reply_queue), 0,
                           0);
        bridge_link_rpc_check (self, BRIDGE_CH_PROBE, "delete the reply queue", NULL);
    }
    amqp_connection_close (self->conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection (self->conn);
    self->conn = NULL;
}
