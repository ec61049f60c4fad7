/*  bridge_config.c - reads the bridge's JSON config: the AMQP server,
    port and per-service credentials in the shape of Neon's mq_config.json
    ("server", "port", "users"), MDP and AMQP settings, and the routes. Every
    mistake is reported on stderr with the route it is in; nothing asserts.
*/
#include "bridge.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_CONFIG_SIZE (1 << 20) //  bytes: a config file is small

static int s_fail (const char *where, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    fprintf (stderr, "mdp-amqp-bridge: config: %s: ", where);
    vfprintf (stderr, fmt, args);
    fputc ('\n', stderr);
    va_end (args);
    return -1;
}

static char *s_read_file (const char *path)
{
    FILE *file = fopen (path, "rb");
    if (!file) {
        fprintf (stderr, "mdp-amqp-bridge: cannot open '%s': %s\n", path, strerror (errno));
        return NULL;
    }
    char *text = malloc (MAX_CONFIG_SIZE + 1);
    size_t size = text ? fread (text, 1, MAX_CONFIG_SIZE + 1, file) : 0;
    fclose (file);
    if (!text || size > MAX_CONFIG_SIZE) {
        fprintf (stderr, "mdp-amqp-bridge: '%s' is too large\n", path);
        free (text);
        return NULL;
    }
    text[size] = 0;
    return text;
}

//  An optional string member: *out gets a copy (or the default, copied).
static int s_string (const cJSON *obj, const char *key, const char *fallback, char **out,
                     const char *where)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive (obj, key);
    if (item && !cJSON_IsString (item))
        return s_fail (where, "\"%s\" must be a string", key);
    const char *value = item ? item->valuestring : fallback;
    *out = value ? strdup (value) : NULL;
    return value && !*out ? s_fail (where, "out of memory") : 0;
}

//  An optional integer member within [min, max].
static int s_int (const cJSON *obj, const char *key, int fallback, int min, int max, int *out,
                  const char *where)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive (obj, key);
    if (!item) {
        *out = fallback;
        return 0;
    }
    double value = cJSON_IsNumber (item) ? item->valuedouble : -1e300;
    if (value != (double)(long long)value || value < min || value > max)
        return s_fail (where, "\"%s\" must be a whole number from %d to %d", key, min, max);
    *out = (int)value;
    return 0;
}

static int s_bool (const cJSON *obj, const char *key, bool fallback, bool *out, const char *where)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive (obj, key);
    if (item && !cJSON_IsBool (item))
        return s_fail (where, "\"%s\" must be true or false", key);
    *out = item ? cJSON_IsTrue (item) : fallback;
    return 0;
}

static int s_check_keys (const cJSON *obj, const char *const *known, const char *where)
{
    for (const cJSON *item = obj->child; item; item = item->next) {
        size_t index = 0;
        while (known[index] && strcmp (known[index], item->string) != 0)
            index++;
        if (!known[index])
            return s_fail (where, "unknown key \"%s\"", item->string);
    }
    return 0;
}

static const char *const s_route_keys[] = {"service",
                                           "direction",
                                           "profile",
                                           "vhost",
                                           "user",
                                           "queue",
                                           "action_queues",
                                           "exchange",
                                           "routing_key",
                                           "context",
                                           "action",
                                           "action_key",
                                           "error_key",
                                           "timeout",
                                           "ttl",
                                           "concurrency",
                                           "mdp_protocol",
                                           "stream",
                                           "on_missing_queue",
                                           "fail_fast_no_consumer",
                                           NULL};

static int s_route_enums (const cJSON *obj, route_t *route, const char *where)
{
    const cJSON *dir = cJSON_GetObjectItemCaseSensitive (obj, "direction");
    const char *text = cJSON_GetStringValue (dir);
    if (text && streq (text, "mdp-to-amqp"))
        route->direction = DIR_MDP_TO_AMQP;
    else if (text && streq (text, "amqp-to-mdp"))
        route->direction = DIR_AMQP_TO_MDP;
    else
        return s_fail (where, "\"direction\" must be \"mdp-to-amqp\" or \"amqp-to-mdp\"");
    text = cJSON_GetStringValue (cJSON_GetObjectItemCaseSensitive (obj, "profile"));
    if (text && streq (text, "neon"))
        route->profile = PROFILE_NEON;
    else if (text && streq (text, "nuropb"))
        route->profile = PROFILE_NUROPB;
    else if (text && streq (text, "raw"))
        route->profile = PROFILE_RAW;
    else
        return s_fail (where, "\"profile\" must be \"neon\", \"nuropb\" or \"raw\"");
    return 0;
}

