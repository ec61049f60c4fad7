/*  bridge_neon.c - the Neon MQ Connector body codec. Neon bodies are
    base64 of a JSON string literal whose text is the Python str() of a dict,
    which the receiver eval()s. So the bridge writes Python literals from JSON
    and parses them back (dict, list, tuple, str in both quote styles with all
    escapes, int, float, True/False/None), never forwarding a body as it came.
*/
#include "bridge.h"
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64 //  nesting we accept in a Python literal

//  A growing string; once an allocation failed it stays failed.
typedef struct {
    char *data;  //  owned, NUL-terminated when not failed
    size_t size; //  bytes used
    size_t room; //  bytes allocated
    bool failed; //  out of memory
} sbuf_t;

static void s_put (sbuf_t *self, const char *data, size_t size)
{
    if (self->failed)
        return;
    if (self->size + size + 1 > self->room) {
        size_t room = self->room ? self->room : 64;
        while (room < self->size + size + 1)
            room *= 2;
        char *data2 = realloc (self->data, room);
        if (!data2) {
            self->failed = true;
            return;
        }
        self->data = data2;
        self->room = room;
    }
    memcpy (self->data + self->size, data, size);
    self->size += size;
    self->data[self->size] = 0;
}

static void s_puts (sbuf_t *self, const char *text)
{
    s_put (self, text, strlen (text));
}

static void s_putc (sbuf_t *self, char c)
{
    s_put (self, &c, 1);
}

static char *s_take (sbuf_t *self, size_t *size)
{
    if (self->failed || !self->data) {
        free (self->data);
        return NULL;
    }
    if (size)
        *size = self->size;
    return self->data;
}

//  Decode one UTF-8 sequence at text (at most left bytes). Returns its length
//  and sets *cp, or 0 if it is not valid UTF-8.
static size_t s_utf8_next (const unsigned char *text, size_t left, uint32_t *cp)
{
    if (text[0] < 0x80) {
        *cp = text[0];
        return 1;
    }
    size_t length = (text[0] & 0xE0) == 0xC0   ? 2
                    : (text[0] & 0xF0) == 0xE0 ? 3
                    : (text[0] & 0xF8) == 0xF0 ? 4
                                               : 0;
    if (length == 0 || length > left)
        return 0;
    uint32_t value = text[0] & (0x7F >> length);
    for (size_t index = 1; index < length; index++) {
        if ((text[index] & 0xC0) != 0x80)
            return 0;
        value = (value << 6) | (text[index] & 0x3F);
    }
    static const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (value < least[length] || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF))
        return 0;
    *cp = value;
    return length;
}

static void s_put_utf8 (sbuf_t *self, uint32_t cp)
{
    char out[4];
    size_t size;
    if (cp < 0x80) {
        out[0] = (char)cp;
        size = 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        size = 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        size = 3;
    } else {
        out[0] = (char)(0xF0 | (cp >> 18));
        out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[3] = (char)(0x80 | (cp & 0x3F));
        size = 4;
    }
    s_put (self, out, size);
}

//  ---------------------------------------------------------------------------
//  base64

static const char s_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *bridge_neon_b64_encode (const void *data, size_t size, size_t *out_size)
{
    const unsigned char *in = data;
    size_t length = (size + 2) / 3 * 4;
    char *out = malloc (length + 1);
    if (!out)
        return NULL;
    char *at = out;
    for (size_t index = 0; index < size; index += 3) {
        uint32_t group = (uint32_t)in[index] << 16;
        if (index + 1 < size)
            group |= (uint32_t)in[index + 1] << 8;
        if (index + 2 < size)
            group |= in[index + 2];
        *at++ = s_b64[(group >> 18) & 63];
        *at++ = s_b64[(group >> 12) & 63];
        *at++ = index + 1 < size ? s_b64[(group >> 6) & 63] : '=';
        *at++ = index + 2 < size ? s_b64[group & 63] : '=';
    }
    *at = 0;
    if (out_size)
        *out_size = length;
    return out;
}

static int s_b64_value (char c)
{
    const char *hit = c ? strchr (s_b64, c) : NULL;
    return hit ? (int)(hit - s_b64) : -1;
}

