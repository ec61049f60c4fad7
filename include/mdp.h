/*  mdp.h - the one public header of libmdp, a Majordomo (MDP/0.1, RFC 7) toolkit.

    A message is an action string plus cJSON data (the Domogik body convention:
    frame 1 the action, frame 2 the JSON). A blocking client sends one request and
    waits for its reply; a worker registers a service and answers requests through
    an on_request hook. See spec/mdp.md for what goes on the wire.
*/
#ifndef MDP_H_INCLUDED
#define MDP_H_INCLUDED

#include <cjson/cJSON.h>
#include <czmq.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MDP_VERSION_MAJOR 0
#define MDP_VERSION_MINOR 1
#define MDP_VERSION_PATCH 0

#if defined(MDP_BUILDING_LIBRARY)
#define MDP_EXPORT __attribute__ ((visibility ("default")))
#else
#define MDP_EXPORT
#endif

//  Action of every error reply the broker or a worker makes: its data is
//  {"code": N, "reason": "..."} (codes in spec/mdp.md, HTTP-like).
#define MDP_ERROR_ACTION "mdp.error"

//  Defaults, in milliseconds unless named otherwise.
#define MDP_DEFAULT_ENDPOINT "tcp://127.0.0.1:5555"
#define MDP_DEFAULT_HEARTBEAT 2500
#define MDP_DEFAULT_LIVENESS 3
#define MDP_DEFAULT_TIMEOUT 2500
#define MDP_DEFAULT_RETRIES 3

//  ---------------------------------------------------------------------------
//  mdp_msg_t: one Domogik-style body, an action plus JSON data.

typedef struct _mdp_msg_t mdp_msg_t;

//  Create a message. Takes ownership of data (may be NULL: the data is then
//  an empty object). Returns NULL with errno EINVAL if action is NULL or empty.
MDP_EXPORT mdp_msg_t *mdp_msg_new (const char *action, cJSON *data);

//  Create an error message: action "mdp.error", data {"code": code,
//  "reason": reason}. Never NULL except on out of memory.
MDP_EXPORT mdp_msg_t *mdp_msg_new_error (int code, const char *reason);

//  Destroy a message and NULL the caller's pointer. Accepts NULL.
MDP_EXPORT void mdp_msg_destroy (mdp_msg_t **self_p);

//  Return a deep copy of the message, or NULL on out of memory.
MDP_EXPORT mdp_msg_t *mdp_msg_dup (const mdp_msg_t *self);

//  Return the action; the message owns it.
MDP_EXPORT const char *mdp_msg_action (const mdp_msg_t *self);

//  Return the data; the message owns it and the caller may modify it in place.
MDP_EXPORT cJSON *mdp_msg_data (const mdp_msg_t *self);

//  Replace the data, taking ownership of data (NULL means an empty object).
MDP_EXPORT void mdp_msg_set_data (mdp_msg_t *self, cJSON *data);

//  True when the action is "mdp.error".
MDP_EXPORT bool mdp_msg_is_error (const mdp_msg_t *self);

//  The "code" of an error message, or 0 if it is not an error message or has none.
MDP_EXPORT int mdp_msg_error_code (const mdp_msg_t *self);

//  Encode as body frames [action][json], appended to msg (which the caller owns).
//  Returns 0, or -1 on out of memory.
MDP_EXPORT int mdp_msg_encode (const mdp_msg_t *self, zmsg_t *msg);

//  Decode body frames [action][json] (or [action] alone, taken as empty data):
//  the whole of msg, which holds just the body; its frames are not modified
//  (its cursor moves). Returns a new message, or NULL with errno EPROTO if the
//  frames are not an action frame followed by at most one valid JSON frame.
MDP_EXPORT mdp_msg_t *mdp_msg_decode (zmsg_t *msg);

//  Render as one JSON object {"action": "...", "data": ...}, unformatted.
//  The caller frees the string with free (). NULL on out of memory.
MDP_EXPORT char *mdp_msg_to_json (const mdp_msg_t *self);

//  ---------------------------------------------------------------------------
//  mdp_json: JSON that passes through unchanged (spec/mdp.md, "Data fidelity").

