/*  broker.h - the Majordomo routing engine as an object.
    main.c wraps it in a daemon; tests run it in-process (broker_actor) and the
    fuzzer feeds it messages directly (broker_handle). spec/mdp.md says what it
    speaks.
*/
#ifndef BROKER_H_INCLUDED
#define BROKER_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>
#include <zmq.h>

#define BROKER_MAX_FRAMES 64 //  a message with more frames is malformed

typedef struct broker_t broker_t;

typedef struct {
    int heartbeat;              //  msecs between heartbeats, both ways
    int liveness;               //  heartbeats missed before a worker is dead
    int request_timeout;        //  default request deadline, msecs
    size_t max_queue;           //  queued requests per service
    size_t max_queued_total;    //  queued requests over all services
    int64_t max_msg_size;       //  ZMQ_MAXMSGSIZE for every frame, -1 = none
    bool verbose;               //  log every message
    int stats_interval;         //  msecs between one-line stats logs, 0 = off
    size_t max_client_requests; //  requests one client connection may have pending, 0 = no cap
} broker_config_t;

//  Reasons a message is dropped; counted in broker_stats_t.dropped.
typedef enum {
    DROP_MALFORMED,       //  frames do not form any known command
    DROP_TOO_MANY_FRAMES, //  more than BROKER_MAX_FRAMES frames
    DROP_BAD_SERVICE,     //  empty or over-long service name
    DROP_UNEXPECTED,      //  valid command at the wrong time (DISCONNECT sent)
    DROP_STALE_REPLY,     //  reply whose token is not outstanding
    DROP_REFUSED,         //  READY refused by the access rules (DISCONNECT sent)
    DROP_REASONS
} broker_drop_t;

typedef struct {
    uint64_t requests;              //  client requests accepted (MMI included)
    uint64_t replies;               //  worker replies forwarded to clients
    uint64_t errors[6];             //  error replies by code: 400, 403, 429, 502, 503, 504
    uint64_t dropped[DROP_REASONS]; //  dropped messages by reason
    uint64_t workers_expired;       //  workers removed for silence
} broker_stats_t;

//  Fill cfg with the built-in defaults.
void broker_config_defaults (broker_config_t *cfg);

//  Create a broker with its ROUTER socket, not yet bound. NULL on error.
broker_t *broker_new (const broker_config_t *cfg);

//  Destroy the broker without the graceful goodbye (see broker_shutdown).
void broker_destroy (broker_t **self_p);

//  Turn CURVE on (before broker_bind): the broker's certificate (czmq format;
//  its "_secret" file must be readable) and a directory of the public
//  certificates of every client and worker allowed in, checked through ZAP
//  (czmq's zauth, domain "mdp"). Returns 0, or -1 with a message in error.
int broker_set_curve (broker_t *self, const char *cert_path, const char *keys_dir, char *error,
                      size_t error_size);

//  Read the allowed-keys directory again (SIGHUP): peers whose key is gone are
//  refused from now on, and their workers disconnected. Returns the number of
//  keys, or -1 if the directory cannot be read (the old set is kept).
int broker_reload_keys (broker_t *self);

//  Replace the access rules (access.h), taking ownership; NULL allows all.
//  Registered workers the new offer rules no longer allow get DISCONNECT.
struct access_t;
void broker_set_access (broker_t *self, struct access_t **access_p);

//  Bind the ROUTER to endpoint. Returns 0, or -1 with errno.
int broker_bind (broker_t *self, const char *endpoint);

//  The endpoint the last bind resolved to (tcp://127.0.0.1:* becomes a port).
const char *broker_endpoint (broker_t *self);

//  Apply new settings to a running broker. A shorter heartbeat brings the
//  HEARTBEATs owed forward; a longer heartbeat x liveness extends expiries.
void broker_configure (broker_t *self, const broker_config_t *cfg);

//  Serve until broker_stop, zsys_interrupted, or (when given) ctl_sock
//  reading "$TERM". If ctl_fd >= 0, on_ctl (self, arg) is called each time it
//  becomes readable. Then says goodbye (broker_shutdown). Returns 0, or -1
//  with errno when polling failed for good (e.g. ETERM: context terminated).
typedef void (broker_ctl_fn) (broker_t *self, void *arg);
int broker_run (broker_t *self, zsock_t *ctl_sock, int ctl_fd, broker_ctl_fn *on_ctl, void *arg);

//  One turn of the loop without extra sockets: wait up to msecs for messages,
//  handle all that wait, do due time-driven work. For tests and embedding.
void broker_poll (broker_t *self, int msecs);

//  Ask broker_run to return.
void broker_stop (broker_t *self);

//  Graceful goodbye: DISCONNECT to every worker, 503 to every pending request.
void broker_shutdown (broker_t *self);

//  Handle one message of count frames as read from the ROUTER (frames[0] is
//  the routing id). Takes every frame: each is moved on or closed.
void broker_handle (broker_t *self, zmq_msg_t *frames, size_t count);

//  Do the time-driven work due at now (zclock_mono msecs): expiry, heartbeats.
//  Returns the time of the next due work.
int64_t broker_tick (broker_t *self, int64_t now);

//  Counters since start.
const broker_stats_t *broker_stats (broker_t *self);

//  Numbers of services, workers and queued requests right now.
void broker_counts (broker_t *self, size_t *services, size_t *workers, size_t *queued);

//  A zactor body running a broker in a thread, for tests: args points to a
//  broker_actor_args_t. Signals 0 when bound (-1 if the bind failed); answers
//  "ENDPOINT" with the bound endpoint; "$TERM" stops it gracefully.
typedef struct {
    const char *endpoint;       //  to bind; NULL means tcp://127.0.0.1:*
    const broker_config_t *cfg; //  NULL means the defaults
} broker_actor_args_t;
void broker_actor (zsock_t *pipe, void *args);

#endif
