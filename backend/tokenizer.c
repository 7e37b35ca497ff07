/* tokenizer.c: byte-level tokens and explicit id lists. */
#include "tokenizer.h"

#include <errno.h>
#include <stdlib.h>

int moe_tok_is_bytes(int vocab) { return vocab == 256; }

int *moe_tok_encode_bytes(const unsigned char *s, size_t n) {
    int *ids = malloc((n ? n : 1) * sizeof *ids);
    if (ids)
        for (size_t i = 0; i < n; i++) ids[i] = s[i];
    return ids;
}

int *moe_tok_parse_ids(const char *list, int vocab, int *n, moe_error *err) {
    size_t cap = 16;
    int *ids = malloc(cap * sizeof *ids);
    *n = 0;
    const char *p = list;
    while (ids) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v >= vocab) {
            moe_fail(err, "--prompt-ids: item %d ('%.20s') is not a token id below the vocabulary size %d", *n + 1, p,
                     vocab);
            free(ids);
            return NULL;
        }
        if ((size_t)*n == cap) {
            int *q = realloc(ids, (cap *= 2) * sizeof *ids);
            if (!q) break;
            ids = q;
        }
        ids[(*n)++] = (int)v;
        if (*end == 0) return ids;
        if (*end != ',') {
            moe_fail(err, "--prompt-ids: expected ',' after item %d, found '%c'", *n, *end);
            free(ids);
            return NULL;
        }
        p = end + 1;
    }
    free(ids);
    moe_fail(err, "out of memory");
    return NULL;
}
