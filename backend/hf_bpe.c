/* hf_bpe.c: the BPE model of a tokenizer.json: one word to ids.
 *
 * As `tokenizers` does it: each character is looked up in the vocabulary
 * (unknown ones become their <0xNN> byte tokens with byte_fallback, else the
 * unk token, fused with a neighbouring unk when fuse_unk, else nothing);
 * then the adjacent pair of lowest merge rank is merged, repeatedly, found
 * through a min-heap of (rank, position) candidates with stale entries
 * skipped: O(n log n) for a word of n characters. */
#include <stdlib.h>
#include <string.h>

#include "hf_tokenizer.h"

static uint64_t mix(uint64_t k) { /* splitmix64's finalizer: ids are small and dense */
    k ^= k >> 30, k *= 0xbf58476d1ce4e5b9ull;
    k ^= k >> 27, k *= 0x94d049bb133111ebull;
    return k ^ (k >> 31);
}

/* A pair's key; +1 keeps 0 free to mean an empty slot. */
static uint64_t pair_key(int32_t a, int32_t b) { return ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) + 1; }

static long merge_find(const hf_bpe *m, uint64_t key) {
    if (!m->mcap) return -1;
    for (size_t j = mix(key) & (m->mcap - 1);; j = (j + 1) & (m->mcap - 1)) {
        if (m->mkey[j] == key) return (long)j;
        if (!m->mkey[j]) return -1;
    }
}

int hf_bpe_add_merge(hf_bpe *m, int32_t a, int32_t b, uint32_t rank, int32_t new_id) {
    if (2 * (m->n_merges + 1) > m->mcap) { /* keep the table at most half full */
        size_t cap = m->mcap ? 2 * m->mcap : 1024;
        uint64_t *k = calloc(cap, sizeof *k);
        uint32_t *r = malloc(cap * sizeof *r), *w = malloc(cap * sizeof *w);
        if (!k || !r || !w) {
            free(k), free(r), free(w);
            return -1;
        }
        for (size_t i = 0; i < m->mcap; i++) {
            if (!m->mkey[i]) continue;
            size_t j = mix(m->mkey[i]) & (cap - 1);
            while (k[j]) j = (j + 1) & (cap - 1);
            k[j] = m->mkey[i], r[j] = m->mrank[i], w[j] = m->mnew[i];
        }
        free(m->mkey), free(m->mrank), free(m->mnew);
        m->mkey = k, m->mrank = r, m->mnew = w, m->mcap = cap;
    }
    uint64_t key = pair_key(a, b);
    long at = merge_find(m, key);
    if (at < 0) { /* a pair listed twice keeps its later rank, as the library's map does */
        size_t j = mix(key) & (m->mcap - 1);
        while (m->mkey[j]) j = (j + 1) & (m->mcap - 1);
        at = (long)j;
        m->mkey[j] = key;
        m->n_merges++;
    }
    m->mrank[at] = rank, m->mnew[at] = (uint32_t)new_id;
    return 0;
}

int32_t hf_bpe_find(const hf_bpe *m, const char *s, size_t n) {
    /* Vocabulary strings come from JSON and hold no NUL: a NUL in s never matches. */
    if (memchr(s, 0, n)) return -1;
    char small[64], *q = n < sizeof small ? small : malloc(n + 1);
    if (!q) return -1;
    memcpy(q, s, n);
    q[n] = 0;
    int64_t pos = moe_strindex_find(&m->index, m->str, q);
    if (q != small) free(q);
    return pos < 0 ? -1 : m->id[pos];
}

typedef struct cand { uint32_t rank, pos, new_id; } cand;

static int cand_less(const cand *x, const cand *y) { return x->rank != y->rank ? x->rank < y->rank : x->pos < y->pos; }

static void heap_push(cand *h, size_t *n, cand c) {
    size_t i = (*n)++;
    while (i && cand_less(&c, &h[(i - 1) / 2])) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = c;
}

static cand heap_pop(cand *h, size_t *n) {
    cand top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, s = i;
        const cand *best = &last;
        if (l < *n && cand_less(&h[l], best)) s = l, best = &h[l];
        if (r < *n && cand_less(&h[r], best)) s = r;
        if (s == i) break;
        h[i] = h[s];
        i = s;
    }
    if (*n) h[i] = last;
    return top;
}

