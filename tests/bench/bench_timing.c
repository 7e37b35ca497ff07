/* bench_timing.c: the cost of the timing model. One in-memory trace (1M
 * steps, 32 layers, 8 experts, top-2, Zipf-like skew, built with moe_tb_*),
 * replayed with LRU at capacity 2 per layer twice: plain, and with the timing
 * model on (rtx-3060, Mixtral-8x7B). Prints
 *   bench timing_lru <accesses/s> accesses/s
 *   bench replay_lru_plain <accesses/s> accesses/s
 *   bench timing_overhead <plain/timing> ratio
 * Best of 3 runs each, interleaved, so both see the same machine state. */
#include <stdio.h>
#include <stdlib.h>

#include "../../sim/replay.h"
#include "../../sim/replay_ext.h"

static uint64_t rng = 88172645463325252ULL;
static uint32_t next(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

int main(void) {
    const uint32_t L = 32, E = 8, K = 2, STEPS = 1000000;
    moe_error err;
    moe_trace_builder *b = moe_tb_new(L, E, K, 1, 0, 0);
    for (uint32_t s = 0; s < STEPS; s++) {
        if (moe_tb_begin_step(b, s, MOE_PHASE_DECODE, &err) || moe_tb_add_token(b, s / 512, s % 512, &err) < 0) {
            fprintf(stderr, "bench_timing: %s\n", err.msg);
            return 1;
        }
        for (uint32_t l = 0; l < L; l++) {
            /* skewed: half the draws from experts 0..2 */
            uint32_t e0 = next() % 2 ? next() % 3 : next() % E, e1;
            do e1 = next() % 2 ? next() % 3 : next() % E; while (e1 == e0);
            moe_tb_set(b, 0, l, 0, e0, 0.6f, &err);
            moe_tb_set(b, 0, l, 1, e1, 0.4f, &err);
        }
    }
    moe_trace *t = moe_tb_finish(b, "Mixtral-8x7B", "bench", NULL, &err);
    if (!t) {
        fprintf(stderr, "bench_timing: %s\n", err.msg);
        return 1;
    }
    moe_replay_config plain = {.policy = "lru", .capacity = 2, .seed = 1};
    moe_replay_config timed = plain;
    timed.device = "rtx-3060";
    timed.model = "Mixtral-8x7B";
    double best_plain = 0, best_timed = 0;
    uint64_t acc = 0;
    for (int rep = 0; rep < 3; rep++) {
        moe_replay_result r;
        if (moe_replay(t, &plain, &r, &err)) { fprintf(stderr, "bench_timing: %s\n", err.msg); return 1; }
        double v = (double)r.accesses / r.seconds;
        if (v > best_plain) best_plain = v;
        acc = r.accesses;
        moe_replay_result_free(&r);
        if (moe_replay(t, &timed, &r, &err)) { fprintf(stderr, "bench_timing: %s\n", err.msg); return 1; }
        v = (double)r.accesses / r.seconds;
        if (v > best_timed) best_timed = v;
        if (r.accesses != acc) { fprintf(stderr, "bench_timing: access counts differ\n"); return 1; }
        moe_replay_result_free(&r);
    }
    printf("bench timing_lru %.0f accesses/s\n", best_timed);
    printf("bench replay_lru_plain %.0f accesses/s\n", best_plain);
    printf("bench timing_overhead %.2f ratio\n", best_plain / best_timed);
    moe_trace_free(t);
    return 0;
}
