/* lrc.c: moe-lrc's SRP, SCH and cache hit rates (definitions in lrc.h). */
#include "lrc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *moe_lrc_policy_name(int p) {
    switch (p) {
    case MOE_LRC_LRU: return "lru";
    case MOE_LRC_LFU: return "lfu";
    case MOE_LRC_BELADY: return "belady";
    case MOE_LRC_FSF: return "fsf";
    }
    return "?";
}

void moe_lrc_free(moe_lrc *r) {
    free(r->m);
    free(r->rho);
    free(r->srp);
    free(r->srp_rho);
    free(r->srp_thr);
    free(r->sch);
    free(r->chr);
    free(r->cap);
    memset(r, 0, sizeof *r);
}

/* Chunks: [start[i], start[i+1]) for i < n; start has n+1 entries. */
static uint64_t *make_chunks(const moe_trace *t, uint32_t seq_len, uint64_t *n_out) {
    uint64_t n = 0, cap = 64;
    uint64_t *st = malloc(cap * sizeof *st);
    if (!st) return NULL;
    uint64_t begin = 0;
    for (uint64_t tok = 0; tok <= t->n_tokens; tok++) {
        int cut = tok == t->n_tokens || (tok > begin && t->token_seq[tok] != t->token_seq[tok - 1]) ||
                  (seq_len && tok - begin == seq_len);
        if (tok == 0 || !cut) continue;
        if (n + 2 > cap) {
            uint64_t *s2 = realloc(st, (cap *= 2) * sizeof *st);
            if (!s2) { free(st); return NULL; }
            st = s2;
        }
        st[n++] = begin;
        begin = tok;
    }
    st[n] = t->n_tokens;
    *n_out = n;
    return st;
}

/* The keys a token accesses at a level, in the code's order. */
static uint32_t token_keys(const moe_trace *t, uint64_t tok, uint32_t level, uint32_t *keys) {
    uint32_t n = 0, l0 = level < t->n_layers ? level : 0, l1 = level < t->n_layers ? level + 1 : t->n_layers;
    for (uint32_t l = l0; l < l1; l++) {
        size_t r = moe_trace_rec(t, tok, l);
        uint32_t base = level < t->n_layers ? 0 : l * t->n_experts;
        for (uint32_t s = 0; s < t->top_k && t->experts[r + s] != MOE_NO_EXPERT; s++)
            keys[n++] = base + t->experts[r + s];
    }
    return n;
}

/* ---- priority cache: indexed binary min-heap over the resident keys ---- */

typedef struct pcache {
    uint32_t n_keys, cap, size;
    uint32_t *heap;  /* cap */
    int64_t *pos;    /* n_keys: index in heap, -1 if not resident */
    uint64_t *p1, *p2; /* priority (p1, p2), lexicographic; the minimum is evicted */
} pcache;

static int pc_less(const pcache *c, uint32_t a, uint32_t b) {
    return c->p1[a] < c->p1[b] || (c->p1[a] == c->p1[b] && c->p2[a] < c->p2[b]);
}
static void pc_swap(pcache *c, uint32_t i, uint32_t j) {
    uint32_t a = c->heap[i], b = c->heap[j];
    c->heap[i] = b; c->heap[j] = a;
    c->pos[b] = i; c->pos[a] = j;
}
static void pc_up(pcache *c, uint32_t i) {
    while (i && pc_less(c, c->heap[i], c->heap[(i - 1) / 2])) { pc_swap(c, i, (i - 1) / 2); i = (i - 1) / 2; }
}
static void pc_down(pcache *c, uint32_t i) {
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < c->size && pc_less(c, c->heap[l], c->heap[m])) m = l;
        if (r < c->size && pc_less(c, c->heap[r], c->heap[m])) m = r;
        if (m == i) return;
        pc_swap(c, i, m);
        i = m;
    }
}
/* Key's priority changed: restore the heap if it is resident. */
static void pc_fix(pcache *c, uint32_t key) {
    if (c->pos[key] < 0) return;
    pc_up(c, (uint32_t)c->pos[key]);
    pc_down(c, (uint32_t)c->pos[key]);
}
/* Insert a non-resident key, evicting the minimum when full. */
static void pc_insert(pcache *c, uint32_t key) {
    if (c->cap == 0) return;
    if (c->size == c->cap) {
        c->pos[c->heap[0]] = -1;
        if (--c->size) {
            c->heap[0] = c->heap[c->size];
            c->pos[c->heap[0]] = 0;
            pc_down(c, 0);
        }
    }
    c->heap[c->size] = key;
    c->pos[key] = c->size++;
    pc_up(c, c->size - 1);
}