//  Queue defaults: reverse neon consumes <service>_input, reverse raw mdp.<service>.
static int s_route_queue (const cJSON *obj, route_t *route, const char *where)
{
    char fallback[300] = "";
    if (route->direction == DIR_AMQP_TO_MDP && route->profile == PROFILE_NEON)
        snprintf (fallback, sizeof fallback, "%s_input", route->service);
    else if (route->direction == DIR_AMQP_TO_MDP && route->profile == PROFILE_RAW)
        snprintf (fallback, sizeof fallback, "mdp.%s", route->service);
    if (s_string (obj, "queue", *fallback ? fallback : NULL, &route->queue, where))
        return -1;
    const cJSON *aq = cJSON_GetObjectItemCaseSensitive (obj, "action_queues");
    if (aq) {
        if (!cJSON_IsObject (aq) || route->profile != PROFILE_NEON ||
            route->direction != DIR_MDP_TO_AMQP)
            return s_fail (where, "\"action_queues\" is an object, for neon mdp-to-amqp routes");
        for (const cJSON *item = aq->child; item; item = item->next)
            if (!cJSON_IsString (item) || !*item->valuestring)
                return s_fail (where, "\"action_queues\" values must be queue names");
        route->action_queues = cJSON_Duplicate (aq, 1);
    }
    if (route->profile != PROFILE_NUROPB && !route->queue && !route->action_queues)
        return s_fail (where, "\"queue\" is required");
    if (route->queue && (!*route->queue || strlen (route->queue) > 255))
        return s_fail (where, "\"queue\" must be 1 to 255 bytes");
    return 0;
}

static int s_route_strings (const cJSON *obj, route_t *route, const char *where)
{
    if (s_string (obj, "vhost", "/", &route->vhost, where) ||
        s_string (obj, "user", route->service, &route->user, where) ||
        s_string (obj, "exchange", "nuropb-rpc-exchange", &route->exchange, where) ||
        s_string (obj, "routing_key", route->service, &route->routing_key, where) ||
        s_string (obj, "action", "request", &route->action, where) ||
        s_string (obj, "action_key", NULL, &route->action_key, where) ||
        s_string (obj, "error_key", "error", &route->error_key, where))
        return -1;
    if (route->error_key && !*route->error_key) {
        free (route->error_key);
        route->error_key = NULL;
    }
    const cJSON *context = cJSON_GetObjectItemCaseSensitive (obj, "context");
    if (context && !cJSON_IsObject (context))
        return s_fail (where, "\"context\" must be an object");
    route->context = context ? cJSON_Duplicate (context, 1) : NULL;
    return 0;
}

static int s_route_numbers (const cJSON *obj, route_t *route, int protocol, const char *where)
{
    if (s_int (obj, "timeout", 30000, 1, 86400000, &route->timeout, where) ||
        s_int (obj, "ttl", route->timeout, 1, 86400000, &route->ttl, where) ||
        s_int (obj, "concurrency", 8, 1, BRIDGE_MAX_CONCURRENCY, &route->concurrency, where) ||
        s_int (obj, "mdp_protocol", protocol, 1, 2, &route->mdp_protocol, where) ||
        s_bool (obj, "stream", false, &route->stream, where) ||
        s_bool (obj, "fail_fast_no_consumer", false, &route->fail_fast, where))
        return -1;
    const cJSON *missing = cJSON_GetObjectItemCaseSensitive (obj, "on_missing_queue");
    const char *text = missing ? cJSON_GetStringValue (missing) : "wait";
    if (!text || (!streq (text, "wait") && !streq (text, "fail")))
        return s_fail (where, "\"on_missing_queue\" must be \"wait\" or \"fail\"");
    route->missing_wait = streq (text, "wait");
    if (route->stream && route->mdp_protocol != 2 && route->direction == DIR_MDP_TO_AMQP)
        return s_fail (where, "\"stream\" needs \"mdp_protocol\": 2");
    return 0;
}

