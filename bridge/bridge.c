/*  bridge.c - mdp-amqp-bridge: lets MDP clients call services that
    live on RabbitMQ (written with the Neon MQ Connector, nuropb, or plain AMQP
    RPC) as if they were MDP workers, and lets AMQP clients call MDP services.
    This file holds argv, the bridge object and its one poll loop: every MDP
    socket and every AMQP connection's fd, in one thread (rabbitmq-c is not
    thread-safe). spec/amqp-bridge.md describes the mapping.
*/
#include "bridge.h"
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_POLL_WAIT 1000 //  msecs: the loop looks at its clocks at least this often

static void s_usage (FILE *out)
{
    fprintf (out,
             "usage: mdp-amqp-bridge -c FILE [-e ENDPOINT] [-v]\n"
             "  -c FILE      JSON config: AMQP server, port, users (as Neon's mq_config.json)\n"
             "               and routes (see etc/mdp-amqp-bridge.json, spec/amqp-bridge.md)\n"
             "  -e ENDPOINT  MDP broker endpoint (overrides the config's mdp_endpoint)\n"
             "  -v           log each request\n"
             "Runs until SIGINT or SIGTERM; exits 0 then, 2 on a usage or config error\n"
             "or when RabbitMQ refuses TLS before the first connection.\n");
}

//  ---------------------------------------------------------------------------
//  The bridge object

void bridge_new_id (bridge_t *self, char id[BRIDGE_ID_SIZE])
{
    static uint64_t prefix = 0;
    if (!prefix) {
        FILE *random = fopen ("/dev/urandom", "rb");
        if (!random || fread (&prefix, sizeof prefix, 1, random) != 1)
            prefix = (uint64_t)zclock_usecs () ^ ((uint64_t)getpid () << 32);
        if (random)
            fclose (random);
        prefix |= 1;
    }
    snprintf (id, BRIDGE_ID_SIZE, "%016llx%016llx", (unsigned long long)prefix,
              (unsigned long long)++self->counter);
}

char *bridge_result_action (const char *action, const char *suffix)
{
    size_t length = strlen (action);
    const char *endings[] = {".get", ".do"};
    for (size_t index = 0; index < 2; index++) {
        size_t size = strlen (endings[index]);
        if (length > size && streq (action + length - size, endings[index])) {
            length -= size;
            break;
        }
    }
    size_t room = length + strlen (suffix) + 1;
    char *result = malloc (room);
    if (result)
        snprintf (result, room, "%.*s%s", (int)length, action, suffix);
    return result;
}

route_t *bridge_route_by_channel (bridge_t *self, uint16_t channel)
{
    if (channel < BRIDGE_CH_REVERSE || (size_t)(channel - BRIDGE_CH_REVERSE) >= self->cfg->nroutes)
        return NULL;
    route_t *route = &self->cfg->routes[channel - BRIDGE_CH_REVERSE];
    return route->direction == DIR_AMQP_TO_MDP ? route : NULL;
}

//  A link is up: the forward routes on it register with the broker.
void bridge_on_link_up (bridge_t *self, link_t *link)
{
    for (size_t index = 0; index < self->cfg->nroutes; index++) {
        route_t *route = &self->cfg->routes[index];
        if (route->link != link)
            continue;
        route->exchange_known = false; //  look again: the server may have lost it
        route->exchange_checked = 0;
        if (route->slots && !self->stopping)
            bridge_slot_connect_all (route);
    }
}

//  A link is down: 502 to what was in flight on it, and its forward routes
//  leave the broker until it is back.
void bridge_on_link_down (bridge_t *self, link_t *link)
{
    bridge_forward_link_down (self, link);
    for (size_t index = 0; index < self->cfg->nroutes; index++) {
        route_t *route = &self->cfg->routes[index];
        if (route->link == link && route->slots)
            bridge_slot_park_all (route);
    }
    bridge_reverse_link_down (self, link);
}

static void s_bridge_destroy (bridge_t **self_p)
{
    bridge_t *self = *self_p;
    if (!self)
        return;
    for (size_t index = 0; self->cfg && index < self->cfg->nroutes; index++)
        bridge_slot_stop_all (&self->cfg->routes[index]);
    for (size_t index = 0; index < self->nlinks; index++)
        bridge_link_destroy (&self->links[index]);
    free (self->links);
    bridge_reverse_stop (self);
    bridge_events_stop (self);
    zhashx_destroy (&self->forward);
    bridge_config_destroy (&self->cfg);
    free (self);
    *self_p = NULL;
}