//  Parse size bytes of text (no NUL needed) as exactly one JSON value (RFC
//  8259, whitespace around it allowed; strings valid UTF-8 without \u0000;
//  nesting up to CJSON_NESTING_LIMIT). Every number item keeps its source
//  text in valuestring. Returns a tree the caller deletes with cJSON_Delete,
//  or NULL with errno EINVAL on invalid input (ENOMEM is reported as EINVAL).
MDP_EXPORT cJSON *mdp_json_parse (const char *text, size_t size);

//  Print item unformatted, like cJSON_PrintUnformatted, except that a number
//  prints as its kept source text while that text still denotes the item's
//  value (after cJSON_SetNumberValue it prints the new value as cJSON would).
//  The caller frees the string with free () (cJSON's default allocator; libmdp
//  never installs cJSON hooks). NULL with errno EINVAL or ENOMEM.
MDP_EXPORT char *mdp_json_print (const cJSON *item);

//  ---------------------------------------------------------------------------
//  mdp_client_t: a blocking MDP/0.1 client (one request at a time).

typedef struct _mdp_client_t mdp_client_t;

//  Create a client that connects to the broker at endpoint. NULL on error.
//  endpoint may list several brokers, comma-separated ("tcp://a:5555,
//  tcp://b:5555", at most 16): each request then goes to one live broker and
//  moves on to the next when that one is silent for the timeout or answers
//  503 (spec/ha.md: a worker may see a request twice; the caller gets one
//  reply). With one endpoint nothing changes: no probe, no extra frame.
MDP_EXPORT mdp_client_t *mdp_client_new (const char *endpoint);

//  Add one more broker to fail over to (one endpoint, no comma). Returns 0,
//  or -1 with errno EINVAL (bad endpoint, or already 16 brokers).
MDP_EXPORT int mdp_client_add_endpoint (mdp_client_t *self, const char *endpoint);

//  Destroy the client and NULL the caller's pointer. Accepts NULL.
MDP_EXPORT void mdp_client_destroy (mdp_client_t **self_p);

//  How long to wait for each attempt's reply, in msecs (default 2500). The
//  broker is told the same figure as the request's deadline.
MDP_EXPORT void mdp_client_set_timeout (mdp_client_t *self, int msecs);

//  How many attempts in all before giving up (default 3; at least 1; with
//  several brokers at least one per broker). Each retry goes out on a fresh
//  socket, so a late reply to an earlier attempt is never taken for the
//  answer; with several brokers each retry goes to the next broker.
MDP_EXPORT void mdp_client_set_retries (mdp_client_t *self, int retries);

//  Send the request to service and wait for the reply. Takes ownership of the
//  request and NULLs the caller's pointer. Returns the reply (the caller owns
//  it; an "mdp.error" reply is a reply, see mdp_msg_is_error), or NULL with
//  errno EAGAIN when every attempt timed out, EINTR when interrupted, EPROTO
//  when the broker's answer was malformed, EINVAL on bad arguments.
MDP_EXPORT mdp_msg_t *mdp_client_request (mdp_client_t *self, const char *service,
                                          mdp_msg_t **request_p);

//  Called by mdp_client_request_stream with each partial reply, in order.
//  The partial stays owned by the client and is valid during the call only.
typedef void (mdp_client_stream_fn) (mdp_msg_t *partial, void *arg);

//  Like mdp_client_request, but speaks MDP/0.2 (MDPC02): fn (partial, arg) is
//  called with every partial reply as it arrives, and the final reply is
//  returned. The timeout covers the whole response: it restarts with each
//  partial. A request is retried only while no partial has arrived, so fn
//  never sees a partial twice. fn may be NULL (partials are then dropped).
MDP_EXPORT mdp_msg_t *mdp_client_request_stream (mdp_client_t *self, const char *service,
                                                 mdp_msg_t **request_p, mdp_client_stream_fn *fn,
                                                 void *arg);

//  Speak CURVE to the broker: server_key is its public key (40-char Z85),
//  cert_path our certificate in czmq's format (mdp-keygen writes one; its
//  "_secret" file must be readable by its owner only). Call before the first
//  request. Returns 0, or -1 with errno EINVAL (a key that does not decode,
//  or a certificate whose public key is not its secret key's), ENOENT
//  (unreadable certificate) or EACCES (a _secret file group or others may
//  read); certificate faults are logged with the file's name.
MDP_EXPORT int mdp_client_set_curve (mdp_client_t *self, const char *server_key,
                                     const char *cert_path);