int moe_lrc_cache_run(const moe_trace *t, uint32_t seq_len, uint32_t level, int policy, uint32_t m,
                      uint32_t capacity, uint64_t *hits_out, uint64_t *acc_out, moe_error *err) {
    const uint32_t L = t->n_layers, E = t->n_experts;
    const uint32_t n_keys = level < L ? E : L * E, per_tok = level < L ? t->top_k : L * t->top_k;
    if (level > L) return moe_fail(err, "level %u out of range 0..%u", level, L);
    if (policy == MOE_LRC_FSF && m == 0) return moe_fail(err, "window m must be >= 1");
    if (capacity > n_keys) capacity = n_keys;
    uint64_t n_chunks = 0, hits = 0, acc = 0, ts = 0;
    uint64_t *chunks = make_chunks(t, seq_len, &n_chunks);
    pcache c = {.n_keys = n_keys, .cap = capacity};
    c.heap = malloc((capacity ? capacity : 1) * sizeof *c.heap);
    c.pos = malloc(n_keys * sizeof *c.pos);
    c.p1 = calloc(n_keys, sizeof *c.p1);
    c.p2 = calloc(n_keys, sizeof *c.p2);
    uint8_t *seen = calloc(n_keys, 1);
    uint32_t *keys = malloc(per_tok * sizeof *keys), *keys2 = malloc(per_tok * sizeof *keys2);
    uint64_t *acc_keys = NULL, *next = NULL, *nextpos = NULL;
    if (policy == MOE_LRC_BELADY) nextpos = malloc(n_keys * sizeof *nextpos);
    int rc = -1;
    if (!chunks || !c.heap || !c.pos || !c.p1 || !c.p2 || !seen || !keys || !keys2 ||
        (policy == MOE_LRC_BELADY && !nextpos)) {
        moe_fail(err, "out of memory");
        goto out;
    }
    for (uint64_t ci = 0; ci < n_chunks; ci++) {
        uint64_t c0 = chunks[ci], c1 = chunks[ci + 1];
        /* cold start */
        for (uint32_t k = 0; k < n_keys; k++) { c.pos[k] = -1; c.p1[k] = c.p2[k] = 0; }
        memset(seen, 0, n_keys);
        c.size = 0;
        uint64_t uni = 0, a = 0;
        if (policy == MOE_LRC_BELADY) {
            /* next access of each access of the chunk; never-again experts
             * get sentinels beyond the chunk, ordered by key (lrc.h) */
            uint64_t n = 0;
            free(acc_keys);
            free(next);
            acc_keys = malloc(((c1 - c0) * per_tok + 1) * sizeof *acc_keys);
            next = malloc(((c1 - c0) * per_tok + 1) * sizeof *next);
            if (!acc_keys || !next) { moe_fail(err, "out of memory"); goto out; }
            for (uint64_t tok = c0; tok < c1; tok++) {
                uint32_t nk = token_keys(t, tok, level, keys);
                for (uint32_t i = 0; i < nk; i++) acc_keys[n++] = keys[i];
            }
            for (uint32_t k = 0; k < n_keys; k++) nextpos[k] = n + 1 + k;
            for (uint64_t i = n; i-- > 0;) {
                next[i] = nextpos[acc_keys[i]];
                nextpos[acc_keys[i]] = i;
            }
        }
        if (policy == MOE_LRC_FSF) /* p1 = occurrences in the window [i, i+m) */
            for (uint64_t tok = c0; tok < c1 && tok < c0 + m; tok++) {
                uint32_t nk = token_keys(t, tok, level, keys);
                for (uint32_t i = 0; i < nk; i++) c.p1[keys[i]]++;
            }
        for (uint64_t tok = c0; tok < c1; tok++) {
            uint32_t nk = token_keys(t, tok, level, keys);
            /* hits against the cache as it was before this token */
            for (uint32_t i = 0; i < nk; i++) {
                uint32_t x = keys[i];
                if (c.pos[x] >= 0) hits++;
                else if (!seen[x]) {
                    hits += uni < capacity; /* the code's depth-u rule for first accesses (lrc.h) */
                    uni++;
                }
                seen[x] = 1;
            }
            acc += nk;
            /* then the insertions, in slot order */
            for (uint32_t i = 0; i < nk; i++) {
                uint32_t x = keys[i];
                ts++;
                switch (policy) {
                case MOE_LRC_LRU: c.p2[x] = ts; break;
                case MOE_LRC_LFU: c.p1[x]++; c.p2[x] = ts; break;
                case MOE_LRC_BELADY: c.p1[x] = UINT64_MAX - next[a]; break;
                case MOE_LRC_FSF: c.p1[x]--; c.p2[x] = ts; break;
                }
                a++;
                if (c.pos[x] >= 0) pc_fix(&c, x);
                else pc_insert(&c, x);
            }
            if (policy == MOE_LRC_FSF && tok + m < c1) {
                uint32_t nk2 = token_keys(t, tok + m, level, keys2);
                for (uint32_t i = 0; i < nk2; i++) {
                    c.p1[keys2[i]]++;
                    pc_fix(&c, keys2[i]);
                }
            }
        }
    }
    *hits_out = hits;
    *acc_out = acc;
    rc = 0;
out:
    free(chunks);
    free(c.heap);
    free(c.pos);
    free(c.p1);
    free(c.p2);
    free(seen);
    free(keys);
    free(keys2);
    free(acc_keys);
    free(next);
    free(nextpos);
    return rc;
}

