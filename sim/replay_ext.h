/* replay_ext.h: the replay's extended results and semantics: prefetch,
 * speculative execution, skipping, mixed precision, byte capacities,
 * streamed dense weights and the timing model (run by the general loop,
 * sim/replay_engine.c).
 *
 * Semantics (README "Timing model"). Everything the plain replay states
 * (replay.h) holds, with these additions, per step and layer l in order:
 *
 *  1. the compute lane runs attention + router of layer l for the step's T
 *     tokens (device roofline over dense_params, or the model's attn_us);
 *  2. the router's set is known. Per token, slots are dropped by adaptive
 *     top-k (weight < topk_frac x the token's top-1), by HOBBIT (cumulative
 *     weight of earlier slots >= lo) and by skip-on-miss (a slot after the
 *     first whose earlier slots' normalised weight is >= cum, whose expert is
 *     not resident). An expert is served iff some token kept it; the gate
 *     weight of dropped slots is the skipped mass (weights normalised per
 *     token and layer);
 *  3. the kept set is served in ascending id exactly as in the plain replay
 *     (hits counted against the state before this (step, layer)); each miss
 *     queues a demand read of the expert's bytes at its precision, issued now;
 *  4. the prefetcher observes the router's full set and may predict a later
 *     layer's set; predicted experts not resident are inserted into that
 *     layer's cache at once (same eviction rule; the predicted keys protect
 *     each other, and in global scope layer l's set stays protected) and a
 *     prefetch read is queued behind the demand reads;
 *  5. the layer's experts run on the lane in order of data arrival (ties by
 *     id); an expert whose data is not there yet stalls the lane (a miss
 *     stall, or a late-prefetch stall when its data comes from a prefetch).
 *     With --speculate, before stalling, the lane runs experts predicted for
 *     layer l+1 that are resident and arrived (ascending id, each over all T
 *     tokens, non-preemptive); at layer l+1 a speculated expert that the
 *     router chose is not run again (latency hidden), one it did not choose
 *     was wasted compute;
 *  6. after the last layer the LM head runs (head_params).
 * A step's duration is the lane time from its start to the end of its head.
 * TTFT of a sequence: from the start of its first step to the end of its
 * last prefill step (or of its first step if it has none); TPOT: duration of
 * each decode step; tok/s = decode tokens / time of decode steps (all tokens
 * / total time when the trace has no decode steps).
 * Without --device no time is counted (all times 0) but prefetch, skip and
 * precision metrics are still produced. */
#ifndef MOE_REPLAY_EXT_H
#define MOE_REPLAY_EXT_H

#include <stddef.h>
#include <stdint.h>

#include "../core/trace.h"
#include "replay.h"

/* With --stream-dense, each layer l (of any step) first waits for its dense
 * block and, right after step 3's demand reads, queues the blocks ahead
 * (sim/dense_stream.h, the backend's controller). */
struct moe_replay_ext {
    int timing, prefetch, speculate, skip, precision, byte_capacity; /* which parts ran */
    char device[1024], model[512], prefetcher[256], scheme[512], skip_spec[128];
    int profile_oracle;       /* precision tiers came from the replayed trace */

    /* timing (seconds) */
    double total_s, compute_s, dense_s, expert_s, spec_compute_s;
    double stall_s, stall_miss_s, stall_late_s;
    double ttft_mean_s;
    uint64_t n_seqs;
    double tpot_mean_s, tpot_p50_s, tpot_p99_s;
    uint64_t decode_steps, decode_tokens, tokens;
    double tok_s, io_util;
    double *step_s;           /* with timing: each step's duration (n_steps), else NULL */
    uint64_t bytes_read, bytes_demand, bytes_prefetch, reads_demand, reads_prefetch;
    /* --stream-dense (dense_stream.h): budget B (0 = off), one block's bytes,
     * the dense reads (not in bytes_read, which counts experts) and the time
     * the lane waited for them (not in stall_s) */
    uint32_t stream_dense;
    uint64_t dense_bytes, bytes_dense, reads_dense;
    double stall_dense_s;

    /* prefetch. Denominators: precision = correct / predicted; recall =
     * correct / activations (router's unique set) of the (step, layer)s that
     * had a prediction; recall_k (Eliseev's) = correct token slots / token
     * slots (tokens x active k) at those layers. */
    uint64_t pf_predictions;  /* (step, layer) pairs predicted for */
    uint64_t pf_predicted, pf_correct, pf_actual;
    uint64_t pf_slots, pf_slot_correct;
    double pf_precision, pf_recall, pf_recall_k;
    uint64_t pf_issued;       /* reads issued (predicted and not resident) */
    uint64_t pf_bypassed;     /* predicted, not resident, could not be cached */
    uint64_t pf_useful;       /* issued and then hit before eviction */
    uint64_t pf_late;         /* useful but the data arrived after it was needed */
    uint64_t pf_evicted_unused; /* evicted before any use */
    uint64_t pf_unused_end;   /* still unused at a cold restart or the end */
    uint64_t collision_misses; /* misses on a key whose prefetch was evicted unused (SpecMD) */
    uint64_t pf_wasted_bytes; /* bytes of prefetches never used */

    /* speculation */
    uint64_t spec_executed, spec_hits, spec_wasted;
    double spec_hidden_s, spec_wasted_s;

    /* skipping (skip and hobbit) */
    uint64_t skipped_slots, skipped_activations;
    uint64_t substituted_slots; /* --on-miss substitute: slots run on a resident stand-in */
    int lowbit;                                /* --on-miss lowbit */
    uint64_t lowbit_slots, lowbit_activations; /* slots (and experts per layer) run on low copies */
    double skipped_mass, total_mass, skipped_mass_frac;

    /* precision */
    double eff_bits_active;   /* mean bits of the experts computed (unique activations) */
    double eff_bits_model;    /* mean bits over all experts (static schemes; 0 for hobbit) */
    uint64_t tier_experts[MOE_PREC_COUNT];     /* experts assigned to the tier (static) */
    uint64_t tier_model_bytes[MOE_PREC_COUNT]; /* their bytes */
    uint64_t tier_activations[MOE_PREC_COUNT]; /* activations computed at the tier */
    uint64_t tier_bytes_read[MOE_PREC_COUNT];
    uint64_t expert_bytes[MOE_PREC_COUNT];     /* bytes per expert per tier used */
    uint64_t capacity_bytes;  /* effective byte budget in all (byte capacity) */
};

#endif

/* "--skip" values: "cum=X,topk_frac=Y" (either may be left out, default 0 =
 * off). canonical receives "cum=X,topk_frac=Y". */
int moe_skip_parse(const char *spec, double *cum, double *topk_frac, char *canonical, size_t cap,
                   moe_error *err);