//  Ask the broker's management interface (RFC 8): service is an mmi.* name
//  (mmi.service, mmi.services, mmi.workers, mmi.stats), arg its one body frame
//  (a service name for mmi.service, "all" for the others). Retried like
//  mdp_client_request. Returns the answer's one frame as a string the caller
//  frees with free () ("200"/"404", a comma list, a JSON object, or "501" for
//  an unknown name), or NULL with errno EAGAIN (no answer), EINTR, EINVAL (not
//  an mmi.* name, NULL arg) or EPROTO (an answer of several frames).
MDP_EXPORT char *mdp_client_mmi (mdp_client_t *self, const char *service, const char *arg);

//  Ask the broker whether service has a worker (MMI mmi.service). Returns 1
//  if it has, 0 if not, -1 with errno on failure (as mdp_client_request).
MDP_EXPORT int mdp_client_has_service (mdp_client_t *self, const char *service);

//  ---------------------------------------------------------------------------
//  mdp_worker_t: an MDP/0.1 (or MDP/0.2) worker for one service. The hook
//  runs in the thread that calls mdp_worker_run or mdp_worker_process, and
//  that thread owns the broker socket while it serves: a request and its
//  reply take no inter-thread hop. While the hook runs (for minutes if it
//  must), a helper thread takes the socket over under a mutex: it sends the
//  HEARTBEATs, reads the broker's, and reconnects if the broker falls silent
//  (the request in hand is then forgotten: its reply could reach nobody).
//  Between calls the helper keeps the connection alive and makes
//  mdp_worker_socket readable when a request waits.

typedef struct _mdp_worker_t mdp_worker_t;

//  The on_request hook. Called with the decoded request, which stays owned by
//  the worker. Returns the reply, which the worker takes ownership of and
//  sends, or NULL to send no reply.
typedef mdp_msg_t *(mdp_worker_fn)(mdp_worker_t *worker, mdp_msg_t *request, void *arg);

//  Create a worker for service on the broker at endpoint, or on each broker
//  of a comma-separated list ("tcp://a:5555,tcp://b:5555"; at most 16). The
//  worker registers with every broker (one connection each, each with its
//  own heartbeating and reconnect) and serves their requests one at a time:
//  a request from one broker waits while the hook serves another's. NULL
//  with errno EINVAL if endpoint or service is NULL or empty, the list has
//  an empty item or a duplicate, service is longer than 255 bytes, or
//  service starts with "mmi." (reserved for the broker).
MDP_EXPORT mdp_worker_t *mdp_worker_new (const char *endpoint, const char *service);

//  Add one more broker endpoint (or a comma-separated list of them), as in
//  mdp_worker_new. Call before the worker first connects. Returns 0, or -1
//  with errno EINVAL (started, empty item, duplicate, more than 16 in all;
//  then nothing is added).
MDP_EXPORT int mdp_worker_add_endpoint (mdp_worker_t *self, const char *endpoint);

//  Disconnect from the broker, destroy the worker and NULL the caller's
//  pointer. Accepts NULL.
MDP_EXPORT void mdp_worker_destroy (mdp_worker_t **self_p);

//  Set the on_request hook and its argument. Without a hook every request
//  gets an "mdp.error" 501 reply.
MDP_EXPORT void mdp_worker_set_handler (mdp_worker_t *self, mdp_worker_fn *fn, void *arg);

//  Set heartbeat interval (msecs) and liveness (missed heartbeats before the
//  broker counts as gone). Must match the broker's. Call before the first
//  mdp_worker_run or mdp_worker_process.
MDP_EXPORT void mdp_worker_set_heartbeat (mdp_worker_t *self, int msecs, int liveness);

//  Set the reconnect back-off: first wait and cap, in msecs (defaults 250
//  and 5000). Losing a broker the worker was registered with reconnects at
//  once; each further failure doubles the wait, capped at the smaller of
//  max_msecs and the heartbeat interval, plus up to 25% random jitter.
MDP_EXPORT void mdp_worker_set_reconnect (mdp_worker_t *self, int initial_msecs, int max_msecs);

//  Serve requests until interrupted (SIGINT/SIGTERM through czmq) or until
//  mdp_worker_stop. Returns 0, or -1 with errno on a fatal error.
MDP_EXPORT int mdp_worker_run (mdp_worker_t *self);

