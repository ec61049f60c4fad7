/*  access.c - see access.h. The rules are small (a handful of keys and
    patterns), so a check is a short scan; it runs only on READY, on client
    requests, and in the event forwarder when rules are configured.
*/
#include "access.h"
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *key;        //  Z85 public key, or "*"
    char **patterns;  //  service patterns (fnmatch)
    size_t npatterns; //  number of patterns
} rule_t;

typedef struct {
    bool present;  //  given in the JSON (even empty): closed
    rule_t *rules; //  rules in the order given
    size_t nrules; //  number of rules
} rule_set_t;

//  The four kinds of rules, in the order of s_kinds.
enum { SET_OFFER, SET_CALL, SET_PUBLISH, SET_SUBSCRIBE, SET_COUNT };
static const char *s_kinds[SET_COUNT] = {"offer", "call", "publish", "subscribe"};

struct access_t {
    rule_set_t sets[SET_COUNT]; //  who may offer / call services, publish /
                                //  subscribe to event categories
};

static void s_rules_free (rule_set_t *set)
{
    for (size_t i = 0; i < set->nrules; i++) {
        for (size_t j = 0; j < set->rules[i].npatterns; j++)
            free (set->rules[i].patterns[j]);
        free (set->rules[i].patterns);
        free (set->rules[i].key);
    }
    free (set->rules);
}

static bool s_valid_key (const char *key)
{
    static const char z85[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                              ".-:+=^!/*?&<>()[]{}@%$#";
    if (strcmp (key, "*") == 0)
        return true;
    return strlen (key) == 40 && strspn (key, z85) == 40;
}

//  One of "offer", "call", "publish", "subscribe": {KEY: [PATTERN, ...], ...}.
//  A set that is present is closed, even when it holds no rule.
static int s_rules_parse (rule_set_t *set, const cJSON *json, const char *what, char *error,
                          size_t size)
{
    if (!json)
        return 0;
    set->present = true;
    if (!cJSON_IsObject (json)) {
        snprintf (error, size, "access.%s must be an object of key: [patterns]", what);
        return -1;
    }
    set->rules = calloc ((size_t)cJSON_GetArraySize (json) + 1, sizeof (rule_t));
    if (!set->rules)
        return -1;
    const cJSON *entry;
    cJSON_ArrayForEach (entry, json)
    {
        if (!s_valid_key (entry->string)) {
            snprintf (error, size, "access.%s: '%s' is not a Z85 public key or \"*\"", what,
                      entry->string);
            return -1;
        }
        if (!cJSON_IsArray (entry)) {
            snprintf (error, size, "access.%s.%s must be an array of patterns", what,
                      entry->string);
            return -1;
        }
        rule_t *rule = &set->rules[set->nrules++];
        rule->key = strdup (entry->string);
        rule->patterns = calloc ((size_t)cJSON_GetArraySize (entry) + 1, sizeof (char *));
        if (!rule->key || !rule->patterns) {
            snprintf (error, size, "out of memory");
            return -1;
        }
        const cJSON *pattern;
        cJSON_ArrayForEach (pattern, entry)
        {
            //  Publish and subscribe rules are prefixes; "" is every category.
            bool prefix = strcmp (what, "publish") == 0 || strcmp (what, "subscribe") == 0;
            if (!cJSON_IsString (pattern) || (!prefix && !*pattern->valuestring)) {
                snprintf (error, size, "access.%s.%s holds a pattern that is not a string", what,
                          entry->string);
                return -1;
            }
            if (!(rule->patterns[rule->npatterns] = strdup (pattern->valuestring))) {
                snprintf (error, size, "out of memory");
                return -1;
            }
            rule->npatterns++;
        }
    }
    return 0;
}

access_t *access_new (const cJSON *json, char *error, size_t size)
{
    if (!cJSON_IsObject (json)) {
        snprintf (error, size, "access must be an object with offer, call, publish, subscribe");
        return NULL;
    }
    access_t *self = calloc (1, sizeof (access_t));
    if (!self) {
        snprintf (error, size, "out of memory");
        return NULL;
    }
    const cJSON *item;
    cJSON_ArrayForEach (item, json)
    {
        int kind = 0;
        while (kind < SET_COUNT && strcmp (item->string, s_kinds[kind]) != 0)
            kind++;
        if (kind == SET_COUNT) {
            snprintf (error, size,
                      "access: unknown key '%s' (expected offer, call, publish, "
                      "subscribe)",
                      item->string);
            access_destroy (&self);
            return NULL;
        }
    }
    for (int kind = 0; kind < SET_COUNT; kind++)
        if (s_rules_parse (&self->sets[kind],
                           cJSON_GetObjectItemCaseSensitive (json, s_kinds[kind]), s_kinds[kind],
                           error, size)) {
            access_destroy (&self);
            return NULL;
        }
    return self;
}

void access_destroy (access_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    for (int kind = 0; kind < SET_COUNT; kind++)
        s_rules_free (&(*self_p)->sets[kind]);
    free (*self_p);
    *self_p = NULL;
}

//  A set not given: allowed. Otherwise some rule for this key (or "*") must
//  have a matching pattern; a set given empty allows nothing.
static bool s_allowed (const rule_set_t *set, const char *user_id, const char *service)
{
    if (!set->present)
        return true;
    for (size_t i = 0; i < set->nrules; i++) {
        const rule_t *rule = &set->rules[i];
        if (strcmp (rule->key, "*") != 0 && (!user_id || strcmp (rule->key, user_id) != 0))
            continue;
        for (size_t j = 0; j < rule->npatterns; j++)
            if (fnmatch (rule->patterns[j], service, 0) == 0)
                return true;
    }
    return false;
}

//  The same for prefix rules: some allowed prefix must start text (len bytes).
static bool s_allowed_prefix (const rule_set_t *set, const char *user_id, const char *text,
                              size_t len)
{
    if (!set->present)
        return true;
    for (size_t i = 0; i < set->nrules; i++) {
        const rule_t *rule = &set->rules[i];
        if (strcmp (rule->key, "*") != 0 && (!user_id || strcmp (rule->key, user_id) != 0))
            continue;
        for (size_t j = 0; j < rule->npatterns; j++) {
            size_t plen = strlen (rule->patterns[j]);
            if (plen <= len && memcmp (rule->patterns[j], text, plen) == 0)
                return true;
        }
    }
    return false;
}

bool access_may_offer (const access_t *self, const char *user_id, const char *service)
{
    return !self || s_allowed (&self->sets[SET_OFFER], user_id, service);
}

bool access_may_call (const access_t *self, const char *user_id, const char *service)
{
    return !self || s_allowed (&self->sets[SET_CALL], user_id, service);
}

bool access_may_publish (const access_t *self, const char *user_id, const char *topic, size_t len)
{
    return !self || s_allowed_prefix (&self->sets[SET_PUBLISH], user_id, topic, len);
}

bool access_may_subscribe (const access_t *self, const char *user_id, const char *prefix,
                           size_t len)
{
    return !self || s_allowed_prefix (&self->sets[SET_SUBSCRIBE], user_id, prefix, len);
}

bool access_has_events (const access_t *self)
{
    return self && (self->sets[SET_PUBLISH].present || self->sets[SET_SUBSCRIBE].present);
}
