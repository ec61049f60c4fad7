/*  broker_security.c - CURVE for the broker's ROUTER (czmq's zauth answers
    ZAP with the peer's public key as its User-Id), the set of allowed keys
    that SIGHUP re-reads so revoked peers are refused on their next message,
    the access rules, and the per-client cap on pending requests.
*/
#include "access.h"
#include "broker_impl.h"
#include <errno.h>
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

//  Read every certificate in dir into a new set of Z85 public keys.
static zhashx_t *s_load_keys (const char *dir)
{
    zdir_t *zdir = zdir_new (dir, NULL);
    if (!zdir)
        return NULL;
    zhashx_t *keys = zhashx_new ();
    zfile_t **files = (zfile_t **) zdir_flatten (zdir);
    for (size_t i = 0; files && files[i]; i++) {
        zcert_t *cert = zcert_load (zfile_filename (files[i], NULL));
        if (cert) {
            zhashx_insert (keys, zcert_public_txt (cert), (void *) "");
            zcert_destroy (&cert);
        }
    }
    zdir_flatten_free (&files);
    zdir_destroy (&zdir);
    return keys;
}

int broker_set_curve (broker_t *self, const char *cert_path, const char *keys_dir, char *error,
                      size_t size)
{
    zcert_t *cert = zcert_load (cert_path);
    if (!cert) {
        snprintf (error, size, "cannot read the CURVE certificate '%s'", cert_path);
        return -1;
    }
    static const byte zero[32] = {0};
    if (memcmp (zcert_secret_key (cert), zero, 32) == 0) {
        snprintf (error, size, "'%s' has no secret key (is '%s_secret' readable?)", cert_path,
                  cert_path);
        zcert_destroy (&cert);
        return -1;
    }
    zhashx_t *keys = s_load_keys (keys_dir);
    if (!keys) {
        snprintf (error, size, "cannot read the allowed-keys directory '%s'", keys_dir);
        zcert_destroy (&cert);
        return -1;
    }
    int on = 1;
    zmq_setsockopt (self->router, ZMQ_CURVE_SERVER, &on, sizeof on);
    zmq_setsockopt (self->router, ZMQ_CURVE_SECRETKEY, zcert_secret_key (cert), 32);
    zmq_setsockopt (self->router, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN, strlen (ZAP_DOMAIN));
    zcert_destroy (&cert);
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
            broker_worker_delete (self, worker, true, 502, "worker key revoked");
        }
    }
    zsys_info ("broker: %zu allowed keys in %s", zhashx_size (keys), self->keys_dir);
    return (int) zhashx_size (keys);
}

void broker_set_access (broker_t *self, struct access_t **access_p)
{
    access_destroy (&self->access);
    self->access = *access_p;
    *access_p = NULL;
}

int broker_client_admit (broker_t *self, request_t *request, zmq_msg_t *id)
{
    if (self->cfg.max_client_requests == 0)
        return 0;
    const void *key = zmq_msg_data (id);
    size_t len = zmq_msg_size (id);
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
        client->idlen = (uint8_t) len;
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

void broker_security_destroy (broker_t *self)
{
    access_destroy (&self->access);
    zactor_destroy (&self->auth);
    zhashx_destroy (&self->keys);
    free (self->keys_dir);
    self->keys_dir = NULL;
}
