/*  access.c - see access.h. The rules are small (a handful of keys and
    patterns), so a check is a short scan; it runs only on READY and on client
    requests when rules are configured.
*/
#include "access.h"
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *key;                   //  Z85 public key, or "*"
    char **patterns;             //  service patterns (fnmatch)
    size_t npatterns;            //  number of patterns
} rule_t;

typedef struct {
    rule_t *rules;               //  rules in the order given
    size_t nrules;               //  number of rules
} rule_set_t;

struct access_t {
    rule_set_t offer;            //  who may send READY for what
    rule_set_t call;             //  who may send requests to what
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

//  One of "offer" / "call": {KEY: [PATTERN, ...], ...}.
static int s_rules_parse (rule_set_t *set, const cJSON *json, const char *what, char *error,
                          size_t size)
{
    if (!json)
        return 0;
    if (!cJSON_IsObject (json)) {
        snprintf (error, size, "access.%s must be an object of key: [patterns]", what);
        return -1;
    }
    set->rules = calloc ((size_t) cJSON_GetArraySize (json) + 1, sizeof (rule_t));
    if (!set->rules)
        return -1;
    const cJSON *entry;
    cJSON_ArrayForEach (entry, json) {
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
        rule->patterns = calloc ((size_t) cJSON_GetArraySize (entry) + 1, sizeof (char *));
        const cJSON *pattern;
        cJSON_ArrayForEach (pattern, entry) {
            if (!cJSON_IsString (pattern) || !*pattern->valuestring) {
                snprintf (error, size, "access.%s.%s holds a pattern that is not a string",
                          what, entry->string);
                return -1;
            }
            rule->patterns[rule->npatterns++] = strdup (pattern->valuestring);
        }
    }
    return 0;
}

access_t *access_new (const cJSON *json, char *error, size_t size)
{
    access_t *self = calloc (1, sizeof (access_t));
    if (!self)
        return NULL;
    const cJSON *item;
    cJSON_ArrayForEach (item, json) {
        if (strcmp (item->string, "offer") != 0 && strcmp (item->string, "call") != 0) {
            snprintf (error, size, "access: unknown key '%s' (expected offer, call)",
                      item->string);
            access_destroy (&self);
            return NULL;
        }
    }
    if (!cJSON_IsObject (json)
        || s_rules_parse (&self->offer, cJSON_GetObjectItemCaseSensitive (json, "offer"), "offer",
                          error, size)
        || s_rules_parse (&self->call, cJSON_GetObjectItemCaseSensitive (json, "call"), "call",
                          error, size)) {
        if (!cJSON_IsObject (json))
            snprintf (error, size, "access must be an object with offer and call");
        access_destroy (&self);
        return NULL;
    }
    return self;
}

void access_destroy (access_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    s_rules_free (&(*self_p)->offer);
    s_rules_free (&(*self_p)->call);
    free (*self_p);
    *self_p = NULL;
}

//  No rules in a set: allowed. Otherwise some rule for this key (or "*")
//  must have a matching pattern.
static bool s_allowed (const rule_set_t *set, const char *user_id, const char *service)
{
    if (set->nrules == 0)
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

bool access_may_offer (const access_t *self, const char *user_id, const char *service)
{
    return !self || s_allowed (&self->offer, user_id, service);
}

bool access_may_call (const access_t *self, const char *user_id, const char *service)
{
    return !self || s_allowed (&self->call, user_id, service);
}
