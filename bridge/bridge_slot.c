/*  amqp_bridge_slot.c - the MDP side of an mdp-to-amqp route: "slots", each a
    raw DEALER registered as one worker for the service (MDPW01 or MDPW02,
    delimited), so the broker can give the bridge as many requests at once as
    there are slots. Heartbeats and reconnects like libmdp's worker. While the
    route's AMQP link is down its slots are parked (unregistered).
*/
#include "bridge.h"
#include "mdp_proto.h"
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DISCONNECT_LINGER 100 //  msecs a DISCONNECT may take to get out

struct _slot_t {
    route_t *route;             //  the route it serves
    bridge_t *bridge;           //  the bridge
    const bridge_config_t *cfg; //  heartbeat and reconnect settings
    zsock_t *dealer;            //  to the broker; NULL while parked or waiting
    bool parked;                //  the AMQP link is down: stay unregistered
    int protocol;               //  1 or 2
    int64_t heartbeat_at;       //  next HEARTBEAT due
    int64_t expiry_at;          //  the broker is gone if silent until then
    int64_t reconnect_at;       //  when to reconnect, while waiting
    int backoff;                //  next reconnect wait, before jitter
    unsigned int seed;          //  jitter
    zframe_t *token;            //  the current request's token, or NULL
    uint64_t gen;               //  bumps per request and per connection
    slot_request_t request;     //  the forward module's state for it
};

//  Command bytes by protocol version: [1] MDPW01, [2] MDPW02.
static const byte s_ready[3] = {0, MDPW01_READY, MDPW02_READY};
static const byte s_request[3] = {0, MDPW01_REQUEST, MDPW02_REQUEST};
static const byte s_heartbeat[3] = {0, MDPW01_HEARTBEAT, MDPW02_HEARTBEAT};
static const byte s_disconnect[3] = {0, MDPW01_DISCONNECT, MDPW02_DISCONNECT};

int slots_init (bridge_t *bridge, route_t *route)
{
    route->slots = calloc ((size_t)route->concurrency, sizeof (slot_t));
    if (!route->slots)
        return -1;
    for (int index = 0; index < route->concurrency; index++) {
        slot_t *self = &route->slots[index];
        self->route = route;
        self->bridge = bridge;
        self->cfg = bridge->cfg;
        self->parked = true;
        self->protocol = route->mdp_protocol;
        self->backoff = bridge->cfg->mdp_reconnect_initial;
        self->seed = (unsigned)zclock_usecs () ^ (unsigned)getpid () ^ (unsigned)index;
    }
    return 0;
}

slot_t *slot_at (route_t *route, int index)
{
    return &route->slots[index];
}

route_t *slot_route (slot_t *self)
{
    return self->route;
}

bridge_t *slot_bridge (slot_t *self)
{
    return self->bridge;
}

slot_request_t *slot_request (slot_t *self)
{
    return &self->request;
}

zsock_t *slot_socket (slot_t *self)
{
    return self->dealer;
}

//  Send [""][protocol][command][frames...], taking frames (may be NULL).
static void s_send (slot_t *self, byte command, zmsg_t *frames)
{
    zmsg_t *msg = frames ? frames : zmsg_new ();
    if (self->dealer && msg && zmsg_pushmem (msg, &command, 1) == 0 &&
        zmsg_pushstr (msg, self->protocol == 2 ? MDPW02 : MDPW01) == 0 &&
        zmsg_pushmem (msg, NULL, 0) == 0 && zmsg_send (&msg, self->dealer) == 0)
        return;
    zmsg_destroy (&msg);
}

//  Forget the current request (its answer could no longer be delivered).
static void s_drop_request (slot_t *self)
{
    if (self->request.id[0])
        forward_abandon (self);
    zframe_destroy (&self->token);
    self->gen++;
}

static void s_close (slot_t *self, bool say_goodbye)
{
    if (!self->dealer)
        return;
    if (say_goodbye) {
        s_send (self, s_disconnect[self->protocol], NULL);
        zsock_set_linger (self->dealer, DISCONNECT_LINGER);
    }
    zsock_destroy (&self->dealer);
    s_drop_request (self);
}

static void s_connect (slot_t *self)
{
    self->dealer = zsock_new (ZMQ_DEALER);
    if (self->dealer)
        mdp_curve_apply (&self->cfg->curve, self->dealer);
    if (!self->dealer || zsock_connect (self->dealer, "%s", self->cfg->endpoint) != 0) {
        zsys_error ("amqp-bridge: cannot connect to the broker at '%s'", self->cfg->endpoint);
        zsock_destroy (&self->dealer);
        self->reconnect_at = zclock_mono () + self->cfg->mdp_reconnect_max;
        return;
    }
    zsock_set_linger (self->dealer, 0);
    zsock_set_sndtimeo (self->dealer, 0);
    zmsg_t *ready = zmsg_new ();
    if (ready)
        zmsg_addstr (ready, self->route->service);
    s_send (self, s_ready[self->protocol], ready);
    int64_t now = zclock_mono ();
    self->heartbeat_at = now + self->cfg->mdp_heartbeat;
    self->expiry_at = now + (int64_t)self->cfg->mdp_heartbeat * self->cfg->mdp_liveness;
}

//  Broker silent or said DISCONNECT: close now, come back after the back-off
//  plus up to 25% jitter.
static void s_reconnect_later (slot_t *self)
{
    s_close (self, false);
    int jitter =
        self->backoff >= 4 ? (int)(rand_r (&self->seed) % (unsigned)(self->backoff / 4)) : 0;
    self->reconnect_at = zclock_mono () + self->backoff + jitter;
    int max = self->cfg->mdp_reconnect_max;
    self->backoff = self->backoff > max / 2 ? max : self->backoff * 2;
}

