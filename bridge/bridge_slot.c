/*  bridge_slot.c - the MDP side of an mdp-to-amqp route: "slots", each
    one libmdp worker engine (mdp_engine.c: READY, heartbeats, expiry,
    reconnect with back-off, header checks, MDPW01 or MDPW02) registered as
    one worker for the service, so the broker can give the bridge as many
    requests at once as there are slots. The engines run in the bridge's own
    poll loop. While the route's AMQP link is down its slots are parked.
    The loop polls each DEALER's ZMQ_FD, not the socket: that fd only
    signals edges, so a slot whose socket we used since its last ZMQ_EVENTS
    look is "dirty" and gets looked at without waiting for the fd.
*/
#include "bridge.h"
#include "mdp_engine.h"
#include <stdlib.h>
#include <string.h>

struct _slot_t {
    route_t *route;         //  the route it serves
    bridge_t *bridge;       //  the bridge
    mdp_engine_t *engine;   //  the connection to the broker, owned
    slot_request_t request; //  the forward module's state for its request
    bool dirty;             //  socket used since we last read ZMQ_EVENTS
};

int bridge_slot_start_all (bridge_t *bridge, route_t *route)
{
    route->slots = calloc ((size_t)route->concurrency, sizeof (slot_t));
    if (!route->slots)
        return -1;
    const bridge_config_t *cfg = bridge->cfg;
    char name[300];
    snprintf (name, sizeof name, "amqp-bridge: %s", route->service);
    for (int index = 0; index < route->concurrency; index++) {
        slot_t *self = &route->slots[index];
        self->route = route;
        self->bridge = bridge;
        self->engine = mdp_engine_new (cfg->endpoint, route->service, route->mdp_protocol, name);
        if (!self->engine) {
            bridge_slot_stop_all (route);
            return -1;
        }
        mdp_engine_set_heartbeat (self->engine, cfg->mdp_heartbeat, cfg->mdp_liveness,
                                  zclock_mono ());
        mdp_engine_set_reconnect (self->engine, cfg->mdp_reconnect_initial, cfg->mdp_reconnect_max);
        mdp_engine_set_curve (self->engine, &cfg->curve);
    }
    return 0;
}

slot_t *bridge_slot_at (route_t *route, int index)
{
    return &route->slots[index];
}

route_t *bridge_slot_route (slot_t *self)
{
    return self->route;
}

bridge_t *bridge_slot_bridge (slot_t *self)
{
    return self->bridge;
}

slot_request_t *bridge_slot_request (slot_t *self)
{
    return &self->request;
}

zsock_t *bridge_slot_socket (slot_t *self)
{
    return mdp_engine_socket (self->engine);
}

//  The request in hand is void once the engine has lost the connection it
//  came on or taken another (its answer could no longer be delivered).
static void s_check (slot_t *self)
{
    if (self->request.id[0] && (self->request.gen != mdp_engine_generation (self->engine) ||
                                !mdp_engine_busy (self->engine)))
        bridge_forward_abandon (self);
}

void bridge_slot_connect_all (route_t *route)
{
    for (int index = 0; index < route->concurrency; index++) {
        slot_t *self = &route->slots[index];
        mdp_engine_set_reconnect (self->engine, self->bridge->cfg->mdp_reconnect_initial,
                                  self->bridge->cfg->mdp_reconnect_max);
        mdp_engine_connect (self->engine, zclock_mono ());
        self->dirty = true;
    }
}

void bridge_slot_park_all (route_t *route)
{
    for (int index = 0; route->slots && index < route->concurrency; index++) {
        slot_t *self = &route->slots[index];
        if (self->engine)
            mdp_engine_close (self->engine, true);
        self->dirty = true;
        if (self->request.id[0])
            bridge_forward_abandon (self);
    }
}

void bridge_slot_stop_all (route_t *route)
{
    bridge_slot_park_all (route);
    for (int index = 0; route->slots && index < route->concurrency; index++)
        mdp_engine_destroy (&route->slots[index].engine);
    free (route->slots);
    route->slots = NULL;
}

//  Read every waiting message, one at a time: each request is taken (a
//  request still in hand is then dropped: the broker gave up on it) and
//  handed to the forward module with the engine's generation.
void bridge_slot_process (slot_t *self)
{
    self->dirty = false; //  the loop ends on a ZMQ_EVENTS look
    zsock_t *dealer;
    while ((dealer = mdp_engine_socket (self->engine)) && (zsock_events (dealer) & ZMQ_POLLIN)) {
        zmsg_t *msg = zmsg_recv (dealer);
        if (!msg)
            return;
        bool held = mdp_engine_handle (self->engine, &msg, zclock_mono ());
        if (held && self->request.id[0])
            bridge_forward_abandon (self);
        zmsg_t *body = held ? mdp_engine_take (self->engine) : NULL;
        if (body)
            bridge_forward_request (self, mdp_engine_generation (self->engine), &body);
        s_check (self);
    }
}

void bridge_slot_reply (slot_t *self, uint64_t gen, mdp_msg_t **msg_p, bool final)
{
    mdp_msg_t *reply = *msg_p;
    *msg_p = NULL;
    zmsg_t *body = NULL;
    if (gen == mdp_engine_generation (self->engine) && mdp_engine_busy (self->engine)) {
        body = zmsg_new ();
        if (body && mdp_msg_encode (reply, body) == 0)
            mdp_engine_reply (self->engine, &body, final);
    }
    zmsg_destroy (&body);
    mdp_msg_destroy (&reply);
    self->dirty = true;
}

int bridge_slot_timeout (slot_t *self, int64_t now)
{
    return self->dirty ? 0 : mdp_engine_timeout (self->engine, now);
}

int bridge_slot_fd (slot_t *self)
{
    zsock_t *dealer = mdp_engine_socket (self->engine);
    return dealer ? zsock_fd (dealer) : -1;
}

bool bridge_slot_dirty (slot_t *self)
{
    return self->dirty;
}

//  Time-driven work (heartbeat, expiry, reconnect) uses the socket only when
//  something is due: only then is the slot dirty.
void bridge_slot_tick (slot_t *self, int64_t now)
{
    if (mdp_engine_timeout (self->engine, now) != 0)
        return;
    mdp_engine_tick (self->engine, now);
    self->dirty = true;
    s_check (self);
}
