/*  pubsub_harness.h - what the event suites share (test_pubsub*.c,
    test_e2e_pubsub.c): the forwarder (daemon/forwarder.c) run in-process as a
    fixture, and a publisher and subscriber connected to it, ready (the
    slow-joiner handshake done), with one-line publish and expect. Included by
    one suite each (static functions).
*/
#ifndef PUBSUB_HARNESS_H_INCLUDED
#define PUBSUB_HARNESS_H_INCLUDED

#include "forwarder.h"
#include "mdp.h"
#include "testutil.h"
#include <check.h>

static forwarder_t *forwarder;
static const char *pub_ep; //  where publishers connect (XSUB)
static const char *sub_ep; //  where subscribers connect (XPUB)

__attribute__ ((unused)) static void s_setup (void)
{
    forwarder = forwarder_new ("tcp://127.0.0.1:*", "tcp://127.0.0.1:*");
    ck_assert_ptr_nonnull (forwarder);
    pub_ep = forwarder_pub_endpoint (forwarder);
    sub_ep = forwarder_sub_endpoint (forwarder);
}

__attribute__ ((unused)) static void s_teardown (void)
{
    forwarder_destroy (&forwarder);
}

__attribute__ ((unused)) static mdp_subscriber_t *s_subscriber (const char *prefix)
{
    mdp_subscriber_t *subscriber = mdp_subscriber_new (sub_ep);
    ck_assert_ptr_nonnull (subscriber);
    mdp_subscriber_set_sync_timeout (subscriber, tu_scale (3000));
    if (prefix)
        ck_assert_int_eq (mdp_subscriber_subscribe (subscriber, prefix), 0);
    return subscriber;
}

__attribute__ ((unused)) static mdp_publisher_t *s_publisher (void)
{
    mdp_publisher_t *publisher = mdp_publisher_new (pub_ep);
    ck_assert_ptr_nonnull (publisher);
    mdp_publisher_set_sync_timeout (publisher, tu_scale (3000));
    return publisher;
}

//  Publish category with data {"n": n}.
__attribute__ ((unused)) static void s_publish (mdp_publisher_t *publisher, const char *category,
                                                int n)
{
    cJSON *data = cJSON_CreateObject ();
    cJSON_AddNumberToObject (data, "n", n);
    ck_assert_int_eq (mdp_publisher_send (publisher, category, data), 0);
    cJSON_Delete (data);
}

//  Receive the next event (bounded wait) and check category and n.
__attribute__ ((unused)) static void s_expect (mdp_subscriber_t *subscriber, const char *category,
                                               int n)
{
    char *got = NULL;
    cJSON *data = NULL;
    ck_assert_int_eq (mdp_subscriber_recv (subscriber, &got, &data, tu_scale (3000)), 0);
    ck_assert_str_eq (got, category);
    ck_assert_int_eq (cJSON_GetObjectItem (data, "n")->valueint, n);
    free (got);
    cJSON_Delete (data);
}

#endif
