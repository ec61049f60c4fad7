/*  broker_impl.h - the broker's private state: services, workers, requests.
    Shared by broker.c (the message path), broker_state.c (the tables: object
    lifecycle, the deadline heap; never sends), broker_wire.c (everything
    sent), broker_mmi.c and the rest of libbroker. Nothing here is public.
*/
#ifndef BROKER_IMPL_H_INCLUDED
#define BROKER_IMPL_H_INCLUDED

#include "broker.h"
#include "dlist.h"
#include "htab.h"
#include "mdp_proto.h"

typedef struct service_t service_t;
typedef struct worker_t worker_t;
typedef struct request_t request_t;
typedef struct client_t client_t;

//  How a client spoke, so that its answer goes back the same way. Passed by
//  value to whatever builds a client reply (broker_wire.c, MMI).
typedef struct {
    uint8_t version; //  1 for MDPC01, 2 for MDPC02
    bool bare;       //  MDP/0.2 without the empty delimiter
    bool majortomo;  //  MDP/0.2 in majortomo's dialect (spec/mdp.md 15.6)
} framing_t;

//  A client connection with requests pending, kept only while it has some
//  and only when a per-client cap is set.
struct client_t {
    hnode_t hnode;            //  in broker->clients, keyed by routing id
    size_t pending;           //  its requests not yet answered
    uint8_t idlen;            //  routing id length
    unsigned char identity[]; //  routing id bytes
};

//  A request from a client: its return envelope and body frames, held until
//  a worker replies or the broker answers with an error.
struct request_t {
    dlink_t link;       //  in its service's queue while queued
    service_t *service; //  the service asked for
    worker_t *worker;   //  the worker handling it, when in flight
    client_t *client;   //  its client's counter, when a cap is set
    uint64_t token;     //  the opaque frame the worker echoes
    int64_t deadline;   //  when it is answered 504 (zclock_mono msecs)
    int64_t dispatched; //  when a worker got it (zclock_mono msecs)
    int64_t span;       //  msecs from arrival (or a partial) to deadline
    size_t heap_index;  //  place in the deadline heap, SIZE_MAX if none
    framing_t framing;  //  how the client spoke: its replies go the same way
    uint8_t nenv;       //  envelope frames (routing id first)
    uint8_t nbody;      //  body frames after the envelope
    zmq_msg_t frames[]; //  nenv envelope frames, then nbody body frames
};

//  A worker, known from its READY on.
struct worker_t {
    hnode_t hnode;            //  in broker->workers, keyed by routing id
    dlink_t idle_link;        //  in service->idle while idle (LRU order)
    dlink_t expiry_link;      //  in broker->by_expiry, oldest contact first
    dlink_t beat_link;        //  in broker->by_beat, next heartbeat due first
    int64_t beat_at;          //  when we next owe it a HEARTBEAT
    service_t *service;       //  the service it offers
    request_t *request;       //  the request it is handling, or NULL
    int64_t expiry;           //  when it counts as dead without contact
    uint8_t proto;            //  1 for MDPW01, 2 for MDPW02
    bool bare;                //  MDP/0.2 without the empty delimiter
    char user[41];            //  its CURVE public key (Z85), "" when plain
    uint8_t idlen;            //  routing id length
    unsigned char identity[]; //  routing id bytes
};

//  A service: its idle workers and its queue. Freed when it has neither
//  workers nor queued requests, so unknown names leave no state behind.
struct service_t {
    hnode_t hnode;    //  in broker->services, keyed by name
    dlink_t requests; //  queued requests, oldest first
    dlink_t idle;     //  idle workers, longest idle first
    size_t nqueued;   //  requests in the queue
    size_t nworkers;  //  registered workers, idle or busy
    size_t namelen;   //  name length in bytes
    char name[];      //  the name, NUL-terminated
};

