/*  broker_security.c - CURVE for the broker's ROUTER (czmq's zauth answers
    ZAP with the peer's public key as its User-Id), the set of allowed keys
    that SIGHUP re-reads so revoked peers are refused on their next message,
    the access rules, and the per-client cap on pending requests.
*/
#include "access.h"
#include "broker_impl.h"
#include "mdp_certfile.h"
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

#define ZAP_DOMAIN "mdp"

const char *broker_peer_user (zmq_msg_t *frame)
{
    const char *user = zmq_msg_gets (frame, "User-Id");
    return user ? user : "";
}

bool broker_peer_allowed (broker_t *self, const char *user)
{
    return !self->keys || zhashx_lookup (self->keys, user) != NULL;
}

//  Read every certificate in dir into a new set of Z85 public keys. A file
//  that cannot be read or holds no valid public key is logged by name.
static zhashx_t *s_load_keys (const char *dir)
{
    zdir_t *zdir = zdir_new (dir, NULL);
    if (!zdir)
        return NULL;
    zhashx_t *keys = zhashx_new ();
    zfile_t **files = (zfile_t **)zdir_flatten (zdir);
    for (size_t i = 0; files && files[i]; i++) {
        const char *name = zfile_filename (files[i], NULL);
        byte key[32];
        char text[41], error[512];
        if (mdp_certfile_public (name, key, error, sizeof error) != 0)
            zsys_warning ("broker: allowed keys: %s; ignored", error);
        else if (zmq_z85_encode (text, key, 32))
            zhashx_insert (keys, text, (void *)"");
    }
    zdir_flatten_free (&files);
    zdir_destroy (&zdir);
    return keys;
}

int broker_set_curve (broker_t *self, const char *cert_path, const char *keys_dir, char *error,
                      size_t size)
{
    byte public_key[32], secret_key[32];
    char reason[480];
    if (mdp_certfile_load (cert_path, public_key, secret_key, reason, sizeof reason) != 0) {
        snprintf (error, size, "CURVE certificate %s", reason);
        return -1;
    }
    zhashx_t *keys = s_load_keys (keys_dir);
    if (!keys) {
        snprintf (error, size, "cannot read the allowed-keys directory '%s'", keys_dir);
        memset (secret_key, 0, sizeof secret_key);
        return -1;
    }
    int on = 1;
    zmq_setsockopt (self->router, ZMQ_CURVE_SERVER, &on, sizeof on);
    zmq_setsockopt (self->router, ZMQ_CURVE_SECRETKEY, secret_key, 32);
    zmq_setsockopt (self->router, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN, strlen (ZAP_DOMAIN));
    memset (secret_key, 0, sizeof secret_key);
    //  zauth logs every CURVE handshake it allows or denies, with the key.
    self->auth = zactor_new (zauth, NULL);
    zstr_send (self->auth, "VERBOSE");
    zsock_wait (self->auth);
    zstr_sendx (self->auth, "CURVE", keys_dir, NULL);
    zsock_wait (self->auth);
    zhashx_destroy (&self->keys);
    self->keys = keys;
    free (self->keys_dir);
    self->keys_dir = strdup (keys_dir);
    zsys_info ("broker: CURVE on, %zu allowed keys in %s", zhashx_size (keys), keys_dir);
    return 0;
}

int broker_reload_keys (broker_t *self)
{
    if (!self->keys_dir)
        return 0;
    zhashx_t *keys = s_load_keys (self->keys_dir);
    if (!keys) {
        zsys_warning ("broker: cannot read '%s', keeping the old keys", self->keys_dir);
        return -1;
    }
    zhashx_destroy (&self->keys);
    self->keys = keys;
    //  Workers whose key was revoked go now; clients are refused per request.
    dlink_t *link = self->by_expiry.next;
    while (link != &self->by_expiry) {
        worker_t *worker = DLIST_ITEM (link, worker_t, expiry_link);
        link = link->next;
        if (!broker_peer_allowed (self, worker->user)) {
            zsys_warning ("broker: key of a worker of '%s' revoked", worker->service->name);
            broker_worker_remove (self, worker, true, 502, "worker key revoked");
        }
    }
    zsys_info ("broker: %zu allowed keys in %s", zhashx_size (keys), self->keys_dir);
    return (int)zhashx_size (keys);
}

void broker_set_access (broker_t *self, struct access_t **access_p)
{
    access_destroy (&self->access);
    self->access = *access_p;
    *access_p = NULL;
    //  Tightened offer rules: workers no longer allowed go now, as revoked
    //  keys do (DISCONNECT; a request in their hands gets 502).
    dlink_t *link = self->by_expiry.next;
    while (link != &self->by_expiry) {
        worker_t *worker = DLIST_ITEM (link, worker_t, expiry_link);
        link = link->next;
        if (!access_may_offer (self->access, worker->user, worker->service->name)) {
            zsys_info ("broker: worker of '%s' with key '%s' no longer allowed to offer it",
                       worker->service->name, *worker->user ? worker->user : "(none)");
            broker_worker_remove (self, worker, true, 502, "worker no longer allowed");
        }
    }
}

int broker_client_admit (broker_t *self, request_t *request, zmq_msg_t *id, const char *user)
{
    if (self->cfg.max_client_requests == 0)
        return 0;
    bool by_key = self->keys && user && *user;
    const void *key = by_key ? (const void *)user : zmq_msg_data (id);
    size_t len = by_key ? strlen (user) : zmq_msg_size (id);
    uint64_t hash = htab_hash (key, len);
    hnode_t *node = htab_find (&self->clients, key, len, hash);
    client_t *client = node ? HTAB_ITEM (node, client_t, hnode) : NULL;
    if (client && client->pending >= self->cfg.max_client_requests) {
        errno = EBUSY;
        return -1;
    }
    if (!client) {
        client = len <= 255 ? malloc (sizeof (client_t) + len) : NULL;
        if (!client) {
            errno = ENOMEM;
            return -1;
        }
        memcpy (client->identity, key, len);
        client->idlen = (uint8_t)len;
        client->pending = 0;
        client->hnode.key = client->identity;
        client->hnode.keylen = len;
        client->hnode.hash = hash;
        htab_insert (&self->clients, &client->hnode);
    }
    client->pending++;
    request->client = client;
    return 0;
}

void broker_log_refusal (broker_t *self, const char *fmt, ...)
{
    int64_t now = broker_now ();
    if (now - self->refuse_window >= 1000) {
        if (self->refuse_suppressed)
            zsys_info ("broker: %" PRIu64 " more refusals not logged", self->refuse_suppressed);
        self->refuse_window = now;
        self->refuse_budget = 10;
        self->refuse_suppressed = 0;
    }
    if (self->refuse_budget-- <= 0) {
        self->refuse_suppressed++;
        return;
    }
    char line[256];
    va_list args;
    va_start (args, fmt);
    vsnprintf (line, sizeof line, fmt, args);
    va_end (args);
    zsys_info ("broker: refused: %s", line);
}

void broker_security_destroy (broker_t *self)
{
    access_destroy (&self->access);
    zactor_destroy (&self->auth);
    zhashx_destroy (&self->keys);
    free (self->keys_dir);
    self->keys_dir = NULL;
}
