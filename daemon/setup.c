/*  setup.c - see setup.h: CURVE, access rules and the event forwarder as the
    daemon's settings ask, at start-up and on reload.
*/
#include "setup.h"
#include "access.h"
#include "mdp_certfile.h"
#include <errno.h>
#include <string.h>

int setup_security (broker_t *broker, const config_t *config, char *err, size_t errlen)
{
    if (config->curve_cert &&
        broker_set_curve (broker, config->curve_cert, config->curve_keys, err, errlen) != 0)
        return -1;
    if (config->access) {
        access_t *access = access_new (config->access, err, errlen);
        if (!access)
            return -1;
        broker_set_access (broker, &access);
    }
    return 0;
}

int setup_events (const config_t *config, forwarder_t **forwarder_p, char *err, size_t errlen)
{
    *forwarder_p = NULL;
    if (!config->pub_endpoint)
        return 0;
    //  With CURVE, the forwarder has the broker's certificate and its
    //  allowed keys (the broker's zauth), and enforces publish/subscribe rules.
    uint8_t public_key[32], secret_key[32];
    char reason[480];
    if (config->curve_cert && mdp_certfile_load (config->curve_cert, public_key, secret_key, reason,
                                                 sizeof reason) != 0) {
        snprintf (err, errlen, "CURVE certificate %s", reason);
        return -1;
    }
    access_t *access = config->access ? access_new (config->access, err, errlen) : NULL;
    if (config->access && !access)
        return -1;
    forwarder_t *forwarder = forwarder_new_secure (config->pub_endpoint, config->sub_endpoint,
                                                   config->curve_cert ? secret_key : NULL);
    memset (secret_key, 0, sizeof secret_key);
    if (!forwarder) {
        snprintf (err, errlen, "cannot bind the event forwarder to '%s' and '%s': %s",
                  config->pub_endpoint, config->sub_endpoint, zmq_strerror (errno));
        access_destroy (&access);
        return -1;
    }
    forwarder_set_access (forwarder, &access);
    forwarder_set_verbose (forwarder, config->engine.verbose);
    zsys_info ("mdp-broker: events%s: publishers connect to %s, subscribers to %s",
               config->curve_cert ? " (CURVE)" : "", forwarder_pub_endpoint (forwarder),
               forwarder_sub_endpoint (forwarder));
    *forwarder_p = forwarder;
    return 0;
}

static bool s_differ (const char *a, const char *b)
{
    return (a || b) && (!a || !b || strcmp (a, b) != 0);
}

int setup_reload (broker_t *broker, forwarder_t *forwarder, const config_t *old,
                  const config_t *fresh)
{
    //  Rules that cannot be built leave the rules in force: never "no rules"
    //  (allow all) by accident. Only a file without "access" drops them.
    char err[512] = "";
    access_t *access = fresh->access ? access_new (fresh->access, err, sizeof err) : NULL;
    int rc = 0;
    if (fresh->access && !access) {
        zsys_error ("mdp-broker: reload: access rules: %s; keeping the rules in force", err);
        rc = -1;
    } else {
        broker_set_access (broker, &access);
        access = fresh->access && forwarder ? access_new (fresh->access, err, sizeof err) : NULL;
        if (forwarder && (access || !fresh->access))
            forwarder_set_access (forwarder, &access);
    }
    broker_reload_keys (broker);
    if (forwarder)
        forwarder_set_verbose (forwarder, fresh->engine.verbose);
    if (s_differ (old->pub_endpoint, fresh->pub_endpoint) ||
        s_differ (old->sub_endpoint, fresh->sub_endpoint) ||
        s_differ (old->curve_cert, fresh->curve_cert) ||
        s_differ (old->curve_keys, fresh->curve_keys))
        zsys_warning ("mdp-broker: reload: event endpoints or CURVE settings changed; "
                      "they take effect at restart");
    return rc;
}
