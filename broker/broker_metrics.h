/*  broker_metrics.h - what broker_metrics.c offers beyond the engine's hooks
    (which broker_impl.h declares): the mmi.stats answer, a bound on the
    per-service table, and the small JSON text builder that broker_mmi.c
    shares for its answers. Private to the broker.
*/
#ifndef BROKER_METRICS_H_INCLUDED
#define BROKER_METRICS_H_INCLUDED

#include "broker_impl.h"

//  Service names with figures kept at most; beyond it the least recently
//  used name without a worker is forgotten.
#define BROKER_METRICS_MAX_NAMES 10000

//  JSON text under construction. A failed allocation sets failed and later
//  appends do nothing, so callers check once at the end (jbuf_take).
typedef struct {
    char *data;  //  the text so far, NUL-terminated once non-empty
    size_t size; //  bytes used, without the NUL
    size_t cap;  //  bytes allocated
    bool failed; //  an allocation failed
} jbuf_t;

//  Append len bytes of text as they are.
void jbuf_append (jbuf_t *self, const char *text, size_t len);
//  Append printf-formatted text.
void jbuf_printf (jbuf_t *self, const char *format, ...) __attribute__ ((format (printf, 2, 3)));
//  Append len bytes as a quoted JSON string: quote, backslash and control
//  bytes escaped; bytes that are not valid UTF-8 written as \u00XX.
void jbuf_string (jbuf_t *self, const char *text, size_t len);
//  Hand over the text (the caller frees it), or NULL if anything failed.
char *jbuf_take (jbuf_t *self);

//  The mmi.stats answer (spec/mdp.md section 11). The caller frees it; NULL
//  on out of memory.
char *broker_metrics_stats_json (broker_t *self);

//  When the next stats log line is due (zclock_mono msecs), 0 if none is.
//  For broker_tick, so that the line is not late when the broker is idle.
int64_t broker_metrics_due (broker_t *self);

//  Number of service names whose figures are kept now.
size_t broker_metrics_names (broker_t *self);

#endif
