/* mrc.c: one-pass LRU miss-ratio curve with group stack distances (see mrc.h). */
#include "mrc.h"

#include <stdlib.h>
#include <string.h>

#include "sort_small.h"

/* ---- stack-distance engine ---------------------------------------------- */

#define SD_NONE UINT32_MAX

int moe_sd_init(moe_sd *s, uint32_t n_keys, moe_error *err) {
    memset(s, 0, sizeof *s);
    s->n_keys = n_keys;
    s->win = 2 * n_keys + 64;
    s->last = calloc(n_keys ? n_keys : 1, sizeof *s->last);
    s->fen = calloc((size_t)s->win + 1, sizeof *s->fen);
    s->who = malloc(((size_t)s->win + 1) * sizeof *s->who);
    if (!s->last || !s->fen || !s->who) {
        moe_sd_free(s);
        return moe_fail(err, "out of memory (stack distances over %u keys)", n_keys);
    }
    moe_sd_reset(s);
    return 0;
}

void moe_sd_free(moe_sd *s) {
    free(s->last);
    free(s->fen);
    free(s->who);
    memset(s, 0, sizeof *s);
}

void moe_sd_reset(moe_sd *s) {
    memset(s->last, 0, (size_t)s->n_keys * sizeof *s->last);
    memset(s->fen, 0, ((size_t)s->win + 1) * sizeof *s->fen);
    for (uint32_t i = 0; i <= s->win; i++) s->who[i] = SD_NONE;
    s->next = 1;
    s->live = 0;
}

static void fen_add(moe_sd *s, uint32_t pos, int32_t d) {
    for (; pos <= s->win; pos += pos & -pos) s->fen[pos] += (uint32_t)d;
}

static uint32_t fen_prefix(const moe_sd *s, uint32_t pos) {
    uint32_t r = 0;
    for (; pos; pos -= pos & -pos) r += s->fen[pos];
    return r;
}

uint32_t moe_sd_query(const moe_sd *s, uint32_t key) {
    uint32_t t = s->last[key];
    if (!t) return MOE_SD_INF;
    return s->live - fen_prefix(s, t);
}

/* Renumber the live timestamps 1..live in order and rebuild the tree. */
static void sd_compact(moe_sd *s) {
    uint32_t n = 0;
    for (uint32_t p = 1; p < s->next; p++) {
        uint32_t k = s->who[p];
        if (k == SD_NONE) continue;
        s->who[p] = SD_NONE;
        s->who[++n] = k; /* n <= p: never overwrites an unread slot */
        s->last[k] = n;
    }
    memset(s->fen, 0, ((size_t)s->win + 1) * sizeof *s->fen);
    /* linear Fenwick build: ones at 1..n; every node passes its sum to its parent */
    for (uint32_t p = 1; p <= s->win; p++) {
        if (p <= n) s->fen[p] += 1;
        uint32_t q = p + (p & -p);
        if (q <= s->win) s->fen[q] += s->fen[p];
    }
    s->next = n + 1;
}

void moe_sd_reserve(moe_sd *s, uint32_t n) {
    if ((uint64_t)s->next + n > (uint64_t)s->win + 1) sd_compact(s);
}

void moe_sd_touch(moe_sd *s, uint32_t key) {
    if ((uint64_t)s->next > s->win) sd_compact(s);
    uint32_t t = s->last[key];
    if (t) {
        fen_add(s, t, -1);
        s->who[t] = SD_NONE;
        s->live--;
    }
    t = s->next++;
    s->last[key] = t;
    s->who[t] = key;
    fen_add(s, t, 1);
    s->live++;
}

/* ---- the curve ----------------------------------------------------------- */

void moe_mrc_free(moe_mrc *m) {
    free(m->hits);
    free(m->layer_dist);
    free(m->layer_cold);
    memset(m, 0, sizeof *m);
}

/* Sorted union of the experts step s uses at layer l (as the replay does).
 * stamp[e] == *cur marks e as taken, so nothing is cleared between groups. */