//  Credentials: users[route.user] = {"username" (or Neon's "user"): ..., "password": ...}.
static int s_route_user (const cJSON *users, route_t *route, const char *where)
{
    const cJSON *entry = cJSON_GetObjectItemCaseSensitive (users, route->user);
    const char *username =
        cJSON_GetStringValue (cJSON_GetObjectItemCaseSensitive (entry, "username"));
    const char *password =
        cJSON_GetStringValue (cJSON_GetObjectItemCaseSensitive (entry, "password"));
    if (!username || !password)
        return s_fail (where,
                       "no \"users\" entry \"%s\" with a \"user\" (or \"username\") "
                       "and a \"password\"",
                       route->user);
    route->username = strdup (username);
    route->password = strdup (password);
    return route->username && route->password ? 0 : s_fail (where, "out of memory");
}

static int s_route (const cJSON *obj, const cJSON *users, int protocol, route_t *route,
                    size_t index)
{
    char where[300];
    snprintf (where, sizeof where, "routes[%zu]", index);
    route->index = index;
    if (!cJSON_IsObject (obj))
        return s_fail (where, "must be an object");
    const char *service = cJSON_GetStringValue (cJSON_GetObjectItemCaseSensitive (obj, "service"));
    if (!service || !*service || strlen (service) > 255 || strncmp (service, "mmi.", 4) == 0)
        return s_fail (where, "\"service\" must be 1 to 255 bytes, not starting \"mmi.\"");
    route->service = strdup (service);
    snprintf (where, sizeof where, "routes[%zu] (%s)", index, service);
    if (!route->service || s_check_keys (obj, s_route_keys, where) ||
        s_route_enums (obj, route, where) || s_route_strings (obj, route, where) ||
        s_route_queue (obj, route, where) || s_route_numbers (obj, route, protocol, where) ||
        s_route_user (users, route, where))
        return -1;
    return 0;
}

static int s_routes (bridge_config_t *self, const cJSON *root, int protocol)
{
    const cJSON *routes = cJSON_GetObjectItemCaseSensitive (root, "routes");
    const cJSON *users = cJSON_GetObjectItemCaseSensitive (root, "users");
    if (!cJSON_IsArray (routes) ||
        (cJSON_GetArraySize (routes) == 0 && !cJSON_GetObjectItemCaseSensitive (root, "events")))
        return s_fail ("routes", "must be a non-empty array (or empty, with \"events\")");
    if (users && !cJSON_IsObject (users))
        return s_fail ("users", "must be an object");
    self->nroutes = (size_t)cJSON_GetArraySize (routes);
    self->routes = calloc (self->nroutes + 1, sizeof (route_t));
    if (!self->routes)
        return s_fail ("routes", "out of memory");
    size_t index = 0;
    for (const cJSON *item = routes->child; item; item = item->next, index++)
        if (s_route (item, users, protocol, &self->routes[index], index))
            return -1;
    for (size_t a = 0; a < self->nroutes; a++)
        for (size_t b = 0; b < a; b++)
            if (self->routes[a].direction == DIR_MDP_TO_AMQP &&
                self->routes[b].direction == DIR_MDP_TO_AMQP &&
                streq (self->routes[a].service, self->routes[b].service))
                return s_fail ("routes", "service \"%s\" is offered twice",
                               self->routes[a].service);
    return 0;
}

static int s_top (bridge_config_t *self, const cJSON *root, int *protocol)
{
    const char *where = "top level";
    char instance[200];
    char host[64] = "host";
    gethostname (host, sizeof host - 1);
    snprintf (instance, sizeof instance, "%s.%d.%04x", host, (int)getpid (),
              (unsigned)(zclock_usecs () & 0xFFFF));
    return s_string (root, "server", "localhost", &self->server, where) ||
                   s_int (root, "port", 5672, 1, 65535, &self->port, where) ||
                   s_string (root, "mdp_endpoint", MDP_DEFAULT_ENDPOINT, &self->endpoint, where) ||
                   s_int (root, "mdp_heartbeat", MDP_DEFAULT_HEARTBEAT, 10, 3600000,
                          &self->mdp_heartbeat, where) ||
                   s_int (root, "mdp_liveness", MDP_DEFAULT_LIVENESS, 1, 100, &self->mdp_liveness,
                          where) ||
                   s_int (root, "mdp_protocol", 2, 1, 2, protocol, where) ||
                   s_int (root, "mdp_reconnect_initial", 250, 1, 600000,
                          &self->mdp_reconnect_initial, where) ||
                   s_int (root, "mdp_reconnect_max", 5000, 1, 600000, &self->mdp_reconnect_max,
                          where) ||
                   s_int (root, "amqp_heartbeat", 30, 0, 3600, &self->amqp_heartbeat, where) ||
                   s_int (root, "amqp_reconnect_initial", 100, 1, 600000,
                          &self->amqp_reconnect_initial, where) ||
                   s_int (root, "amqp_reconnect_max", 5000, 1, 600000, &self->amqp_reconnect_max,
                          where) ||
                   s_int (root, "amqp_connect_timeout", 5000, 1, 600000,
                          &self->amqp_connect_timeout, where) ||
                   s_bool (root, "publisher_confirms", true, &self->confirms, where) ||
                   s_string (root, "instance", instance, &self->instance, where)
               ? -1
               : 0;
}

