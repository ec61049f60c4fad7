/*  http_json.c - the one place mdp-http parses and prints the JSON DATA of
    requests, replies and events, so that numbers pass unchanged once libmdp
    keeps number text. Until then these call cJSON; at merge they become
    mdp_json_parse (text, size) and mdp_json_print (item) from libmdp.
*/
#include "http.h"
#include <string.h>

//  TODO(merge): return mdp_json_parse (text, size);
static cJSON *s_parse (const char *text, size_t size)
{
    const char *end = NULL;
    //  cJSON needs a terminated string; the body is not.
    char *copy = malloc (size + 1);
    if (!copy)
        return NULL;
    memcpy (copy, text, size);
    copy[size] = 0;
    cJSON *item = strlen (copy) == size ? cJSON_ParseWithOpts (copy, &end, true) : NULL;
    free (copy);
    return item;
}

//  TODO(merge): return mdp_json_print (item);
static char *s_print (const cJSON *item)
{
    return cJSON_PrintUnformatted (item);
}

cJSON *http_json_parse (const char *text, size_t size)
{
    return s_parse (text, size);
}

char *http_json_print (const cJSON *item)
{
    return s_print (item);
}
