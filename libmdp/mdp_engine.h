/*  mdp_engine.h - the worker protocol engine: one MDPW01 or MDPW02 connection
    to a broker, with no thread and no clock of its own. Its owner polls the
    socket, passes "now" (zclock_mono msecs) to every call, and calls tick when
    the timeout runs out. mdp_worker_t and the AMQP bridge's slots are built on
    it. Private to libmdp and the bridge; nothing the broker sends can assert.
*/
#ifndef MDP_ENGINE_H_INCLUDED
#define MDP_ENGINE_H_INCLUDED

#include "mdp.h"
#include "mdp_curve.h"
#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct _mdp_engine_t mdp_engine_t;

//  Create an engine for service at endpoint speaking version (1 or 2). It is
//  closed (no socket) until mdp_engine_connect. name prefixes its log lines
//  ("mdp_worker", "amqp-bridge: svc"). NULL with errno EINVAL or ENOMEM.
mdp_engine_t *mdp_engine_new (const char *endpoint, const char *service, int version,
                              const char *name);

//  Close (DISCONNECT first if connected), destroy and NULL the pointer.
void mdp_engine_destroy (mdp_engine_t **self_p);

//  Heartbeat interval and liveness; takes effect at once (the next
//  HEARTBEAT is never later than now + msecs).
void mdp_engine_set_heartbeat (mdp_engine_t *self, int msecs, int liveness, int64_t now);

//  Reconnect back-off: first wait and cap, msecs.
void mdp_engine_set_reconnect (mdp_engine_t *self, int initial_msecs, int max_msecs);

//  CURVE keys applied to each new socket (copied).
void mdp_engine_set_curve (mdp_engine_t *self, const mdp_curve_t *curve);

//  Open a DEALER and send READY; from now on the engine reconnects by itself
//  until mdp_engine_close. 0, or -1 (then it retries after the back-off).
int mdp_engine_connect (mdp_engine_t *self, int64_t now);

//  Close the socket (with DISCONNECT if goodbye) and stay closed ("parked")
//  until mdp_engine_connect. Forgets the held and the current request.
void mdp_engine_close (mdp_engine_t *self, bool goodbye);

//  The DEALER to poll, or NULL while closed or waiting to reconnect. It
//  changes on every reconnect: poll what this returns after each call.
zsock_t *mdp_engine_socket (mdp_engine_t *self);

//  Msecs until mdp_engine_tick has work to do, or -1 if never (parked).
int mdp_engine_timeout (mdp_engine_t *self, int64_t now);

//  All time-driven work: broker expiry, HEARTBEAT out, reconnecting.
void mdp_engine_tick (mdp_engine_t *self, int64_t now);

//  Read and handle every message waiting on the socket, without blocking:
//  HEARTBEAT, DISCONNECT (reconnect), REQUEST (held until taken), anything
//  malformed is logged and dropped. Returns true if a request is held.
bool mdp_engine_recv (mdp_engine_t *self, int64_t now);

//  Handle one message from the broker (routing id already stripped), taking
//  it. For owners that read the socket themselves. True if a request is held.
bool mdp_engine_handle (mdp_engine_t *self, zmsg_t **msg_p, int64_t now);

//  True if a request has been received and not yet taken.
bool mdp_engine_held (mdp_engine_t *self);

//  Take the held request: returns its body frames (the caller owns them) and
//  makes it the current request, which replies go to. NULL if none is held.
//  A current request not yet finished is forgotten.
zmsg_t *mdp_engine_take (mdp_engine_t *self);

//  mdp_engine_take and mdp_msg_decode in one, straight from the frames the
//  request came in (the worker's hot path: no zmsg, no copy of the body).
//  The request becomes the current one whatever its body. Returns the
//  decoded body (the caller owns it), or NULL with errno EAGAIN (none held),
//  EPROTO (a body that is not [action][json]: answer it with an error) or
//  ENOMEM (the request is dropped).
mdp_msg_t *mdp_engine_take_msg (mdp_engine_t *self);

//  True while there is a current request (taken, no final reply yet).
bool mdp_engine_busy (mdp_engine_t *self);

//  Send body (taken; NULL sends an empty body) to the current request as a
//  partial (MDPW02 only) or the final reply; final ends the request. 0, or -1
//  with errno EINVAL (no current request: none taken, already finished, or
//  the connection it came on is gone), EPROTO (partial on MDPW01), EAGAIN
//  (not sent: send queue full).
int mdp_engine_reply (mdp_engine_t *self, zmsg_t **body_p, bool final);

//  mdp_engine_reply with msg encoded as mdp_msg_encode would, sent straight
//  from its action and JSON text; msg stays the caller's. Same errors, and
//  ENOMEM when msg cannot be encoded (nothing is sent, the request stays).
int mdp_engine_reply_msg (mdp_engine_t *self, const mdp_msg_t *msg, bool final);

//  Bumps on every new connection and on every request taken: an owner that
//  remembers it can tell whether "its" request is still the current one.
uint64_t mdp_engine_generation (mdp_engine_t *self);

//  The version spoken (1 or 2).
int mdp_engine_version (mdp_engine_t *self);

#endif
