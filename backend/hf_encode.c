/* hf_encode.c: text to ids through a tokenizer.json's pipeline (the steps
 * are listed in hf_tokenizer.h). The text is held as a list of pieces; each
 * step rewrites the list. A piece cut out as an added token carries its id
 * and is left alone by the later steps; empty pieces are dropped, as the
 * library drops them. */
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "hf_tokenizer.h"

typedef struct piece {
    char *s;
    size_t n;
    int32_t id;  /* >= 0: an added token */
    int origin;  /* starts at offset 0 of the input (Metaspace's "first") */
} piece;

typedef struct plist {
    piece *p;
    size_t n, cap;
} plist;

static void plist_free(plist *l) {
    for (size_t i = 0; i < l->n; i++) free(l->p[i].s);
    free(l->p);
    memset(l, 0, sizeof *l);
}

/* Append a copy of s[0..n) (dropped when empty and not a token). */
static int plist_add(plist *l, const char *s, size_t n, int32_t id, int origin) {
    if (!n && id < 0) return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        piece *q = realloc(l->p, cap * sizeof *q);
        if (!q) return -1;
        l->p = q, l->cap = cap;
    }
    char *c = malloc(n + 1);
    if (!c) return -1;
    memcpy(c, s, n);
    c[n] = 0;
    l->p[l->n++] = (piece){c, n, id, origin};
    return 0;
}

/* ---- added tokens ---- */

/* Unicode White_Space (what lstrip / rstrip take, Rust's \s): length of the
 * character at s if it is one, else 0. */
static size_t white_space_at(const char *s, size_t n) {
    size_t k = hf_utf8_len((const unsigned char *)s, n);
    if (!k) return 0;
    utf8proc_int32_t cp;
    if (utf8proc_iterate((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)k, &cp) < 0) return 0;
    int ws = (cp >= 0x9 && cp <= 0xd) || cp == 0x20 || cp == 0x85 || cp == 0xa0 || cp == 0x1680 ||
             (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f ||
             cp == 0x3000;
    return ws ? k : 0;
}

/* Start of the run of white space that ends s[0..n). */
static size_t ws_run_start(const char *s, size_t n) {
    size_t i = n;
    while (i > 0) {
        size_t j = i - 1; /* back to the start of the previous character */
        while (j > 0 && ((unsigned char)s[j] & 0xc0) == 0x80) j--;
        if (!white_space_at(s + j, i - j)) break;
        i = j;
    }
    return i;
}

/* The added token (of those matched in normalized text or not) matching
 * longest at s[i..), or -1. */
static int added_at(const hf_tokenizer *t, int normalized, const char *s, size_t n, size_t i) {
    if (!t->added_first[normalized][(unsigned char)s[i]]) return -1; /* most positions: no token starts so */
    int best = -1;
    size_t best_len = 0;
    for (int k = 0; k < t->n_added; k++) {
        const hf_added *a = &t->added[k];
        if (a->normalized != normalized || a->nmatch > n - i || a->nmatch <= best_len) continue;
        if (!memcmp(s + i, a->match, a->nmatch)) best = k, best_len = a->nmatch;
    }
    return best;
}

/* Cut the added tokens out of one piece, as AddedVocabulary::find_matches:
 * leftmost-longest matches, scanning on from each match's end; lstrip /
 * rstrip widen a token over the white space beside it. */
static int split_added(const hf_tokenizer *t, int normalized, const piece *in, plist *out) {
    const char *s = in->s;
    size_t n = in->n, start_offset = 0, i = 0;
    while (i < n) {
        int k = added_at(t, normalized, s, n, i);
        if (k < 0) {
            size_t step = hf_utf8_len((const unsigned char *)s + i, n - i);
            i += step ? step : 1;
            continue;
        }
        const hf_added *a = &t->added[k];
        size_t start = i, stop = i + a->nmatch;
        i = stop; /* the next match is searched from the end of this one */
        if (a->lstrip) {
            size_t ns = ws_run_start(s, start);
            start = ns > start_offset ? ns : start_offset;
        }
        if (a->rstrip) {
            size_t w;
            while (stop < n && (w = white_space_at(s + stop, n - stop))) stop += w;
        }
        if (start_offset < start &&
            plist_add(out, s + start_offset, start - start_offset, -1, in->origin && start_offset == 0))
            return -1;
        if (plist_add(out, s + start, stop - start, a->id, 0)) return -1;
        start_offset = stop;
    }
    if (start_offset < n && plist_add(out, s + start_offset, n - start_offset, -1, in->origin && start_offset == 0))
        return -1;
    return 0;
}

/* ---- normalizers ---- */

static int replace_all(hf_buf *out, const char *s, size_t n, const char *a, size_t na, const char *b, size_t nb) {
    size_t i = 0;
    while (i < n) {
        const char *hit = na <= n - i ? memmem(s + i, n - i, a, na) : NULL;
        size_t upto = hit ? (size_t)(hit - s) : n;
        if (hf_buf_put(out, s + i, upto - i)) return -1;
        if (!hit) break;
        if (hf_buf_put(out, b, nb)) return -1;
        i = upto + na;
    }
    return 0;
}

int hf_normalize(const hf_tokenizer *t, const char *s, size_t n, hf_buf *out, moe_error *err) {
    hf_buf cur = {0};
    if (hf_buf_put(&cur, s, n)) return moe_fail(err, "out of memory");
    for (int k = 0; k < t->n_norms; k++) {
        const hf_norm *z = &t->norms[k];
        hf_buf next = {0};
        int bad = 0;
        if (z->kind == HF_NORM_NFC) {
            if (cur.n) {
                utf8proc_uint8_t *dst = NULL;
                utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)cur.p, (utf8proc_ssize_t)cur.n, &dst,
                                                  UTF8PROC_STABLE | UTF8PROC_COMPOSE);
                bad = r < 0 || hf_buf_put(&next, dst, (size_t)(r < 0 ? 0 : r));
                free(dst);
            } else bad = hf_buf_put(&next, "", 0);
        } else if (z->kind == HF_NORM_PREPEND) {
            bad = cur.n && hf_buf_put(&next, z->a, z->na); /* an empty string stays empty */
            bad = bad || hf_buf_put(&next, cur.p, cur.n);
        } else bad = hf_buf_put(&next, "", 0) || replace_all(&next, cur.p, cur.n, z->a, z->na, z->b, z->nb);
        free(cur.p);
        cur = next;
        if (bad) {
            free(cur.p);
            return moe_fail(err, "normalizer %d: out of memory", k);
        }
    }
    if (hf_buf_put(out, cur.p, cur.n)) {
        free(cur.p);
        return moe_fail(err, "out of memory");
    }
    free(cur.p);
    return 0;
}

