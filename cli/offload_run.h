/* offload_run.h: one offloaded generation (backend/offload.h) from the
 * command line's point of view, shared by `moesim infer --offload` and
 * `moesim validate`: run the prompt and the decode loop step by step, capture
 * the routing trace, and turn what was measured into a moe_replay_result
 * with the keys and units `moesim run` reports, so a measured run and a
 * predicted one are stored and printed alike. */
#ifndef MOE_OFFLOAD_RUN_H
#define MOE_OFFLOAD_RUN_H

#include <stdint.h>
#include <stdio.h>

#include "../backend/offload.h"
#include "../sim/replay.h"

typedef struct moe_offload_job {
    const moe_model *model;        /* loaded with or without experts */
    const int *prompt;
    int n_prompt;
    uint64_t max_tokens;
    int threads;
    float temperature, top_p;      /* 0 = greedy */
    uint64_t sample_seed;
    int prefill_chunk;             /* tokens per prefill step, 1..MOE_ENGINE_MAX_STEP */
    int capture_lookahead;         /* D of the captured trace */
    moe_offload_config oc;         /* max_steps / max_tokens are filled by the run */
    const char *save_state;        /* write the final cache state here */
    /* called with each generated token as it comes (printing it), or NULL */
    void (*on_token)(void *ctx, int tok);
    void *on_token_ctx;
    /* --route-from: execute this trace's steps (token counts, phases,
     * sequences, experts, weights, lookahead) instead of prompt + decode;
     * prompt and max_tokens are unused. route_steps: its first N steps (0 = all). */
    const moe_trace *route_from;
    uint64_t route_steps;
} moe_offload_job;

/* Whether trace t can drive model m (--route-from): same experts and
 * top-k, the model's MoE layers equal to the trace's, steps of at most
 * MOE_ENGINE_MAX_STEP tokens, every slot filled, expert ids in range, a
 * routing trace (not keys). The error names the file and what differs. */
int moe_route_from_check(const moe_trace *t, const char *path, const moe_model *m, uint64_t steps, moe_error *err);
/* Load and check the --route-from trace (NULL on error). truncate: a trace
 * of more layers than the model is cut to its first layers (lookahead past
 * the model's last layer becomes "none"). */
moe_trace *moe_route_from_open(const char *path, const moe_model *m, uint64_t steps, int truncate, moe_error *err);

typedef struct moe_offload_out {
    moe_trace *trace;              /* captured */
    int *generated;
    uint64_t n_generated;
    moe_engine_times times;        /* dense / expert / head / source wall time */
    double wall_s;                 /* whole loop */
    moe_offload *off;              /* owns the stats until moe_offload_out_free */
    const moe_offload_stats *stats;
} moe_offload_out;

int moe_offload_generate(const moe_offload_job *job, moe_offload_out *out, moe_error *err);
void moe_offload_out_free(moe_offload_out *out);

/* The measured run as a replay result (accesses, hits, ..., ext timing
 * fields with the simulator's definitions: TTFT from the first step's start
 * to the last prefill step's end, summed step durations; TPOT over decode
 * steps; tok/s = decode tokens / decode time). */
int moe_offload_result(const moe_offload_out *out, const char *policy, const char *prefetcher,
                       moe_replay_result *res, moe_error *err);

/* Memory of the run: peak RSS of this process (getrusage) against what the
 * run needs by design: the dense weights (bf16: 2 bytes a parameter;
 * --stream-dense: less the layers' blocks), the cache (capacity x block),
 * one layer's scratch slots (experts read but not cached: E blocks) and
 * with --stream-dense its B layer buffers. */
typedef struct moe_offload_memory {
    uint64_t peak_rss, dense, cache, scratch, dense_buffers;
} moe_offload_memory;
moe_offload_memory moe_offload_memory_of(const moe_model *m, const moe_offload_config *oc, const moe_offload_stats *st);
void moe_offload_print_memory(FILE *f, const char *cmd, const moe_offload_memory *mem);

/* Per-step figures as CSV (written atomically): step, phase, tokens,
 * seconds (the forward call), accesses, hits, and with `predicted` (the
 * simulator's step durations, `validate`) a predicted_seconds column. */
int moe_offload_write_steps(const char *path, const moe_offload_stats *st, const double *predicted, moe_error *err);

/* One line on f: what the cache did and what was read ("moesim CMD:
 * offloaded, lru, capacity 8 per layer, io direct x1: N accesses, ..."). */
void moe_offload_print_cache(FILE *f, const char *cmd, const char *policy, const moe_offload_config *oc,
                             const moe_offload_stats *st);

#endif
