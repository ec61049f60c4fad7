/*  broker_frames.c - small readers of zmq_msg_t frames for the broker: frame
    comparison, Domogik's in-band timeout frame, the verbose message dump, and
    the rate-limited log of dropped messages.
*/
#include "broker_impl.h"
#include <stdarg.h>
#include <string.h>

bool broker_frame_is (const zmq_msg_t *frame, const char *text, size_t len)
{
    return zmq_msg_size ((zmq_msg_t *)frame) == len &&
           memcmp (zmq_msg_data ((zmq_msg_t *)frame), text, len) == 0;
}

//  A number of seconds as Domogik writes it ("10", "2.5") or "None".
//  Returns 1 and sets *msecs (0 for None) if the frame is a timeout frame.
int broker_parse_timeout (zmq_msg_t *frame, int64_t *msecs)
{
    const char *p = zmq_msg_data (frame);
    size_t size = zmq_msg_size (frame), i = 0;
    if (broker_frame_is (frame, "None", 4)) {
        *msecs = 0;
        return 1;
    }
    int64_t whole = 0, frac = 0, scale = 1000;
    for (; i < size && p[i] >= '0' && p[i] <= '9'; i++)
        if (whole < 86400)
            whole = whole * 10 + (p[i] - '0');
    if (i == 0)
        return 0;
    if (i < size && p[i] == '.') {
        size_t start = ++i;
        for (; i < size && p[i] >= '0' && p[i] <= '9'; i++)
            if ((scale /= 10) > 0)
                frac += (p[i] - '0') * scale;
        if (i == start)
            return 0;
    }
    if (i != size)
        return 0;
    *msecs = (whole >= 86400 ? 86400 : whole) * 1000 + frac;
    return 1;
}

//  One debug line per message: each frame in brackets, printable bytes as
//  they are, others as \xNN, long frames cut at 40 bytes.
void broker_log_message (zmq_msg_t *frames, size_t count)
{
    char line[1024];
    size_t used = 0;
    for (size_t i = 0; i < count && used < sizeof line - 64; i++) {
        const unsigned char *data = zmq_msg_data (&frames[i]);
        size_t size = zmq_msg_size (&frames[i]), j;
        used += snprintf (line + used, sizeof line - used, "[");
        for (j = 0; j < size && j < 40 && used < sizeof line - 8; j++)
            used += snprintf (line + used, sizeof line - used,
                              data[j] >= 32 && data[j] < 127 ? "%c" : "\\x%02x", data[j]);
        used += snprintf (line + used, sizeof line - used, j < size ? "...]" : "]");
    }
    zsys_debug ("broker: recv %s", line);
}

void broker_drop (broker_t *self, broker_drop_t reason, const char *fmt, ...)
{
    self->stats.dropped[reason]++;
    int64_t now = broker_now ();
    if (now - self->log_window >= 1000) {
        if (self->log_suppressed)
            zsys_warning ("broker: %" PRIu64 " more dropped messages not logged",
                          self->log_suppressed);
        self->log_window = now;
        self->log_budget = 10;
        self->log_suppressed = 0;
    }
    if (self->log_budget-- <= 0) {
        self->log_suppressed++;
        return;
    }
    char line[256];
    va_list args;
    va_start (args, fmt);
    vsnprintf (line, sizeof line, fmt, args);
    va_end (args);
    zsys_warning ("broker: dropped: %s", line);
}