//  One link per (vhost, user); slots for forward routes; the async client
//  when some route goes the other way.
static bridge_t *s_bridge_new (bridge_config_t **cfg_p, bool verbose)
{
    bridge_t *self = calloc (1, sizeof (bridge_t));
    if (!self)
        return NULL;
    self->cfg = *cfg_p;
    *cfg_p = NULL;
    self->verbose = verbose;
    self->forward = zhashx_new ();
    self->links = calloc (self->cfg->nroutes + 1, sizeof (link_t *));
    bool reverse = false, ok = self->forward && self->links;
    for (size_t index = 0; ok && index < self->cfg->nroutes; index++) {
        route_t *route = &self->cfg->routes[index];
        link_t *link = NULL;
        for (size_t l = 0; l < self->nlinks && !link; l++)
            link = bridge_link_matches (self->links[l], route) ? self->links[l] : NULL;
        if (!link && (link = bridge_link_new (self, self->cfg, route)))
            self->links[self->nlinks++] = link;
        if (link)
            bridge_link_add_route (link, route);
        ok = route->link != NULL;
        if (ok && route->direction == DIR_MDP_TO_AMQP)
            ok = bridge_slot_start_all (self, route) == 0;
        reverse = reverse || route->direction == DIR_AMQP_TO_MDP;
    }
    if (ok && reverse)
        ok = bridge_reverse_start (self, self->cfg->endpoint) == 0 &&
             (!self->cfg->curve_server || mdp_async_set_curve (self->async, self->cfg->curve_server,
                                                               self->cfg->curve_cert) == 0);
    if (ok)
        ok = bridge_events_start (self) == 0;
    if (!ok)
        s_bridge_destroy (&self);
    return self;
}

//  ---------------------------------------------------------------------------
//  The loop

typedef struct {
    zmq_pollitem_t *items; //  slots' ZMQ_FDs, then the async client, then links
    struct pollfd *fds;    //  the same, for poll (2) when no item is a socket
    slot_t **slots;        //  which slot each of the first items is
    link_t **links;        //  which link each item from links_at is
    size_t count;          //  items used
    size_t links_at;       //  index of the first link item
    size_t async_at;       //  index of the async item (== links_at if none)
    size_t events_at;      //  index of the first events item (after the links)
} pollset_t;

static void s_pollset_destroy (pollset_t **self_p)
{
    pollset_t *self = *self_p;
    if (self) {
        free (self->items);
        free (self->fds);
        free (self->slots);
        free (self->links);
        free (self);
        *self_p = NULL;
    }
}

static pollset_t *s_pollset_new (bridge_t *bridge)
{
    size_t slots = 0;
    for (size_t r = 0; r < bridge->cfg->nroutes; r++)
        slots += bridge->cfg->routes[r].slots ? (size_t)bridge->cfg->routes[r].concurrency : 0;
    pollset_t *self = calloc (1, sizeof (pollset_t));
    if (self) {
        size_t size = slots + 1 + bridge->nlinks + bridge_events_poll_size (bridge) + 1;
        self->items = calloc (size, sizeof (zmq_pollitem_t));
        self->fds = calloc (size, sizeof (struct pollfd));
        self->slots = calloc (slots + 1, sizeof (slot_t *));
        self->links = calloc (bridge->nlinks + 1, sizeof (link_t *));
        if (!self->items || !self->fds || !self->slots || !self->links)
            s_pollset_destroy (&self);
    }
    return self;
}

static int s_min (int a, int b)
{
    return a < 0 ? b : b < 0 ? a : a < b ? a : b;
}

//  Build the poll set and the wait: every live slot, the async client, every
//  connected link; 0 msecs when rabbitmq-c already holds frames.
static int s_prepare (bridge_t *self, pollset_t *set, int64_t now)
{
    int wait = MAX_POLL_WAIT;
    set->count = 0;
    for (size_t r = 0; r < self->cfg->nroutes; r++) {
        route_t *route = &self->cfg->routes[r];
        for (int index = 0; route->slots && index < route->concurrency; index++) {
            slot_t *slot = bridge_slot_at (route, index);
            wait = s_min (wait, bridge_slot_timeout (slot, now));
            if (bridge_slot_fd (slot) >= 0) {
                set->slots[set->count] = slot;
                set->items[set->count++] =
                    (zmq_pollitem_t){NULL, bridge_slot_fd (slot), ZMQ_POLLIN, 0};
            }
        }
    }
    set->async_at = set->count;
    if (bridge_reverse_socket (self)) {
        set->items[set->count++] =
            (zmq_pollitem_t){zsock_resolve (bridge_reverse_socket (self)), 0, ZMQ_POLLIN, 0};
        wait = s_min (wait, bridge_reverse_timeout (self));
    }
    set->links_at = set->count;
    for (size_t l = 0; l < self->nlinks; l++) {
        link_t *link = self->links[l];
        wait = s_min (wait, bridge_link_timeout (link, now));
        if (bridge_link_fd (link) >= 0) {
            set->links[set->count - set->links_at] = link;
            set->items[set->count++] = (zmq_pollitem_t){NULL, bridge_link_fd (link), ZMQ_POLLIN, 0};
        }
    }
    set->events_at = set->count;
    wait = s_min (wait, bridge_events_prepare (self, set->items, &set->count, now));
    return s_min (wait, bridge_forward_timeout (self, now));
}

