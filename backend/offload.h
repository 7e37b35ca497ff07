/* offload.h: offloaded execution. Dense weights stay in RAM; routed experts
 * are read on demand from an expert pack (backend/pack.h) into a bounded
 * expert cache, which *is* core/cache.c driven by the core/policies ops.
 *
 * Semantics: exactly the replay's (sim/replay.h, sim/replay_ext.h), asked in
 * the same order, so a demand-only run's hits, misses, bypasses and bytes
 * equal the replay of its captured trace:
 *  - one step = one forward call (at most MOE_ENGINE_MAX_STEP tokens);
 *  - at (step, MoE layer l) the needed set is the union of the step's
 *    tokens' experts, served in ascending id after protecting all of it: a
 *    hit touches the expert, a miss inserts it (a victim outside the set is
 *    evicted) and queues a demand read; when every resident expert is
 *    protected the expert is not cached and is read into a scratch slot;
 *  - then the prefetcher observes the router's set and may predict a later
 *    layer's set of the same step, computed from the real hidden state (gate
 *    lookahead = layer l+d's router on layer l's MoE input, as capture does);
 *    predicted experts not resident are inserted at once and their reads
 *    queued behind the demand reads;
 *  - the layer's experts are computed in the order their data arrives
 *    (resident ones first, ascending id; then in read-queue order); waiting
 *    for a demand read is a miss stall, for a prefetch a late-prefetch stall.
 * Reads run on `io_threads` threads serving one FIFO queue (the timing
 * model's I/O channels); each read is pread + checksum (bf16 and quantized blocks are
 * computed on as read, an f32 block is copied out).
 *
 * What is measured (wall clock): per step the forward call's duration; the
 * engine's dense / expert / head time (backend/engine.h); stalls by kind;
 * each I/O thread's busy time.
 *
 * --stream-dense B (model loaded with MOE_LOAD_NO_DENSE): each decoder
 * layer's dense weights are read from the dense pack into one of B layer
 * buffers, on the same queue and threads as the expert reads. Uses are
 * numbered u = step * layers + layer; use u lives in buffer u mod B. The
 * controller, deterministic so the simulator can replay it exactly:
 *  - at MoE layer u, right after its demand reads are queued (and before
 *    any prefetch), the blocks of uses u+1 .. u+B-1 not yet queued are
 *    queued: so they wait behind that layer's demand reads, never in front
 *    of them, and in steady state one dense read is issued per layer (the
 *    buffer of use u+B-1 held use u-1, finished). Uses cross step bounds,
 *    so the last B-1 reads of a run are read and never used;
 *  - at the start of layer u (before its first norm) its block is waited
 *    for (a dense stall), queued first if it is not yet (the first use; B = 1).
 * B = 1 reads every layer just before it runs; B = 2 overlaps layer u+1's
 * read with layer u's experts.
 *
 * --on-miss skip / substitute / lowbit: core/on_miss.h's rule; a missing
 * expert is dropped, replaced or run from its low copy, read nothing and
 * is not inserted (a low copy: every expert of the lowest-bit pack, held in
 * memory from the start; the packs left serve the reads). */
#ifndef MOE_BACKEND_OFFLOAD_H
#define MOE_BACKEND_OFFLOAD_H

#include <stdint.h>

#include "../core/error.h"
#include "engine.h"
#include "model.h"
#include "pack.h"

typedef struct moe_offload_config {
    const char *pack;          /* expert pack path, or several separated by commas (one dtype each) */
    const char *precision;     /* static precision plan (core/precision.h): each expert is read from
                                  the pack of its tier; NULL = the one pack holds every expert */
    int io_mode;               /* enum moe_io_mode */
    uint32_t io_threads;       /* I/O channels, >= 1 */
    const char *policy;        /* eviction policy spec */
    uint32_t capacity;         /* experts per layer (per-layer scope) or in all (global) */
    int global;                /* 0 = per-layer scope, 1 = global */
    int cold_per_seq;
    uint64_t seed;
    const char *split;         /* per-layer split spec, NULL = uniform */
    const char *prefetch;      /* prefetcher spec, NULL = none */
    const char *prefetch_log;  /* write every prediction here (NULL = don't) */
    const char *load_state;    /* pre-read these experts before the first step (NULL = cold) */
    int on_miss;               /* enum moe_on_miss (core/on_miss.h): wait, skip, substitute, lowbit[:bits=B];
                                  lowbit: the quantized pack of B bits (or the fewest) among `pack` is
                                  read whole into memory at start, and a miss runs its copy */
    double skip_cum, skip_frac; /* --skip (core/on_miss.h's slot rule), 0 = off */
    uint32_t stream_dense;     /* --stream-dense: layer buffers B >= 1 of the dense stream (below); 0 = off */
    const char *dense_pack;    /* its dense pack (backend/dense_pack.h) */
    uint32_t max_steps, max_tokens; /* bounds of the run (live trace arrays) */
} moe_offload_config;

