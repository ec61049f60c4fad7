/*  mdp_msg.c - mdp_msg_t, one Domogik-style body: an action string plus cJSON
    data. It is the only place that turns body frames [action][json] into a
    message and back, so the client, the worker and the tools agree on what a
    valid body is. Frames come from peers: every check here is a soft one.
    JSON goes through mdp_json, so numbers pass through exactly as written.
*/
#include "mdp.h"
#include "mdp_msg_private.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct _mdp_msg_t {
    char *action; //  owned, never NULL or empty
    cJSON *data;  //  owned, never NULL (an empty object at least)
};

mdp_msg_t *mdp_msg_new (const char *action, cJSON *data)
{
    if (!action || !*action) {
        cJSON_Delete (data); //  we own it even when we refuse it
        errno = EINVAL;
        return NULL;
    }
    mdp_msg_t *self = calloc (1, sizeof (mdp_msg_t));
    if (!self) {
        cJSON_Delete (data);
        errno = ENOMEM;
        return NULL;
    }
    self->data = data ? data : cJSON_CreateObject ();
    self->action = strdup (action);
    if (!self->action || !self->data) {
        mdp_msg_destroy (&self); //  frees data too, whichever it is
        errno = ENOMEM;
    }
    return self;
}

mdp_msg_t *mdp_msg_new_error (int code, const char *reason)
{
    cJSON *data = cJSON_CreateObject ();
    if (!data || !cJSON_AddNumberToObject (data, "code", code) ||
        !cJSON_AddStringToObject (data, "reason", reason ? reason : "")) {
        cJSON_Delete (data);
        errno = ENOMEM;
        return NULL;
    }
    return mdp_msg_new (MDP_ERROR_ACTION, data);
}

void mdp_msg_destroy (mdp_msg_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    mdp_msg_t *self = *self_p;
    free (self->action);
    cJSON_Delete (self->data);
    free (self);
    *self_p = NULL;
}

mdp_msg_t *mdp_msg_dup (const mdp_msg_t *self)
{
    if (!self)
        return NULL;
    cJSON *data = cJSON_Duplicate (self->data, 1);
    if (!data) {
        errno = ENOMEM;
        return NULL;
    }
    return mdp_msg_new (self->action, data);
}

const char *mdp_msg_action (const mdp_msg_t *self)
{
    return self->action;
}

cJSON *mdp_msg_data (const mdp_msg_t *self)
{
    return self->data;
}

void mdp_msg_set_data (mdp_msg_t *self, cJSON *data)
{
    if (!data)
        data = cJSON_CreateObject ();
    if (!data)
        return; //  out of memory: keep the old data
    cJSON_Delete (self->data);
    self->data = data;
}

bool mdp_msg_is_error (const mdp_msg_t *self)
{
    return self && streq (self->action, MDP_ERROR_ACTION);
}

int mdp_msg_error_code (const mdp_msg_t *self)
{
    if (!mdp_msg_is_error (self))
        return 0;
    cJSON *code = cJSON_GetObjectItemCaseSensitive (self->data, "code");
    return cJSON_IsNumber (code) ? code->valueint : 0;
}

int mdp_msg_encode (const mdp_msg_t *self, zmsg_t *msg)
{
    char *json = mdp_json_print (self->data);
    if (!json)
        return -1;
    int rc = zmsg_addstr (msg, self->action);
    if (rc == 0) {
        rc = zmsg_addstr (msg, json);
        if (rc != 0) { //  take the action frame back out
            zframe_t *action = zmsg_last (msg);
            zmsg_remove (msg, action);
            zframe_destroy (&action);
        }
    }
    cJSON_free (json);
    return rc == 0 ? 0 : -1;
}

//  Return a NUL-terminated copy of size bytes at data, or NULL if it is
//  empty, holds a NUL byte (a peer's trick to hide bytes from C strings), or
//  memory is out.
static char *s_text (const void *data, size_t size)
{
    if (size == 0 || memchr (data, '\0', size))
        return NULL;
    char *text = malloc (size + 1);
    if (text) {
        memcpy (text, data, size);
        text[size] = '\0';
    }
    return text;
}

//  The one decoder: an action frame and, when has_json, a JSON frame
//  that must be exactly one JSON value. Its numbers keep their text, so
//  encode sends them on exactly as they came. The action text is copied once,
//  into the message.
static mdp_msg_t *s_decode (const void *action, size_t action_size, bool has_json, const void *json,
                            size_t json_size)
{
    mdp_msg_t *self = calloc (1, sizeof (mdp_msg_t));
    if (!self) {
        errno = ENOMEM;
        return NULL;
    }
    self->action = s_text (action, action_size);
    if (self->action)
        self->data =
            has_json ? mdp_json_parse ((const char *)json, json_size) : cJSON_CreateObject ();
    if (!self->action || !self->data) {
        mdp_msg_destroy (&self);
        errno = EPROTO;
    }
    return self;
}

mdp_msg_t *mdp_msg_decode (zmsg_t *msg)
{
    size_t frames = msg ? zmsg_size (msg) : 0;
    if (frames < 1 || frames > 2) {
        errno = EPROTO;
        return NULL;
    }
    zframe_t *action = zmsg_first (msg);
    zframe_t *json = zmsg_next (msg);
    return s_decode (zframe_data (action), zframe_size (action), json != NULL,
                     json ? zframe_data (json) : NULL, json ? zframe_size (json) : 0);
}

mdp_msg_t *mdp_msg_decode_parts (zmq_msg_t *part, size_t parts)
{
    if (!part || parts < 1 || parts > 2) {
        errno = EPROTO;
        return NULL;
    }
    return s_decode (zmq_msg_data (&part[0]), zmq_msg_size (&part[0]), parts == 2,
                     parts == 2 ? zmq_msg_data (&part[1]) : NULL,
                     parts == 2 ? zmq_msg_size (&part[1]) : 0);
}

char *mdp_msg_to_json (const mdp_msg_t *self)
{
    cJSON *root = cJSON_CreateObject ();
    cJSON *data = cJSON_Duplicate (self->data, 1);
    char *text = NULL;
    if (root && data && cJSON_AddStringToObject (root, "action", self->action) &&
        cJSON_AddItemToObject (root, "data", data)) {
        data = NULL; //  root owns it now
        text = mdp_json_print (root);
    }
    cJSON_Delete (data);
    cJSON_Delete (root);
    return text;
}
