/*  access.h - who may offer and who may call which service, who may publish
    and who may subscribe to which event categories. Rules map a peer's CURVE
    public key (Z85, as ZAP reports it in the "User-Id" property) or "*" to
    shell-style service patterns (fnmatch) or to topic prefixes (events). A
    kind of rule not given allows everything; a kind given, even as an empty
    object, refuses what none of its rules allows.
*/
#ifndef ACCESS_H_INCLUDED
#define ACCESS_H_INCLUDED

#include <cjson/cJSON.h>
#include <stdbool.h>

typedef struct access_t access_t;

//  Build rules from a JSON object {"offer": {KEY: [PATTERN...]}, "call": {...},
//  "publish": {KEY: [PREFIX...]}, "subscribe": {...}} where KEY is a 40-character Z85 public key or
//  "*". Returns NULL and fills error (a message naming the bad key or value) if the object is
//  invalid.
access_t *access_new (const cJSON *json, char *error, size_t error_size);

//  Free the rules and NULL the pointer. Accepts NULL.
void access_destroy (access_t **self_p);

//  True when the peer with public key user_id (NULL or "" for a plain,
//  unauthenticated peer) may register service / send requests to service.
//  A NULL self allows everything.
bool access_may_offer (const access_t *self, const char *user_id, const char *service);
bool access_may_call (const access_t *self, const char *user_id, const char *service);

//  True when the peer may publish an event whose topic (len bytes) starts with
//  one of its publish prefixes / may subscribe to prefix (len bytes): a
//  subscription must start with one of its subscribe prefixes, so "" (all
//  events) needs the rule "". A NULL self allows everything.
bool access_may_publish (const access_t *self, const char *user_id, const char *topic, size_t len);
bool access_may_subscribe (const access_t *self, const char *user_id, const char *prefix,
                           size_t len);

//  True when publish or subscribe rules are given (the forwarder checks them).
bool access_has_events (const access_t *self);

#endif
