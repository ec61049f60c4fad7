/*  broker_mmi.c - the Majordomo Management Interface (RFC 8), answered by the
    broker itself: mmi.service (200/404), mmi.services (Domogik's comma list),
    mmi.workers and mmi.stats (JSON, for mdp-stat), 501 for any other mmi.*
    name. MMI names never become services.
*/
#include "broker_metrics.h"
#include <string.h>

typedef struct {
    const char **names; //  names of services with workers
    size_t count;       //  names collected
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
    return strcmp (*(const char *const *)a, *(const char *const *)b);
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

typedef struct {
    service_t **services; //  every service
    size_t count;         //  services collected
} service_list_t;

static void s_collect_all (hnode_t *node, void *arg)
{
    service_list_t *list = arg;
    list->services[list->count++] = HTAB_ITEM (node, service_t, hnode);
}

static int s_compare_services (const void *a, const void *b)
{
    const service_t *x = *(service_t *const *)a, *y = *(service_t *const *)b;
    int rc = memcmp (x->name, y->name, x->namelen < y->namelen ? x->namelen : y->namelen);
    return rc ? rc : (x->namelen > y->namelen) - (x->namelen < y->namelen);
}

//  {"services": {"name": {"workers": N, "idle": N, "queued": N}, ...}} for
//  every service, those with queued requests and no worker too, sorted
//  bytewise. Caller frees; NULL on out of memory.
static char *s_workers_json (broker_t *self)
{
    service_list_t list = {calloc (self->services.count + 1, sizeof (service_t *)), 0};
    if (!list.services)
        return NULL;
    htab_foreach (&self->services, s_collect_all, &list);
    qsort (list.services, list.count, sizeof (service_t *), s_compare_services);
    jbuf_t buf = {0};
    jbuf_append (&buf, "{\"services\": {", 14);
    for (size_t i = 0; i < list.count; i++) {
        service_t *service = list.services[i];
        size_t idle = 0;
        for (dlink_t *link = service->idle.next; link != &service->idle; link = link->next)
            idle++;
        jbuf_append (&buf, ", ", i ? 2 : 0);
        jbuf_string (&buf, service->name, service->namelen);
        jbuf_printf (&buf, ": {\"workers\": %zu, \"idle\": %zu, \"queued\": %zu}",
                     service->nworkers, idle, service->nqueued);
    }
    jbuf_append (&buf, "}}", 2);
    free (list.services);
    return jbuf_take (&buf);
}

static bool s_name_is (const char *name, size_t namelen, const char *want)
{
    return namelen == strlen (want) && memcmp (name, want, namelen) == 0;
}

void broker_mmi (broker_t *self, framing_t framing, zmq_msg_t *env, size_t nenv, const char *name,
                 size_t namelen, zmq_msg_t *body, size_t nbody)
{
    const char *answer = "501";
    char *list = NULL;
    if (s_name_is (name, namelen, "mmi.service")) {
        service_t *service = NULL;
        if (nbody >= 1)
            service =
                broker_service_lookup (self, zmq_msg_data (&body[0]), zmq_msg_size (&body[0]));
        answer = service && service->nworkers > 0 ? "200" : "404";
    } else if (s_name_is (name, namelen, "mmi.services"))
        answer = list = s_service_list (self);
    else if (s_name_is (name, namelen, "mmi.workers"))
        answer = list = s_workers_json (self);
    else if (s_name_is (name, namelen, "mmi.stats"))
        answer = list = broker_metrics_stats_json (self);
    if (answer)
        broker_wire_strs (self, env, nenv, framing, name, namelen, answer, NULL);
    free (list);
}
