/*  access.h - who may offer and who may call which service. Rules map a peer's
    CURVE public key (Z85, as ZAP reports it in the "User-Id" property) or "*"
    to shell-style service patterns (fnmatch). Without rules everyone may do
    everything; with rules, what no rule allows is refused.
*/
#ifndef ACCESS_H_INCLUDED
#define ACCESS_H_INCLUDED

#include <cjson/cJSON.h>
#include <stdbool.h>

typedef struct access_t access_t;

//  Build rules from a JSON object {"offer": {KEY: [PATTERN...]}, "call": {...}}
//  where KEY is a 40-character Z85 public key or "*". Returns NULL and fills
//  error (a message naming the bad key or value) if the object is invalid.
access_t *access_new (const cJSON *json, char *error, size_t error_size);

//  Free the rules and NULL the pointer. Accepts NULL.
void access_destroy (access_t **self_p);

//  True when the peer with public key user_id (NULL or "" for a plain,
//  unauthenticated peer) may register service / send requests to service.
//  A NULL self allows everything.
bool access_may_offer (const access_t *self, const char *user_id, const char *service);
bool access_may_call (const access_t *self, const char *user_id, const char *service);

#endif
