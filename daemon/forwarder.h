/*  forwarder.h - the event forwarder that runs beside the broker: publishers
    connect a PUB (or XPUB) to its XSUB side, subscribers a SUB to its XPUB
    side, and it passes every well-formed Domogik event [topic][json] from one
    to the other in its own thread. Off unless the daemon is given both
    endpoints. spec/pubsub.md says what it accepts and why it works this way.
*/
#ifndef FORWARDER_H_INCLUDED
#define FORWARDER_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

typedef struct forwarder_t forwarder_t;

//  Why a message was dropped; counted in forwarder_stats_t.dropped.
typedef enum {
    FWD_DROP_FRAMES,   //  a publication of other than 2 frames
    FWD_DROP_TOPIC,    //  topic frame not category.timestamp.version
    FWD_DROP_RESERVED, //  a publication in the reserved mdp.sync namespace
    FWD_DROP_UPSTREAM, //  subscriber side: neither a subscription nor a cancel
    FWD_DROP_DENIED,   //  a publication or subscription the access rules refuse
    FWD_DROP_REASONS
} forwarder_drop_t;

typedef struct {
    uint64_t forwarded;                 //  publications passed to the subscriber side
    uint64_t dropped[FWD_DROP_REASONS]; //  messages dropped, by reason
    uint64_t subscribes;                //  first subscriptions to a prefix (not sync probes);
                                        //  with CURVE, every subscription let in
    uint64_t unsubscribes;              //  last cancels of a prefix
    uint64_t syncs;                     //  sync probes answered
} forwarder_stats_t;

//  Bind the publisher side (XSUB) to pub_endpoint and the subscriber side
//  (XPUB) to sub_endpoint, then forward in a new thread. Each endpoint is one
//  ZeroMQ endpoint; tcp://127.0.0.1:* picks a free port (see the accessors).
//  Returns the forwarder, or NULL with errno (EINVAL for a NULL endpoint, or
//  the bind's errno: EADDRINUSE, EINVAL, ...).
forwarder_t *forwarder_new (const char *pub_endpoint, const char *sub_endpoint);

//  As forwarder_new, with both sides CURVE servers using secret_key (32
//  bytes), in ZAP domain "mdp": the broker's zauth lets in the allowed keys.
//  Subscriptions are then applied one by one (ZMQ_XPUB_MANUAL), so that the
//  subscribe rules can refuse them. NULL secret_key: as forwarder_new.
forwarder_t *forwarder_new_secure (const char *pub_endpoint, const char *sub_endpoint,
                                   const uint8_t *secret_key);

//  Replace the publish and subscribe rules (access.h), taking ownership;
//  NULL allows everything. Publications and subscriptions the rules refuse
//  are dropped and counted (FWD_DROP_DENIED). Safe from any thread.
struct access_t;
void forwarder_set_access (forwarder_t *self, struct access_t **access_p);

//  Stop the thread, close both sockets, free the forwarder and NULL the
//  caller's pointer. Accepts NULL.
void forwarder_destroy (forwarder_t **self_p);

//  The endpoints as bound (a '*' port resolved); the forwarder owns them.
const char *forwarder_pub_endpoint (forwarder_t *self);
const char *forwarder_sub_endpoint (forwarder_t *self);

//  Log every subscription and publication (zsys_debug) when true.
void forwarder_set_verbose (forwarder_t *self, bool verbose);

//  Copy the counters since start into stats; safe from any thread.
void forwarder_stats (forwarder_t *self, forwarder_stats_t *stats);

#endif
