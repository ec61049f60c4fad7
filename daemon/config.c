/*  config.c - mdp-broker's settings: the key table, the checks on each key,
    the config file reader and the JSON rendering behind --print-config.
    One table lists every key the file and the flags may set; anything else is
    refused, so a typo never passes silently. See config.h.
*/
#include "config.h"
#include "access.h"
#include "mdp.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    KEY_ENDPOINTS,
    KEY_HEARTBEAT,
    KEY_LIVENESS,
    KEY_REQUEST_TIMEOUT,
    KEY_MAX_QUEUE,
    KEY_MAX_MSG_SIZE,
    KEY_STATS_INTERVAL,
    KEY_LOG,
    KEY_VERBOSE,
    KEY_PIDFILE,
    KEY_MAX_CLIENT_REQUESTS,
    KEY_PUB_ENDPOINT,
    KEY_SUB_ENDPOINT,
    KEY_CURVE_CERT,
    KEY_CURVE_KEYS,
    KEY_ACCESS
} key_id_t;

typedef enum {
    KIND_NUMBER,  //  a whole number within [min, max]
    KIND_BOOL,    //  true or false
    KIND_STRING,  //  a string (pidfile: or null)
    KIND_STRINGS, //  an array of min to max strings
    KIND_OBJECT   //  a JSON object (access rules), or null
} key_kind_t;

typedef struct {
    const char *name;   //  the JSON key; the flag is --name with '-' for '_'
    key_id_t id;        //  what s_apply_key sets
    key_kind_t kind;    //  the JSON type it takes
    long long min, max; //  bounds of a number, or of an array's length
    const char *unit;   //  how a number is counted, for messages
} setting_t;

//  Every key there is, in the order --print-config shows them; a file with
//  any other key is refused.
static const setting_t s_keys[] = {
    {"endpoints", KEY_ENDPOINTS, KIND_STRINGS, 1, CONFIG_MAX_ENDPOINTS, NULL},
    {"heartbeat", KEY_HEARTBEAT, KIND_NUMBER, 10, 3600000, "milliseconds"},
    {"liveness", KEY_LIVENESS, KIND_NUMBER, 1, 1000, "heartbeats"},
    {"request_timeout", KEY_REQUEST_TIMEOUT, KIND_NUMBER, 1, 86400, "seconds"},
    {"max_queue", KEY_MAX_QUEUE, KIND_NUMBER, 1, 1000000, "requests per service"},
    {"max_msg_size", KEY_MAX_MSG_SIZE, KIND_NUMBER, 256, 4294967296LL, "bytes"},
    {"stats_interval", KEY_STATS_INTERVAL, KIND_NUMBER, 0, 86400, "seconds, 0 for none"},
    {"log", KEY_LOG, KIND_STRING, 0, 0, NULL},
    {"verbose", KEY_VERBOSE, KIND_BOOL, 0, 0, NULL},
    {"pidfile", KEY_PIDFILE, KIND_STRING, 0, 0, NULL},
    {"max_client_requests", KEY_MAX_CLIENT_REQUESTS, KIND_NUMBER, 0, 1000000,
     "pending requests per client (per CURVE key), 0 for no cap"},
    {"pub_endpoint", KEY_PUB_ENDPOINT, KIND_STRING, 0, 0, NULL},
    {"sub_endpoint", KEY_SUB_ENDPOINT, KIND_STRING, 0, 0, NULL},
    {"curve_cert", KEY_CURVE_CERT, KIND_STRING, 0, 0, NULL},
    {"curve_keys", KEY_CURVE_KEYS, KIND_STRING, 0, 0, NULL},
    {"access", KEY_ACCESS, KIND_OBJECT, 0, 0, NULL},
};
#define KEY_COUNT (sizeof s_keys / sizeof s_keys[0])

static void s_error (char *err, size_t errlen, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    vsnprintf (err, errlen, fmt, args);
    va_end (args);
}

