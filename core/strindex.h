/* strindex.h: a hash index over an array of strings the caller owns, so
 * that "have I seen this string, and at which position?" costs O(1) instead
 * of a scan: importers number request ids by first appearance, experiment
 * files deduplicate values. Open addressing (FNV-1a, linear probing) over
 * positions + 1 (0 = empty slot); the table is kept at most half full. */
#ifndef MOE_STRINDEX_H
#define MOE_STRINDEX_H

#include <stddef.h>
#include <stdint.h>

typedef struct moe_strindex {
    size_t *slot;
    size_t cap; /* a power of two, 0 before the first add */
    size_t n;   /* positions indexed */
} moe_strindex;

/* Position of s in strs (the array indexed so far), or -1. */
int64_t moe_strindex_find(const moe_strindex *x, char *const *strs, const char *s);
/* Index strs[i] (i = the next position; strings must stay where they are
 * or be re-indexed). 0, or -1 out of memory. */
int moe_strindex_add(moe_strindex *x, char *const *strs, size_t i);
void moe_strindex_free(moe_strindex *x);

#endif
