/*  client_harness.h - what the mdp_client_t suites share (test_client*.c):
    the blocking client runs one call in a helper actor, against a fake broker
    in the test's own thread, and reports its result (reply, partials, errno)
    over the actor pipe. Included by one suite each (static functions).
*/
#ifndef CLIENT_HARNESS_H_INCLUDED
#define CLIENT_HARNESS_H_INCLUDED

#include "mdp.h"
#include "testutil.h"
#include <check.h>
#include <errno.h>

//  One client call, as the helper actor makes it.
typedef struct {
    const char *endpoint; //  the fake broker
    int timeout;          //  msecs per attempt
    int retries;          //  attempts in all
    const char *service;  //  service to ask
    const char *action;   //  request action, or the name for has_service
    const char *json;     //  request data; NULL means mdp_client_has_service
    bool stream;          //  use mdp_client_request_stream
    int calls;            //  requests made in turn (0 means 1); the last one reports
} call_t;

//  What the call gave back.
typedef struct {
    int error;      //  errno, or 0 when it succeeded
    int found;      //  mdp_client_has_service's answer
    char *reply;    //  mdp_msg_to_json of the reply, or ""
    char *partials; //  mdp_msg_to_json of each partial, one per line, or ""
} result_t;

//  The stream callback: append the partial as one line to the zchunk.
__attribute__ ((unused)) static void s_collect_partial (mdp_msg_t *partial, void *arg)
{
    char *json = mdp_msg_to_json (partial);
    zchunk_extend ((zchunk_t *)arg, json, strlen (json));
    zchunk_extend ((zchunk_t *)arg, "\n", 1);
    free (json);
}

__attribute__ ((unused)) static void s_client_actor (zsock_t *pipe, void *args)
{
    call_t call = *(call_t *)args;
    zsock_signal (pipe, 0);
    mdp_client_t *client = mdp_client_new (call.endpoint);
    mdp_client_set_timeout (client, call.timeout);
    mdp_client_set_retries (client, call.retries);
    int error = 0, found = 0;
    char *text = NULL;
    zchunk_t *partials = zchunk_new (NULL, 0);
    for (int index = 1; call.json && index < call.calls; index++) {
        mdp_msg_t *request = mdp_msg_new (call.action, cJSON_Parse (call.json));
        mdp_msg_t *reply = mdp_client_request (client, call.service, &request);
        mdp_msg_destroy (&reply);
    }
    if (call.json) {
        mdp_msg_t *request = mdp_msg_new (call.action, cJSON_Parse (call.json));
        mdp_msg_t *reply = call.stream ? mdp_client_request_stream (client, call.service, &request,
                                                                    s_collect_partial, partials)
                                       : mdp_client_request (client, call.service, &request);
        error = reply ? 0 : errno;
        text = reply ? mdp_msg_to_json (reply) : NULL;
        mdp_msg_destroy (&reply);
    } else {
        found = mdp_client_has_service (client, call.action);
        error = found < 0 ? errno : 0;
    }
    mdp_client_destroy (&client);
    zchunk_extend (partials, "", 1);
    zsock_send (pipe, "iiss", error, found, text ? text : "", (char *)zchunk_data (partials));
    zchunk_destroy (&partials);
    free (text);
    char *term = zstr_recv (pipe); //  wait for zactor_destroy
    zstr_free (&term);
}

//  Start a call in the background.
__attribute__ ((unused)) static zactor_t *s_call (call_t call)
{
    zactor_t *actor = zactor_new (s_client_actor, &call);
    ck_assert_ptr_nonnull (actor);
    return actor;
}

//  Wait (bounded) for the call to finish and collect its result.
__attribute__ ((unused)) static result_t s_result (zactor_t **actor_p)
{
    result_t result = {-1, -1, NULL, NULL};
    zpoller_t *poller = zpoller_new (*actor_p, NULL);
    bool done = zpoller_wait (poller, tu_scale (5000)) == *actor_p;
    zpoller_destroy (&poller);
    ck_assert_msg (done, "the client call did not finish");
    zsock_recv (*actor_p, "iiss", &result.error, &result.found, &result.reply, &result.partials);
    zactor_destroy (actor_p);
    return result;
}

__attribute__ ((unused)) static void s_result_free (result_t *result)
{
    zstr_free (&result->reply);
    zstr_free (&result->partials);
}

#endif