/* SRP for one m: S[l][c] = number of (window, expert) pairs of layer l whose
 * count is c, accumulated lazily: H[c] experts currently have count c, and
 * S[c] gains H[c] for every window H[c] stays unchanged. */
static int srp_one(const moe_trace *t, const uint64_t *chunks, uint64_t n_chunks, uint32_t m, uint64_t *S,
                   moe_error *err) {
    const uint32_t L = t->n_layers, E = t->n_experts, K = t->top_k;
    uint32_t *cnt = malloc(E * sizeof *cnt);
    uint64_t *H = malloc((m + 1) * sizeof *H), *lastw = malloc((m + 1) * sizeof *lastw);
    if (!cnt || !H || !lastw) {
        free(cnt); free(H); free(lastw);
        return moe_fail(err, "out of memory");
    }
    for (uint32_t l = 0; l < L; l++) {
        uint64_t *Sl = S + (size_t)l * (m + 1);
        for (uint64_t ci = 0; ci < n_chunks; ci++) {
            uint64_t c0 = chunks[ci], c1 = chunks[ci + 1];
            if (c1 - c0 < m) continue;
            uint64_t W = c1 - c0 - m + 1, w = 0;
            memset(cnt, 0, E * sizeof *cnt);
            memset(H, 0, (m + 1) * sizeof *H);
            memset(lastw, 0, (m + 1) * sizeof *lastw);
            H[0] = E;
#define MOVE(e, d)                                                    \
    do {                                                              \
        uint32_t c_ = cnt[e], n_ = c_ + (d);                          \
        Sl[c_] += H[c_] * (w - lastw[c_]); lastw[c_] = w; H[c_]--;   \
        Sl[n_] += H[n_] * (w - lastw[n_]); lastw[n_] = w; H[n_]++;   \
        cnt[e] = n_;                                                  \
    } while (0)
            for (uint64_t tok = c0; tok < c0 + m; tok++) {
                size_t r = moe_trace_rec(t, tok, l);
                for (uint32_t s = 0; s < K && t->experts[r + s] != MOE_NO_EXPERT; s++) MOVE(t->experts[r + s], 1);
            }
            for (w = 1; w < W; w++) { /* window w = tokens [c0+w, c0+w+m) */
                size_t r = moe_trace_rec(t, c0 + w - 1, l);
                for (uint32_t s = 0; s < K && t->experts[r + s] != MOE_NO_EXPERT; s++) MOVE(t->experts[r + s], -1);
                r = moe_trace_rec(t, c0 + w - 1 + m, l);
                for (uint32_t s = 0; s < K && t->experts[r + s] != MOE_NO_EXPERT; s++) MOVE(t->experts[r + s], 1);
            }
#undef MOVE
            for (uint32_t c = 0; c <= m; c++) Sl[c] += H[c] * (W - lastw[c]);
        }
    }
    free(cnt);
    free(H);
    free(lastw);
    return 0;
}

