/*  config.h - mdp-broker's settings: built-in defaults, then a JSON config
    file, then command-line flags, each layer checked key by key. Both the file
    and the flags are read into a JSON object with the same keys, so one
    function validates them and every error names the key at fault.
    The keys are documented in man/mdp-broker.1.
*/
#ifndef CONFIG_H_INCLUDED
#define CONFIG_H_INCLUDED

#include "broker.h"
#include <cjson/cJSON.h>

#define CONFIG_MAX_ENDPOINTS 32 //  endpoints the ROUTER may bind
#define CONFIG_MAX_FILE 65536   //  bytes a config file may hold

typedef struct {
    broker_config_t engine;                //  settings for broker_new / broker_configure
    char *endpoints[CONFIG_MAX_ENDPOINTS]; //  where to bind, owned
    size_t nendpoints;                     //  at least 1
    bool log_syslog;                       //  log to syslog, else to stderr
    char *pidfile;                         //  pid file path, owned; NULL for none
    char *pub_endpoint;                    //  event forwarder, publishers' side; NULL: off
    char *sub_endpoint;                    //  event forwarder, subscribers' side; NULL: off
    char *curve_cert;                      //  the broker's CURVE certificate; NULL: plain
    char *curve_keys;                      //  directory of allowed public certificates
    cJSON *access;                         //  access rules as given (access.h), or NULL
} config_t;

//  A new config holding the built-in defaults. NULL on out of memory.
config_t *config_new (void);

//  Destroy the config and NULL the caller's pointer. Accepts NULL.
void config_destroy (config_t **self_p);

//  Check every key of layer (a JSON object with the config file's keys) and
//  apply them to self. Returns 0, or -1 with a message naming the key in err;
//  self is then partly changed.
int config_apply (config_t *self, const cJSON *layer, char *err, size_t errlen);

//  Read and parse the config file at path. Returns its JSON object (the
//  caller deletes it), or NULL with a message in err. Keys are not checked.
cJSON *config_read_file (const char *path, char *err, size_t errlen);

//  Put the command-line value text of key into layer, converted to the key's
//  JSON type ("endpoints" values are appended). Returns 0, or -1 with a
//  message in err (unknown key, not a number).
int config_set_flag (cJSON *layer, const char *key, const char *text, char *err, size_t errlen);

//  The effective config: defaults, then the file at path (if path is not
//  NULL), then the flags layer (if not NULL). Returns it (the caller destroys
//  it), or NULL with a message in err that starts with where the fault is.
config_t *config_build (const char *path, const cJSON *flags, char *err, size_t errlen);

//  Render as a JSON object with the config file's keys, formatted, without a
//  final newline; a file holding it is a valid config file. The caller frees
//  the string. NULL on out of memory.
char *config_to_json (const config_t *self);

//  True when a and b bind the same endpoints in the same order.
bool config_same_endpoints (const config_t *a, const config_t *b);

#endif
