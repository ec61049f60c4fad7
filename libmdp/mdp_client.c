/*  mdp_client.c - mdp_client_t, the blocking MDP/0.1 client (the "lazy pirate":
    send, wait with a deadline, and on silence throw the socket away and try
    again on a fresh one). A fresh socket per attempt is what makes a late reply
    to an old attempt impossible to mistake for the answer: MDP replies carry no
    request id. Requests carry Domogik's in-band timeout frame after the service.
*/
#include "mdp.h"
#include "mdp_client_private.h"
#include "mdp_proto.h"
#include <errno.h>
#include <string.h>

struct _mdp_client_t {
    char *endpoint;  //  broker endpoint, owned
    zsock_t *dealer; //  socket for the next attempt; NULL after a failed one
    int timeout;     //  msecs to wait for each attempt's reply
    int retries;     //  attempts in all, at least 1
};

//  Create a DEALER connected to endpoint. Linger 0: nothing of a dead attempt
//  may hold up destroy. NULL with errno EINVAL on a bad endpoint.
static zsock_t *s_connect (const char *endpoint)
{
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    if (!dealer) {
        errno = ENOMEM;
        return NULL;
    }
    zsock_set_linger (dealer, 0);
    if (zsock_connect (dealer, "%s", endpoint) != 0) {
        zsock_destroy (&dealer);
        errno = EINVAL;
    }
    return dealer;
}

mdp_client_t *mdp_client_new (const char *endpoint)
{
    if (!endpoint || !*endpoint) {
        errno = EINVAL;
        return NULL;
    }
    mdp_client_t *self = calloc (1, sizeof (mdp_client_t));
    if (!self) {
        errno = ENOMEM;
        return NULL;
    }
    self->timeout = MDP_DEFAULT_TIMEOUT;
    self->retries = MDP_DEFAULT_RETRIES;
    self->endpoint = strdup (endpoint);
    if (self->endpoint)
        self->dealer = s_connect (endpoint);
    else
        errno = ENOMEM;
    if (!self->dealer)
        mdp_client_destroy (&self);
    return self;
}

void mdp_client_destroy (mdp_client_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    mdp_client_t *self = *self_p;
    int saved = errno; //  keep the errno of a failed new
    zsock_destroy (&self->dealer);
    free (self->endpoint);
    free (self);
    errno = saved;
    *self_p = NULL;
}

void mdp_client_set_timeout (mdp_client_t *self, int msecs)
{
    self->timeout = msecs > 0 ? msecs : 1;
}

void mdp_client_set_retries (mdp_client_t *self, int retries)
{
    self->retries = retries > 0 ? retries : 1;
}

void mdp_client_timeout_text (int msecs, char *buf, size_t size)
{
    if (msecs % 1000 == 0) {
        snprintf (buf, size, "%d", msecs / 1000);
        return;
    }
    snprintf (buf, size, "%d.%03d", msecs / 1000, msecs % 1000);
    char *end = buf + strlen (buf) - 1;
    while (*end == '0') //  "2.500" -> "2.5"; a '.' is always left of it
        *end-- = '\0';
}

//  Send one attempt: [""]["MDPC01"][service][timeout][body...]. 0 or -1.
static int s_send (mdp_client_t *self, const char *service, zmsg_t *body)
{
    char timeout[32];
    mdp_client_timeout_text (self->timeout, timeout, sizeof timeout);
    zmsg_t *msg = zmsg_dup (body);
    if (!msg || zmsg_pushstr (msg, timeout) || zmsg_pushstr (msg, service) ||
        zmsg_pushstr (msg, MDPC01) || zmsg_pushmem (msg, NULL, 0)) {
        zmsg_destroy (&msg);
        errno = ENOMEM;
        return -1;
    }
    if (zmsg_send (&msg, self->dealer) == 0)
        return 0;
    zmsg_destroy (&msg);
    return -1;
}

