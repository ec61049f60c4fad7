/*  mdp_async_brokers.h - the brokers one mdp_async_t knows (spec/ha.md): which
    one a request goes to, which are dead, failover of a request to the next,
    and the probes that bring a dead one back. Private to libmdp: mdp_async.c
    embeds an mdp_async_brokers_t and owns the socket these functions use.
*/
#ifndef MDP_ASYNC_BROKERS_H_INCLUDED
#define MDP_ASYNC_BROKERS_H_INCLUDED

#include "mdp.h"
#include "mdp_curve.h"

#define MDP_ASYNC_BROKERS_MAX 16 //  brokers one client may know

//  One broker the client knows.
typedef struct {
    char *endpoint;      //  owned
    char rid[4];         //  the routing id its connection gets ("p" + letter)
    bool dead;           //  a request there went unanswered (or 503)
    bool probing;        //  a probe is in flight
    int backoff;         //  msecs between probes while dead
    int64_t probe_at;    //  when to probe next (dead, not probing)
    int64_t probe_until; //  when the probe in flight counts as lost
    int64_t answered_at; //  zclock_mono time of its last message, 0 never
} mdp_async_brokers_peer_t;

//  All of them, in the order given. With more than one the socket is a ROUTER.
typedef struct {
    mdp_async_brokers_peer_t peers[MDP_ASYNC_BROKERS_MAX]; //  the brokers
    size_t size;                                           //  brokers in peers
} mdp_async_brokers_t;

//  Add one broker, its endpoint being the first size bytes of text. 0, or -1
//  with errno EINVAL (empty, or too many) or ENOMEM.
int mdp_async_brokers_add (mdp_async_brokers_t *self, const char *text, size_t size);

//  Forget the broker added last (its endpoint was refused).
void mdp_async_brokers_drop_last (mdp_async_brokers_t *self);

//  Free what the brokers own; self may then be dropped.
void mdp_async_brokers_clear (mdp_async_brokers_t *self);

//  A new socket connected to every broker, with curve's keys: a DEALER for
//  one, a ROUTER that names each connection for several. NULL with errno.
zsock_t *mdp_async_brokers_socket_new (mdp_async_brokers_t *self, const mdp_curve_t *curve);

//  Send msg on sock to broker peer (on a ROUTER, after its routing id). 0 and
//  *msg_p NULLed, or -1 with msg left as it was.
int mdp_async_brokers_send (mdp_async_brokers_t *self, zsock_t *sock, size_t peer, zmsg_t **msg_p);

//  The broker for a request that tried those in tried (a bit each): one not
//  tried if any, live before dead, then the one that answered last, then the
//  first given.
size_t mdp_async_brokers_pick (mdp_async_brokers_t *self, uint32_t tried);

//  Pop the routing id of a message read from sock (several brokers) and
//  return whose it is, -1 if none of ours. With one broker, 0.
int mdp_async_brokers_reply_peer (mdp_async_brokers_t *self, zmsg_t *msg);

//  Broker peer spoke: it lives.
void mdp_async_brokers_mark_alive (mdp_async_brokers_t *self, size_t peer);

//  A request sent to *peer failed there (silence or 503): mark that broker
//  dead and send msg (a copy; the caller keeps msg, which may be NULL) to a
//  broker not in *tried. 0 with *peer and *tried updated, or -1 when that may
//  not be (one broker, no copy, every broker tried, or the send failed).
int mdp_async_brokers_failover (mdp_async_brokers_t *self, zsock_t *sock, zmsg_t *msg, size_t *peer,
                                uint32_t *tried);

//  True when some broker is dead (and so has probes due some time).
bool mdp_async_brokers_any_dead (mdp_async_brokers_t *self);

//  Send a copy of probe (the caller keeps it; NULL counts as a failed send)
//  to each dead broker whose probe is due, and give up on lost probes,
//  doubling the back-off. timeout: msecs a probe may take.
void mdp_async_brokers_probe_tick (mdp_async_brokers_t *self, zsock_t *sock, zmsg_t *probe,
                                   int timeout);

//  The earliest of due and the dead brokers' next probe times (zclock_mono);
//  due < 0 means nothing yet. Returns -1 when nothing is due.
int64_t mdp_async_brokers_next_due (mdp_async_brokers_t *self, int64_t due);

#endif
