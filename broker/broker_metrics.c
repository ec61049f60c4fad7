/*  broker_metrics.c - per-service figures for mmi.stats and the periodic
    stats log. Placeholder: the observability work fills it in.
*/
#include "broker_impl.h"

void broker_metrics_request (broker_t *self, service_t *service)
{
}

void broker_metrics_reply (broker_t *self, service_t *service, int64_t service_msecs)
{
}

void broker_metrics_tick (broker_t *self, int64_t now)
{
}

void broker_metrics_destroy (broker_t *self)
{
}