/* What an offloaded run measured: the replay's counters, and wall times. */
typedef struct moe_offload_stats {
    uint32_t n_layers;
    uint64_t accesses, hits, compulsory, bypasses, evictions, restarts;
    uint64_t token_slots, token_slot_hits;
    /* --on-miss skip / substitute (replay_ext.h's definitions) */
    uint64_t skipped_slots, skipped_activations, substituted_slots;
    uint64_t lowbit_slots, lowbit_activations; /* --on-miss lowbit */
    int lowbit_bits;           /* the low copies' bits (0 = no low copies) */
    uint64_t lowbit_bytes;     /* memory the low copies hold */
    double lowbit_load_s;      /* reading them, before the first step */
    uint64_t *layer_accesses, *layer_hits; /* n_layers */
    uint64_t *step_accesses, *step_hits;   /* per step */
    /* I/O */
    uint64_t reads_demand, reads_prefetch, bytes_demand, bytes_prefetch;
    double io_busy_s;          /* summed over threads */
    uint32_t io_threads;
    /* prefetch (same definitions as sim/replay_ext.h) */
    uint64_t pf_predictions, pf_predicted, pf_correct, pf_actual, pf_slots, pf_slot_correct;
    uint64_t pf_issued, pf_bypassed, pf_useful, pf_late, pf_evicted_unused, pf_unused_end;
    uint64_t collision_misses, pf_wasted_bytes;
    /* time */
    uint64_t n_steps;
    double *step_s;            /* duration of each step (forward call) */
    uint8_t *step_phase;       /* enum moe_phase */
    uint32_t *step_seq, *step_tokens;
    double stall_miss_s, stall_late_s, slot_wait_s;
    double state_load_s;       /* pre-reading a loaded state (before the first step) */
    uint64_t state_loaded;     /* experts pre-read */
    uint64_t expert_bytes;     /* bytes of one expert read */
    /* --stream-dense */
    uint32_t dense_budget;     /* layer buffers B (0 = dense weights resident) */
    uint64_t dense_block_bytes; /* payload of one layer's block */
    uint64_t dense_stride;     /* its size in memory and on disk (4096-aligned) */
    uint64_t reads_dense, bytes_dense;
    double stall_dense_s;      /* waiting for a layer's block */
} moe_offload_stats;

typedef struct moe_offload moe_offload;


/* m: the model (its experts need not be loaded). Opens the pack (checking it
 * belongs to m), creates the caches, the prefetcher and the I/O threads. */
moe_offload *moe_offload_new(const moe_model *m, const moe_offload_config *cfg, moe_error *err);
/* Stops the I/O threads; frees everything. */
void moe_offload_free(moe_offload *o);
/* The expert source to attach to an engine (moe_engine_set_expert_source). */
moe_expert_source *moe_offload_source(moe_offload *o);
/* Canonical policy name (with effective parameters) and prefetcher name ("" if none). */
const char *moe_offload_policy(const moe_offload *o);
const char *moe_offload_prefetcher(const moe_offload *o);
/* --on-miss as run: lowbit with the bits of the low copies its packs gave. */
int moe_offload_on_miss(const moe_offload *o);
/* The pack's dtype (enum moe_pack_dtype): quantized packs run quantized. */
uint32_t moe_offload_pack_dtype(const moe_offload *o);

/* Bracket every forward call: step_begin before (sequence id, phase, the
 * position of its first token, its token count), step_end after. A new
 * sequence id restarts the caches when cold_per_seq is set. */
int moe_offload_step_begin(moe_offload *o, uint32_t seq, int phase, uint32_t pos0, uint32_t T, moe_error *err);
int moe_offload_step_end(moe_offload *o, moe_error *err);

/* Wait for every read in flight, close the prefetch log and hand out the
 * statistics (owned by o until moe_offload_free). */
int moe_offload_finish(moe_offload *o, const moe_offload_stats **stats, moe_error *err);

/* Save the resident experts, least recently used first, as text
 * ("# moesim cache state v1", then "layer expert" lines): `--save-state`. */
int moe_offload_save_state(const moe_offload *o, const char *path, moe_error *err);

/* Calibration: demand reads issued in bursts through the real queue and
 * I/O thread, as a decode step's misses are. In each of `rounds` rounds,
 * for each burst size sizes[z] in turn: bursts[z] bursts of that many reads
 * issued at once, waited for in order, each followed by a sleep of gap_s.
 * Every read is of the next expert of one scattered order (no read follows
 * its neighbour on disk, none repeats until the order wraps), and every
 * expert the rounds will read is read once, untimed, first (offload.c says
 * why). out[z]: medians over the rounds of each round's medians over its
 * bursts of wall_s (first issue to last data), busy_s (the I/O thread's own
 * work: preads, checksums, conversions; the device as the backend sees it)
 * and beyond_s (wall less busy: what thread wake-ups and hand-offs add,
 * free of the device's noise). The sizes take turns so that a drift of the
 * host over the seconds the probe takes reaches every size alike. */
typedef struct moe_probe_point {
    double wall_s, busy_s, beyond_s;
} moe_probe_point;
int moe_offload_probe_reads(const moe_model *m, const char *pack, int io_mode, const uint32_t *sizes,
                            const uint32_t *bursts, int n_sizes, uint32_t rounds, double gap_s, moe_probe_point *out,
                            moe_error *err);

#endif