//  "servers": ["host:port", ...] (port defaults to "port"), tried in turn
//  on connection loss; without it, the one "server" and "port".
static int s_servers (bridge_config_t *self, const cJSON *root)
{
    const cJSON *servers = cJSON_GetObjectItemCaseSensitive (root, "servers");
    if (servers && (!cJSON_IsArray (servers) || cJSON_GetArraySize (servers) < 1 ||
                    cJSON_GetArraySize (servers) > 64))
        return s_fail ("servers", "must be an array of 1 to 64 \"host:port\" strings");
    self->nservers = servers ? (size_t)cJSON_GetArraySize (servers) : 1;
    self->hosts = calloc (self->nservers, sizeof (char *));
    self->ports = calloc (self->nservers, sizeof (int));
    if (!self->hosts || !self->ports)
        return s_fail ("servers", "out of memory");
    if (!servers) {
        self->hosts[0] = strdup (self->server);
        self->ports[0] = self->port;
        return self->hosts[0] ? 0 : s_fail ("servers", "out of memory");
    }
    size_t index = 0;
    for (const cJSON *item = servers->child; item; item = item->next, index++) {
        const char *text = cJSON_GetStringValue (item);
        const char *colon = text ? strrchr (text, ':') : NULL;
        char *end = NULL;
        long port = colon ? strtol (colon + 1, &end, 10) : self->port;
        size_t size = text ? (colon ? (size_t)(colon - text) : strlen (text)) : 0;
        if (!text || size == 0 || (colon && (*end || port < 1 || port > 65535)))
            return s_fail ("servers", "entry %zu must be \"host\" or \"host:port\"", index);
        self->hosts[index] = malloc (size + 1);
        if (self->hosts[index]) {
            memcpy (self->hosts[index], text, size);
            self->hosts[index][size] = 0;
        }
        self->ports[index] = (int)port;
        if (!self->hosts[index])
            return s_fail ("servers", "out of memory");
    }
    free (self->server); //  "server"/"port" name the first node, for the events links
    self->server = strdup (self->hosts[0]);
    self->port = self->ports[0];
    return self->server ? 0 : s_fail ("servers", "out of memory");
}

//  "tls": {"ca", "cert", "key", "verify_peer", "verify_hostname"}: amqps.
//  The files must be readable now (a config error otherwise).
static int s_tls (bridge_config_t *self, const cJSON *root)
{
    const cJSON *tls = cJSON_GetObjectItemCaseSensitive (root, "tls");
    if (!tls)
        return 0;
    static const char *const keys[] = {"ca", "cert", "key", "verify_peer", "verify_hostname", NULL};
    if (!cJSON_IsObject (tls))
        return s_fail ("tls", "must be an object");
    self->tls = true;
    if (s_check_keys (tls, keys, "tls") || s_string (tls, "ca", NULL, &self->tls_ca, "tls") ||
        s_string (tls, "cert", NULL, &self->tls_cert, "tls") ||
        s_string (tls, "key", NULL, &self->tls_key, "tls") ||
        s_bool (tls, "verify_peer", true, &self->tls_verify_peer, "tls") ||
        s_bool (tls, "verify_hostname", true, &self->tls_verify_hostname, "tls"))
        return -1;
    if (!self->tls_cert != !self->tls_key)
        return s_fail ("tls", "\"cert\" and \"key\" go together");
    if (self->tls_verify_peer && !self->tls_ca)
        return s_fail ("tls", "\"verify_peer\" needs \"ca\"");
    const char *files[] = {self->tls_ca, self->tls_cert, self->tls_key};
    for (size_t index = 0; index < 3; index++)
        if (files[index] && access (files[index], R_OK) != 0)
            return s_fail ("tls", "cannot read '%s': %s", files[index], strerror (errno));
    return 0;
}

