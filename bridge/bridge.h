/*  bridge.h - private to mdp-amqp-bridge: the types its modules share.
    One thread runs everything: MDP worker "slots" (raw DEALERs speaking
    MDPW01/MDPW02), one AMQP connection ("link") per vhost and user, and an
    async MDP client for the AMQP -> MDP direction. spec/amqp-bridge.md says
    what each profile puts on the wire.
*/
#ifndef AMQP_BRIDGE_H_INCLUDED
#define AMQP_BRIDGE_H_INCLUDED

#include "mdp.h"
#include "mdp_curve.h"
#include <amqp.h>
#include <stdbool.h>
#include <stdint.h>

#define BRIDGE_ID_SIZE 33          //  request ids: 32 hex digits and a NUL
#define BRIDGE_CH_FORWARD 1        //  channel: requests out, replies in
#define BRIDGE_CH_PROBE 2          //  channel: passive declares (may be closed by the server)
#define BRIDGE_CH_REVERSE 10       //  reverse route i consumes on channel 10 + i
#define BRIDGE_MAX_CONCURRENCY 256 //  slots per route, at most

typedef enum { DIR_MDP_TO_AMQP, DIR_AMQP_TO_MDP } bridge_dir_t;
typedef enum { PROFILE_NEON, PROFILE_NUROPB, PROFILE_RAW } bridge_profile_t;

typedef struct _bridge_t bridge_t;
typedef struct _link_t link_t;
typedef struct _slot_t slot_t;
typedef struct _event_route_t event_route_t;

//  One route of the config file.
typedef struct {
    char *service;            //  MDP service name
    bridge_dir_t direction;   //  which side calls which
    bridge_profile_t profile; //  AMQP wire format
    char *vhost;              //  AMQP vhost
    char *user;               //  key into "users"
    char *username;           //  resolved credentials
    char *password;           //  resolved credentials
    char *queue;              //  neon/raw: target queue (forward), queue consumed (reverse)
    cJSON *action_queues;     //  neon forward: {action: queue}, or NULL
    char *exchange;           //  nuropb: the rpc exchange
    char *routing_key;        //  nuropb: the service name on the rpc exchange
    cJSON *context;           //  nuropb forward: the request context, or NULL
    char *action;             //  reverse: action when the message carries none
    char *action_key;         //  neon: body key carrying the MDP action, or NULL
    char *error_key;          //  neon forward: reply key that marks an error, or NULL
    int timeout;              //  msecs for a whole request
    int ttl;                  //  msecs: expiration of each request message
    int concurrency;          //  forward: worker slots; reverse: prefetch
    int mdp_protocol;         //  forward: 1 (MDPW01) or 2 (MDPW02)
    bool stream;              //  forward partial replies
    size_t index;             //  position in the config
    link_t *link;             //  the AMQP connection it uses
    slot_t *slots;            //  forward: concurrency slots, owned by the bridge
    bool exchange_known;      //  nuropb forward: the rpc exchange was found
    int64_t exchange_checked; //  nuropb forward: when we last looked, msecs
    uint64_t channel_gen;     //  reverse: bumps when its channel is reopened
    bool missing_wait;        //  forward: on_missing_queue "wait" (else "fail": 404)
    bool fail_fast;           //  forward: fail_fast_no_consumer: 503 when nobody consumes
    char *probe_queue;        //  forward, fail_fast: the queue last probed, owned
    int probe_consumers;      //  its consumer count then (-2: no such queue)
    int64_t probe_at;         //  when, msecs (cached for PROBE_CACHE)
} route_t;

