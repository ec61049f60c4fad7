/*  mdp_topic.h - the topic frame of a Domogik event, [category.timestamp.version]
    (spec/pubsub.md section 2): check it, split off the category, build one.
    Header-only and private, because both libmdp (publisher, subscriber) and
    the broker's forwarder need the same grammar, and the broker does not link
    libmdp. Every check is a soft one: topics come from peers.
*/
#ifndef MDP_TOPIC_H_INCLUDED
#define MDP_TOPIC_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define MDP_TOPIC_MAX 1024          //  longest valid topic frame, bytes
#define MDP_TOPIC_VERSION "0_1"     //  the version we send
#define MDP_TOPIC_SYNC "mdp.sync"   //  reserved category namespace (section 5)
#define MDP_TOPIC_SYNC_MAX_NONCE 64 //  longest nonce in a sync subscription

//  True if data[0..size) is one or more ASCII digits.
static inline bool mdp_topic_digits (const char *data, size_t size)
{
    if (size == 0)
        return false;
    for (size_t i = 0; i < size; i++)
        if (data[i] < '0' || data[i] > '9')
            return false;
    return true;
}

//  True if data[0..size) is digits, or digits "_" digits.
static inline bool mdp_topic_number (const char *data, size_t size, bool fraction_required)
{
    const char *sep = memchr (data, '_', size);
    if (!sep)
        return !fraction_required && mdp_topic_digits (data, size);
    size_t head = (size_t)(sep - data);
    return mdp_topic_digits (data, head) && mdp_topic_digits (sep + 1, size - head - 1);
}

//  True if data[0..size) is a valid category: labels of printable ASCII
//  (no space) or bytes >= 0x80, none empty, joined by '.'.
static inline bool mdp_topic_category_valid (const char *data, size_t size)
{
    if (size == 0 || size > MDP_TOPIC_MAX)
        return false;
    bool label_empty = true;
    for (size_t i = 0; i < size; i++) {
        unsigned char c = (unsigned char)data[i];
        if (c == '.') {
            if (label_empty)
                return false;
            label_empty = true;
        } else if ((c > 0x20 && c < 0x7F) || c >= 0x80)
            label_empty = false;
        else
            return false;
    }
    return !label_empty;
}

//  Check a topic frame; return the length of its category (the bytes before
//  ".timestamp.version"), or 0 if the frame is not a valid topic.
static inline size_t mdp_topic_parse (const char *data, size_t size)
{
    if (!data || size < 5 || size > MDP_TOPIC_MAX)
        return 0;
    size_t dot2 = size; //  the dot before the version
    while (dot2 > 0 && data[dot2 - 1] != '.')
        dot2--;
    if (dot2 < 2 || !mdp_topic_number (data + dot2, size - dot2, true))
        return 0;
    size_t dot1 = dot2 - 1; //  the dot before the timestamp
    while (dot1 > 0 && data[dot1 - 1] != '.')
        dot1--;
    if (dot1 < 2 || !mdp_topic_number (data + dot1, dot2 - 1 - dot1, false))
        return 0;
    size_t category = dot1 - 1;
    return mdp_topic_category_valid (data, category) ? category : 0;
}

//  True if the category is in the reserved namespace: "mdp.sync" or below.
static inline bool mdp_topic_reserved (const char *category, size_t size)
{
    size_t len = strlen (MDP_TOPIC_SYNC);
    return size >= len && memcmp (category, MDP_TOPIC_SYNC, len) == 0 &&
           (size == len || category[len] == '.');
}

//  Write Domogik's timestamp for now: whole seconds, '_', the fraction with
//  trailing zeros trimmed but at least one digit (Python's str (time.time ())
//  with '.' turned into '_'). Returns the length written, or 0 if too small.
static inline size_t mdp_topic_timestamp (char *buf, size_t cap)
{
    struct timespec now;
    clock_gettime (CLOCK_REALTIME, &now);
    char fraction[24];
    unsigned long micros = (unsigned long)now.tv_nsec / 1000 % 1000000;
    snprintf (fraction, sizeof fraction, "%06lu", micros);
    size_t digits = 6;
    while (digits > 1 && fraction[digits - 1] == '0')
        digits--;
    int len = snprintf (buf, cap, "%lld_%.*s", (long long)now.tv_sec, (int)digits, fraction);
    return len > 0 && (size_t)len < cap ? (size_t)len : 0;
}

//  Build the topic frame "<category>.<timestamp>.0_1" in buf. Returns its
//  length, or 0 if the category is not valid or buf is too small.
static inline size_t mdp_topic_format (char *buf, size_t cap, const char *category)
{
    size_t len = category ? strlen (category) : 0;
    if (!mdp_topic_category_valid (category, len))
        return 0;
    char stamp[32];
    size_t stamp_len = mdp_topic_timestamp (stamp, sizeof stamp);
    size_t version_len = strlen (MDP_TOPIC_VERSION);
    size_t total = len + 1 + stamp_len + 1 + version_len;
    if (stamp_len == 0 || total >= cap || total > MDP_TOPIC_MAX)
        return 0;
    memcpy (buf, category, len);
    buf[len] = '.';
    memcpy (buf + len + 1, stamp, stamp_len);
    buf[len + 1 + stamp_len] = '.';
    memcpy (buf + len + 2 + stamp_len, MDP_TOPIC_VERSION, version_len + 1);
    return total;
}

//  If data[0..size) (a subscription prefix, without its 0x01/0x00 byte) is a
//  sync probe "mdp.sync.<nonce>." with a nonce of [0-9A-Za-z_-], return true.
static inline bool mdp_topic_is_sync_probe (const char *data, size_t size)
{
    size_t head = strlen (MDP_TOPIC_SYNC) + 1;
    if (size < head + 2 || size > head + MDP_TOPIC_SYNC_MAX_NONCE + 1 ||
        memcmp (data, MDP_TOPIC_SYNC ".", head) != 0 || data[size - 1] != '.')
        return false;
    for (size_t i = head; i < size - 1; i++) {
        char c = data[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

#endif
