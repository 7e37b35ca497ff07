/* hf_util.c: the byte strings and UTF-8 checks the tokenizer code shares. */
#include <stdlib.h>
#include <string.h>

#include "hf_tokenizer.h"

int hf_buf_put(hf_buf *b, const void *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return -1;
        b->p = p, b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0; /* kept NUL-terminated for lookups */
    return 0;
}

int hf_ids_push(int32_t **ids, size_t *n, size_t *cap, int32_t id) {
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 64;
        int32_t *q = realloc(*ids, c * sizeof *q);
        if (!q) return -1;
        *ids = q, *cap = c;
    }
    (*ids)[(*n)++] = id;
    return 0;
}

size_t hf_utf8_len(const unsigned char *s, size_t n) {
    if (!n) return 0;
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t k;
    unsigned min;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) k = 2, min = 0x80, cp = c & 0x1f;
    else if ((c & 0xf0) == 0xe0) k = 3, min = 0x800, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4) k = 4, min = 0x10000, cp = c & 0x07;
    else return 0;
    if (n < k) return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    /* overlong forms, surrogates and code points past U+10FFFF are not UTF-8 */
    if (cp < min || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) return 0;
    return k;
}

size_t hf_utf8_check(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        size_t k = hf_utf8_len((const unsigned char *)s + i, n - i);
        if (!k) return i;
        i += k;
    }
    return n;
}

void hf_bytelevel_table(hf_tokenizer *t) {
    unsigned next = 0x100;
    for (int i = 0; i < 0x144; i++) t->bl_byte[i] = -1;
    for (unsigned b = 0; b < 256; b++) {
        int printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || b >= 0xae;
        unsigned cp = printable ? b : next++;
        if (cp < 0x80) t->bl_char[b][0] = (char)cp, t->bl_len[b] = 1;
        else t->bl_char[b][0] = (char)(0xc0 | cp >> 6), t->bl_char[b][1] = (char)(0x80 | (cp & 0x3f)), t->bl_len[b] = 2;
        t->bl_byte[cp] = (int16_t)b;
    }
}
