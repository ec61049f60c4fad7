/*  http.h - mdp-http's private header: an HTTP gateway in front of an MDP
    broker. One thread: libmicrohttpd (external epoll mode) and libmdp's async
    client and event subscriber share one poll loop (http_main.c). Each file's
    exported names start with its name: http_config_*, http_server_*,
    http_metrics_*. JSON data is parsed and printed with libmdp's mdp_json_*,
    so numbers pass as written. spec/http.md is the HTTP mapping.
*/
#ifndef HTTP_H_INCLUDED
#define HTTP_H_INCLUDED

#include "mdp.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_ENDPOINTS 32 //  -e flags kept (the first is used)
#define HTTP_DEFAULT_LISTEN "127.0.0.1:8080"
#define HTTP_DEFAULT_TIMEOUT 30000    //  msecs a call waits for its reply
#define HTTP_DEFAULT_MAX_BODY 1048576 //  bytes of request body accepted
#define HTTP_MAX_TIMEOUT 86400000     //  largest ?timeout=, msecs (a day)
#define HTTP_SSE_BUFFER 1048576       //  bytes an SSE reader may lag behind
#define HTTP_MAX_TOKEN 4096           //  bytes of a bearer token

//  ---------------------------------------------------------------------------
//  http_config.c: defaults, then the JSON config file, then flags, checked
//  key by key as mdp-broker's config.c does (unknown key: an error).

typedef struct {
    char *listen;                        //  HOST:PORT to listen on (port 0: any)
    char *endpoints[HTTP_MAX_ENDPOINTS]; //  broker endpoints, owned
    size_t nendpoints;                   //  at least 1; only the first is used for now
    char *events;                        //  the forwarder's subscriber side, or NULL
    char *token_file;                    //  file holding the bearer token, or NULL
    char *curve_server;                  //  the broker's CURVE public key, or NULL
    char *curve_cert;                    //  our CURVE certificate, or NULL
    char *pidfile;                       //  pid file path, or NULL
    int timeout;                         //  default call deadline, msecs
    size_t max_body;                     //  largest request body, bytes
    int client_timeout;                  //  seconds an idle HTTP connection is kept
    bool log_syslog;                     //  log to syslog, else stderr
    bool verbose;                        //  log every HTTP request
} http_config_t;

//  The effective settings: defaults, the file at path (if not NULL), then the
//  flags layer (if not NULL). NULL with a message in err on any fault.
http_config_t *http_config_build (const char *path, const cJSON *flags, char *err, size_t errlen);

//  Destroy the settings and NULL the caller's pointer. Accepts NULL.
void http_config_destroy (http_config_t **self_p);

//  Put a flag's text for key into layer, converted to the key's JSON type.
//  Returns 0, or -1 with a message in err.
int http_config_set_flag (cJSON *layer, const char *key, const char *text, char *err,
                          size_t errlen);

//  Render the settings as a JSON object with the config file's keys. The
//  caller frees the string; NULL on out of memory.
char *http_config_to_json (const http_config_t *self);

//  Read the token file: its first line, without trailing white space. Returns
//  the token (the caller frees it), or NULL with a message in err.
char *http_config_read_token (const char *path, char *err, size_t errlen);

//  ---------------------------------------------------------------------------
//  http_metrics.c: /metrics, Prometheus text exposition.

typedef struct _http_counters_t http_counters_t;

//  Count one HTTP answer for a service call (service may be NULL: not a call).
void http_counters_add (http_counters_t **self_p, const char *service, int status);

//  Free every counter and NULL the caller's pointer. Accepts NULL.
void http_counters_destroy (http_counters_t **self_p);

//  The exposition text from the broker's mmi.workers and mmi.stats answers
//  (either may be NULL when the broker did not answer) and our own counters.
//  The caller frees it; NULL on out of memory.
char *http_metrics_render (const cJSON *workers, const cJSON *stats,
                           const http_counters_t *counters);

//  ---------------------------------------------------------------------------
//  http_server.c: the HTTP side and the MDP side of the gateway.

typedef struct _http_server_t http_server_t;

//  Start listening with config (which stays the caller's and must outlive
//  the server). NULL with a message in err on failure.
http_server_t *http_server_new (const http_config_t *config, char *err, size_t errlen);

//  Resume every waiting connection, close everything and NULL the caller's
//  pointer. Accepts NULL.
void http_server_destroy (http_server_t **self_p);

//  The address we listen on, "http://HOST:PORT", owned by the server.
const char *http_server_url (http_server_t *self);

//  Take new settings that can change while running (token, default timeout,
//  body limit, verbosity). config must outlive the server. Returns 0, or -1
//  with a message in err (the settings in force are kept).
int http_server_reload (http_server_t *self, const http_config_t *config, char *err, size_t errlen);

//  Serve until *stop is true. When signal_fd (a signalfd) is readable,
//  on_signal (arg) is called; it may set *stop. Returns 0, or -1 on a fatal
//  poll error.
int http_server_run (http_server_t *self, int signal_fd, void (*on_signal) (void *arg), void *arg,
                     volatile bool *stop);

//  ---------------------------------------------------------------------------
//  http_dashboard.c: the page served at GET /.

//  The dashboard HTML (embedded at build time) and its size in bytes.
const char *http_dashboard (size_t *size);

#endif