void slot_connect_all (route_t *route)
{
    for (int index = 0; index < route->concurrency; index++) {
        slot_t *self = &route->slots[index];
        self->parked = false;
        self->backoff = self->cfg->mdp_reconnect_initial;
        if (!self->dealer)
            s_connect (self);
    }
}

void slot_park_all (route_t *route)
{
    for (int index = 0; route->slots && index < route->concurrency; index++) {
        slot_t *self = &route->slots[index];
        s_close (self, true);
        self->parked = true;
    }
}

void slots_fini (route_t *route)
{
    slot_park_all (route);
    free (route->slots);
    route->slots = NULL;
}

//  Strip [""][protocol][command]; the command byte, or -1 if malformed.
static int s_header (slot_t *self, zmsg_t *msg)
{
    zframe_t *empty = zmsg_pop (msg);
    zframe_t *protocol = zmsg_pop (msg);
    zframe_t *command = zmsg_pop (msg);
    int rc = -1;
    if (empty && protocol && command && zframe_size (empty) == 0 &&
        zframe_streq (protocol, self->protocol == 2 ? MDPW02 : MDPW01) &&
        zframe_size (command) == 1)
        rc = *zframe_data (command);
    zframe_destroy (&empty);
    zframe_destroy (&protocol);
    zframe_destroy (&command);
    return rc;
}

//  REQUEST: [token][""][body...]. A slot with a request still in hand gets a
//  new one only after the broker gave up on the old one (its deadline passed):
//  the old one is then dropped.
static void s_on_request (slot_t *self, zmsg_t **msg_p)
{
    zmsg_t *msg = *msg_p;
    zframe_t *token = zmsg_pop (msg);
    zframe_t *empty = zmsg_pop (msg);
    bool valid = token && empty && zframe_size (empty) == 0 && zmsg_size (msg) > 0;
    zframe_destroy (&empty);
    if (!valid) {
        zsys_warning ("amqp-bridge: %s: dropped a REQUEST without [token][\"\"][body]",
                      self->route->service);
        zframe_destroy (&token);
        zmsg_destroy (msg_p);
        return;
    }
    s_drop_request (self);
    self->token = token;
    forward_request (self, self->gen, msg_p);
}

void slot_process (slot_t *self)
{
    while (self->dealer && (zsock_events (self->dealer) & ZMQ_POLLIN)) {
        zmsg_t *msg = zmsg_recv (self->dealer);
        if (!msg)
            return;
        self->expiry_at =
            zclock_mono () + (int64_t)self->cfg->mdp_heartbeat * self->cfg->mdp_liveness;
        int command = s_header (self, msg);
        if (command == s_request[self->protocol]) {
            self->backoff = self->cfg->mdp_reconnect_initial;
            s_on_request (self, &msg);
        } else if (command == s_heartbeat[self->protocol])
            self->backoff = self->cfg->mdp_reconnect_initial;
        else if (command == s_disconnect[self->protocol]) {
            zsys_info ("amqp-bridge: %s: broker sent DISCONNECT, reconnecting",
                       self->route->service);
            s_reconnect_later (self);
        } else
            zsys_warning ("amqp-bridge: %s: dropped a malformed message from the broker",
                          self->route->service);
        zmsg_destroy (&msg);
    }
}

void slot_reply (slot_t *self, uint64_t gen, mdp_msg_t **msg_p, bool final)
{
    mdp_msg_t *reply = *msg_p;
    *msg_p = NULL;
    if (gen != self->gen || !self->dealer || !self->token) {
        mdp_msg_destroy (&reply);
        return;
    }
    zmsg_t *msg = zmsg_new ();
    zframe_t *token = zframe_dup (self->token);
    if (msg && token && zmsg_append (msg, &token) == 0 && zmsg_addmem (msg, NULL, 0) == 0 &&
        mdp_msg_encode (reply, msg) == 0) {
        byte command = self->protocol == 1 ? MDPW01_REPLY : final ? MDPW02_FINAL : MDPW02_PARTIAL;
        s_send (self, command, msg);
        msg = NULL;
    }
    zmsg_destroy (&msg);
    zframe_destroy (&token);
    mdp_msg_destroy (&reply);
    if (final) {
        zframe_destroy (&self->token);
        self->gen++;
    }
}

int slot_timeout (slot_t *self, int64_t now)
{
    int64_t next;
    if (self->dealer)
        next = self->heartbeat_at < self->expiry_at ? self->heartbeat_at : self->expiry_at;
    else if (!self->parked)
        next = self->reconnect_at;
    else
        return -1;
    int64_t left = next - now;
    return left < 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
}

void slot_tick (slot_t *self, int64_t now)
{
    if (self->dealer && now >= self->expiry_at) {
        zsys_warning ("amqp-bridge: %s: broker silent for %d ms, reconnecting",
                      self->route->service, self->cfg->mdp_heartbeat * self->cfg->mdp_liveness);
        s_reconnect_later (self);
    }
    if (self->dealer && now >= self->heartbeat_at) {
        s_send (self, s_heartbeat[self->protocol], NULL);
        self->heartbeat_at = now + self->cfg->mdp_heartbeat;
    }
    if (!self->dealer && !self->parked && now >= self->reconnect_at)
        s_connect (self);
}