//  Whitespace is skipped; padding is optional; anything else is an error.
unsigned char *bridge_neon_b64_decode (const char *text, size_t size, size_t *out_size)
{
    unsigned char *out = malloc (size / 4 * 3 + 3);
    if (!out)
        return NULL;
    size_t length = 0, bits = 0, pads = 0;
    uint32_t group = 0;
    for (size_t index = 0; index < size; index++) {
        char c = text[index];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
            continue;
        int value = c == '=' ? 0 : s_b64_value (c);
        if (value < 0 || (pads && c != '=')) {
            free (out);
            return NULL;
        }
        pads += c == '=';
        group = (group << 6) | (uint32_t)value;
        if (++bits == 4) {
            out[length++] = (unsigned char)(group >> 16);
            out[length++] = (unsigned char)(group >> 8);
            out[length++] = (unsigned char)group;
            bits = 0;
            group = 0;
        }
    }
    if (bits == 1 || pads > 2) {
        free (out);
        return NULL;
    }
    if (bits > 0) { //  unpadded tail: 2 or 3 characters
        group <<= 6 * (4 - bits);
        out[length++] = (unsigned char)(group >> 16);
        if (bits == 3)
            out[length++] = (unsigned char)(group >> 8);
    }
    length -= pads;
    *out_size = length;
    return out;
}

//  ---------------------------------------------------------------------------
//  JSON -> Python literal

//  Characters Python's repr escapes rather than prints: C0/C1 controls, DEL,
//  no-break space and soft hyphen. (Other non-printables are rare; raw UTF-8
//  is valid Python source either way.)
static bool s_repr_escapes (uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7F && cp <= 0xA0) || cp == 0xAD;
}

static int s_repr_string (sbuf_t *out, const char *text)
{
    char quote = strchr (text, '\'') && !strchr (text, '"') ? '"' : '\'';
    s_putc (out, quote);
    const unsigned char *at = (const unsigned char *)text;
    size_t left = strlen (text);
    while (left > 0) {
        uint32_t cp;
        size_t length = s_utf8_next (at, left, &cp);
        if (length == 0)
            return -1;
        char escape[8];
        if (cp == '\\' || cp == (uint32_t)quote) {
            s_putc (out, '\\');
            s_putc (out, (char)cp);
        } else if (cp == '\n' || cp == '\r' || cp == '\t')
            s_puts (out, cp == '\n' ? "\\n" : cp == '\r' ? "\\r" : "\\t");
        else if (s_repr_escapes (cp)) {
            snprintf (escape, sizeof escape, "\\x%02x", (unsigned)cp);
            s_puts (out, escape);
        } else
            s_put (out, (const char *)at, length);
        at += length;
        left -= length;
    }
    s_putc (out, quote);
    return 0;
}

static void s_repr_number (sbuf_t *out, double value)
{
    char text[40];
    if (!isfinite (value))
        snprintf (text, sizeof text, "None");
    else if (value == floor (value) && fabs (value) < 9007199254740992.0)
        snprintf (text, sizeof text, "%.0f", value);
    else {
        snprintf (text, sizeof text, "%.15g", value);
        if (strtod (text, NULL) != value)
            snprintf (text, sizeof text, "%.17g", value);
        if (!strpbrk (text, ".en")) //  keep it a float: 1e16 prints as 1e+16
            strcat (text, ".0");
    }
    s_puts (out, text);
}

