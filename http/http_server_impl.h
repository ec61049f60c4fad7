/*  http_server_impl.h - what http_server.c (the HTTP side, the loop) and
    http_handlers.c (what each route does with the MDP side) share: the
    server and the per-request context. Private to mdp-http.
*/
#ifndef HTTP_SERVER_IMPL_H_INCLUDED
#define HTTP_SERVER_IMPL_H_INCLUDED

#include "http.h"
#include <microhttpd.h>

typedef enum {
    REQ_NEW,      //  headers seen, not routed yet
    REQ_ANSWERED, //  a response is queued; nothing more to do
    REQ_CALL,     //  POST to a service, one JSON answer
    REQ_STREAM,   //  POST to a service, answered as SSE
    REQ_EVENTS,   //  GET /v1/events, SSE until the client leaves
    REQ_SERVICES, //  GET /v1/services (mmi.workers)
    REQ_STATS,    //  GET /v1/stats (mmi.stats)
    REQ_METRICS   //  GET /metrics (mmi.workers + mmi.stats)
} req_kind_t;

typedef struct _req_t req_t;
struct _req_t {
    http_server_t *server;       //  the server we belong to
    struct MHD_Connection *conn; //  our connection
    req_t *prev, *next;          //  in server->reqs: every live request
    req_kind_t kind;             //  what we are
    bool suspended;              //  MHD connection is suspended (waiting)
    bool dispatched;             //  the body was complete and handled once
    char *body;                  //  request body so far, owned
    size_t body_size;            //  bytes in body
    bool too_big;                //  body passed max_body: 413 at its end
    char *service;               //  a call's service, owned
    char *action;                //  a call's action, owned
    int timeout;                 //  a call's deadline, msecs
    uint64_t ids[2];             //  MDP requests in flight for us (0: none)
    char *answers[2];            //  their answers (mmi text), owned
    int waiting;                 //  answers still to come
    char *out;                   //  SSE bytes not yet taken by MHD, owned
    size_t out_used;             //  bytes in out
    bool out_done;               //  the stream ends once out is drained
    bool out_failed;             //  reader lagged too far: close the connection
    char **prefixes;             //  events: category prefixes (none: all), owned
    size_t nprefixes;            //  entries in prefixes
};

struct _http_server_t {
    const http_config_t *config;  //  settings in force (the caller's)
    struct MHD_Daemon *daemon;    //  the HTTP side, external epoll mode
    mdp_async_t *async;           //  the MDP side: one socket for every call
    mdp_subscriber_t *subscriber; //  events from the forwarder, or NULL
    zhashx_t *pending;            //  req_t by MDP request id ("%016llx")
    req_t *reqs;                  //  every live request context
    char *token;                  //  bearer token required, or NULL
    http_counters_t *counters;    //  answers by service and status
    int64_t next_keepalive;       //  when SSE streams next get a comment
    char url[320];                //  http://HOST:PORT we listen on
};

//  http_server.c: answer req with a complete body (copied) and resume it.
void http_server_respond (req_t *req, unsigned int status, const char *type, const char *body,
                          size_t size);

//  http_server.c: answer {"code": status, "reason": reason} with that status.
void http_server_error (req_t *req, unsigned int status, const char *reason);

//  http_server.c: start an SSE response on req (200, text/event-stream).
int http_server_start_sse (req_t *req);

//  http_server.c: append text to req's SSE buffer, waking its reader; past
//  HTTP_SSE_BUFFER the connection is marked to close instead.
void http_server_push (req_t *req, const char *text, size_t size);

//  http_server.c: end req's SSE stream once its buffer drains.
void http_server_end_stream (req_t *req);

//  http_server.c: suspend req's connection until an answer comes.
void http_server_suspend (req_t *req);

//  http_server.c: remember that MDP request id answers req (slot 0 or 1).
void http_server_track (req_t *req, int slot, uint64_t id);

//  http_handlers.c: route a request whose body is complete.
void http_handlers_dispatch (req_t *req);

//  http_handlers.c: the async client's callback, for every reply.
void http_handlers_on_reply (mdp_async_t *async, uint64_t id, mdp_msg_t *reply, bool final,
                             int status, void *arg);

//  http_handlers.c: the subscriber's callback, for every event.
void http_handlers_on_event (mdp_subscriber_t *subscriber, const char *category, cJSON *data,
                             void *arg);

#endif