static uint32_t group_set(const moe_trace *t, uint64_t s, uint32_t l, uint32_t *stamp, uint32_t *cur,
                          uint16_t *set) {
    if (++*cur == 0) {
        memset(stamp, 0, t->n_experts * sizeof *stamp);
        *cur = 1;
    }
    uint32_t n = 0;
    for (uint64_t tok = t->step_first_token[s]; tok < t->step_first_token[s + 1]; tok++) {
        size_t r = moe_trace_rec(t, tok, l);
        for (uint32_t k = 0; k < t->top_k; k++) {
            uint16_t e = t->experts[r + k];
            if (e == MOE_NO_EXPERT) break;
            if (stamp[e] != *cur) {
                stamp[e] = *cur;
                set[n++] = e;
            }
        }
    }
    if (n <= 32) {
        moe_sort_u16(set, n);
    } else {
        uint32_t m = 0;
        for (uint32_t e = 0; e < t->n_experts; e++)
            if (stamp[e] == *cur) set[m++] = (uint16_t)e;
    }
    return n;
}

int moe_mrc_compute(const moe_trace *t, int scope, int cold_per_seq, moe_mrc *out, moe_error *err) {
    return moe_mrc_compute_progress(t, scope, cold_per_seq, NULL, NULL, out, err);
}

int moe_mrc_compute_progress(const moe_trace *t, int scope, int cold_per_seq,
                             void (*progress)(void *ctx, uint64_t done, uint64_t total), void *ctx, moe_mrc *out,
                             moe_error *err) {
    memset(out, 0, sizeof *out);
    const uint32_t L = t->n_layers, E = t->n_experts;
    const int global = scope == 1;
    const uint32_t n_stacks = global ? 1 : L, n_keys = global ? L * E : E;
    out->scope = global;
    out->cold_per_seq = cold_per_seq;
    out->n_layers = L;
    out->max_capacity = n_keys;
    int rc = -1;
    moe_sd *sd = calloc(n_stacks, sizeof *sd);
    uint32_t *stamp = calloc(E, sizeof *stamp), cur = 0;
    uint16_t *set = malloc(E * sizeof *set);
    uint32_t *dist = malloc(E * sizeof *dist);
    out->hits = calloc((size_t)n_keys + 1, sizeof *out->hits);
    out->layer_dist = calloc((size_t)L * n_keys, sizeof *out->layer_dist);
    out->layer_cold = calloc(L, sizeof *out->layer_cold);
    if (!sd || !stamp || !set || !dist || !out->hits || !out->layer_dist || !out->layer_cold) {
        moe_fail(err, "out of memory");
        goto done;
    }
    for (uint32_t i = 0; i < n_stacks; i++)
        if (moe_sd_init(&sd[i], n_keys, err)) goto done;

    for (uint64_t s = 0; s < t->n_steps; s++) {
        if (progress && (s & 4095) == 0) progress(ctx, s, t->n_steps);
        if (cold_per_seq && s > 0 &&
            t->token_seq[t->step_first_token[s]] != t->token_seq[t->step_first_token[s - 1]])
            for (uint32_t i = 0; i < n_stacks; i++) moe_sd_reset(&sd[i]);
        for (uint32_t l = 0; l < L; l++) {
            uint32_t m = group_set(t, s, l, stamp, &cur, set);
            moe_sd *st = &sd[global ? 0 : l];
            uint32_t base = global ? l * E : 0;
            if (m > out->exact_from) out->exact_from = m;
            /* all distances at the start of the group, then the updates */
            for (uint32_t i = 0; i < m; i++) dist[i] = moe_sd_query(st, base + set[i]);
            moe_sd_reserve(st, m);
            for (uint32_t i = 0; i < m; i++) moe_sd_touch(st, base + set[i]);
            for (uint32_t i = 0; i < m; i++) {
                if (dist[i] == MOE_SD_INF) out->layer_cold[l]++;
                else out->layer_dist[(size_t)l * n_keys + dist[i]]++;
            }
            out->accesses += m;
        }
    }
    /* hits(c) = accesses with distance < c, summed over layers */
    uint64_t run = 0;
    for (uint32_t c = 0; c <= n_keys; c++) {
        out->hits[c] = run;
        if (c < n_keys)
            for (uint32_t l = 0; l < L; l++) run += out->layer_dist[(size_t)l * n_keys + c];
    }
    for (uint32_t l = 0; l < L; l++) out->compulsory += out->layer_cold[l];
    rc = 0;
done:
    if (sd)
        for (uint32_t i = 0; i < n_stacks; i++) moe_sd_free(&sd[i]);
    free(sd);
    free(stamp);
    free(set);
    free(dist);
    if (rc) moe_mrc_free(out);
    return rc;
}