//  The whole config file.
typedef struct {
    char *server;               //  AMQP host (the first of servers)
    int port;                   //  AMQP port (likewise)
    char **hosts;               //  "servers": the nodes to try in turn, owned
    int *ports;                 //  their ports
    size_t nservers;            //  how many (at least 1)
    bool tls;                   //  "tls" given: amqps through rabbitmq-c's SSL socket
    char *tls_ca;               //  CA certificate file (PEM), or NULL
    char *tls_cert;             //  client certificate file, or NULL
    char *tls_key;              //  its private key file, or NULL
    bool tls_verify_peer;       //  check the server's certificate chain
    bool tls_verify_hostname;   //  check that it names the host
    char *endpoint;             //  MDP broker endpoint
    char *curve_server;         //  the MDP broker's CURVE public key, or NULL
    char *curve_cert;           //  our certificate for it, or NULL
    mdp_curve_t curve;          //  those keys, loaded (off when not set)
    int mdp_heartbeat;          //  msecs
    int mdp_liveness;           //  heartbeats
    int mdp_reconnect_initial;  //  msecs
    int mdp_reconnect_max;      //  msecs
    int amqp_heartbeat;         //  seconds, 0 = off
    int amqp_reconnect_initial; //  msecs
    int amqp_reconnect_max;     //  msecs
    int amqp_connect_timeout;   //  msecs for TCP connect, login and each sync RPC
    bool confirms;              //  publisher confirms on the mdp-to-amqp channel
    char *instance;             //  names the reply queues: mdp.reply.<instance>
    route_t *routes;            //  owned array
    size_t nroutes;             //  its length
    event_route_t **events;     //  the "events" list, owned (bridge_events.c)
    size_t nevents;             //  its length
} bridge_config_t;

//  A message that came from RabbitMQ (deliver or return).
typedef struct {
    uint16_t channel;       //  channel it came on
    uint64_t delivery_tag;  //  deliveries only
    bool returned;          //  a basic.return, not a delivery
    int reply_code;         //  basic.return: e.g. 312 NO_ROUTE
    char reply_text[128];   //  basic.return: the server's words
    amqp_message_t message; //  properties and body
} delivery_t;

//  ---------------------------------------------------------------------------
//  bridge_config.c

//  Load and check a config file. NULL with a message on stderr if invalid.
bridge_config_t *bridge_config_new (const char *path);
void bridge_config_destroy (bridge_config_t **self_p);

//  ---------------------------------------------------------------------------
//  bridge_neon.c: the Neon MQ Connector body codec

//  base64 (standard alphabet, padded). Encoding never fails except on OOM.
char *bridge_neon_b64_encode (const void *data, size_t size, size_t *out_size);
unsigned char *bridge_neon_b64_decode (const char *text, size_t size, size_t *out_size);
//  JSON to the Python literal str() would print, and back. NULL on error.
char *bridge_neon_pyrepr (const cJSON *item);
cJSON *bridge_neon_pyparse (const char *text, size_t size);
//  A whole body: base64 (JSON string (Python literal)). NULL on error.
char *bridge_neon_encode (const cJSON *dict, size_t *size);
cJSON *bridge_neon_decode (const void *body, size_t size);

//  ---------------------------------------------------------------------------
//  bridge_link.c: one AMQP connection

link_t *bridge_link_new (bridge_t *bridge, const bridge_config_t *cfg, const route_t *route);
void bridge_link_destroy (link_t **self_p);
bool bridge_link_matches (link_t *self, const route_t *route);
void bridge_link_add_route (link_t *self, route_t *route);
bool bridge_link_up (link_t *self);
uint64_t bridge_link_generation (link_t *self);
const char *bridge_link_reply_queue (link_t *self);
const char *bridge_link_name (link_t *self);
//  Poll support: the socket fd (-1 when down), whether frames wait inside
//  rabbitmq-c, and msecs until the link needs attention.
int bridge_link_fd (link_t *self);
bool bridge_link_buffered (link_t *self);
int bridge_link_timeout (link_t *self, int64_t now);
//  Read and dispatch every frame waiting (the fd was readable, or a timer).
void bridge_link_process (link_t *self);
//  Time-driven work: reconnect when due, service heartbeats.
void bridge_link_tick (link_t *self, int64_t now);
//  Publish; 0 or -1 (the link is then marked down and will reconnect).
int bridge_link_publish (link_t *self, uint16_t channel, const char *exchange,
                         const char *routing_key, bool mandatory,
                         const amqp_basic_properties_t *props, const void *body, size_t size);