static int s_repr (sbuf_t *out, const cJSON *item, int depth)
{
    if (depth > MAX_DEPTH)
        return -1;
    if (cJSON_IsTrue (item))
        s_puts (out, "True");
    else if (cJSON_IsFalse (item))
        s_puts (out, "False");
    else if (cJSON_IsNull (item))
        s_puts (out, "None");
    else if (cJSON_IsNumber (item) && item->valuestring) {
        //  a number that came as text goes out as that text (a JSON number
        //  is a Python literal too), unless it was changed since
        char *text = mdp_json_print (item);
        if (text && strcmp (text, "null") != 0)
            s_puts (out, text);
        else
            s_repr_number (out, item->valuedouble);
        free (text);
    } else if (cJSON_IsNumber (item))
        s_repr_number (out, item->valuedouble);
    else if (cJSON_IsRaw (item))
        s_puts (out, item->valuestring);
    else if (cJSON_IsString (item))
        return s_repr_string (out, item->valuestring);
    else if (cJSON_IsArray (item) || cJSON_IsObject (item)) {
        bool object = cJSON_IsObject (item);
        s_putc (out, object ? '{' : '[');
        for (const cJSON *child = item->child; child; child = child->next) {
            if (child != item->child)
                s_puts (out, ", ");
            if (object) {
                if (s_repr_string (out, child->string) != 0)
                    return -1;
                s_puts (out, ": ");
            }
            if (s_repr (out, child, depth + 1) != 0)
                return -1;
        }
        s_putc (out, object ? '}' : ']');
    } else
        return -1;
    return 0;
}

char *bridge_neon_pyrepr (const cJSON *item)
{
    sbuf_t out = {0};
    if (s_repr (&out, item, 0) != 0) {
        free (out.data);
        return NULL;
    }
    return s_take (&out, NULL);
}

//  json.dumps (text) with ensure_ascii: a JSON string literal, all ASCII.
static int s_json_string (sbuf_t *out, const char *text, size_t size)
{
    s_putc (out, '"');
    const unsigned char *at = (const unsigned char *)text;
    while (size > 0) {
        uint32_t cp;
        size_t length = s_utf8_next (at, size, &cp);
        if (length == 0)
            return -1;
        char escape[16];
        if (cp == '"' || cp == '\\') {
            s_putc (out, '\\');
            s_putc (out, (char)cp);
        } else if (cp == '\n' || cp == '\r' || cp == '\t' || cp == '\b' || cp == '\f') {
            s_putc (out, '\\');
            s_putc (out, "nrtbf"[strchr ("\n\r\t\b\f", (int)cp) - "\n\r\t\b\f"]);
        } else if (cp >= 0x20 && cp < 0x7F)
            s_putc (out, (char)cp);
        else if (cp < 0x10000) {
            snprintf (escape, sizeof escape, "\\u%04x", (unsigned)cp);
            s_puts (out, escape);
        } else {
            uint32_t v = cp - 0x10000;
            snprintf (escape, sizeof escape, "\\u%04x\\u%04x", (unsigned)(0xD800 + (v >> 10)),
                      (unsigned)(0xDC00 + (v & 0x3FF)));
            s_puts (out, escape);
        }
        at += length;
        size -= length;
    }
    s_putc (out, '"');
    return 0;
}

char *bridge_neon_encode (const cJSON *dict, size_t *size)
{
    char *literal = bridge_neon_pyrepr (dict);
    if (!literal)
        return NULL;
    sbuf_t json = {0};
    int rc = s_json_string (&json, literal, strlen (literal));
    free (literal);
    size_t json_size = 0;
    char *text = s_take (&json, &json_size);
    if (rc != 0 || !text) {
        free (text);
        return NULL;
    }
    char *body = bridge_neon_b64_encode (text, json_size, size);
    free (text);
    return body;
}

//  ---------------------------------------------------------------------------
//  Python literal -> JSON

typedef struct {
    const char *at;  //  next character
    const char *end; //  end of the text
} parser_t;

static cJSON *s_parse_value (parser_t *p, int depth);

static void s_skip (parser_t *p)
{
    while (p->at < p->end && *p->at && strchr (" \t\r\n", *p->at))
        p->at++;
}

static bool s_word (parser_t *p, const char *word)
{
    size_t length = strlen (word);
    if ((size_t)(p->end - p->at) < length || memcmp (p->at, word, length) != 0)
        return false;
    const char *after = p->at + length;
    if (after < p->end && (isalnum ((unsigned char)*after) || *after == '_'))
        return false;
    p->at = after;
    return true;
}

