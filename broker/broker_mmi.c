/*  broker_mmi.c - the Majordomo Management Interface (RFC 8), answered by the
    broker itself: mmi.service (200/404), mmi.services (Domogik's comma list),
    501 for any other mmi.* name. MMI names never become services.
*/
#include "broker_impl.h"
#include <string.h>

typedef struct {
    const char **names;          //  names of services with workers
    size_t count;                //  names collected
} name_list_t;

static void s_collect (hnode_t *node, void *arg)
{
    service_t *service = HTAB_ITEM (node, service_t, hnode);
    name_list_t *list = arg;
    if (service->nworkers > 0)
        list->names[list->count++] = service->name;
}

static int s_compare (const void *a, const void *b)
{
    return strcmp (*(const char *const *) a, *(const char *const *) b);
}

//  "a, b, c": sorted names of services with at least one worker. Caller frees.
static char *s_service_list (broker_t *self)
{
    name_list_t list = {calloc (self->services.count + 1, sizeof (char *)), 0};
    if (!list.names)
        return NULL;
    htab_foreach (&self->services, s_collect, &list);
    qsort (list.names, list.count, sizeof (char *), s_compare);
    size_t size = 1;
    for (size_t i = 0; i < list.count; i++)
        size += strlen (list.names[i]) + 2;
    char *text = malloc (size), *p = text;
    if (text) {
        *p = 0;
        for (size_t i = 0; i < list.count; i++)
            p += sprintf (p, "%s%s", i ? ", " : "", list.names[i]);
    }
    free (list.names);
    return text;
}

void broker_mmi (broker_t *self, zmq_msg_t *env, size_t nenv, const char *name, size_t namelen,
                 zmq_msg_t *body, size_t nbody)
{
    const char *answer = "501";
    char *list = NULL;
    if (namelen == 11 && memcmp (name, "mmi.service", 11) == 0) {
        service_t *service = NULL;
        if (nbody >= 1)
            service = broker_service_lookup (self, zmq_msg_data (&body[0]),
                                             zmq_msg_size (&body[0]));
        answer = service && service->nworkers > 0 ? "200" : "404";
    }
    else
    if (namelen == 12 && memcmp (name, "mmi.services", 12) == 0)
        answer = list = s_service_list (self);
    if (answer)
        broker_send_client_str (self, env, nenv, name, namelen, answer, NULL);
    free (list);
}
