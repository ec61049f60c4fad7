/*  mdp_json.c - JSON that passes through unchanged. A strict RFC 8259 parser
    into cJSON trees whose number items keep their source text (in valuestring),
    and a printer that writes that text back while it still denotes the value.
    cJSON alone would turn 12345678901234567890 into 1.2345678901234567e+19;
    every data path in this project parses and prints through here instead.
*/
#include "mdp.h"
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *at;  //  next byte to read
    const char *end; //  one past the last byte
} reader_t;

static cJSON *s_parse_value (reader_t *r, int depth);

static void s_skip (reader_t *r)
{
    while (r->at < r->end && (*r->at == ' ' || *r->at == '\t' || *r->at == '\n' || *r->at == '\r'))
        r->at++;
}

static bool s_is_digit (const reader_t *r)
{
    return r->at < r->end && *r->at >= '0' && *r->at <= '9';
}

//  strtod on size bytes of JSON number text, whatever LC_NUMERIC says.
static double s_strtod (const char *text, size_t size)
{
    char small[64];
    char *copy = size < sizeof small ? small : malloc (size + 1);
    if (!copy)
        return NAN;
    memcpy (copy, text, size);
    copy[size] = 0;
    char point = localeconv ()->decimal_point[0];
    char *dot = point != '.' ? strchr (copy, '.') : NULL;
    if (dot)
        *dot = point;
    double value = strtod (copy, NULL);
    if (copy != small)
        free (copy);
    return value;
}

//  Length of a JSON number at text (at most size bytes), or 0 if there is none.
static size_t s_number_size (const char *text, size_t size)
{
    reader_t r = {text, text + size};
    if (r.at < r.end && *r.at == '-')
        r.at++;
    if (r.at < r.end && *r.at == '0')
        r.at++;
    else if (s_is_digit (&r))
        while (s_is_digit (&r))
            r.at++;
    else
        return 0;
    if (r.at < r.end && *r.at == '.') {
        r.at++;
        if (!s_is_digit (&r))
            return 0;
        while (s_is_digit (&r))
            r.at++;
    }
    if (r.at < r.end && (*r.at == 'e' || *r.at == 'E')) {
        r.at++;
        if (r.at < r.end && (*r.at == '+' || *r.at == '-'))
            r.at++;
        if (!s_is_digit (&r))
            return 0;
        while (s_is_digit (&r))
            r.at++;
    }
    return (size_t)(r.at - text);
}

//  A number item that keeps its text: cJSON_Delete and cJSON_Duplicate free
//  and copy valuestring whatever the item's type.
static cJSON *s_parse_number (reader_t *r)
{
    size_t size = s_number_size (r->at, (size_t)(r->end - r->at));
    if (size == 0)
        return NULL;
    cJSON *item = cJSON_CreateNumber (s_strtod (r->at, size));
    char *text = item ? cJSON_malloc (size + 1) : NULL;
    if (!text) {
        cJSON_Delete (item);
        return NULL;
    }
    memcpy (text, r->at, size);
    text[size] = 0;
    item->valuestring = text;
    r->at += size;
    return item;
}

//  Four hex digits into *value; false if they are not there.
static bool s_hex4 (reader_t *r, unsigned *value)
{
    *value = 0;
    for (int index = 0; index < 4; index++, r->at++) {
        if (r->at >= r->end)
            return false;
        char c = *r->at;
        unsigned digit = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                         : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                         : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                                : 16;
        if (digit == 16)
            return false;
        *value = *value * 16 + digit;
    }
    return true;
}

