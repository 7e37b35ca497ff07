/* replay.h: the replay engine. Semantics (README "Replay semantics"):
 *
 *  - steps in order, and within a step layers in ascending order;
 *  - at (step, layer) the needed set is the union of the experts chosen by the
 *    step's tokens; each is counted once (a unique (step, layer, expert)
 *    activation), as a hit iff it was resident before this (step, layer);
 *  - the set is served in ascending expert id: a hit touches the expert, a
 *    miss inserts it, evicting a resident expert outside the set; if every
 *    resident expert is in the set, the new one is not cached (still a miss);
 *  - per-layer scope: one cache of `capacity` experts per layer; global scope:
 *    one cache of `capacity` (layer, expert) keys;
 *  - cold_per_seq: every cache restarts empty when the sequence id of a
 *    step's first token differs from the previous step's;
 *  - a compulsory miss is a miss of a key not accessed since its cache was
 *    last empty;
 *  - count_from N: every step is served, but only tokens at position >= N
 *    of their sequence are counted (an activation iff a counted token chose
 *    it): a warm-up that is not part of the result. */
#ifndef MOE_REPLAY_H
#define MOE_REPLAY_H

#include <stdint.h>

#include "../core/error.h"
#include "../core/trace.h"

enum moe_scope { MOE_SCOPE_PER_LAYER = 0, MOE_SCOPE_GLOBAL = 1 };

typedef struct moe_replay_config {
    const char *policy;     /* "name" or "name:k=v,..." */
    uint32_t capacity;      /* experts per layer (per-layer) or in all (global) */
    int scope;              /* enum moe_scope */
    int cold_per_seq;
    uint64_t seed;
    uint32_t curve_windows; /* number of warm-up curve windows (0 = 100) */
    /* > 0: count only tokens at position >= count_from of their sequence
     * (trace.h: token_pos). Every step is still served, so the caches warm
     * up; the hit and miss counts below (accesses, hits, compulsory misses,
     * bypasses, evictions, token slots, per layer, warm-up curve) leave out
     * what came before. A (step, layer, expert) activation counts iff a
     * counted token chose it; restarts, timing, prefetch, skip and precision
     * figures cover the whole replay. 0 = count everything. */
    uint64_t count_from;
    /* Issue 4 extensions (sim/replay_ext.h, run by sim/replay_engine.c).
     * All zero / NULL = the plain replay above, bit for bit. Strings are borrowed, not copied: they must
     * outlive the config (sim/replay_opts.h sets them from option values). */
    const char *prefetch;   /* prefetcher spec ("gate:ahead=1,n=2"), NULL = none */
    int speculate;          /* run predicted experts in I/O stalls (needs prefetch ahead=1) */
    const char *skip;       /* "cum=0.9,topk_frac=0.3" (either or both), NULL = off */
    int on_miss;            /* enum moe_on_miss (core/on_miss.h): wait (0), skip, substitute */
    const char *precision;  /* precision scheme spec, NULL = every expert at f16 */
    const char *device;     /* device profile name: turns the timing model on */
    const char *model;      /* model profile spec "name[:dense_bits=4,...]", NULL = trace header */
    const char *devices_path, *models_path; /* NULL = experiments/devices.ini, models.ini */
    /* A device profile held in memory (`validate --recalibrate` measures one
     * before each run): used instead of loading `device` from devices_path;
     * `device` must still be set, it turns the timing model on. */
    const struct moe_device_profile *device_profile;
    uint64_t capacity_bytes; /* > 0: byte capacity in all (split evenly per layer in per-layer scope) */
    double capacity_frac;   /* > 0: byte capacity = this fraction of all experts' bytes */
    /* Per-layer capacity split (core/split.h): "uniform" (= NULL, the plain
     * per-layer capacity), "adapmoe[:profile=oracle|PATH]",
     * "fate[:shallow=S]". Per-layer scope only; budget = capacity x layers. */
    const char *split;
    /* Cache state (core/cache_state.h): load_state inserts the saved experts
     * into the empty caches before the first step (general loop);
     * save_state writes the resident experts at the end. */
    const char *load_state, *save_state;
    /* Dense weights streamed too (sim/dense_stream.h, the backend's
     * --stream-dense): layer buffers B >= 1, 0 = the dense weights are
     * resident. dense_bytes: one layer's block; 0 = from the model profile
     * (dense_params less the router's experts x hidden, at dense_bits). */
    uint32_t stream_dense;
    uint64_t dense_bytes;
    /* Extra "key=value" lines (newline-separated) for the run's config text,
     * e.g. a validation's kind and id; they change the identity, not the replay. */
    const char *extra_config;
} moe_replay_config;