/* ---- pre-tokenizers ---- */

/* (range, is_match) pairs covering a piece, in order, as Pattern::find_matches gives them. */
typedef struct seg { size_t a, b; int match; } seg;

static int seg_add(seg **v, size_t *n, size_t *cap, size_t a, size_t b, int match) {
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 16;
        seg *q = realloc(*v, c * sizeof *q);
        if (!q) return -1;
        *v = q, *cap = c;
    }
    (*v)[(*n)++] = (seg){a, b, match};
    return 0;
}

/* The matches of a piece, gaps between them included. */
static int regex_segs(const hf_regex *re, const char *s, size_t n, seg **v, size_t *nv, moe_error *err) {
    hf_span *sp;
    size_t ns, cap = 0, prev = 0;
    *v = NULL, *nv = 0;
    if (hf_regex_find_all(re, s, n, &sp, &ns, err)) return -1;
    int bad = 0;
    for (size_t i = 0; i < ns && !bad; i++) {
        if (prev != sp[i].start) bad = seg_add(v, nv, &cap, prev, sp[i].start, 0);
        bad = bad || seg_add(v, nv, &cap, sp[i].start, sp[i].end, 1);
        prev = sp[i].end;
    }
    if (!bad && prev != n) bad = seg_add(v, nv, &cap, prev, n, 0);
    free(sp);
    if (bad) {
        free(*v);
        return moe_fail(err, "out of memory");
    }
    return 0;
}