//  Check a reply's envelope [""]["MDPC01"][service] and strip it. Returns the
//  body, or NULL (and destroys the message) if it is not a reply to service.
static zmsg_t *s_reply_body (zmsg_t *msg, const char *service)
{
    bool valid = zmsg_size (msg) >= 3 && zframe_size (zmsg_first (msg)) == 0 &&
                 zframe_streq (zmsg_next (msg), MDPC01) && zframe_streq (zmsg_next (msg), service);
    if (!valid) {
        zsys_warning ("mdp_client: dropped a malformed reply (%zu frames)", zmsg_size (msg));
        zmsg_destroy (&msg);
        return NULL;
    }
    for (int envelope = 0; envelope < 3; envelope++) {
        zframe_t *frame = zmsg_pop (msg);
        zframe_destroy (&frame);
    }
    return msg;
}

//  Wait until deadline for a valid reply on the current socket, dropping
//  anything else. Returns the reply body, or NULL with EAGAIN or EINTR.
static zmsg_t *s_wait (mdp_client_t *self, const char *service, int64_t deadline)
{
    zpoller_t *poller = zpoller_new (self->dealer, NULL);
    zmsg_t *body = NULL;
    errno = EAGAIN;
    while (poller && !body) {
        int64_t left = deadline - zclock_mono ();
        if (left <= 0)
            break;
        if (!zpoller_wait (poller, (int)left)) {
            if (zpoller_terminated (poller))
                errno = EINTR;
            break;
        }
        zmsg_t *msg = zmsg_recv (self->dealer);
        if (!msg) {
            errno = EINTR;
            break;
        }
        body = s_reply_body (msg, service);
    }
    zpoller_destroy (&poller);
    return body;
}

zmsg_t *mdp_client_call (mdp_client_t *self, const char *service, zmsg_t *body)
{
    if (!self || !service || !*service || strlen (service) > MDP_MAX_SERVICE_NAME || !body) {
        errno = EINVAL;
        return NULL;
    }
    for (int attempt = 0; attempt < self->retries; attempt++) {
        if (!self->dealer && !(self->dealer = s_connect (self->endpoint)))
            return NULL;
        zmsg_t *reply = NULL;
        if (s_send (self, service, body) == 0)
            reply = s_wait (self, service, zclock_mono () + self->timeout);
        if (reply)
            return reply;
        //  The old socket may still get this attempt's reply: never reuse it
        int saved = errno;
        zsock_destroy (&self->dealer);
        if (saved == EINTR || zsys_interrupted) {
            errno = EINTR;
            return NULL;
        }
    }
    errno = EAGAIN;
    return NULL;
}

mdp_msg_t *mdp_client_request (mdp_client_t *self, const char *service, mdp_msg_t **request_p)
{
    mdp_msg_t *request = request_p ? *request_p : NULL;
    if (request_p)
        *request_p = NULL;
    if (!self || !request) {
        mdp_msg_destroy (&request);
        errno = EINVAL;
        return NULL;
    }
    zmsg_t *body = zmsg_new ();
    int rc = body ? mdp_msg_encode (request, body) : -1;
    mdp_msg_destroy (&request);
    zmsg_t *reply = NULL;
    if (rc == 0)
        reply = mdp_client_call (self, service, body);
    else
        errno = ENOMEM;
    zmsg_destroy (&body);
    if (!reply)
        return NULL;
    mdp_msg_t *msg = mdp_msg_decode (reply); //  EPROTO if it is not a body
    int saved = errno;
    zmsg_destroy (&reply);
    errno = saved;
    return msg;
}

int mdp_client_has_service (mdp_client_t *self, const char *service)
{
    if (!service || !*service) {
        errno = EINVAL;
        return -1;
    }
    zmsg_t *body = zmsg_new ();
    if (!body || zmsg_addstr (body, service)) {
        zmsg_destroy (&body);
        errno = ENOMEM;
        return -1;
    }
    zmsg_t *reply = mdp_client_call (self, "mmi.service", body);
    zmsg_destroy (&body);
    if (!reply)
        return -1;
    int rc = -1;
    if (zmsg_size (reply) == 1)
        rc = zframe_streq (zmsg_first (reply), "200") ? 1 : 0;
    zmsg_destroy (&reply);
    if (rc < 0)
        errno = EPROTO;
    return rc;
}