int bridge_link_ack (link_t *self, uint16_t channel, uint64_t tag);
//  Acknowledge a reply on the forward channel (with the others read in the
//  same turn, by one multiple ack at its end).
void bridge_link_ack_forward (link_t *self, uint64_t tag);
int bridge_link_reject (link_t *self, uint16_t channel, uint64_t tag, bool requeue);
//  Passive exchange.declare on the probe channel: 1 exists, 0 missing, -1 failure.
int bridge_link_exchange_exists (link_t *self, const char *exchange);
//  With publisher confirms: the delivery tag of the last message published
//  on the forward channel (what its basic.ack / basic.nack will name), else 0.
uint64_t bridge_link_publish_tag (link_t *self);
//  Passive queue.declare on the probe channel: the queue's consumer count,
//  -2 if there is no such queue, -1 on failure.
int bridge_link_queue_consumers (link_t *self, const char *queue);
//  Close cleanly (delete the reply queue) and stay down.
void bridge_link_shutdown (link_t *self);
//  The rabbitmq-c connection (NULL while down), for declares of the modules.
amqp_connection_state_t bridge_link_conn (link_t *self);
//  Give up on the connection: reconnect after the back-off.
void bridge_link_fail (link_t *self, const char *reason);
//  After a sync RPC on channel: 0 if it went well, else log it as what,
//  set *code (the server's channel.close code, -1 for a connection.close,
//  0 for a library error) and acknowledge a channel.close.
int bridge_link_rpc_check (link_t *self, uint16_t channel, const char *what, int *code);

//  Helpers for properties and tables.
char *bridge_link_bytes_dup (amqp_bytes_t bytes);
bool bridge_link_bytes_eq (amqp_bytes_t bytes, const char *text);
//  A header's string value (longstr or bytes), copied, or NULL.
char *bridge_link_props_header (const amqp_basic_properties_t *props, const char *key);

//  ---------------------------------------------------------------------------
//  bridge_slot.c: MDP worker connections

//  Initialise the slots of a forward route (parked: not connected).
int bridge_slot_start_all (bridge_t *bridge, route_t *route);
slot_t *bridge_slot_at (route_t *route, int index);
void bridge_slot_stop_all (route_t *route);
void bridge_slot_connect_all (route_t *route);
void bridge_slot_park_all (route_t *route);
//  Poll support: poll the fd (ZMQ_FD, edge-triggered, -1 while closed) and
//  process the slot when it is readable or dirty (its socket was used since
//  its last ZMQ_EVENTS look); the timeout is 0 while dirty.
zsock_t *bridge_slot_socket (slot_t *self);
int bridge_slot_fd (slot_t *self);
bool bridge_slot_dirty (slot_t *self);
int bridge_slot_timeout (slot_t *self, int64_t now);
void bridge_slot_tick (slot_t *self, int64_t now);
//  Read every waiting message; requests go to bridge_forward_request.
void bridge_slot_process (slot_t *self);
//  Send a partial or the final reply to the slot's current request, if the
//  request is still the slot's (gen matches). Takes ownership of *msg_p.
void bridge_slot_reply (slot_t *self, uint64_t gen, mdp_msg_t **msg_p, bool final);
route_t *bridge_slot_route (slot_t *self);
bridge_t *bridge_slot_bridge (slot_t *self);

//  ---------------------------------------------------------------------------
//  bridge_forward.c: MDP -> AMQP

//  A request from the broker on slot: the slot's token generation is gen.
//  Takes the body frames.
void bridge_forward_request (slot_t *slot, uint64_t gen, zmsg_t **body_p);
//  A slot dropped its current request (new request, reconnect).
void bridge_forward_abandon (slot_t *slot);
void bridge_forward_on_delivery (bridge_t *bridge, link_t *link, delivery_t *delivery);
//  A publisher confirm on the forward channel: basic.ack (ack true) or
//  basic.nack of tag (and every tag before it when multiple).
void bridge_forward_on_confirm (bridge_t *bridge, link_t *link, uint64_t tag, bool multiple,
                                bool ack);
void bridge_forward_tick (bridge_t *bridge, int64_t now);
int bridge_forward_timeout (bridge_t *bridge, int64_t now);
//  The link went down: every request in flight on it gets 502.
void bridge_forward_link_down (bridge_t *bridge, link_t *link);
//  The server closed the forward channel (code, text): fail what it names.
void bridge_forward_channel_closed (bridge_t *bridge, link_t *link, int code, const char *text);
//  The five headers every nuropb message carries (type "request" or
//  "response"; trace_id NULL is sent as void). Values point to the arguments.
void bridge_forward_nuropb_headers (amqp_table_entry_t entries[5], const char *type,
                                    const char *trace_id);