//  Ask mdp_worker_run to return after the current request. Safe to call
//  from the hook or from any thread (it sets a flag and wakes the run loop).
MDP_EXPORT void mdp_worker_stop (mdp_worker_t *self);

//  For callers with their own poll loop: a socket that becomes readable
//  when a request waits (a notice from the helper thread, not the broker
//  socket itself); then call mdp_worker_process. The worker owns it. Starts
//  the worker (connects) on the first call; NULL with errno if it cannot.
MDP_EXPORT zsock_t *mdp_worker_socket (mdp_worker_t *self);

//  Take one waiting request (if any), call the hook and send its reply.
//  Returns 0, or -1 with errno EAGAIN when nothing was waiting.
MDP_EXPORT int mdp_worker_process (mdp_worker_t *self);

//  The service this worker offers; the worker owns the string.
MDP_EXPORT const char *mdp_worker_service (mdp_worker_t *self);

//  Speak CURVE to the broker, as mdp_client_set_curve. Call before the
//  worker first connects. Returns 0, or -1 with errno.
MDP_EXPORT int mdp_worker_set_curve (mdp_worker_t *self, const char *server_key,
                                     const char *cert_path);

//  Choose the worker protocol: 1 for MDPW01 (the default, understood by every
//  MDP/0.1 broker) or 2 for MDPW02 (RFC 18, needed for partial replies).
//  Call before the worker first connects. Returns 0, or -1 with EINVAL.
MDP_EXPORT int mdp_worker_set_protocol (mdp_worker_t *self, int version);

//  From inside the on_request hook only: send a partial reply to the current
//  request, taking ownership of *msg_p and NULLing it. The hook's return
//  value is then the final reply. Returns 0, or -1 with errno EPROTO if the
//  worker speaks MDPW01, EINVAL if no request is being handled.
MDP_EXPORT int mdp_worker_send_partial (mdp_worker_t *self, mdp_msg_t **msg_p);

//  ---------------------------------------------------------------------------
//  mdp_async_t: an asynchronous client. Any number of requests in flight on
//  one DEALER socket; each gets an id carried in a correlation frame before
//  the empty delimiter, so every reply, partial or final, is matched to its
//  request. Speaks MDP/0.2 (MDPC02); against an MDPW01 worker the only reply
//  is the final one.

typedef struct _mdp_async_t mdp_async_t;

//  Called once per partial reply (final false) and once at the end (final
//  true). reply is the reply, owned by the client and valid during the call;
//  it is NULL when the request timed out (status ETIMEDOUT) or its final
//  reply was malformed (status EPROTO). Each request gets exactly one call
//  with final true.
typedef void (mdp_async_fn) (mdp_async_t *self, uint64_t request_id, mdp_msg_t *reply, bool final,
                             int status, void *arg);

//  Create an async client connected to the broker at endpoint. NULL on error.
//  endpoint may list several brokers, comma-separated (at most 16), as for
//  mdp_client_new: a request goes to one live broker (the one that answered
//  last) and, when that one is silent for the timeout or answers 503 before
//  any partial reply, to the next; only the broker a request was last sent
//  to may answer it, so each request still gets exactly one final call. The
//  socket is then a ROUTER naming each broker's connection (same frames on
//  the wire); dead brokers are probed (mmi.service) with back-off from
//  mdp_async_process / mdp_async_recv, which mdp_async_next_timeout counts.
MDP_EXPORT mdp_async_t *mdp_async_new (const char *endpoint);

//  Add one more broker (one endpoint, no comma). Call while no request is in
//  flight: the socket is made anew (and moved over in an attached zloop;
//  take mdp_async_socket again). Returns 0, or -1 with errno EINVAL (bad
//  endpoint, requests in flight, or already 16 brokers).
MDP_EXPORT int mdp_async_add_endpoint (mdp_async_t *self, const char *endpoint);

//  Destroy the client and NULL the caller's pointer; requests still in flight
//  are forgotten without calls. Accepts NULL.
MDP_EXPORT void mdp_async_destroy (mdp_async_t **self_p);

//  Set the reply callback and its argument (used by mdp_async_process and
//  the zloop driver; mdp_async_recv does not need one).
MDP_EXPORT void mdp_async_set_handler (mdp_async_t *self, mdp_async_fn *fn, void *arg);