//  "mdp_curve_server" (Z85) and "mdp_curve_cert" (a czmq certificate): CURVE
//  to the MDP broker, both or neither.
static int s_curve (bridge_config_t *self, const cJSON *root)
{
    const cJSON *server = cJSON_GetObjectItemCaseSensitive (root, "mdp_curve_server");
    const cJSON *cert = cJSON_GetObjectItemCaseSensitive (root, "mdp_curve_cert");
    if (!server && !cert)
        return 0;
    if (!cJSON_IsString (server) || !cJSON_IsString (cert))
        return s_fail ("top level", "\"mdp_curve_server\" and \"mdp_curve_cert\" go together, "
                                    "as strings");
    if (mdp_curve_load (&self->curve, server->valuestring, cert->valuestring) != 0)
        return s_fail ("top level",
                       errno == EINVAL ? "\"mdp_curve_server\" is not a Z85 key"
                                       : "\"mdp_curve_cert\": cannot read '%s'",
                       cert->valuestring);
    self->curve_server = strdup (server->valuestring);
    self->curve_cert = strdup (cert->valuestring);
    return 0;
}

//  Neon's mq_config.json, as Neon's connector reads it: "server", "port" and
//  "users" may sit under "MQ", and a user's name is "user" ("username" is
//  our alias). Lift those to the top level and give every user a
//  "username", so the rest of the loader sees one shape. Keys at the top
//  level win over those under "MQ".
static int s_neon_shape (cJSON *root)
{
    const cJSON *mq = cJSON_GetObjectItemCaseSensitive (root, "MQ");
    if (mq && !cJSON_IsObject (mq))
        return s_fail ("MQ", "must be an object");
    for (const cJSON *item = mq ? mq->child : NULL; item; item = item->next)
        if (!cJSON_GetObjectItemCaseSensitive (root, item->string))
            cJSON_AddItemToObject (root, item->string, cJSON_Duplicate (item, 1));
    cJSON *users = cJSON_GetObjectItemCaseSensitive (root, "users");
    for (cJSON *entry = cJSON_IsObject (users) ? users->child : NULL; entry; entry = entry->next) {
        const cJSON *user = cJSON_GetObjectItemCaseSensitive (entry, "user");
        if (cJSON_IsObject (entry) && cJSON_IsString (user) &&
            !cJSON_GetObjectItemCaseSensitive (entry, "username"))
            cJSON_AddStringToObject (entry, "username", user->valuestring);
    }
    return 0;
}

bridge_config_t *bridge_config_new (const char *path)
{
    char *text = s_read_file (path);
    if (!text)
        return NULL;
    const char *error_at = NULL;
    cJSON *root = cJSON_ParseWithOpts (text, &error_at, true);
    if (!cJSON_IsObject (root)) {
        size_t offset = error_at && error_at >= text ? (size_t)(error_at - text) : 0;
        fprintf (stderr, "mdp-amqp-bridge: %s: not a JSON object (error near byte %zu)\n", path,
                 offset);
        cJSON_Delete (root);
        free (text);
        return NULL;
    }
    free (text);
    bridge_config_t *self = calloc (1, sizeof (bridge_config_t));
    int protocol = 2;
    if (!self || s_neon_shape (root) || s_top (self, root, &protocol) || s_servers (self, root) ||
        s_tls (self, root) || s_curve (self, root) || s_routes (self, root, protocol) ||
        bridge_events_config_parse (self, root))
        bridge_config_destroy (&self);
    cJSON_Delete (root);
    return self;
}

void bridge_config_destroy (bridge_config_t **self_p)
{
    bridge_config_t *self = self_p ? *self_p : NULL;
    if (!self)
        return;
    for (size_t index = 0; self->routes && index < self->nroutes; index++) {
        route_t *route = &self->routes[index];
        free (route->service);
        free (route->vhost);
        free (route->user);
        free (route->username);
        free (route->password);
        free (route->queue);
        cJSON_Delete (route->action_queues);
        free (route->exchange);
        free (route->routing_key);
        cJSON_Delete (route->context);
        free (route->action);
        free (route->action_key);
        free (route->error_key);
        free (route->probe_queue);
    }
    free (self->routes);
    bridge_events_config_clear (self);
    for (size_t index = 0; self->hosts && index < self->nservers; index++)
        free (self->hosts[index]);
    free (self->hosts);
    free (self->ports);
    free (self->tls_ca);
    free (self->tls_cert);
    free (self->tls_key);
    free (self->server);
    free (self->endpoint);
    free (self->curve_server);
    free (self->curve_cert);
    free (self->instance);
    free (self);
    *self_p = NULL;
}
