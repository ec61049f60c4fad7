/*  http_config.c - mdp-http's settings, the way mdp-broker reads its own
    (broker/config.c): built-in defaults, then a JSON config file, then the
    command-line flags, one table of keys and a check per key; a key not in
    the table is refused so that a typo never passes silently.
*/
#include "http.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FILE 65536 //  bytes a config file may hold

typedef enum { KIND_NUMBER, KIND_BOOL, KIND_STRING, KIND_STRINGS } kind_t;

typedef struct {
    const char *name;   //  the JSON key; the flag is --name, '-' for '_'
    kind_t kind;        //  the JSON type it takes
    long long min, max; //  bounds of a number or of an array's length
    const char *unit;   //  how a number is counted, for messages
} key_t_;

//  Every key there is, in the order --print-config shows them.
static const key_t_ s_keys[] = {
    {"listen", KIND_STRING, 0, 0, NULL},
    {"endpoints", KIND_STRINGS, 1, HTTP_MAX_ENDPOINTS, NULL},
    {"events", KIND_STRING, 0, 0, NULL},
    {"token_file", KIND_STRING, 0, 0, NULL},
    {"curve_server", KIND_STRING, 0, 0, NULL},
    {"curve_cert", KIND_STRING, 0, 0, NULL},
    {"pidfile", KIND_STRING, 0, 0, NULL},
    {"timeout", KIND_NUMBER, 1, HTTP_MAX_TIMEOUT, "milliseconds"},
    {"max_body", KIND_NUMBER, 0, 1073741824, "bytes"},
    {"client_timeout", KIND_NUMBER, 1, 86400, "seconds"},
    {"log", KIND_STRING, 0, 0, NULL},
    {"verbose", KIND_BOOL, 0, 0, NULL},
};
#define KEY_COUNT (sizeof s_keys / sizeof s_keys[0])