struct broker_t {
    void *router;               //  the one ROUTER socket (raw libzmq)
    broker_config_t cfg;        //  settings in force
    htab_t services;            //  service_t by name
    htab_t workers;             //  worker_t by routing id
    htab_t clients;             //  client_t by routing id (per-client cap)
    dlink_t by_expiry;          //  every worker, oldest contact first
    request_t **heap;           //  every request, queued or in flight: min-heap on deadline
    size_t heap_size;           //  requests in the heap
    size_t heap_cap;            //  heap array capacity
    size_t queued_total;        //  requests queued over all services
    uint64_t next_token;        //  the next request token
    dlink_t by_beat;            //  every worker, the one owed a HEARTBEAT first
    bool stopping;              //  broker_stop was called
    char endpoint[256];         //  the last bound endpoint
    broker_stats_t stats;       //  counters
    int64_t log_window;         //  start of the current drop-log second
    int log_budget;             //  drop warnings left in this second
    uint64_t log_suppressed;    //  drop warnings not printed this second
    void *metrics;              //  per-service figures (broker_metrics.c)
    struct access_t *access;    //  who may offer / call what, NULL: anyone
    zactor_t *auth;             //  czmq's zauth when CURVE is on
    zhashx_t *keys;             //  allowed public keys (Z85) when CURVE is on
    char *keys_dir;             //  where the allowed keys live
    int64_t started;            //  when the broker was created (zclock_mono)
    int64_t refuse_window;      //  start of the current refusal-log second
    int refuse_budget;          //  refusal lines left in this second
    uint64_t refuse_suppressed; //  refusal lines not printed this second
};

//  broker_state.c: the tables. Nothing here sends; whatever must answer a
//  peer (failing a request, removing a worker) is broker.c's, calling these.
//  Services are made on demand and freed when unused: require / release.
service_t *broker_service_require (broker_t *self, const char *name, size_t len);
service_t *broker_service_lookup (broker_t *self, const char *name, size_t len);
void broker_service_release (broker_t *self, service_t *service);
worker_t *broker_worker_lookup (broker_t *self, const zmq_msg_t *id);
//  A worker for service, in the tables, its clocks started; NULL on out of
//  memory or a routing id over 255 bytes.
worker_t *broker_worker_new (broker_t *self, const zmq_msg_t *id, service_t *service, uint8_t proto,
                             bool bare);
//  Take a worker out of every table and free it; *worker_p becomes NULL.
//  Its request, if any, must have been ended first (broker_request_fail).
void broker_worker_destroy (broker_t *self, worker_t **worker_p);
void broker_worker_touch (broker_t *self, worker_t *worker, int64_t now);
void broker_worker_beaten (broker_t *self, worker_t *worker, int64_t now);
void broker_workers_retime (broker_t *self, const broker_config_t *old, int64_t now);
//  A request for service with room for nenv + nbody frames (the caller moves
//  them in), a fresh token and a deadline span msecs away; in no table yet.
//  NULL on out of memory.
request_t *broker_request_new (broker_t *self, service_t *service, size_t nenv, size_t nbody,
                               int64_t span);
//  Close its frames, drop its client count, free it; *request_p becomes NULL.
//  It must be out of every table (broker_request_detach). Accepts NULL.
void broker_request_destroy (broker_t *self, request_t **request_p);
//  Queue a request on its service and under its deadline. Returns 0, or -1
//  with errno EBUSY (a queue bound reached) or ENOMEM, the request then in no
//  table and still the caller's to fail and destroy.
int broker_request_enqueue (broker_t *self, request_t *request);
//  Put a request under its deadline (queued or in flight). Returns 0, or -1
//  with errno ENOMEM, the request still the caller's.
int broker_request_track (broker_t *self, request_t *request);
void broker_request_unqueue (broker_t *self, request_t *request);
//  Take a request out of every table: its queue, the heap, its worker.
void broker_request_detach (broker_t *self, request_t *request);
void broker_heap_remove (broker_t *self, request_t *request);
void broker_request_extend (broker_t *self, request_t *request, int64_t now);
request_t *broker_heap_top (broker_t *self);

//  broker.c: the message path's operations that other modules use
//  End a request with an mdp.error reply (code 0: silently, at teardown),
//  queued or in flight; it is destroyed.
void broker_request_fail (broker_t *self, request_t *request, int code, const char *reason);
//  Forget a worker, with a DISCONNECT first when disconnect is set; its
//  request in flight (if any) is failed with code and reason. It is destroyed.
void broker_worker_remove (broker_t *self, worker_t *worker, bool disconnect, int code,
                           const char *reason);
