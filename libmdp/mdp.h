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
//  mdp_client_t: a blocking MDP/0.1 client (one request at a time).

typedef struct _mdp_client_t mdp_client_t;

//  Create a client that connects to the broker at endpoint. NULL on error.
MDP_EXPORT mdp_client_t *mdp_client_new (const char *endpoint);

//  Destroy the client and NULL the caller's pointer. Accepts NULL.
MDP_EXPORT void mdp_client_destroy (mdp_client_t **self_p);

//  How long to wait for each attempt's reply, in msecs (default 2500). The
//  broker is told the same figure as the request's deadline.
MDP_EXPORT void mdp_client_set_timeout (mdp_client_t *self, int msecs);

//  How many attempts in all before giving up (default 3; at least 1). Each
//  retry goes out on a fresh socket, so a late reply to an earlier attempt is
//  never taken for the answer.
MDP_EXPORT void mdp_client_set_retries (mdp_client_t *self, int retries);

//  Send the request to service and wait for the reply. Takes ownership of the
//  request and NULLs the caller's pointer. Returns the reply (the caller owns
//  it; an "mdp.error" reply is a reply, see mdp_msg_is_error), or NULL with
//  errno EAGAIN when every attempt timed out, EINTR when interrupted, EPROTO
//  when the broker's answer was malformed, EINVAL on bad arguments.
MDP_EXPORT mdp_msg_t *mdp_client_request (mdp_client_t *self, const char *service,
                                          mdp_msg_t **request_p);

//  Ask the broker whether service has a worker (MMI mmi.service). Returns 1
//  if it has, 0 if not, -1 with errno on failure (as mdp_client_request).
MDP_EXPORT int mdp_client_has_service (mdp_client_t *self, const char *service);

//  ---------------------------------------------------------------------------
//  mdp_worker_t: an MDP/0.1 worker for one service. The socket lives in a
//  background thread that heartbeats and reconnects while the hook runs in
//  the caller's thread.

typedef struct _mdp_worker_t mdp_worker_t;

//  The on_request hook. Called with the decoded request, which stays owned by
//  the worker. Returns the reply, which the worker takes ownership of and
//  sends, or NULL to send no reply.
typedef mdp_msg_t *(mdp_worker_fn) (mdp_worker_t *worker, mdp_msg_t *request, void *arg);

//  Create a worker for service on the broker at endpoint. NULL with errno
//  EINVAL if endpoint or service is NULL or empty, service is longer than
//  255 bytes, or service starts with "mmi." (reserved for the broker).
MDP_EXPORT mdp_worker_t *mdp_worker_new (const char *endpoint, const char *service);

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
//  and 5000). Each wait doubles, plus up to 25% random jitter.
MDP_EXPORT void mdp_worker_set_reconnect (mdp_worker_t *self, int initial_msecs, int max_msecs);

//  Serve requests until interrupted (SIGINT/SIGTERM through czmq) or until
//  mdp_worker_stop. Returns 0, or -1 with errno on a fatal error.
MDP_EXPORT int mdp_worker_run (mdp_worker_t *self);

//  Ask mdp_worker_run to return after the current request. Safe to call
//  from the hook or from any thread.
MDP_EXPORT void mdp_worker_stop (mdp_worker_t *self);

//  For callers with their own poll loop: the socket that becomes readable
//  when a request waits; then call mdp_worker_process. The worker owns it.
MDP_EXPORT zsock_t *mdp_worker_socket (mdp_worker_t *self);

//  Take one waiting request (if any), call the hook and send its reply.
//  Returns 0, or -1 with errno EAGAIN when nothing was waiting.
MDP_EXPORT int mdp_worker_process (mdp_worker_t *self);

//  The service this worker offers; the worker owns the string.
MDP_EXPORT const char *mdp_worker_service (mdp_worker_t *self);

#ifdef __cplusplus
}
#endif

#endif
