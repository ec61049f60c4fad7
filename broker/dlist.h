/*  dlist.h - intrusive circular doubly linked lists for the broker.
    A list is a sentinel node; items embed a dlink_t. Every operation is O(1),
    which is what lets the broker drop a worker or a request from the middle of
    a waiting list without scanning it. Lists and links live in place inside
    their owners: dlist_init sets one up, and there is nothing to free.
*/
#ifndef DLIST_H_INCLUDED
#define DLIST_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

typedef struct dlink_t {
    struct dlink_t *prev; //  previous node (the sentinel when first)
    struct dlink_t *next; //  next node (the sentinel when last)
} dlink_t;

#define DLIST_ITEM(link, type, member) ((type *)((char *)(link)-offsetof (type, member)))

static inline void dlist_init (dlink_t *list)
{
    list->prev = list->next = list;
}

static inline bool dlist_empty (const dlink_t *list)
{
    return list->next == list;
}

//  True when the node is on some list (nodes are kept self-linked when off).
static inline bool dlist_linked (const dlink_t *node)
{
    return node->next != node;
}

static inline void dlist_append (dlink_t *list, dlink_t *node)
{
    node->prev = list->prev;
    node->next = list;
    list->prev->next = node;
    list->prev = node;
}

static inline void dlist_remove (dlink_t *node)
{
    node->prev->next = node->next;
    node->next->prev = node->prev;
    node->prev = node->next = node;
}

//  Remove and return the first node, or NULL when the list is empty.
static inline dlink_t *dlist_pop (dlink_t *list)
{
    if (dlist_empty (list))
        return NULL;
    dlink_t *node = list->next;
    dlist_remove (node);
    return node;
}

#endif