static void s_dispatch (bridge_t *self, pollset_t *set)
{
    for (size_t index = 0; index < set->async_at; index++) {
        slot_t *slot = set->slots[index];
        if ((set->items[index].revents & ZMQ_POLLIN) || bridge_slot_dirty (slot))
            bridge_slot_process (slot);
    }
    if (set->async_at < set->links_at)
        bridge_reverse_process (self); //  replies, and timeouts that are due
    for (size_t index = set->links_at; index < set->events_at; index++) {
        link_t *link = set->links[index - set->links_at];
        if ((set->items[index].revents & ZMQ_POLLIN) || bridge_link_buffered (link))
            bridge_link_process (link);
    }
    int64_t now = zclock_mono ();
    for (size_t l = 0; l < self->nlinks; l++)
        bridge_link_tick (self->links[l], now);
    for (size_t r = 0; r < self->cfg->nroutes; r++) {
        route_t *route = &self->cfg->routes[r];
        for (int index = 0; route->slots && index < route->concurrency; index++)
            bridge_slot_tick (bridge_slot_at (route, index), now);
    }
    bridge_forward_tick (self, now);
    bridge_events_process (self, now);
    //  Replies went out on some slots: look at those now, not a turn later
    for (size_t r = 0; r < self->cfg->nroutes; r++) {
        route_t *route = &self->cfg->routes[r];
        for (int index = 0; route->slots && index < route->concurrency; index++)
            if (bridge_slot_dirty (bridge_slot_at (route, index)))
                bridge_slot_process (bridge_slot_at (route, index));
    }
}

//  Wait for the poll set. When every item is an fd (slots are polled by
//  their ZMQ_FD), one poll (2): zmq_poll would make two, a first pass with
//  no wait and then the wait.
static int s_poll (pollset_t *set, int wait)
{
    for (size_t index = 0; index < set->count; index++)
        if (set->items[index].socket)
            return zmq_poll (set->items, (int)set->count, wait);
    for (size_t index = 0; index < set->count; index++)
        set->fds[index] = (struct pollfd){set->items[index].fd, POLLIN, 0};
    int rc = poll (set->fds, set->count, wait);
    for (size_t index = 0; index < set->count; index++)
        set->items[index].revents =
            set->fds[index].revents & (POLLIN | POLLERR | POLLHUP) ? ZMQ_POLLIN : 0;
    return rc;
}

static void s_run (bridge_t *self)
{
    pollset_t *set = s_pollset_new (self);
    if (!set)
        return;
    while (!zsys_interrupted && !self->exit_code) {
        int wait = s_prepare (self, set, zclock_mono ());
        if (s_poll (set, wait) < 0 && errno != EINTR)
            break;
        if (zsys_interrupted)
            break;
        s_dispatch (self, set);
    }
    s_pollset_destroy (&set);
}

//  Goodbye: 503 to what is in flight, DISCONNECT from every slot, close the
//  AMQP connections (unanswered deliveries go back to their queues).
static void s_shutdown (bridge_t *self)
{
    self->stopping = true;
    bridge_forward_fail_all (self, 503, "bridge shutting down");
    for (size_t index = 0; index < self->cfg->nroutes; index++)
        if (self->cfg->routes[index].slots)
            bridge_slot_park_all (&self->cfg->routes[index]);
    for (size_t index = 0; index < self->nlinks; index++)
        bridge_link_shutdown (self->links[index]);
}

int main (int argc, char *argv[])
{
    const char *config = NULL, *endpoint = NULL;
    bool verbose = false;
    int opt;
    while ((opt = getopt (argc, argv, "c:e:vh")) != -1) {
        if (opt == 'c')
            config = optarg;
        else if (opt == 'e')
            endpoint = optarg;
        else if (opt == 'v')
            verbose = true;
        else if (opt == 'h') {
            s_usage (stdout);
            return 0;
        } else {
            s_usage (stderr);
            return 2;
        }
    }
    if (!config || optind != argc) {
        s_usage (stderr);
        return 2;
    }
    bridge_config_t *cfg = bridge_config_new (config);
    if (!cfg)
        return 2;
    if (endpoint) {
        free (cfg->endpoint);
        cfg->endpoint = strdup (endpoint);
    }
    zsys_init ();
    zsys_set_logident ("mdp-amqp-bridge");
    zsys_set_logstream (stderr); //  czmq's default is stdout
    bridge_t *bridge = cfg->endpoint ? s_bridge_new (&cfg, verbose) : NULL;
    bridge_config_destroy (&cfg);
    if (!bridge) {
        fprintf (stderr, "mdp-amqp-bridge: cannot start (out of memory or bad endpoint)\n");
        return 1;
    }
    zsys_info ("amqp-bridge: %zu routes, %zu AMQP links, MDP broker %s", bridge->cfg->nroutes,
               bridge->nlinks, bridge->cfg->endpoint);
    s_run (bridge);
    s_shutdown (bridge);
    int code = bridge->exit_code;
    s_bridge_destroy (&bridge);
    return code;
}
