/*  htab.h - a chained hash table with binary keys, intrusive like dlist.h.
    The broker keys services by name and workers by routing id with it, so
    every lookup on the message path is O(1) whatever the number of entries.
    A table lives in place inside its owner (broker_t), so its lifecycle is
    htab_init / htab_fini, not new / destroy; the items are the owner's.
*/
#ifndef HTAB_H_INCLUDED
#define HTAB_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

typedef struct hnode_t {
    struct hnode_t *next; //  next node in the same bucket
    uint64_t hash;        //  cached hash of the key
    const void *key;      //  key bytes, owned by the item that embeds the node
    size_t keylen;        //  key length in bytes
} hnode_t;

typedef struct {
    hnode_t **buckets; //  bucket heads; a power-of-two count
    size_t mask;       //  bucket count - 1
    size_t count;      //  number of items
} htab_t;

#define HTAB_ITEM(node, type, member) ((type *)((char *)(node)-offsetof (type, member)))

//  Initialise an empty table. Returns 0, or -1 on out of memory.
int htab_init (htab_t *self);
//  Free the bucket array (not the items).
void htab_fini (htab_t *self);
//  Hash a key (FNV-1a, 64 bits).
uint64_t htab_hash (const void *key, size_t keylen);
//  Find the node with this key, or NULL.
hnode_t *htab_find (const htab_t *self, const void *key, size_t keylen, uint64_t hash);
//  Insert a node whose key, keylen and hash are set; the key must be absent.
//  Grows the table as needed (if growth fails the table still works, slower).
void htab_insert (htab_t *self, hnode_t *node);
//  Unlink a node that is in the table.
void htab_remove (htab_t *self, hnode_t *node);
//  Call fn on every node (fn must not change the table).
void htab_foreach (const htab_t *self, void (*fn) (hnode_t *node, void *arg), void *arg);

#endif