/* Best F1 over thresholds of a count histogram S[0..m]. */
static void srp_best(const uint64_t *S, uint32_t m, double *f1_out, double *rho_out, uint32_t *thr_out) {
    double acts = 0;
    for (uint32_t c = 0; c <= m; c++) acts += (double)c * (double)S[c];
    double best = -1, best_p = 0, matches = 0, npairs = 0;
    uint32_t best_c = 0;
    /* suffix sums from c = m down to 0; ties keep the smallest c */
    double *f1 = malloc((m + 1) * sizeof *f1), *preds = malloc((m + 1) * sizeof *preds);
    if (!f1 || !preds) { free(f1); free(preds); *f1_out = *rho_out = NAN; *thr_out = 0; return; }
    for (uint32_t c = m + 1; c-- > 0;) {
        matches += (double)c * (double)S[c];
        npairs += (double)S[c];
        preds[c] = (double)m * npairs;
        double den = preds[c] + acts;
        f1[c] = 2 * matches / (den < 1 ? 1 : den);
    }
    for (uint32_t c = 0; c <= m; c++)
        if (f1[c] > best) { best = f1[c]; best_c = c; best_p = preds[c]; }
    free(f1);
    free(preds);
    if (acts == 0) {
        *f1_out = *rho_out = NAN;
        *thr_out = 0;
        return;
    }
    *f1_out = best;
    *rho_out = best_p / acts;
    *thr_out = best_c;
}

