/*  mdp_async_brokers.c - the several-broker part of mdp_async_t (spec/ha.md):
    the list of brokers, the socket that reaches them (a ROUTER naming each
    connection when there are several), the choice of a broker per request,
    failover of a silent or 503 request to the next one, and the mmi.service
    probes, with a doubling back-off, that bring a dead broker back.
*/
#include "mdp_async_brokers.h"
#include <errno.h>
#include <string.h>

#define PROBE_FIRST 250 //  msecs before a dead broker's first probe
#define PROBE_MAX 5000  //  back-off cap between probes, msecs

int mdp_async_brokers_add (mdp_async_brokers_t *self, const char *text, size_t size)
{
    if (size == 0 || self->size == MDP_ASYNC_BROKERS_MAX) {
        errno = EINVAL;
        return -1;
    }
    mdp_async_brokers_peer_t *peer = &self->peers[self->size];
    *peer = (mdp_async_brokers_peer_t){.endpoint = strndup (text, size)};
    if (!peer->endpoint) {
        errno = ENOMEM;
        return -1;
    }
    snprintf (peer->rid, sizeof peer->rid, "p%c", 'a' + (int)self->size);
    self->size++;
    return 0;
}

void mdp_async_brokers_drop_last (mdp_async_brokers_t *self)
{
    if (self->size > 0) {
        self->size--;
        free (self->peers[self->size].endpoint);
        self->peers[self->size].endpoint = NULL;
    }
}

void mdp_async_brokers_clear (mdp_async_brokers_t *self)
{
    for (size_t index = 0; index < self->size; index++)
        free (self->peers[index].endpoint);
    self->size = 0;
}

zsock_t *mdp_async_brokers_socket_new (mdp_async_brokers_t *self, const mdp_curve_t *curve)
{
    zsock_t *sock = zsock_new (self->size > 1 ? ZMQ_ROUTER : ZMQ_DEALER);
    if (!sock) {
        errno = ENOMEM;
        return NULL;
    }
    zsock_set_linger (sock, 0);
    zsock_set_sndtimeo (sock, 0); //  a full pipe fails mdp_async_send, never blocks it
    if (self->size > 1)
        zsock_set_router_mandatory (sock, 1); //  EAGAIN, not a silent drop, when full
    mdp_curve_apply (curve, sock);
    for (size_t index = 0; index < self->size; index++) {
        if (self->size > 1)
            zsock_set_connect_rid (sock, self->peers[index].rid);
        if (zsock_connect (sock, "%s", self->peers[index].endpoint) != 0) {
            zsock_destroy (&sock);
            errno = EINVAL;
            return NULL;
        }
    }
    return sock;
}

int mdp_async_brokers_send (mdp_async_brokers_t *self, zsock_t *sock, size_t peer, zmsg_t **msg_p)
{
    if (self->size > 1 && zmsg_pushstr (*msg_p, self->peers[peer].rid))
        return -1;
    if (zmsg_send (msg_p, sock) == 0)
        return 0;
    if (self->size > 1) {
        zframe_t *rid = zmsg_pop (*msg_p);
        zframe_destroy (&rid);
    }
    return -1;
}

size_t mdp_async_brokers_pick (mdp_async_brokers_t *self, uint32_t tried)
{
    size_t best = 0;
    for (size_t index = 1; index < self->size; index++) {
        mdp_async_brokers_peer_t *peer = &self->peers[index], *top = &self->peers[best];
        bool untried = !(tried & (1u << index)), top_untried = !(tried & (1u << best));
        if (untried != top_untried    ? untried
            : peer->dead != top->dead ? !peer->dead
                                      : peer->answered_at > top->answered_at)
            best = index;
    }
    return best;
}

int mdp_async_brokers_reply_peer (mdp_async_brokers_t *self, zmsg_t *msg)
{
    if (self->size < 2)
        return 0;
    zframe_t *rid = zmsg_pop (msg);
    int peer = rid && zframe_size (rid) == 2 ? zframe_data (rid)[1] - 'a' : -1;
    zframe_destroy (&rid);
    return peer >= 0 && peer < (int)self->size ? peer : -1;
}

void mdp_async_brokers_mark_alive (mdp_async_brokers_t *self, size_t peer)
{
    self->peers[peer].dead = false;
    self->peers[peer].probing = false;
    self->peers[peer].answered_at = zclock_mono ();
}

//  Broker peer failed a request: dead until a probe says otherwise.
static void s_mark_dead (mdp_async_brokers_t *self, mdp_async_brokers_peer_t *peer)
{
    if (self->size > 1 && !peer->dead) {
        peer->dead = true;
        peer->probing = false;
        peer->backoff = PROBE_FIRST;
        peer->probe_at = zclock_mono () + PROBE_FIRST;
    }
}

int mdp_async_brokers_failover (mdp_async_brokers_t *self, zsock_t *sock, zmsg_t *msg, size_t *peer,
                                uint32_t *tried)
{
    s_mark_dead (self, &self->peers[*peer]);
    if (self->size < 2 || !msg)
        return -1;
    size_t next = mdp_async_brokers_pick (self, *tried);
    if (*tried & (1u << next))
        return -1;
    zmsg_t *copy = zmsg_dup (msg);
    if (!copy || mdp_async_brokers_send (self, sock, next, &copy) != 0) {
        zmsg_destroy (&copy);
        return -1;
    }
    *peer = next;
    *tried |= 1u << next;
    return 0;
}

bool mdp_async_brokers_any_dead (mdp_async_brokers_t *self)
{
    for (size_t index = 0; index < self->size; index++)
        if (self->peers[index].dead)
            return true;
    return false;
}

void mdp_async_brokers_probe_tick (mdp_async_brokers_t *self, zsock_t *sock, zmsg_t *probe,
                                   int timeout)
{
    int64_t now = zclock_mono ();
    for (size_t index = 0; index < self->size; index++) {
        mdp_async_brokers_peer_t *peer = &self->peers[index];
        if (!peer->dead)
            continue;
        if (peer->probing && now >= peer->probe_until) {
            peer->probing = false;
            peer->backoff = peer->backoff * 2 < PROBE_MAX ? peer->backoff * 2 : PROBE_MAX;
            peer->probe_at = now + peer->backoff;
        }
        if (peer->probing || now < peer->probe_at)
            continue;
        zmsg_t *msg = probe ? zmsg_dup (probe) : NULL;
        peer->probing = msg && mdp_async_brokers_send (self, sock, index, &msg) == 0;
        zmsg_destroy (&msg);
        peer->probe_until = now + timeout;
        if (!peer->probing)
            peer->probe_at = now + peer->backoff;
    }
}

int64_t mdp_async_brokers_next_due (mdp_async_brokers_t *self, int64_t due)
{
    for (size_t index = 0; index < self->size; index++) {
        mdp_async_brokers_peer_t *peer = &self->peers[index];
        int64_t at = peer->probing ? peer->probe_until : peer->probe_at;
        if (peer->dead && (due < 0 || at < due))
            due = at;
    }
    return due;
}