typedef struct sym { int32_t c; long prev, next; size_t len; } sym;

static void add_sym(sym *w, size_t *n, int32_t c, size_t len) {
    w[*n] = (sym){c, (long)*n - 1, -1, len};
    if (*n) w[*n - 1].next = (long)*n;
    (*n)++;
}

/* A candidate merge of w[pos] with its next symbol, if the pair has a merge. */
static void offer(const hf_bpe *m, sym *w, cand *h, size_t *nh, size_t pos) {
    long nx = w[pos].next;
    if (nx < 0) return;
    long at = merge_find(m, pair_key(w[pos].c, w[nx].c));
    if (at >= 0) heap_push(h, nh, (cand){m->mrank[at], (uint32_t)pos, m->mnew[at]});
}

int hf_bpe_word(const hf_bpe *m, const char *s, size_t n, int32_t **ids, size_t *n_ids, size_t *cap, moe_error *err) {
    if (m->ignore_merges) {
        int32_t whole = hf_bpe_find(m, s, n);
        if (whole >= 0) return hf_ids_push(ids, n_ids, cap, whole) ? moe_fail(err, "out of memory") : 0;
    }
    /* at most one symbol per byte; the heap holds at most one entry per
     * symbol plus two per merge */
    sym *w = malloc((n ? n : 1) * sizeof *w);
    cand *h = malloc((3 * n + 1) * sizeof *h);
    if (!w || !h) {
        free(w), free(h);
        return moe_fail(err, "out of memory");
    }
    size_t nw = 0, nh = 0;
    int32_t unk = -1;
    size_t unk_len = 0;
    for (size_t i = 0; i < n;) {
        size_t k = hf_utf8_len((const unsigned char *)s + i, n - i);
        if (!k) k = 1; /* not reached: text is checked UTF-8 */
        int32_t id = hf_bpe_find(m, s + i, k);
        if (id >= 0) {
            if (unk >= 0) add_sym(w, &nw, unk, unk_len), unk = -1;
            add_sym(w, &nw, id, k);
        } else {
            int fell_back = m->byte_fallback;
            for (size_t j = 0; fell_back && j < k; j++) fell_back = m->byte_tok[(unsigned char)s[i + j]] >= 0;
            if (fell_back) /* a pending unk is not flushed first: the library's order */
                for (size_t j = 0; j < k; j++) add_sym(w, &nw, m->byte_tok[(unsigned char)s[i + j]], 1);
            else if (m->unk >= 0) {
                if (unk >= 0 && m->fuse_unk) unk_len += k;
                else {
                    if (unk >= 0) add_sym(w, &nw, unk, unk_len);
                    unk = m->unk, unk_len = k;
                }
            } /* no unk token: the character is dropped, as the library does */
        }
        i += k;
    }
    if (unk >= 0) add_sym(w, &nw, unk, unk_len);
    for (size_t i = 0; i + 1 < nw; i++) offer(m, w, h, &nh, i);
    while (nh) {
        cand top = heap_pop(h, &nh);
        sym *a = &w[top.pos];
        if (!a->len || a->next < 0) continue; /* merged away, or last */
        sym *b = &w[a->next];
        long at = merge_find(m, pair_key(a->c, b->c));
        if (at < 0 || m->mnew[at] != top.new_id) continue; /* a stale candidate */
        a->c = (int32_t)top.new_id;
        a->len += b->len;
        a->next = b->next;
        b->len = 0;
        if (a->next >= 0) w[a->next].prev = (long)top.pos;
        if (a->prev >= 0) offer(m, w, h, &nh, (size_t)a->prev);
        offer(m, w, h, &nh, top.pos);
    }
    int rc = 0;
    for (size_t i = 0; i < nw && !rc; i++)
        if (w[i].len && hf_ids_push(ids, n_ids, cap, w[i].c)) rc = moe_fail(err, "out of memory");
    free(w), free(h);
    return rc;
}

void hf_bpe_free(hf_bpe *m) {
    for (size_t i = 0; i < m->n; i++) free(m->str[i]);
    free(m->str), free(m->id);
    moe_strindex_free(&m->index);
    free(m->mkey), free(m->mrank), free(m->mnew);
    memset(m, 0, sizeof *m);
}
