/* bench_replay.c: replay throughput on a generated 1M-step, 32-layer,
 * 64-expert, top-2 trace (Zipf-like popularity per layer, own seeded
 * splitmix64), per-layer scope, capacity 16, for lru and belady, against a
 * baseline loop that only reads every expert id of the trace. Prints
 * "bench <name> <value> <unit>" lines. Timings are wall time of the whole
 * moe_replay call (belady's next-use precomputation included). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../core/trace.h"
#include "../../sim/replay.h"
#include "bench.h"

#define STEPS 1000000u
#define LAYERS 32u
#define EXPERTS 64u
#define TOPK 2u

static moe_trace *build(void) {
    moe_error err;
    uint64_t rs = 20240601;
    /* per layer: a random permutation of experts ranked by Zipf(0.9) weight */
    static double cdf[EXPERTS];
    static uint16_t perm[LAYERS][EXPERTS];
    double sum = 0;
    for (uint32_t r = 0; r < EXPERTS; r++) cdf[r] = (sum += 1.0 / pow(r + 1.0, 0.9));
    for (uint32_t r = 0; r < EXPERTS; r++) cdf[r] /= sum;
    for (uint32_t l = 0; l < LAYERS; l++) {
        for (uint32_t e = 0; e < EXPERTS; e++) perm[l][e] = (uint16_t)e;
        for (uint32_t e = EXPERTS - 1; e > 0; e--) {
            uint32_t j = (uint32_t)(sm64(&rs) % (e + 1));
            uint16_t x = perm[l][e];
            perm[l][e] = perm[l][j];
            perm[l][j] = x;
        }
    }
    moe_trace_builder *b = moe_tb_new(LAYERS, EXPERTS, TOPK, 0, 0, 0);
    for (uint32_t s = 0; s < STEPS; s++) {
        if (moe_tb_begin_step(b, s, MOE_PHASE_DECODE, &err) || moe_tb_add_token(b, s / 512, s % 512, &err) < 0)
            goto bad;
        for (uint32_t l = 0; l < LAYERS; l++) {
            uint32_t prev = UINT32_MAX;
            for (uint32_t k = 0; k < TOPK; k++) {
                uint32_t r;
                do {
                    double u = (double)(sm64(&rs) >> 11) * 0x1p-53;
                    r = 0;
                    while (r + 1 < EXPERTS && cdf[r] < u) r++;
                } while (r == prev);
                prev = r;
                if (moe_tb_set(b, 0, l, k, perm[l][r], NAN, &err)) goto bad;
            }
        }
    }
    moe_trace *t = moe_tb_finish(b, "bench", "bench_replay", NULL, &err);
    if (!t) fprintf(stderr, "bench_replay: %s\n", err.msg);
    return t;
bad:
    fprintf(stderr, "bench_replay: %s\n", err.msg);
    moe_tb_abort(b);
    return NULL;
}

static double replay_rate(const moe_trace *t, const char *policy, uint64_t *accesses, double *loop_rate) {
    moe_replay_config cfg = {.policy = policy, .capacity = 16, .scope = MOE_SCOPE_PER_LAYER, .seed = 1};
    moe_replay_result r;
    moe_error err;
    double t0 = now();
    if (moe_replay(t, &cfg, &r, &err)) {
        fprintf(stderr, "bench_replay: %s: %s\n", policy, err.msg);
        return -1;
    }
    double dt = now() - t0;
    *accesses = r.accesses;
    *loop_rate = (double)r.accesses / r.seconds; /* the serving loop only */
    moe_replay_result_free(&r);
    return (double)*accesses / dt;
}

int main(void) {
    moe_trace *t = build();
    if (!t) return 1;
    /* baseline: read every expert id once (what any replay must at least do) */
    size_t n = (size_t)t->n_tokens * LAYERS * TOPK;
    volatile uint64_t sink = 0;
    double best_base = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now();
        uint64_t acc = 0;
        for (size_t i = 0; i < n; i++) acc += t->experts[i];
        sink += acc;
        double rate = (double)n / (now() - t0);
        if (rate > best_base) best_base = rate;
    }
    (void)sink;
    uint64_t acc_lru = 0, acc_bel = 0;
    double lru_loop, bel_loop;
    double lru = replay_rate(t, "lru", &acc_lru, &lru_loop);
    double bel = replay_rate(t, "belady", &acc_bel, &bel_loop);
    if (lru < 0 || bel < 0) return 1;
    printf("bench replay_baseline %.4g accesses/s\n", best_base);
    printf("bench replay_lru %.4g accesses/s\n", lru);
    printf("bench replay_belady %.4g accesses/s\n", bel);
    printf("bench replay_lru_loop_only %.4g accesses/s\n", lru_loop);
    printf("bench replay_belady_loop_only %.4g accesses/s\n", bel_loop);
    printf("bench replay_lru_vs_baseline %.4g ratio\n", lru / best_base);
    printf("bench replay_belady_vs_baseline %.4g ratio\n", bel / best_base);
    moe_trace_free(t);
    return 0;
}