void broker_dispatch (broker_t *self, service_t *service);
int64_t broker_now (void);

//  majortomo's MDP/0.2 client dialect (one command table for its client and
//  worker): its REQUEST, and the PARTIAL and FINAL it expects back, with no
//  service frame. Accepted for compatibility (spec/mdp.md 15.6).
#define MDPC02_MAJORTOMO_REQUEST 0x02
#define MDPC02_MAJORTOMO_PARTIAL 0x03
#define MDPC02_MAJORTOMO_FINAL 0x04

//  broker_wire.c: all sending. Frames passed as zmq_msg_t move out (a frame
//  that fails to go is closed); byte buffers are copied.
//  A command with no arguments (HEARTBEAT, DISCONNECT) to a worker.
void broker_wire_command (broker_t *self, const unsigned char *id, size_t idlen, uint8_t version,
                          bool bare, uint8_t command);
//  REQUEST to a worker; the request's body frames move out (nbody becomes 0).
void broker_wire_request (broker_t *self, const worker_t *worker, request_t *request);
//  A worker's reply (final) or partial to the request's client, body frames
//  moved out. The envelope moves out with a final, is copied for a partial.
//  An MDP/0.1 client never sees partials: they are not sent.
void broker_wire_reply (broker_t *self, request_t *request, zmq_msg_t *body, size_t nbody,
                        bool final);
//  A final reply of one or two string frames (frame2 may be NULL) to the
//  client whose envelope is env (moved out), in framing (MMI answers).
void broker_wire_strs (broker_t *self, zmq_msg_t *env, size_t nenv, framing_t framing,
                       const char *service, size_t namelen, const char *frame1, const char *frame2);
//  The one error reply: mdp.error with {"code": code, "reason": reason}, as
//  broker_wire_strs; counts it in stats.errors.
void broker_wire_error (broker_t *self, zmq_msg_t *env, size_t nenv, framing_t framing,
                        const char *service, size_t namelen, int code, const char *reason);

//  broker_frames.c: reading frames, and the drop log
bool broker_frame_is (const zmq_msg_t *frame, const char *text, size_t len);
int broker_parse_timeout (zmq_msg_t *frame, int64_t *msecs);
void broker_log_message (zmq_msg_t *frames, size_t count);
//  Count a dropped message and log why, at most ten lines a second.
void broker_drop (broker_t *self, broker_drop_t reason, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

//  broker_security.c: the peer's CURVE key as ZAP gave it ("" when plain),
//  and whether it may still come in (always true without CURVE).
const char *broker_peer_user (zmq_msg_t *frame);
bool broker_peer_allowed (broker_t *self, const char *user);
//  Count a request against its client's cap. The client is its CURVE key
//  (user) when CURVE is on, so one key shares one budget over its
//  connections; else its connection (routing id). Returns 0, or -1 (and
//  nothing counted) with errno EBUSY when the client is at the cap, ENOMEM
//  when its counter cannot be made.
int broker_client_admit (broker_t *self, request_t *request, zmq_msg_t *id, const char *user);
//  Log a refusal (403, 429, a refused READY) at info level, at most 10 lines
//  a second, then a count of those not logged.
void broker_log_refusal (broker_t *self, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));
void broker_security_destroy (broker_t *self);

//  broker_metrics.c: per-service figures for mmi.stats and the stats log
void broker_metrics_request (broker_t *self, service_t *service);
void broker_metrics_reply (broker_t *self, service_t *service, int64_t service_msecs);
void broker_metrics_tick (broker_t *self, int64_t now);
void broker_metrics_destroy (broker_t *self);

//  broker_mmi.c
//  Answer an mmi.* request at once, in framing: env frames are the client's
//  envelope (moved out), body the request body after the timeout frame.
void broker_mmi (broker_t *self, framing_t framing, zmq_msg_t *env, size_t nenv, const char *name,
                 size_t namelen, zmq_msg_t *body, size_t nbody);

#endif
