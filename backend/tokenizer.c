/* tokenizer.c: a model directory's tokenizer (tokenizer.json or bytes)
 * and explicit id lists. */
#include "tokenizer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hf_tokenizer.h"

_Static_assert(sizeof(int) == sizeof(int32_t), "token ids are handed to the engine as int");

struct moe_tokenizer {
    hf_tokenizer *hf; /* NULL: one token per byte */
};

moe_tokenizer *moe_tokenizer_open(const char *dir, int vocab, moe_error *err) {
    char path[1100];
    err->msg[0] = 0;
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    if (access(path, F_OK) != 0) {
        if (!moe_tok_is_bytes(vocab)) return NULL; /* none: ids are given directly */
        moe_tokenizer *t = calloc(1, sizeof *t);
        if (!t) moe_fail(err, "out of memory");
        return t;
    }
    hf_tokenizer *hf = hf_tokenizer_load(path, err);
    if (!hf) return NULL;
    /* every id the tokenizer can produce must have an embedding row */
    if (hf->n_ids > vocab) {
        int32_t id = hf->n_ids - 1;
        moe_fail(err, "%s: token id %d ('%.40s') is past the model's vocab_size %d (config.json)", path, (int)id,
                 hf->id_str[id] ? hf->id_str[id] : "a template id", vocab);
        hf_tokenizer_free(hf);
        return NULL;
    }
    moe_tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        hf_tokenizer_free(hf);
        moe_fail(err, "out of memory");
        return NULL;
    }
    t->hf = hf;
    return t;
}

void moe_tokenizer_free(moe_tokenizer *t) {
    if (!t) return;
    hf_tokenizer_free(t->hf);
    free(t);
}

const char *moe_tokenizer_kind(const moe_tokenizer *t) { return t->hf ? "tokenizer.json" : "bytes"; }

int moe_tokenizer_encode(const moe_tokenizer *t, const unsigned char *text, size_t len, int add_special, int **ids,
                         int *n, int *n_lead, moe_error *err) {
    *ids = NULL, *n = 0;
    if (n_lead) *n_lead = 0;
    if (len > (size_t)1 << 30) return moe_fail(err, "text of %zu bytes: too long to tokenize (1 GiB at most)", len);
    if (!t->hf) {
        if (!(*ids = moe_tok_encode_bytes(text, len))) return moe_fail(err, "out of memory");
        *n = (int)len;
        return 0;
    }
    int32_t *v;
    size_t m;
    if (hf_encode(t->hf, (const char *)text, len, add_special, &v, &m, n_lead, err))
        return moe_fail_prefix(err, "%s", t->hf->path);
    /* the engine takes int ids; int32_t is int on every platform moesim builds on */
    *ids = (int *)v, *n = (int)m;
    return 0;
}

void moe_detok_init(moe_detok *d, const moe_tokenizer *t) {
    memset(d, 0, sizeof *d);
    d->tok = t;
    if (t->hf) {
        hf_detok h;
        hf_detok_init(&h, t->hf);
        d->strip_left = h.strip_left;
    }
}

int moe_detok_next(moe_detok *d, int id, const char **out, size_t *len) {
    hf_buf b = {d->buf, 0, d->cap};
    int rc;
    if (!d->tok->hf) {
        char c = (char)id;
        rc = id < 0 || id > 255 ? 1 : hf_buf_put(&b, &c, 1);
    } else {
        hf_detok h = {d->index, d->strip_left};
        rc = hf_detok_next(d->tok->hf, &h, id, &b);
        d->index = h.index, d->strip_left = h.strip_left;
    }
    d->buf = b.p, d->cap = b.cap, d->n = b.n;
    *out = d->buf ? d->buf : "", *len = rc == 0 ? b.n : 0;
    return rc;
}

void moe_detok_free(moe_detok *d) {
    free(d->buf);
    memset(d, 0, sizeof *d);
}

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