int moe_lrc_compute(const moe_trace *t, const moe_lrc_config *cfg, moe_lrc *out, moe_error *err) {
    memset(out, 0, sizeof *out);
    const uint32_t L = t->n_layers, L1 = L + 1;
    for (uint32_t i = 0; i < cfg->n_m; i++)
        if (cfg->m[i] == 0) return moe_fail(err, "m must be >= 1");
    for (uint32_t i = 0; i < cfg->n_rho; i++)
        if (!(cfg->rho[i] > 0) || !isfinite(cfg->rho[i])) return moe_fail(err, "rho must be > 0, got %g", cfg->rho[i]);
    out->n_layers = L;
    out->top_k = t->top_k;
    out->n_m = cfg->n_m;
    out->n_rho = cfg->n_rho;
    out->n_tokens = t->n_tokens;
    out->m = malloc((cfg->n_m + 1) * sizeof *out->m);
    out->rho = malloc((cfg->n_rho + 1) * sizeof *out->rho);
    out->srp = malloc(((size_t)cfg->n_m * L1 + 1) * sizeof *out->srp);
    out->srp_rho = malloc(((size_t)cfg->n_m * L1 + 1) * sizeof *out->srp_rho);
    out->srp_thr = malloc(((size_t)cfg->n_m * L1 + 1) * sizeof *out->srp_thr);
    out->sch = malloc(((size_t)cfg->n_m * cfg->n_rho * L1 + 1) * sizeof *out->sch);
    out->chr = malloc(((size_t)MOE_LRC_N_POLICIES * cfg->n_rho * L1 + 1) * sizeof *out->chr);
    out->cap = malloc(((size_t)cfg->n_rho * L1 + 1) * sizeof *out->cap);
    uint64_t n_chunks = 0, *chunks = make_chunks(t, cfg->seq_len, &n_chunks);
    if (!out->m || !out->rho || !out->srp || !out->srp_rho || !out->srp_thr || !out->sch || !out->chr ||
        !out->cap || !chunks) {
        free(chunks);
        moe_lrc_free(out);
        return moe_fail(err, "out of memory");
    }
    out->n_chunks = n_chunks;
    memcpy(out->m, cfg->m, cfg->n_m * sizeof *out->m);
    memcpy(out->rho, cfg->rho, cfg->n_rho * sizeof *out->rho);
    for (uint32_t r = 0; r < cfg->n_rho; r++)
        for (uint32_t l = 0; l <= L; l++) {
            /* floor, with a little slack so 0.5 * 2 is 1 and not 0.999... */
            double want = cfg->rho[r] * t->top_k * (l < L ? 1 : L);
            double lim = (double)t->n_experts * (l < L ? 1 : L);
            out->cap[r * L1 + l] = (uint32_t)floor((want < lim ? want : lim) + 1e-9);
        }

    /* SRP */
    for (uint32_t i = 0; i < cfg->n_m; i++) {
        uint32_t m = cfg->m[i];
        uint64_t *S = calloc((size_t)L * (m + 1), sizeof *S), *Sm = calloc(m + 1, sizeof *Sm);
        if (!S || !Sm || srp_one(t, chunks, n_chunks, m, S, err)) {
            free(S); free(Sm); free(chunks);
            moe_lrc_free(out);
            return S && Sm ? -1 : moe_fail(err, "out of memory");
        }
        for (uint32_t l = 0; l < L; l++) {
            for (uint32_t c = 0; c <= m; c++) Sm[c] += S[(size_t)l * (m + 1) + c];
            srp_best(S + (size_t)l * (m + 1), m, &out->srp[i * L1 + l], &out->srp_rho[i * L1 + l],
                     &out->srp_thr[i * L1 + l]);
        }
        srp_best(Sm, m, &out->srp[i * L1 + L], &out->srp_rho[i * L1 + L], &out->srp_thr[i * L1 + L]);
        free(S);
        free(Sm);
    }
    free(chunks);

    /* SCH and cache hit rates: one cache run per level, size and policy */
    for (uint32_t r = 0; r < cfg->n_rho; r++)
        for (uint32_t l = 0; l <= L; l++) {
            uint32_t cap = out->cap[r * L1 + l];
            uint64_t h, a;
            for (uint32_t i = 0; i < cfg->n_m; i++) {
                if (moe_lrc_cache_run(t, cfg->seq_len, l, MOE_LRC_FSF, cfg->m[i], cap, &h, &a, err)) goto fail;
                out->sch[((size_t)i * cfg->n_rho + r) * L1 + l] = a ? (double)h / (double)a : NAN;
            }
            for (int p = 0; p < MOE_LRC_N_POLICIES; p++) {
                if (moe_lrc_cache_run(t, cfg->seq_len, l, p, 0, cap, &h, &a, err)) goto fail;
                out->chr[((size_t)p * cfg->n_rho + r) * L1 + l] = a ? (double)h / (double)a : NAN;
            }
        }
    return 0;
fail:
    moe_lrc_free(out);
    return -1;
}