typedef struct moe_replay_ext moe_replay_ext; /* sim/replay_ext.h */

/* Steps after a sequence start that the recovery curve covers: enough for a
 * cache of a few times top_k to refill (the synthetic traces' sequences are
 * 220+ steps; the curve is for the first minutes of each, not the whole). */
#define MOE_SINCE_START_STEPS 64

typedef struct moe_replay_result {
    char policy[256];       /* canonical policy name */
    uint64_t accesses;      /* unique (step, layer, expert) activations */
    uint64_t hits;
    uint64_t compulsory_misses;
    uint64_t bypasses;      /* misses not cached because the whole cache was protected */
    uint64_t evictions;
    uint64_t restarts;      /* cold restarts (cold_per_seq) */
    uint64_t token_slots;   /* per-token-slot accounting: every (token, layer, slot) */
    uint64_t token_slot_hits;
    uint32_t n_layers;
    uint64_t *layer_accesses, *layer_hits; /* n_layers each */
    uint32_t n_windows;     /* warm-up curve: window w covers steps [w*win_steps, ...) */
    uint64_t win_steps;
    uint64_t *win_accesses, *win_hits;
    /* Per sequence (the bootstrap's unit, core/bootstrap.h): a sequence is a
     * run of consecutive steps whose first tokens share a sequence id, as
     * cold_per_seq restarts on; a batched step counts toward its first
     * token's sequence, a step without tokens toward the one before it. */
    uint32_t n_seqs;
    uint32_t *step_seq;     /* n_steps: the sequence ordinal of each step (NULL for key sequences) */
    uint32_t *seq_ids;      /* n_seqs: the trace's id of each sequence */
    uint64_t *seq_accesses, *seq_hits; /* n_seqs each */
    /* Recovery curve: accesses and hits o steps (o < MOE_SINCE_START_STEPS)
     * after the start of every sequence but the first, pooled over those
     * starts. The first is left out because it starts empty in either cache
     * mode, so warm and cold-per-seq runs differ only by what a restart costs.
     * A sequence starts at a step with tokens whose first token's sequence id
     * differs from that of the last step with tokens (cold_per_seq's rule). */
    uint32_t *step_since_start; /* n_steps: o, or MOE_SINCE_START_STEPS (not counted); NULL for key sequences */
    uint32_t since_start_seqs;  /* sequence starts counted */
    uint64_t since_start_accesses[MOE_SINCE_START_STEPS], since_start_hits[MOE_SINCE_START_STEPS];
    double seconds;         /* wall time of the replay proper */
    moe_replay_ext *ext;    /* timing / prefetch / precision results; NULL for a plain replay */
} moe_replay_result;

int moe_replay(const moe_trace *t, const moe_replay_config *cfg, moe_replay_result *res,
               moe_error *err);
void moe_replay_result_free(moe_replay_result *r);
/* The device profile cfg prices with: cfg->device_profile if set, else
 * cfg->device loaded from cfg->devices_path (default experiments/devices.ini). */
int moe_replay_device(const moe_replay_config *cfg, struct moe_device_profile *out, moe_error *err);
/* Allocate the per-layer, warm-up-curve and per-sequence arrays of a result
 * (0 or -1); shared by the replay's two loops and the offloaded backend's
 * runs so their results have one shape. */
int moe_replay_result_alloc(moe_replay_result *res, const moe_trace *t, uint32_t curve_windows);
/* Fold step s's accesses and hits into its warm-up window, its sequence and
 * the recovery curve: the one place per-step counts enter a result (both
 * engines and the backend's measured runs call it; key sequences fill their
 * windows and their one sequence themselves and have no recovery curve). */
static inline void moe_replay_count_step(moe_replay_result *res, uint64_t s, uint64_t accesses, uint64_t hits) {
    uint64_t w = s / res->win_steps;
    res->win_accesses[w] += accesses;
    res->win_hits[w] += hits;
    uint32_t q = res->step_seq[s];
    res->seq_accesses[q] += accesses;
    res->seq_hits[q] += hits;
    uint32_t o = res->step_since_start[s];
    if (o < MOE_SINCE_START_STEPS) {
        res->since_start_accesses[o] += accesses;
        res->since_start_hits[o] += hits;
    }
}
/* True if the config uses any issue-4 extension (then moe_replay runs its
 * general loop, sim/replay_engine.c, instead of the demand-only fast path). */
int moe_replay_config_is_ext(const moe_replay_config *cfg);

const char *moe_scope_name(int scope);
int moe_scope_parse(const char *s, int *scope, moe_error *err);

#endif