//  n hex digits at p->at into *value; false if they are not there.
static bool s_hex (parser_t *p, int n, uint32_t *value)
{
    *value = 0;
    for (int index = 0; index < n; index++) {
        if (p->at >= p->end || !isxdigit ((unsigned char)*p->at))
            return false;
        char c = *p->at++;
        *value =
            *value * 16 + (uint32_t)(isdigit ((unsigned char)c) ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return true;
}

//  One escape after the backslash. Appends to out; bytes mode for b'...'.
static int s_escape (parser_t *p, sbuf_t *out, bool bytes)
{
    if (p->at >= p->end)
        return -1;
    char c = *p->at++;
    const char *simple = c ? strchr ("\\'\"abfnrtv", c) : NULL;
    uint32_t cp = 0;
    if (c == '\n')
        return 0; //  line continuation
    if (simple) {
        s_putc (out, "\\'\"\a\b\f\n\r\t\v"[simple - "\\'\"abfnrtv"]);
        return 0;
    }
    if (c >= '0' && c <= '7') {
        cp = (uint32_t)(c - '0');
        for (int index = 0; index < 2 && p->at < p->end && *p->at >= '0' && *p->at <= '7'; index++)
            cp = cp * 8 + (uint32_t)(*p->at++ - '0');
    } else if (c == 'x') {
        if (!s_hex (p, 2, &cp))
            return -1;
    } else if (!bytes && (c == 'u' || c == 'U')) {
        if (!s_hex (p, c == 'u' ? 4 : 8, &cp))
            return -1;
    } else { //  unknown escapes keep their backslash, as in Python
        s_putc (out, '\\');
        s_putc (out, c);
        return 0;
    }
    if (bytes) {
        if (cp > 0xFF)
            return -1;
        s_putc (out, (char)cp);
        return 0;
    }
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return -1; //  NUL and lone surrogates have no place in a JSON string
    s_put_utf8 (out, cp);
    return 0;
}

//  A quoted string at p->at (the quote); b'' bytes must decode as UTF-8.
static cJSON *s_parse_string (parser_t *p, bool bytes)
{
    char quote = *p->at++;
    sbuf_t out = {0};
    s_put (&out, "", 0);
    while (p->at < p->end && *p->at != quote) {
        char c = *p->at++;
        if (c == '\n' || (c == '\\' && s_escape (p, &out, bytes) != 0)) {
            free (out.data);
            return NULL;
        }
        if (c != '\\')
            s_putc (&out, c);
    }
    char *text = s_take (&out, NULL);
    cJSON *item = NULL;
    uint32_t cp;
    bool valid = text && p->at < p->end;
    for (size_t index = 0, left = out.size; valid && left > 0;) {
        size_t length = s_utf8_next ((unsigned char *)text + index, left, &cp);
        valid = length > 0 && cp != 0;
        index += length;
        left -= length;
    }
    if (valid) {
        p->at++; //  the closing quote
        item = cJSON_CreateString (text);
    }
    free (text);
    return item;
}

//  The JSON spelling of size bytes of a Python number literal (sign, digits,
//  '.', digits, exponent): '+' and leading zeros dropped, "1." and "1.e5" get
//  their "0". Same value; a literal that is JSON already keeps its text.
static char *s_json_number (const char *text, size_t size)
{
    const char *end = text + size;
    char *json = malloc (2 * size + 2), *at = json;
    if (!json)
        return NULL;
    if (text < end && (*text == '-' || *text == '+'))
        if (*text++ == '-')
            *at++ = '-';
    while (end - text > 1 && text[0] == '0' && isdigit ((unsigned char)text[1]))
        text++;
    while (text < end) {
        *at++ = *text;
        if (*text++ == '.' && (text == end || !isdigit ((unsigned char)*text)))
            *at++ = '0';
    }
    *at = 0;
    return json;
}

//  Numbers keep their literal as their text (mdp_json), so Python ints of any
//  size and floats reach JSON as written; mdp_json_parse checks the grammar.
static cJSON *s_parse_number (parser_t *p)
{
    const char *start = p->at;
    if (p->at < p->end && (*p->at == '-' || *p->at == '+'))
        p->at++;
    if (s_word (p, "inf") || s_word (p, "nan"))
        return NULL; //  no JSON for these
    if (p->at >= p->end || !isdigit ((unsigned char)*p->at))
        return NULL; //  ".5" and "-.5" are Python, but rare: refused as before
    while (p->at < p->end && *p->at &&
           (isdigit ((unsigned char)*p->at) || strchr (".eE", *p->at) ||
            ((*p->at == '-' || *p->at == '+') && strchr ("eE", p->at[-1]))))
        p->at++;
    char *json = s_json_number (start, (size_t)(p->at - start));
    cJSON *item = json ? mdp_json_parse (json, strlen (json)) : NULL;
    free (json);
    if (item && !cJSON_IsNumber (item)) {
        cJSON_Delete (item);
        item = NULL;
    }
    return item;
}

//  Items of a dict, list or tuple, up to the closing character.
static cJSON *s_parse_container (parser_t *p, char close, int depth)
{
    bool object = close == '}';
    cJSON *container = object ? cJSON_CreateObject () : cJSON_CreateArray ();
    p->at++;
    while (container) {
        s_skip (p);
        if (p->at < p->end && *p->at == close) {
            p->at++;
            return container;
        }
        cJSON *key = object ? s_parse_value (p, depth + 1) : NULL;
        if (object) {
            s_skip (p);
            bool ok = key && (cJSON_IsString (key) || cJSON_IsNumber (key) || cJSON_IsRaw (key) ||
                              cJSON_IsBool (key) || cJSON_IsNull (key));
            if (!ok || p->at >= p->end || *p->at++ != ':') {
                cJSON_Delete (key);
                break;
            }
        }
        cJSON *value = s_parse_value (p, depth + 1);
        if (!value) {
            cJSON_Delete (key);
            break;
        }
        if (object) { //  keys become strings, as json.dumps makes them
            char *name = cJSON_IsString (key) ? strdup (key->valuestring) : mdp_json_print (key);
            cJSON_Delete (key);
            if (!name) {
                cJSON_Delete (value);
                break;
            }
            cJSON_DeleteItemFromObjectCaseSensitive (container, name); //  the last one wins
            cJSON_AddItemToObject (container, name, value);
            free (name);
        } else
            cJSON_AddItemToArray (container, value);
        s_skip (p);
        if (p->at < p->end && *p->at == ',')
            p->at++;
        else if (p->at >= p->end || *p->at != close)
            break;
    }
    cJSON_Delete (container);
    return NULL;
}

static cJSON *s_parse_value (parser_t *p, int depth)
{
    s_skip (p);
    if (depth > MAX_DEPTH || p->at >= p->end)
        return NULL;
    char c = *p->at;
    if (c == '{')
        return s_parse_container (p, '}', depth);
    if (c == '[')
        return s_parse_container (p, ']', depth);
    if (c == '(')
        return s_parse_container (p, ')', depth);
    if (c == '\'' || c == '"')
        return s_parse_string (p, false);
    if ((c == 'b' || c == 'B' || c == 'u' || c == 'U') && p->at + 1 < p->end &&
        (p->at[1] == '\'' || p->at[1] == '"')) {
        p->at++;
        return s_parse_string (p, c == 'b' || c == 'B');
    }
    if (s_word (p, "True"))
        return cJSON_CreateTrue ();
    if (s_word (p, "False"))
        return cJSON_CreateFalse ();
    if (s_word (p, "None"))
        return cJSON_CreateNull ();
    if (isdigit ((unsigned char)c) || c == '-' || c == '+' || c == '.')
        return s_parse_number (p);
    return NULL;
}

cJSON *bridge_neon_pyparse (const char *text, size_t size)
{
    parser_t p = {text, text + size};
    cJSON *item = s_parse_value (&p, 0);
    s_skip (&p);
    if (item && p.at != p.end) {
        cJSON_Delete (item);
        item = NULL;
    }
    return item;
}

cJSON *bridge_neon_decode (const void *body, size_t size)
{
    size_t json_size = 0;
    unsigned char *json = bridge_neon_b64_decode (body, size, &json_size);
    if (!json)
        return NULL;
    cJSON *string = mdp_json_parse ((char *)json, json_size);
    free (json);
    cJSON *item = NULL;
    if (cJSON_IsString (string))
        item = bridge_neon_pyparse (string->valuestring, strlen (string->valuestring));
    cJSON_Delete (string);
    return item;
}