//  Timeout in msecs for requests sent from now on (default 2500); each
//  partial reply restarts it. A reply arriving after its request timed out
//  is discarded. With several brokers it applies to each broker tried.
MDP_EXPORT void mdp_async_set_timeout (mdp_async_t *self, int msecs);

//  Speak CURVE to the broker, as mdp_client_set_curve; the connection is
//  made again with the keys. Call before the first request. Returns 0, or -1
//  with errno.
MDP_EXPORT int mdp_async_set_curve (mdp_async_t *self, const char *server_key,
                                    const char *cert_path);

//  Send a request to service, taking ownership of *request_p and NULLing it.
//  Returns the request id (never 0), or 0 with errno EINVAL on bad arguments,
//  EAGAIN when the socket's send queue (1000 messages) is full.
MDP_EXPORT uint64_t mdp_async_send (mdp_async_t *self, const char *service, mdp_msg_t **request_p);

//  Number of requests in flight (sent, final reply not yet seen).
MDP_EXPORT size_t mdp_async_pending (mdp_async_t *self);

//  Poll-style use, for programs with their own loop: the socket that becomes
//  readable when replies wait (the client owns it), and the msecs until the
//  earliest request times out (-1 when none is in flight).
MDP_EXPORT zsock_t *mdp_async_socket (mdp_async_t *self);
MDP_EXPORT int mdp_async_next_timeout (mdp_async_t *self);

//  Handle every reply waiting on the socket and every request whose timeout
//  has passed, calling the handler for each (without a handler, they wait
//  for mdp_async_recv). Returns the number of calls.
MDP_EXPORT int mdp_async_process (mdp_async_t *self);

//  Wait up to msecs (-1: forever) for the next event, without a handler.
//  Returns the reply (the caller owns it), with *request_id and *final set.
//  Returns NULL with *request_id set, *final true and errno ETIMEDOUT when a
//  request timed out, or EPROTO when its final reply was malformed; NULL with
//  EAGAIN when nothing happened in msecs, EINTR when interrupted.
MDP_EXPORT mdp_msg_t *mdp_async_recv (mdp_async_t *self, uint64_t *request_id, bool *final,
                                      int msecs);

//  Callback-style use: register the client's socket and a timer with a zloop
//  the caller owns and runs; the handler is then called from that loop.
//  Returns 0, or -1 with errno. mdp_async_destroy detaches the client: call it
//  before zloop_destroy, and not from a timer handler that lets the loop go on.
MDP_EXPORT int mdp_async_attach (mdp_async_t *self, zloop_t *loop);

//  ---------------------------------------------------------------------------
//  mdp_publisher_t, mdp_subscriber_t: Domogik-style events through the
//  broker's forwarder (mdp-broker --pub-endpoint, --sub-endpoint). An event is
//  a category such as "plugin.status" plus JSON data; subscribers choose
//  events by category prefix. spec/pubsub.md has the frames and the sync.

//  Defaults, in milliseconds unless named otherwise.
#define MDP_DEFAULT_PUB_ENDPOINT "tcp://127.0.0.1:5556"
#define MDP_DEFAULT_SUB_ENDPOINT "tcp://127.0.0.1:5557"
#define MDP_DEFAULT_SYNC_TIMEOUT 1000

typedef struct _mdp_publisher_t mdp_publisher_t;

//  Create a publisher connected to the forwarder's publisher side at
//  endpoint; it does not wait. NULL with errno EINVAL on a bad endpoint.
MDP_EXPORT mdp_publisher_t *mdp_publisher_new (const char *endpoint);

//  Speak CURVE to the forwarder of a broker with CURVE on, as
//  mdp_client_set_curve (the broker's public key, our certificate); the
//  connection is made again with the keys. Call before the first send.
//  Returns 0, or -1 with errno as mdp_client_set_curve.
MDP_EXPORT int mdp_publisher_set_curve (mdp_publisher_t *self, const char *server_key,
                                        const char *cert_path);

//  Destroy the publisher and NULL the caller's pointer; events not yet sent
//  get up to a second to leave at exit. Accepts NULL.
MDP_EXPORT void mdp_publisher_destroy (mdp_publisher_t **self_p);

//  How long the first mdp_publisher_send may wait for the forwarder, in
//  msecs (default 1000; 0 never waits).
MDP_EXPORT void mdp_publisher_set_sync_timeout (mdp_publisher_t *self, int msecs);