/* Each occurrence of character c (UTF-8, nc bytes) as a match of its own. */
static int char_segs(const char *s, size_t n, const char *c, size_t nc, seg **v, size_t *nv) {
    size_t cap = 0, last = 0;
    *v = NULL, *nv = 0;
    for (size_t i = 0; i < n;) {
        size_t k = hf_utf8_len((const unsigned char *)s + i, n - i);
        if (!k) k = 1;
        if (k == nc && !memcmp(s + i, c, nc)) {
            if ((last < i && seg_add(v, nv, &cap, last, i, 0)) || seg_add(v, nv, &cap, i, i + k, 1)) goto oom;
            last = i + k;
        }
        i += k;
    }
    if (last < n && seg_add(v, nv, &cap, last, n, 0)) goto oom;
    return 0;
oom:
    free(*v);
    return -1;
}

/* NormalizedString::split: fold the segments by behavior, then cut. */
static int split_by(const piece *in, seg *v, size_t nv, int behavior, int invert, plist *out) {
    if (invert)
        for (size_t i = 0; i < nv; i++) v[i].match = !v[i].match;
    size_t m = 0;
    if (behavior == HF_SPLIT_MERGED_NEXT) { /* walk backwards: a match joins the piece after it */
        int prev = 0;
        seg *tmp = malloc((nv ? nv : 1) * sizeof *tmp);
        if (!tmp) return -1;
        for (size_t i = nv; i-- > 0;) {
            if (v[i].match && !prev && m) tmp[m - 1].a = v[i].a;
            else tmp[m++] = (seg){v[i].a, v[i].b, 0};
            prev = v[i].match;
        }
        for (size_t i = 0; i < m; i++) v[i] = tmp[m - 1 - i];
        free(tmp);
    } else {
        int prev = 0;
        for (size_t i = 0; i < nv; i++) {
            seg g = v[i];
            int join = 0, keep = 1;
            if (behavior == HF_SPLIT_REMOVED) keep = !g.match;
            else if (behavior == HF_SPLIT_CONTIGUOUS) join = m && g.match == prev;
            else if (behavior == HF_SPLIT_MERGED_PREV) join = m && g.match && !prev;
            prev = g.match;
            if (join) v[m - 1].b = g.b;
            else v[m++] = (seg){g.a, g.b, keep ? 0 : 1}; /* .match now: removed */
        }
    }
    for (size_t i = 0; i < m; i++)
        if (!v[i].match && plist_add(out, in->s + v[i].a, v[i].b - v[i].a, -1, in->origin && v[i].a == 0))
            return -1;
    return 0;
}

static int pre_one(const hf_tokenizer *t, const hf_pretok *p, const piece *in, plist *out, moe_error *err) {
    hf_buf b = {0};
    piece cur = *in;
    seg *v = NULL;
    size_t nv = 0;
    int rc = -1;
    if (p->kind == HF_PRE_BYTELEVEL) {
        if (p->add_prefix_space && !(cur.n && cur.s[0] == ' ')) {
            if (hf_buf_put(&b, " ", 1) || hf_buf_put(&b, cur.s, cur.n)) goto oom;
            cur.s = b.p, cur.n = b.n;
        }
        plist words = {0};
        if (p->re) {
            if (regex_segs(p->re, cur.s, cur.n, &v, &nv, err)) goto out;
            if (split_by(&cur, v, nv, HF_SPLIT_ISOLATED, 0, &words)) {
                plist_free(&words);
                goto oom;
            }
        } else if (plist_add(&words, cur.s, cur.n, -1, cur.origin)) {
            plist_free(&words);
            goto oom;
        }
        for (size_t i = 0; i < words.n; i++) { /* bytes to the ByteLevel alphabet */
            hf_buf m = {0};
            int bad = hf_buf_put(&m, "", 0);
            for (size_t j = 0; j < words.p[i].n && !bad; j++) {
                unsigned char c = (unsigned char)words.p[i].s[j];
                bad = hf_buf_put(&m, t->bl_char[c], t->bl_len[c]);
            }
            bad = bad || plist_add(out, m.p, m.n, -1, words.p[i].origin);
            free(m.p);
            if (bad) {
                plist_free(&words);
                goto oom;
            }
        }
        plist_free(&words);
    } else if (p->kind == HF_PRE_SPLIT) {
        if (regex_segs(p->re, cur.s, cur.n, &v, &nv, err)) goto out;
        if (split_by(&cur, v, nv, p->behavior, p->invert, out)) goto oom;
    } else { /* Metaspace */
        if (hf_buf_put(&b, "", 0)) goto oom;
        int prepend = p->prepend == HF_PREPEND_ALWAYS || (p->prepend == HF_PREPEND_FIRST && cur.origin);
        hf_buf r = {0};
        if (replace_all(&r, cur.s, cur.n, " ", 1, p->rep, p->nrep) || hf_buf_put(&r, "", 0)) {
            free(r.p);
            goto oom;
        }
        if (prepend && !(r.n >= p->nrep && !memcmp(r.p, p->rep, p->nrep)) && hf_buf_put(&b, p->rep, p->nrep)) {
            free(r.p);
            goto oom;
        }
        int bad = hf_buf_put(&b, r.p, r.n);
        free(r.p);
        if (bad) goto oom;
        cur.s = b.p, cur.n = b.n;
        if (!p->split) {
            if (plist_add(out, cur.s, cur.n, -1, cur.origin)) goto oom;
        } else if (char_segs(cur.s, cur.n, p->rep, p->nrep, &v, &nv) ||
                   split_by(&cur, v, nv, HF_SPLIT_MERGED_NEXT, 0, out))
            goto oom;
    }
    rc = 0;
    goto out;
oom:
    rc = moe_fail(err, "out of memory");
out:
    free(v);
    free(b.p);
    return rc;
}