static size_t s_put_utf8 (char *out, unsigned cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

//  One escape after its backslash, written to out; its length, 0 if invalid.
//  \u0000 is refused: a C string cannot carry it, and cutting it would lose data.
static size_t s_escape (reader_t *r, char *out)
{
    if (r->at >= r->end)
        return 0;
    char c = *r->at++;
    const char *simple = strchr ("\"\\/bfnrt", c);
    if (c && simple) {
        *out = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
        return 1;
    }
    unsigned cp, low;
    if (c != 'u' || !s_hex4 (r, &cp) || cp == 0 || (cp >= 0xDC00 && cp <= 0xDFFF))
        return 0;
    if (cp >= 0xD800 && cp <= 0xDBFF) { //  a high surrogate: its low half must follow
        if (r->end - r->at < 2 || r->at[0] != '\\' || r->at[1] != 'u')
            return 0;
        r->at += 2;
        if (!s_hex4 (r, &low) || low < 0xDC00 || low > 0xDFFF)
            return 0;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    return s_put_utf8 (out, cp);
}

//  Length of one valid UTF-8 sequence at r->at (not overlong, no surrogate),
//  or 0.
static size_t s_utf8_size (const reader_t *r)
{
    const unsigned char *at = (const unsigned char *)r->at;
    size_t left = (size_t)(r->end - r->at);
    size_t size = (at[0] & 0xE0) == 0xC0   ? 2
                  : (at[0] & 0xF0) == 0xE0 ? 3
                  : (at[0] & 0xF8) == 0xF0 ? 4
                                           : 0;
    if (size == 0 || size > left)
        return 0;
    unsigned cp = at[0] & (0x7F >> size);
    for (size_t index = 1; index < size; index++) {
        if ((at[index] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (at[index] & 0x3F);
    }
    static const unsigned least[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < least[size] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return size;
}

//  A string at r->at (its opening quote), decoded into cJSON's allocator; NULL
//  if it is not a valid JSON string of valid UTF-8.
static char *s_parse_string (reader_t *r)
{
    const char *close = r->at + 1;
    while (close < r->end && *close != '"')
        close += *close == '\\' && close + 1 < r->end ? 2 : 1;
    if (close >= r->end)
        return NULL;
    char *text = cJSON_malloc ((size_t)(close - r->at)); //  escapes only shrink
    if (!text)
        return NULL;
    size_t size = 0, step = 1;
    for (r->at++; step && r->at < close; size += step) {
        unsigned char c = (unsigned char)*r->at;
        if (c == '\\') {
            r->at++;
            step = s_escape (r, text + size);
        } else if (c < 0x80) {
            step = c >= 0x20;
            text[size] = (char)c;
            r->at += step;
        } else {
            step = s_utf8_size (r);
            memcpy (text + size, r->at, step);
            r->at += step;
        }
    }
    if (!step || r->at != close) {
        cJSON_free (text);
        return NULL;
    }
    r->at++;
    text[size] = 0;
    return text;
}

//  The members of an object or the elements of an array, r->at on its opener.
static cJSON *s_parse_container (reader_t *r, int depth)
{
    bool object = *r->at++ == '{';
    char close = object ? '}' : ']';
    cJSON *container = object ? cJSON_CreateObject () : cJSON_CreateArray ();
    s_skip (r);
    if (container && r->at < r->end && *r->at == close) {
        r->at++;
        return container;
    }
    while (container) {
        char *key = NULL;
        if (object) {
            s_skip (r);
            key = r->at < r->end && *r->at == '"' ? s_parse_string (r) : NULL;
            s_skip (r);
            if (!key || r->at >= r->end || *r->at++ != ':') {
                cJSON_free (key);
                break;
            }
        }
        cJSON *value = s_parse_value (r, depth + 1);
        if (!value) {
            cJSON_free (key);
            break;
        }
        value->string = key;                     //  owned by value now: cJSON_Delete frees it
        cJSON_AddItemToArray (container, value); //  links it, for objects too
        s_skip (r);
        if (r->at < r->end && *r->at == ',') {
            r->at++;
            continue;
        }
        if (r->at < r->end && *r->at == close) {
            r->at++;
            return container;
        }
        break;
    }
    cJSON_Delete (container);
    return NULL;
}

static cJSON *s_parse_literal (reader_t *r, const char *word, cJSON *item)
{
    size_t size = strlen (word);
    if (!item || (size_t)(r->end - r->at) < size || memcmp (r->at, word, size) != 0) {
        cJSON_Delete (item);
        return NULL;
    }
    r->at += size;
    return item;
}

static cJSON *s_parse_value (reader_t *r, int depth)
{
    s_skip (r);
    if (r->at >= r->end || depth > CJSON_NESTING_LIMIT)
        return NULL;
    char c = *r->at;
    if (c == '{' || c == '[')
        return s_parse_container (r, depth);
    if (c == '"') {
        char *text = s_parse_string (r);
        cJSON *item = text ? cJSON_CreateString ("") : NULL;
        if (item) { //  swap in the decoded text rather than copy it again
            cJSON_free (item->valuestring);
            item->valuestring = text;
        } else
            cJSON_free (text);
        return item;
    }
    if (c == 't')
        return s_parse_literal (r, "true", cJSON_CreateTrue ());
    if (c == 'f')
        return s_parse_literal (r, "false", cJSON_CreateFalse ());
    if (c == 'n')
        return s_parse_literal (r, "null", cJSON_CreateNull ());
    return s_parse_number (r);
}

cJSON *mdp_json_parse (const char *text, size_t size)
{
    cJSON *item = NULL;
    if (text && !memchr (text, 0, size)) {
        reader_t r = {text, text + size};
        item = s_parse_value (&r, 0);
        s_skip (&r);
        if (item && r.at != r.end) {
            cJSON_Delete (item);
            item = NULL;
        }
    }
    if (!item)
        errno = EINVAL;
    return item;
}

//  ---------------------------------------------------------------------------
//  Printing

//  True when a number item keeps text that is a JSON number denoting its
//  value now (cJSON_SetNumberValue since leaves the text stale).
static bool s_text_holds (const cJSON *item)
{
    const char *text = item->valuestring;
    if (!cJSON_IsNumber (item) || !text)
        return false;
    size_t size = strlen (text);
    if (size == 0 || s_number_size (text, size) != size)
        return false;
    double value = s_strtod (text, size);
    return value == item->valuedouble && signbit (value) == signbit (item->valuedouble);
}

static bool s_has_text (const cJSON *item)
{
    if (s_text_holds (item))
        return true;
    for (const cJSON *child = item->child; child; child = child->next)
        if (s_has_text (child))
            return true;
    return false;
}

//  In a copy: numbers whose text holds become raw items that print it.
static void s_make_raw (cJSON *item)
{
    if (s_text_holds (item))
        item->type = cJSON_Raw | (item->type & ~0xFF);
    for (cJSON *child = item->child; child; child = child->next)
        s_make_raw (child);
}

char *mdp_json_print (const cJSON *item)
{
    if (!item) {
        errno = EINVAL;
        return NULL;
    }
    char *text = NULL;
    if (s_has_text (item)) {
        cJSON *copy = cJSON_Duplicate (item, 1);
        if (copy) {
            s_make_raw (copy);
            text = cJSON_PrintUnformatted (copy);
            cJSON_Delete (copy);
        }
    } else
        text = cJSON_PrintUnformatted (item);
    if (!text)
        errno = ENOMEM;
    return text;
}