//  Publish one event: category (e.g. "plugin.status") and data, which stays
//  the caller's (NULL sends {}). The first call waits, at most the sync
//  timeout, until the forwarder has taken the connection; from then on every
//  subscriber whose mdp_subscriber_subscribe has returned gets the event.
//  Returns 0, or -1 with errno EINVAL (category not valid, or reserved:
//  "mdp.sync..."), EAGAIN (no forwarder connected: the event is lost), ENOMEM.
MDP_EXPORT int mdp_publisher_send (mdp_publisher_t *self, const char *category, const cJSON *data);

typedef struct _mdp_subscriber_t mdp_subscriber_t;

//  The event hook: category without timestamp or version, and the data,
//  both owned by the subscriber and valid during the call only.
typedef void (mdp_subscriber_fn) (mdp_subscriber_t *self, const char *category, cJSON *data,
                                  void *arg);

//  Create a subscriber connected to the forwarder's subscriber side at
//  endpoint, subscribed to nothing yet. NULL with errno EINVAL on a bad endpoint.
MDP_EXPORT mdp_subscriber_t *mdp_subscriber_new (const char *endpoint);

//  Speak CURVE to the forwarder, as mdp_publisher_set_curve. Call before the
//  first subscribe. A subscription the broker's subscribe rules refuse is
//  dropped there: no event of it arrives.
MDP_EXPORT int mdp_subscriber_set_curve (mdp_subscriber_t *self, const char *server_key,
                                         const char *cert_path);

//  Destroy the subscriber and NULL the caller's pointer. Accepts NULL.
MDP_EXPORT void mdp_subscriber_destroy (mdp_subscriber_t **self_p);

//  How long mdp_subscriber_subscribe waits for the forwarder, in msecs
//  (default 1000).
MDP_EXPORT void mdp_subscriber_set_sync_timeout (mdp_subscriber_t *self, int msecs);

//  Receive events whose category starts with prefix ("" for all, "plugin."
//  for plugin.status and plugin.list). Returns 0 once the forwarder holds the
//  subscription: every event published after that is delivered. -1 with
//  errno EAGAIN when the forwarder did not confirm within the sync timeout
//  (the subscription stays in force and events flow once it is reached),
//  EINVAL on a NULL prefix. Events that arrive meanwhile are queued for
//  mdp_subscriber_recv / mdp_subscriber_process.
MDP_EXPORT int mdp_subscriber_subscribe (mdp_subscriber_t *self, const char *prefix);

//  Stop receiving events for a prefix given to mdp_subscriber_subscribe.
//  Returns 0, or -1 with errno EINVAL.
MDP_EXPORT int mdp_subscriber_unsubscribe (mdp_subscriber_t *self, const char *prefix);

//  Wait up to msecs (-1: forever) for the next event. Returns 0 with
//  *category_p (free () it) and *data_p (cJSON_Delete it) set, or -1 with
//  errno EAGAIN when none came, EINTR when interrupted.
MDP_EXPORT int mdp_subscriber_recv (mdp_subscriber_t *self, char **category_p, cJSON **data_p,
                                    int msecs);

//  Set the hook mdp_subscriber_process calls with each event.
MDP_EXPORT void mdp_subscriber_set_handler (mdp_subscriber_t *self, mdp_subscriber_fn *fn,
                                            void *arg);

//  For callers with their own poll loop: the socket that becomes readable
//  when events wait; then call mdp_subscriber_process. Also call it once
//  after each mdp_subscriber_subscribe, whose queued events do not make the
//  socket readable. The subscriber owns the socket.
MDP_EXPORT zsock_t *mdp_subscriber_socket (mdp_subscriber_t *self);

//  Call the hook for every event waiting (queued by a subscribe, or on the
//  socket) without blocking. Returns the number of calls, or -1 with errno
//  EINVAL when no hook is set.
MDP_EXPORT int mdp_subscriber_process (mdp_subscriber_t *self);

//  Events dropped since creation because they were malformed: not two
//  frames, a topic not category.timestamp.version, or data not valid JSON.
MDP_EXPORT uint64_t mdp_subscriber_dropped (mdp_subscriber_t *self);

#ifdef __cplusplus
}
#endif

#endif