/* ---- the whole pipeline ---- */

int hf_encode(const hf_tokenizer *t, const char *text, size_t len, int add_special, int32_t **ids_out, size_t *n_out,
              int *n_lead, moe_error *err) {
    *ids_out = NULL, *n_out = 0;
    if (n_lead) *n_lead = 0;
    size_t bad_at = hf_utf8_check(text, len);
    if (bad_at < len) return moe_fail(err, "byte %zu: not UTF-8 (a tokenizer.json tokenizer takes UTF-8 text)", bad_at);
    plist a = {0}, b = {0};
    int32_t *ids = NULL;
    size_t n = 0, cap = 0;
    int rc = -1;
    piece whole = {(char *)text, len, -1, 1};
    /* 1. added tokens matched in the raw text */
    if (split_added(t, 0, &whole, &a)) goto oom;
    /* 2. normalize the rest, then match the normalized added tokens */
    for (size_t i = 0; i < a.n; i++) {
        if (a.p[i].id >= 0) {
            if (plist_add(&b, a.p[i].s, a.p[i].n, a.p[i].id, 0)) goto oom;
            continue;
        }
        hf_buf nb = {0};
        if (hf_normalize(t, a.p[i].s, a.p[i].n, &nb, err)) goto out;
        piece np = {nb.p ? nb.p : "", nb.n, -1, a.p[i].origin};
        int bad = split_added(t, 1, &np, &b);
        free(nb.p);
        if (bad) goto oom;
    }
    plist_free(&a);
    /* 3. pre-tokenizers, each over every piece that is not a token yet */
    for (int k = 0; k < t->n_pre; k++) {
        plist next = {0};
        for (size_t i = 0; i < b.n; i++) {
            int bad = b.p[i].id >= 0 ? plist_add(&next, b.p[i].s, b.p[i].n, b.p[i].id, 0)
                                     : pre_one(t, &t->pre[k], &b.p[i], &next, err);
            if (bad) {
                plist_free(&next);
                goto out;
            }
        }
        plist_free(&b);
        b = next;
    }
    /* 4. the model; 5. the template */
    int before = add_special ? t->n_tmpl_before : 0;
    for (int k = 0; k < before; k++)
        if (hf_ids_push(&ids, &n, &cap, t->tmpl[k])) goto oom;
    for (size_t i = 0; i < b.n; i++) {
        if (b.p[i].id >= 0) {
            if (hf_ids_push(&ids, &n, &cap, b.p[i].id)) goto oom;
        } else if (hf_bpe_word(&t->bpe, b.p[i].s, b.p[i].n, &ids, &n, &cap, err))
            goto out;
    }
    for (int k = before; add_special && k < t->n_tmpl; k++)
        if (hf_ids_push(&ids, &n, &cap, t->tmpl[k])) goto oom;
    if (n_lead) *n_lead = before;
    *ids_out = ids, *n_out = n;
    ids = NULL;
    rc = 0;
    goto out;
oom:
    rc = moe_fail(err, "out of memory");
out:
    plist_free(&a);
    plist_free(&b);
    free(ids);
    return rc;
}