static void s_error (char *err, size_t errlen, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
static void s_error (char *err, size_t errlen, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    vsnprintf (err, errlen, fmt, args);
    va_end (args);
}

static const key_t_ *s_lookup (const char *name)
{
    for (size_t i = 0; i < KEY_COUNT; i++)
        if (strcmp (s_keys[i].name, name) == 0)
            return &s_keys[i];
    return NULL;
}

static http_config_t *s_new (void)
{
    http_config_t *self = calloc (1, sizeof (http_config_t));
    if (!self)
        return NULL;
    self->listen = strdup (HTTP_DEFAULT_LISTEN);
    self->endpoints[0] = strdup (MDP_DEFAULT_ENDPOINT);
    self->nendpoints = 1;
    self->timeout = HTTP_DEFAULT_TIMEOUT;
    self->max_body = HTTP_DEFAULT_MAX_BODY;
    self->client_timeout = 30;
    if (!self->listen || !self->endpoints[0])
        http_config_destroy (&self);
    return self;
}

void http_config_destroy (http_config_t **self_p)
{
    http_config_t *self = self_p ? *self_p : NULL;
    if (!self)
        return;
    free (self->listen);
    for (size_t i = 0; i < self->nendpoints; i++)
        free (self->endpoints[i]);
    free (self->events);
    free (self->token_file);
    free (self->curve_server);
    free (self->curve_cert);
    free (self->pidfile);
    free (self);
    *self_p = NULL;
}

//  True if text looks like transport://address (zmq judges the rest).
static bool s_endpoint_ok (const char *text)
{
    const char *sep = strstr (text, "://");
    if (strlen (text) > 255 || !sep || sep == text || sep[3] == 0)
        return false;
    for (const char *c = text; c < sep; c++)
        if (*c < 'a' || *c > 'z')
            return false;
    return true;
}

//  True if text is HOST:PORT or [HOST]:PORT with a port from 0 to 65535.
static bool s_listen_ok (const char *text)
{
    const char *colon = strrchr (text, ':');
    if (!colon || colon == text || strlen (text) > 255)
        return false;
    char *end;
    errno = 0;
    long port = strtol (colon + 1, &end, 10);
    return !errno && end != colon + 1 && !*end && port >= 0 && port <= 65535;
}

static int s_string (char **field, const key_t_ *key, const cJSON *item, char *err, size_t errlen)
{
    bool nullable = strcmp (key->name, "listen") != 0 && strcmp (key->name, "log") != 0;
    if (cJSON_IsNull (item) && nullable) {
        free (*field);
        *field = NULL;
        return 0;
    }
    const char *text = cJSON_IsString (item) ? item->valuestring : NULL;
    const char *want = NULL;
    if (!text || !*text || strlen (text) > 4000)
        want = "a non-empty string";
    else if (strcmp (key->name, "listen") == 0 && !s_listen_ok (text))
        want = "HOST:PORT, like \"127.0.0.1:8080\"";
    else if (strcmp (key->name, "events") == 0 && !s_endpoint_ok (text))
        want = "an endpoint like \"tcp://127.0.0.1:5557\" or null";
    else if (strcmp (key->name, "log") == 0 && strcmp (text, "stderr") && strcmp (text, "syslog"))
        want = "\"stderr\" or \"syslog\"";
    else if (strcmp (key->name, "curve_server") == 0 && strlen (text) != 40)
        want = "a 40-character Z85 public key or null";
    if (want) {
        s_error (err, errlen, "\"%s\" must be %s", key->name, want);
        return -1;
    }
    char *copy = strdup (text);
    if (!copy) {
        s_error (err, errlen, "out of memory");
        return -1;
    }
    free (*field);
    *field = copy;
    return 0;
}

static int s_endpoints (http_config_t *self, const cJSON *item, char *err, size_t errlen)
{
    int count = cJSON_IsArray (item) ? cJSON_GetArraySize (item) : 0;
    const cJSON *child;
    bool ok = count >= 1 && count <= HTTP_MAX_ENDPOINTS;
    cJSON_ArrayForEach (child, item) ok =
        ok && cJSON_IsString (child) && s_endpoint_ok (child->valuestring);
    if (!ok) {
        s_error (err, errlen,
                 "\"endpoints\" must be an array of 1 to %d endpoint strings "
                 "like \"tcp://127.0.0.1:5555\"",
                 HTTP_MAX_ENDPOINTS);
        return -1;
    }
    for (size_t i = 0; i < self->nendpoints; i++)
        free (self->endpoints[i]);
    self->nendpoints = 0;
    cJSON_ArrayForEach (child, item) if ((self->endpoints[self->nendpoints] =
                                              strdup (child->valuestring))) self->nendpoints++;
    if (self->nendpoints != (size_t)count) {
        s_error (err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

static int s_apply_key (http_config_t *self, const key_t_ *key, const cJSON *item, char *err,
                        size_t errlen)
{
    if (key->kind == KIND_NUMBER) {
        double number = cJSON_IsNumber (item) ? item->valuedouble : 0.5;
        if (number < (double)key->min || number > (double)key->max ||
            number != (double)(long long)number) {
            s_error (err, errlen, "\"%s\" must be a whole number from %lld to %lld (%s)", key->name,
                     key->min, key->max, key->unit);
            return -1;
        }
        if (strcmp (key->name, "timeout") == 0)
            self->timeout = (int)number;
        else if (strcmp (key->name, "max_body") == 0)
            self->max_body = (size_t)number;
        else
            self->client_timeout = (int)number;
        return 0;
    }
    if (key->kind == KIND_BOOL) {
        if (!cJSON_IsBool (item)) {
            s_error (err, errlen, "\"%s\" must be true or false", key->name);
            return -1;
        }
        self->verbose = cJSON_IsTrue (item);
        return 0;
    }
    if (key->kind == KIND_STRINGS)
        return s_endpoints (self, item, err, errlen);
    if (strcmp (key->name, "log") == 0) {
        char *log = NULL;
        if (s_string (&log, key, item, err, errlen))
            return -1;
        self->log_syslog = strcmp (log, "syslog") == 0;
        free (log);
        return 0;
    }
    char **field = strcmp (key->name, "listen") == 0         ? &self->listen
                   : strcmp (key->name, "events") == 0       ? &self->events
                   : strcmp (key->name, "token_file") == 0   ? &self->token_file
                   : strcmp (key->name, "curve_server") == 0 ? &self->curve_server
                   : strcmp (key->name, "curve_cert") == 0   ? &self->curve_cert
                                                             : &self->pidfile;
    return s_string (field, key, item, err, errlen);
}

static int s_apply (http_config_t *self, const cJSON *layer, char *err, size_t errlen)
{
    const cJSON *item;
    cJSON_ArrayForEach (item, layer)
    {
        const key_t_ *key = s_lookup (item->string);
        if (!key) {
            char known[512] = "";
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

//  The whole file at path, NUL-terminated, at most MAX_FILE bytes.
static char *s_slurp (const char *path, size_t *size, char *err, size_t errlen)
{
    FILE *file = fopen (path, "r");
    if (!file) {
        s_error (err, errlen, "%s: cannot open: %s", path, strerror (errno));
        return NULL;
    }
    char *text = malloc (MAX_FILE + 1);
    *size = text ? fread (text, 1, MAX_FILE + 1, file) : 0;
    bool failed = !text || ferror (file);
    fclose (file);
    if (failed || *size > MAX_FILE) {
        s_error (err, errlen, failed ? "%s: cannot read" : "%s: larger than 65536 bytes", path);
        free (text);
        return NULL;
    }
    text[*size] = 0;
    return text;
}

static cJSON *s_read_file (const char *path, char *err, size_t errlen)
{
    size_t size;
    char *text = s_slurp (path, &size, err, errlen);
    if (!text)
        return NULL;
    const char *end = NULL;
    cJSON *root = strlen (text) == size ? cJSON_ParseWithOpts (text, &end, true) : NULL;
    if (!root || !cJSON_IsObject (root)) {
        int line = 1, column = 1;
        for (const char *c = text; end && c < end && *c; c++, column++)
            if (*c == '\n') {
                line++;
                column = 0;
            }
        if (root)
            s_error (err, errlen, "%s: must hold one JSON object {...}", path);
        else
            s_error (err, errlen, "%s: not valid JSON (line %d, column %d)", path, line, column);
        cJSON_Delete (root);
        root = NULL;
    }
    free (text);
    return root;
}

http_config_t *http_config_build (const char *path, const cJSON *flags, char *err, size_t errlen)
{
    http_config_t *self = s_new ();
    if (!self) {
        s_error (err, errlen, "out of memory");
        return NULL;
    }
    char reason[768];
    if (path) {
        cJSON *file = s_read_file (path, err, errlen);
        int rc = file ? s_apply (self, file, reason, sizeof reason) : -1;
        if (file && rc)
            s_error (err, errlen, "%s: %s", path, reason);
        cJSON_Delete (file);
        if (rc)
            http_config_destroy (&self);
    }
    if (self && flags && s_apply (self, flags, reason, sizeof reason)) {
        s_error (err, errlen, "command line: %s", reason);
        http_config_destroy (&self);
    }
    if (self && !self->curve_server != !self->curve_cert) {
        s_error (err, errlen, "\"curve_server\" and \"curve_cert\" go together");
        http_config_destroy (&self);
    }
    return self;
}

int http_config_set_flag (cJSON *layer, const char *name, const char *text, char *err,
                          size_t errlen)
{
    const key_t_ *key = s_lookup (name);
    if (!key) {
        s_error (err, errlen, "no such setting \"%s\"", name);
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

static void s_add_string (cJSON *root, const char *name, const char *value)
{
    if (value)
        cJSON_AddStringToObject (root, name, value);
    else
        cJSON_AddNullToObject (root, name);
}

char *http_config_to_json (const http_config_t *self)
{
    cJSON *root = cJSON_CreateObject ();
    if (!root)
        return NULL;
    s_add_string (root, "listen", self->listen);
    cJSON *endpoints = cJSON_AddArrayToObject (root, "endpoints");
    for (size_t i = 0; endpoints && i < self->nendpoints; i++)
        cJSON_AddItemToArray (endpoints, cJSON_CreateString (self->endpoints[i]));
    s_add_string (root, "events", self->events);
    s_add_string (root, "token_file", self->token_file);
    s_add_string (root, "curve_server", self->curve_server);
    s_add_string (root, "curve_cert", self->curve_cert);
    s_add_string (root, "pidfile", self->pidfile);
    cJSON_AddNumberToObject (root, "timeout", self->timeout);
    cJSON_AddNumberToObject (root, "max_body", (double)self->max_body);
    cJSON_AddNumberToObject (root, "client_timeout", self->client_timeout);
    cJSON_AddStringToObject (root, "log", self->log_syslog ? "syslog" : "stderr");
    cJSON_AddBoolToObject (root, "verbose", self->verbose);
    char *text = cJSON_Print (root);
    cJSON_Delete (root);
    return text;
}

char *http_config_read_token (const char *path, char *err, size_t errlen)
{
    size_t size;
    char *text = s_slurp (path, &size, err, errlen);
    if (!text)
        return NULL;
    text[strcspn (text, "\r\n")] = 0;
    size_t len = strlen (text);
    while (len && (text[len - 1] == ' ' || text[len - 1] == '\t'))
        text[--len] = 0;
    if (len == 0 || len > HTTP_MAX_TOKEN) {
        s_error (err, errlen, "%s: the token (first line) must be 1 to %d bytes", path,
                 HTTP_MAX_TOKEN);
        free (text);
        return NULL;
    }
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)text[i] < 0x21 || (unsigned char)text[i] > 0x7e) {
            s_error (err, errlen, "%s: the token must be printable ASCII without spaces", path);
            free (text);
            return NULL;
        }
    return text;
}