//  Shutting down: every request in flight gets 503.
void bridge_forward_fail_all (bridge_t *bridge, int code, const char *reason);
//  Per-slot request state lives in slot_t; these reach it.
typedef struct {
    char id[BRIDGE_ID_SIZE]; //  our request id on AMQP, "" when idle
    char *action;            //  the MDP request's action, owned
    int64_t deadline;        //  zclock_mono msecs
    uint64_t gen;            //  the slot's token generation it belongs to
    uint64_t link_gen;       //  link generation it was published on
    int parts;               //  partials forwarded
    mdp_msg_t *msg;          //  on_missing_queue "wait": the request, to publish again
    int64_t retry_at;        //  when to publish it again (0: not waiting)
    int retry_delay;         //  msecs, the last back-off
    uint64_t confirm_tag;    //  publisher confirms: the tag RabbitMQ has yet to confirm, or 0
} slot_request_t;
slot_request_t *bridge_slot_request (slot_t *self);

//  ---------------------------------------------------------------------------
//  bridge_reverse.c: AMQP -> MDP

int bridge_reverse_start (bridge_t *bridge, const char *endpoint);
void bridge_reverse_stop (bridge_t *bridge);
//  Declare the route's queue (and topology) and start consuming: 0 or -1.
int bridge_reverse_subscribe (link_t *link, route_t *route);
void bridge_reverse_on_delivery (bridge_t *bridge, link_t *link, route_t *route,
                                 delivery_t *delivery);
void bridge_reverse_link_down (bridge_t *bridge, link_t *link);
//  The server closed the route's channel: its deliveries are void.
void bridge_reverse_channel_closed (bridge_t *bridge, link_t *link, route_t *route);
zsock_t *bridge_reverse_socket (bridge_t *bridge);
int bridge_reverse_timeout (bridge_t *bridge);
void bridge_reverse_process (bridge_t *bridge);

//  ---------------------------------------------------------------------------
//  bridge_events.c: MDP events to and from a topic exchange

//  Read root's "events" into cfg (users from root): 0, or -1 with a message.
int bridge_events_config_parse (bridge_config_t *cfg, const cJSON *root);
void bridge_events_config_clear (bridge_config_t *cfg);
//  Open the MDP side of every entry (AMQP connects from the loop): 0 or -1.
int bridge_events_start (bridge_t *bridge);
//  Close every connection and socket, logging the counters.
void bridge_events_stop (bridge_t *bridge);
//  Poll support: at most bridge_events_poll_size items appended at items[*count];
//  returns the msecs until the next reconnect (0: frames are buffered).
size_t bridge_events_poll_size (bridge_t *bridge);
int bridge_events_prepare (bridge_t *bridge, zmq_pollitem_t *items, size_t *count, int64_t now);
//  Read what waits on every entry, reconnect those due.
void bridge_events_process (bridge_t *bridge, int64_t now);

//  ---------------------------------------------------------------------------
//  bridge.c: the bridge object the modules share

struct _bridge_t {
    bridge_config_t *cfg; //  owned
    link_t **links;       //  owned
    size_t nlinks;        //  count
    zhashx_t *forward;    //  request id -> slot_t, for requests in flight
    mdp_async_t *async;   //  reverse direction client, or NULL
    zhashx_t *reverse;    //  async request id -> inbound request, owned
    bool verbose;         //  log each request
    bool stopping;        //  shutting down
    int exit_code;        //  set (2) when the bridge must stop: TLS refused at start-up
    uint64_t counter;     //  feeds request ids
    struct bridge_events_guard_t *guard; //  events this bridge sent to MDP, owned (bridge_events.c)
};

//  A fresh 32-hex-digit request id.
void bridge_new_id (bridge_t *self, char id[BRIDGE_ID_SIZE]);
//  The link came up / went down (called by the link).
void bridge_on_link_up (bridge_t *self, link_t *link);
void bridge_on_link_down (bridge_t *self, link_t *link);
//  Domogik's reply action for a request action (x.get -> x.result). Caller frees.
char *bridge_result_action (const char *action, const char *suffix);
//  Route by reverse channel number, or NULL.
route_t *bridge_route_by_channel (bridge_t *self, uint16_t channel);

#endif
