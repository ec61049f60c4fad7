/*  broker_harness.h - what the broker engine suites share: a broker object
    driven in the test's own thread (broker_poll), raw DEALER peers, and
    frame-exact expectations. Included by one suite each (static functions).
*/
#ifndef BROKER_HARNESS_H_INCLUDED
#define BROKER_HARNESS_H_INCLUDED

#include "broker.h"
#include "mdp_proto.h"
#include "testutil.h"
#include <check.h>

static broker_t *broker;
static char *endpoint;

__attribute__ ((unused)) static void s_setup_with (int heartbeat, size_t max_queue)
{
    broker_config_t cfg;
    broker_config_defaults (&cfg);
    cfg.heartbeat = heartbeat;
    cfg.max_queue = max_queue;
    broker = broker_new (&cfg);
    ck_assert_ptr_nonnull (broker);
    ck_assert_int_eq (broker_bind (broker, "tcp://127.0.0.1:*"), 0);
    endpoint = strdup (broker_endpoint (broker));
}

__attribute__ ((unused)) static void s_setup (void)
{
    s_setup_with (2500, 10000);
}

__attribute__ ((unused)) static void s_teardown (void)
{
    broker_destroy (&broker);
    free (endpoint);
}

__attribute__ ((unused)) static zsock_t *s_peer (void)
{
    zsock_t *peer = zsock_new_dealer (endpoint);
    ck_assert_ptr_nonnull (peer);
    zsock_set_linger (peer, 0);
    return peer;
}

//  Pump the broker until peer has a message (or msecs pass); return it.
__attribute__ ((unused)) static zmsg_t *s_recv (zsock_t *peer, int msecs)
{
    int64_t deadline = zclock_mono () + tu_scale (msecs);
    while (zclock_mono () < deadline) {
        if (zsock_events (peer) & ZMQ_POLLIN)
            return zmsg_recv (peer);
        broker_poll (broker, 5);
    }
    return (zsock_events (peer) & ZMQ_POLLIN) ? zmsg_recv (peer) : NULL;
}

//  Pump the broker for msecs (to let it handle what peers sent).
__attribute__ ((unused)) static void s_pump (int msecs)
{
    int64_t deadline = zclock_mono () + msecs;
    while (zclock_mono () < deadline)
        broker_poll (broker, 2);
}

//  Assert msg has exactly the given string frames (NULL ends the list; "*"
//  matches any frame), then destroy it. One-byte command frames are written
//  as "\x01" and so on.
__attribute__ ((unused)) static void s_expect (zmsg_t **msg_p, ...)
{
    ck_assert_msg (*msg_p != NULL, "expected a message, got none");
    va_list args;
    va_start (args, msg_p);
    zframe_t *frame = zmsg_first (*msg_p);
    const char *want;
    int index = 0;
    while ((want = va_arg (args, const char *))) {
        ck_assert_msg (frame != NULL, "frame %d missing (want '%s')", index, want);
        if (strcmp (want, "*") != 0)
            ck_assert_msg (zframe_streq (frame, want), "frame %d is '%s', want '%s'", index,
                           zframe_strdup (frame), want);
        frame = zmsg_next (*msg_p);
        index++;
    }
    va_end (args);
    ck_assert_msg (frame == NULL, "more frames than the %d expected", index);
    zmsg_destroy (msg_p);
}

//  Pump the broker until it holds this many workers (-1: any) and queued
//  requests (-1: any), at most two seconds (scaled under valgrind).
__attribute__ ((unused)) static void s_pump_until (int want_workers, int want_queued)
{
    int64_t deadline = zclock_mono () + tu_scale (2000);
    size_t services, workers, queued;
    do {
        broker_poll (broker, 2);
        broker_counts (broker, &services, &workers, &queued);
        if ((want_workers < 0 || workers == (size_t)want_workers) &&
            (want_queued < 0 || queued == (size_t)want_queued))
            return;
    } while (zclock_mono () < deadline);
    ck_abort_msg ("broker has %zu workers and %zu queued, want %d and %d", workers, queued,
                  want_workers, want_queued);
}

//  Send frames described by picture: 's' a string, 'c' a one-byte command.
__attribute__ ((unused)) static void s_send (zsock_t *peer, const char *picture, ...)
{
    va_list args;
    va_start (args, picture);
    zmsg_t *msg = zmsg_new ();
    for (const char *p = picture; *p; p++) {
        if (*p == 's')
            zmsg_addstr (msg, va_arg (args, const char *));
        else //  'c': a one-byte command frame
            zmsg_addmem (msg, (char[]){(char)va_arg (args, int)}, 1);
    }
    va_end (args);
    zmsg_send (&msg, peer);
}

//  After a READY the broker has registered: unless it handed the worker a
//  queued request at once (the queue shrank), the worker must have been sent
//  its first HEARTBEAT straight away. Take and check it, so the test sees
//  what comes next. bare: the MDP/0.2 form without the empty frame.
__attribute__ ((unused)) static void s_take_first_heartbeat (zsock_t *worker, size_t queued_before,
                                                             int version, bool bare)
{
    size_t services, workers, queued;
    broker_counts (broker, &services, &workers, &queued);
    if (queued < queued_before)
        return;                           //  a REQUEST went out instead
    zmsg_t *beat = tu_recv (worker, 500); //  already sent: no pumping needed
    const char *proto = version == 2 ? MDPW02 : MDPW01;
    const char *command = version == 2 ? "\x05" : "\x04";
    if (bare)
        s_expect (&beat, proto, command, NULL);
    else
        s_expect (&beat, "", proto, command, NULL);
}

__attribute__ ((unused)) static void s_ready (zsock_t *worker, const char *service)
{
    size_t services, workers, queued;
    broker_counts (broker, &services, &workers, &queued);
    s_send (worker, "sscs", "", MDPW01, MDPW01_READY, service);
    s_pump_until ((int)workers + 1, -1);
    s_take_first_heartbeat (worker, queued, 1, false);
}

#endif
