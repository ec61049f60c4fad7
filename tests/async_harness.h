/*  async_harness.h - what the mdp_async_t suites share (test_async*.c): an
    async client for a fake broker, requests sent in one line, and events
    read back as one comparable text. Included by one suite each (static
    functions); the fake broker itself is testutil's (tu_answer, tu_pair_new).
*/
#ifndef ASYNC_HARNESS_H_INCLUDED
#define ASYNC_HARNESS_H_INCLUDED

#include "mdp.h"
#include "testutil.h"
#include <check.h>
#include <errno.h>
#include <inttypes.h>

#define SEED 20240917u //  the fake broker's shuffles are repeatable

//  An async client for the fake broker, and a request for it.
__attribute__ ((unused)) static mdp_async_t *s_client (const char *endpoint)
{
    mdp_async_t *client = mdp_async_new (endpoint);
    ck_assert_ptr_nonnull (client);
    mdp_async_set_timeout (client, tu_scale (10000)); //  tests that want less say so
    return client;
}

__attribute__ ((unused)) static uint64_t s_send (mdp_async_t *client, const char *service,
                                                 const char *action, const char *json)
{
    mdp_msg_t *request = mdp_msg_new (action, cJSON_Parse (json));
    uint64_t id = mdp_async_send (client, service, &request);
    ck_assert_ptr_null (request);
    ck_assert_msg (id != 0, "send failed: %s", strerror (errno));
    return id;
}

//  mdp_async_recv within msecs, as one JSON text: "<id> <final> <json>" or
//  "<id> <final> errno=<n>"; "none" when nothing happened. Caller frees.
__attribute__ ((unused)) static char *s_event (mdp_async_t *client, int msecs)
{
    uint64_t id = 0;
    bool final = false;
    errno = 0;
    mdp_msg_t *reply = mdp_async_recv (client, &id, &final, tu_scale (msecs));
    int error = errno;
    if (!reply && error == EAGAIN)
        return strdup ("none");
    char *json = reply ? mdp_msg_to_json (reply) : NULL;
    char *text =
        json ? zsys_sprintf ("%" PRIu64 " %s %s", id, final ? "final" : "partial", json)
             : zsys_sprintf ("%" PRIu64 " %s errno=%d", id, final ? "final" : "partial", error);
    free (json);
    mdp_msg_destroy (&reply);
    return text;
}

#define ck_assert_event(client, msecs, expected)                                                   \
    do {                                                                                           \
        char *event_ = s_event (client, msecs);                                                    \
        ck_assert_str_eq (event_, expected);                                                       \
        free (event_);                                                                             \
    } while (0)

//  The correlation frame of msg: its second frame, after the routing id.
__attribute__ ((unused)) static zframe_t *s_correlation (zmsg_t *msg)
{
    zmsg_first (msg);
    return zmsg_next (msg);
}

#endif