static const setting_t *s_key_lookup (const char *name)
{
    for (size_t i = 0; i < KEY_COUNT; i++)
        if (strcmp (s_keys[i].name, name) == 0)
            return &s_keys[i];
    return NULL;
}

config_t *config_new (void)
{
    config_t *self = calloc (1, sizeof (config_t));
    if (!self)
        return NULL;
    broker_config_defaults (&self->engine);
    self->endpoints[0] = strdup (MDP_DEFAULT_ENDPOINT);
    if (!self->endpoints[0]) {
        free (self);
        return NULL;
    }
    self->nendpoints = 1;
    return self;
}

void config_destroy (config_t **self_p)
{
    config_t *self = self_p ? *self_p : NULL;
    if (!self)
        return;
    for (size_t i = 0; i < self->nendpoints; i++)
        free (self->endpoints[i]);
    free (self->pidfile);
    free (self->pub_endpoint);
    free (self->sub_endpoint);
    free (self->curve_cert);
    free (self->curve_keys);
    cJSON_Delete (self->access);
    free (self);
    *self_p = NULL;
}

//  True if text looks like transport://address (zmq_bind judges the rest).
//  inproc is refused: no other process could reach the broker there.
static bool s_endpoint_ok (const char *text)
{
    size_t len = strlen (text);
    const char *sep = strstr (text, "://");
    if (len == 0 || len > 255 || !sep || sep == text || sep[3] == 0)
        return false;
    for (const char *c = text; c < sep; c++)
        if (*c < 'a' || *c > 'z')
            return false;
    return strncmp (text, "inproc://", 9) != 0;
}

//  Check item is a whole number within the key's bounds; max_msg_size also
//  takes -1 (no limit).
static int s_number (const setting_t *key, const cJSON *item, long long *value, char *err,
                     size_t errlen)
{
    double number = cJSON_IsNumber (item) ? item->valuedouble : 0.5;
    bool none_ok = key->id == KEY_MAX_MSG_SIZE;
    bool in_range =
        (number >= (double)key->min && number <= (double)key->max) || (none_ok && number == -1);
    //  In range first: only then is the cast defined.
    if (in_range && number == (double)(long long)number) {
        *value = (long long)number;
        return 0;
    }
    s_error (err, errlen, "\"%s\" must be %sa whole number from %lld to %lld (%s)", key->name,
             none_ok ? "-1 (no limit) or " : "", key->min, key->max, key->unit);
    return -1;
}

