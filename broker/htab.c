/*  htab.c - see htab.h. Chained buckets, doubled when the load passes 1. */
#include "htab.h"
#include <stdlib.h>
#include <string.h>

#define HTAB_INITIAL 64

int htab_init (htab_t *self)
{
    self->buckets = calloc (HTAB_INITIAL, sizeof (hnode_t *));
    self->mask = HTAB_INITIAL - 1;
    self->count = 0;
    return self->buckets ? 0 : -1;
}

void htab_fini (htab_t *self)
{
    free (self->buckets);
    self->buckets = NULL;
    self->count = 0;
}

uint64_t htab_hash (const void *key, size_t keylen)
{
    const unsigned char *p = key;
    uint64_t hash = 1469598103934665603ULL;
    for (size_t i = 0; i < keylen; i++) {
        hash ^= p[i];
        hash *= 1099511628211ULL;
    }
    return hash ^ (hash >> 29);
}

hnode_t *htab_find (const htab_t *self, const void *key, size_t keylen, uint64_t hash)
{
    for (hnode_t *node = self->buckets[hash & self->mask]; node; node = node->next)
        if (node->hash == hash && node->keylen == keylen && memcmp (node->key, key, keylen) == 0)
            return node;
    return NULL;
}

static void s_grow (htab_t *self)
{
    size_t size = (self->mask + 1) * 2;
    hnode_t **buckets = calloc (size, sizeof (hnode_t *));
    if (!buckets)
        return;
    for (size_t i = 0; i <= self->mask; i++) {
        hnode_t *node = self->buckets[i];
        while (node) {
            hnode_t *next = node->next;
            node->next = buckets[node->hash & (size - 1)];
            buckets[node->hash & (size - 1)] = node;
            node = next;
        }
    }
    free (self->buckets);
    self->buckets = buckets;
    self->mask = size - 1;
}

void htab_insert (htab_t *self, hnode_t *node)
{
    if (self->count > self->mask)
        s_grow (self);
    hnode_t **head = &self->buckets[node->hash & self->mask];
    node->next = *head;
    *head = node;
    self->count++;
}

void htab_remove (htab_t *self, hnode_t *node)
{
    hnode_t **link = &self->buckets[node->hash & self->mask];
    while (*link && *link != node)
        link = &(*link)->next;
    if (*link) {
        *link = node->next;
        self->count--;
    }
}

void htab_foreach (const htab_t *self, void (*fn) (hnode_t *node, void *arg), void *arg)
{
    for (size_t i = 0; i <= self->mask; i++)
        for (hnode_t *node = self->buckets[i]; node; node = node->next)
            fn (node, arg);
}
