/*  setup.h - the optional parts of mdp-broker that the daemon switches on
    from its settings: CURVE and the allowed keys, the access rules, and the
    Domogik-style event forwarder. main.c calls these at start and on SIGHUP.
*/
#ifndef SETUP_H_INCLUDED
#define SETUP_H_INCLUDED

#include "config.h"
#include "forwarder.h"

//  Before binding: CURVE (if configured) and the access rules. Returns 0, or
//  -1 with a message in err.
int setup_security (broker_t *broker, const config_t *config, char *err, size_t errlen);

//  After binding (and after -d's fork: it starts a thread): the event
//  forwarder if configured, else *forwarder_p stays NULL. Returns 0, or -1
//  with a message in err naming the endpoints.
int setup_events (const config_t *config, forwarder_t **forwarder_p, char *err, size_t errlen);

//  SIGHUP: apply fresh access rules, re-read the allowed keys, pass on the
//  verbose flag; warn about what needs a restart. Returns 0, or -1 when the
//  fresh rules could not be built: the rules in force then stay (logged).
int setup_reload (broker_t *broker, forwarder_t *forwarder, const config_t *old,
                  const config_t *fresh);

#endif