static int s_endpoints (config_t *self, const setting_t *key, const cJSON *item, char *err,
                        size_t errlen)
{
    int count = cJSON_IsArray (item) ? cJSON_GetArraySize (item) : 0;
    if (count < key->min || count > key->max) {
        s_error (err, errlen, "\"%s\" must be an array of %lld to %lld endpoint strings", key->name,
                 key->min, key->max);
        return -1;
    }
    const cJSON *child;
    cJSON_ArrayForEach (child, item)
    {
        if (!cJSON_IsString (child) || !s_endpoint_ok (child->valuestring)) {
            char *text = cJSON_PrintUnformatted (child);
            s_error (err, errlen, "\"%s\": %s is not an endpoint like \"tcp://127.0.0.1:5555\"",
                     key->name, text ? text : "(?)");
            free (text);
            return -1;
        }
    }
    for (size_t i = 0; i < self->nendpoints; i++)
        free (self->endpoints[i]);
    self->nendpoints = 0;
    cJSON_ArrayForEach (child, item)
    {
        if ((self->endpoints[self->nendpoints] = strdup (child->valuestring)))
            self->nendpoints++;
    }
    if (self->nendpoints != (size_t)count) {
        s_error (err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

//  Set *field to a copy of item's string, or NULL when item is null.
static int s_set_path (char **field, const cJSON *item)
{
    free (*field);
    *field = cJSON_IsNull (item) ? NULL : strdup (item->valuestring);
    return 0;
}

//  Check one item against its key and set what it says.
static int s_apply_key (config_t *self, const setting_t *key, const cJSON *item, char *err,
                        size_t errlen)
{
    long long value = 0;
    if (key->kind == KIND_NUMBER && s_number (key, item, &value, err, errlen))
        return -1;
    switch (key->id) {
    case KEY_ENDPOINTS:
        return s_endpoints (self, key, item, err, errlen);
    case KEY_HEARTBEAT:
        self->engine.heartbeat = (int)value;
        break;
    case KEY_LIVENESS:
        self->engine.liveness = (int)value;
        break;
    case KEY_REQUEST_TIMEOUT:
        self->engine.request_timeout = (int)value * 1000;
        break;
    case KEY_MAX_QUEUE:
        self->engine.max_queue = (size_t)value;
        break;
    case KEY_MAX_MSG_SIZE:
        self->engine.max_msg_size = (int64_t)value;
        break;
    case KEY_STATS_INTERVAL:
        self->engine.stats_interval = (int)value * 1000;
        break;
    case KEY_LOG:
        if (!cJSON_IsString (item) || (strcmp (item->valuestring, "stderr") != 0 &&
                                       strcmp (item->valuestring, "syslog") != 0)) {
            s_error (err, errlen, "\"log\" must be \"stderr\" or \"syslog\"");
            return -1;
        }
        self->log_syslog = strcmp (item->valuestring, "syslog") == 0;
        break;
    case KEY_VERBOSE:
        if (!cJSON_IsBool (item)) {
            s_error (err, errlen, "\"verbose\" must be true or false");
            return -1;
        }
        self->engine.verbose = cJSON_IsTrue (item);
        break;
    case KEY_MAX_CLIENT_REQUESTS:
        self->engine.max_client_requests = (size_t)value;
        break;
    case KEY_PUB_ENDPOINT:
    case KEY_SUB_ENDPOINT:
        if (!cJSON_IsNull (item) &&
            (!cJSON_IsString (item) || !s_endpoint_ok (item->valuestring))) {
            s_error (err, errlen,
                     "\"%s\" must be an endpoint like \"tcp://127.0.0.1:5556\" "
                     "or null",
                     key->name);
            return -1;
        }
        return s_set_path (key->id == KEY_PUB_ENDPOINT ? &self->pub_endpoint : &self->sub_endpoint,
                           item);
    case KEY_CURVE_CERT:
    case KEY_CURVE_KEYS:
        if (!cJSON_IsNull (item) && (!cJSON_IsString (item) || !*item->valuestring)) {
            s_error (err, errlen, "\"%s\" must be a %s or null", key->name,
                     key->id == KEY_CURVE_CERT ? "certificate file path" : "directory path");
            return -1;
        }
        return s_set_path (key->id == KEY_CURVE_CERT ? &self->curve_cert : &self->curve_keys, item);
    case KEY_ACCESS: {
        access_t *access = cJSON_IsNull (item) ? NULL : access_new (item, err, errlen);
        if (!cJSON_IsNull (item) && !access)
            return -1;
        access_destroy (&access);
        cJSON_Delete (self->access);
        self->access = cJSON_IsNull (item) ? NULL : cJSON_Duplicate (item, true);
        break;
    }
    case KEY_PIDFILE:
        if (!cJSON_IsNull (item) &&
            (!cJSON_IsString (item) || !*item->valuestring || strlen (item->valuestring) > 4000)) {
            s_error (err, errlen, "\"pidfile\" must be a file path or null");
            return -1;
        }
        free (self->pidfile);
        self->pidfile = cJSON_IsNull (item) ? NULL : strdup (item->valuestring);
        break;
    }
    return 0;
}

int config_apply (config_t *self, const cJSON *layer, char *err, size_t errlen)
{
    if (!cJSON_IsObject (layer)) {
        s_error (err, errlen, "the settings must be a JSON object");
        return -1;
    }
    const cJSON *item;
    cJSON_ArrayForEach (item, layer)
    {
        const setting_t *key = s_key_lookup (item->string);
        if (!key) {
            char known[256] = "";
            for (size_t i = 0; i < KEY_COUNT; i++)
                snprintf (known + strlen (known), sizeof known - strlen (known), "%s%s",
                          i ? ", " : "", s_keys[i].name);
            s_error (err, errlen, "unknown key \"%s\" (known keys: %s)", item->string, known);
            return -1;
        }
        for (const cJSON *prev = layer->child; prev != item; prev = prev->next)
            if (strcmp (prev->string, item->string) == 0) {
                s_error (err, errlen, "key \"%s\" appears twice", item->string);
                return -1;
            }
        if (s_apply_key (self, key, item, err, errlen))
            return -1;
    }
    return 0;
}

//  Line and column (from 1) of position pos in text.
static void s_position (const char *text, const char *pos, int *line, int *column)
{
    *line = 1;
    *column = 1;
    for (const char *c = text; c < pos && *c; c++) {
        if (*c == '\n') {
            (*line)++;
            *column = 1;
        } else
            (*column)++;
    }
}

cJSON *config_read_file (const char *path, char *err, size_t errlen)
{
    FILE *file = fopen (path, "r");
    if (!file) {
        s_error (err, errlen, "%s: cannot open: %s", path, strerror (errno));
        return NULL;
    }
    char *text = malloc (CONFIG_MAX_FILE + 1);
    size_t size = text ? fread (text, 1, CONFIG_MAX_FILE + 1, file) : 0;
    bool failed = !text || ferror (file);
    fclose (file);
    cJSON *root = NULL;
    if (failed)
        s_error (err, errlen, "%s: cannot read", path);
    else if (size > CONFIG_MAX_FILE)
        s_error (err, errlen, "%s: larger than %d bytes", path, CONFIG_MAX_FILE);
    else {
        text[size] = 0;
        const char *end = NULL;
        root = strlen (text) == size ? cJSON_ParseWithOpts (text, &end, true) : NULL;
        if (!root) {
            int line, column;
            s_position (text, end ? end : text + strlen (text), &line, &column);
            s_error (err, errlen, "%s: not valid JSON (line %d, column %d)", path, line, column);
        } else if (!cJSON_IsObject (root)) {
            s_error (err, errlen, "%s: must hold one JSON object {...}", path);
            cJSON_Delete (root);
            root = NULL;
        }
    }
    free (text);
    return root;
}

int config_set_flag (cJSON *layer, const char *key_name, const char *text, char *err, size_t errlen)
{
    const setting_t *key = s_key_lookup (key_name);
    if (!key) {
        s_error (err, errlen, "no such setting \"%s\"", key_name);
        return -1;
    }
    cJSON *item = NULL;
    if (key->kind == KIND_NUMBER) {
        char *end;
        errno = 0;
        long long value = strtoll (text, &end, 10);
        if (errno || end == text || *end) {
            char flag[64];
            snprintf (flag, sizeof flag, "%s", key->name);
            for (char *c = flag; *c; c++)
                *c = *c == '_' ? '-' : *c;
            s_error (err, errlen, "--%s: \"%s\" is not a whole number", flag, text);
            return -1;
        }
        item = cJSON_CreateNumber ((double)value);
    } else if (key->kind == KIND_BOOL)
        item = cJSON_CreateBool (strcmp (text, "true") == 0);
    else
        item = cJSON_CreateString (text);
    if (key->kind == KIND_STRINGS) {
        cJSON *array = cJSON_GetObjectItemCaseSensitive (layer, key->name);
        if (!array)
            array = cJSON_AddArrayToObject (layer, key->name);
        if (array && item && cJSON_AddItemToArray (array, item))
            return 0;
    } else {
        cJSON_DeleteItemFromObjectCaseSensitive (layer, key->name);
        if (item && cJSON_AddItemToObject (layer, key->name, item))
            return 0;
    }
    cJSON_Delete (item);
    s_error (err, errlen, "out of memory");
    return -1;
}

config_t *config_build (const char *path, const cJSON *flags, char *err, size_t errlen)
{
    config_t *self = config_new ();
    if (!self) {
        s_error (err, errlen, "out of memory");
        return NULL;
    }
    char reason[512];
    if (path) {
        cJSON *file = config_read_file (path, err, errlen);
        int rc = file ? config_apply (self, file, reason, sizeof reason) : -1;
        if (file && rc)
            s_error (err, errlen, "%s: %s", path, reason);
        cJSON_Delete (file);
        if (rc)
            config_destroy (&self);
    }
    if (self && flags && config_apply (self, flags, reason, sizeof reason)) {
        s_error (err, errlen, "command line: %s", reason);
        config_destroy (&self);
    }
    if (self && (!self->pub_endpoint != !self->sub_endpoint ||
                 (self->pub_endpoint && strcmp (self->pub_endpoint, self->sub_endpoint) == 0 &&
                  !strstr (self->pub_endpoint, ":*")))) {
        s_error (err, errlen, "\"pub_endpoint\" and \"sub_endpoint\" go together, and differ");
        config_destroy (&self);
    }
    if (self && !self->curve_cert != !self->curve_keys) {
        s_error (err, errlen, "\"curve_cert\" and \"curve_keys\" go together");
        config_destroy (&self);
    }
    //  Subscribe rules need the forwarder's CURVE mode; without it they
    //  could not be enforced, and rules must never fail open.
    if (self && self->access && !self->curve_cert &&
        (cJSON_GetObjectItemCaseSensitive (self->access, "publish") ||
         cJSON_GetObjectItemCaseSensitive (self->access, "subscribe"))) {
        s_error (err, errlen,
                 "\"access\": publish and subscribe rules need CURVE "
                 "(\"curve_cert\" and \"curve_keys\")");
        config_destroy (&self);
    }
    return self;
}

char *config_to_json (const config_t *self)
{
    cJSON *root = cJSON_CreateObject ();
    cJSON *endpoints = cJSON_AddArrayToObject (root, "endpoints");
    for (size_t i = 0; endpoints && i < self->nendpoints; i++)
        cJSON_AddItemToArray (endpoints, cJSON_CreateString (self->endpoints[i]));
    const broker_config_t *engine = &self->engine;
    cJSON_AddNumberToObject (root, "heartbeat", engine->heartbeat);
    cJSON_AddNumberToObject (root, "liveness", engine->liveness);
    cJSON_AddNumberToObject (root, "request_timeout", engine->request_timeout / 1000);
    cJSON_AddNumberToObject (root, "max_queue", (double)engine->max_queue);
    cJSON_AddNumberToObject (root, "max_msg_size", (double)engine->max_msg_size);
    cJSON_AddNumberToObject (root, "stats_interval", engine->stats_interval / 1000);
    cJSON_AddStringToObject (root, "log", self->log_syslog ? "syslog" : "stderr");
    cJSON_AddBoolToObject (root, "verbose", engine->verbose);
    const char *names[] = {"pidfile",      "max_client_requests", "pub_endpoint",
                           "sub_endpoint", "curve_cert",          "curve_keys"};
    const char *values[] = {self->pidfile,      NULL,
                            self->pub_endpoint, self->sub_endpoint,
                            self->curve_cert,   self->curve_keys};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (i == 1)
            cJSON_AddNumberToObject (root, names[i], (double)engine->max_client_requests);
        else if (values[i])
            cJSON_AddStringToObject (root, names[i], values[i]);
        else
            cJSON_AddNullToObject (root, names[i]);
    if (self->access)
        cJSON_AddItemToObject (root, "access", cJSON_Duplicate (self->access, true));
    else
        cJSON_AddNullToObject (root, "access");
    char *text = cJSON_Print (root);
    cJSON_Delete (root);
    return text;
}

bool config_same_endpoints (const config_t *a, const config_t *b)
{
    if (a->nendpoints != b->nendpoints)
        return false;
    for (size_t i = 0; i < a->nendpoints; i++)
        if (strcmp (a->endpoints[i], b->endpoints[i]) != 0)
            return false;
    return true;
}
