/* trace.h: the in-memory routing trace every part of moesim works on.
 *
 * A trace is a sequence of steps (forward passes). A step holds one or more
 * tokens; for every token and MoE layer it records up to top_k experts in rank
 * order (slot 0 = highest gate weight) with their gate weights. Arrays are
 * flat and dense so that replay runs at memory speed and the binary format
 * can point straight into an mmap'ed file.
 *
 * Indexing (t = global token index, l = layer, s = slot, d = lookahead depth):
 *   experts[(t * n_layers + l) * top_k + s]            MOE_NO_EXPERT if absent
 *   weights[same]                                       NaN if not recorded
 *   router_logits[(t * n_layers + l) * n_experts + e]   optional
 *   lookahead[((t * n_layers + l) * lookahead_depth + (d-1)) * top_k + s]
 *       experts predicted for layer l+d from layer l's hidden state; optional
 * A token's slots are filled from 0 upward; absent slots come last. A layer
 * may have no experts at all for a token (a logger that dropped the row).
 *
 * Key sequences (libCacheSim inputs: one cache key per request) have their
 * own compact form, keys != NULL: request i is step i with one token whose
 * only access is key keys[i] < n_experts; n_layers = top_k = 1, n_experts is
 * the number of distinct keys (up to MOE_MAX_KEYS, not MOE_MAX_EXPERTS) and
 * n_steps = n_tokens = requests. Every per-step, per-token and per-record
 * array is NULL then: such a trace carries no routing, so only the commands
 * that replay plain caches take it (moe_trace_load_ex, MOE_LOAD_KEYS). */
#ifndef MOE_TRACE_H
#define MOE_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define MOE_NO_EXPERT 0xFFFFu
#define MOE_MAX_EXPERTS 0xFFFEu /* expert ids are uint16, one value reserved */

/* Geometry limits, checked by moe_trace_check_geometry() (and so by the
 * builder, moe_trace_validate() and every reader) before anything is sized
 * by them:
 *   1 <= n_layers <= MOE_MAX_LAYERS (65536);
 *   1 <= n_experts <= MOE_MAX_EXPERTS (65534), 1 <= top_k <= n_experts;
 *   lookahead_depth <= MOE_MAX_LAYERS;
 *   n_layers * n_experts <= MOE_MAX_KEYS: the key space. Global scope numbers
 *   the (layer, expert) pairs as uint32 keys l * n_experts + e, so a trace
 *   whose pairs do not fit is refused when it is built or loaded, not at
 *   replay (per-layer scope could run it, but no global policy could, and
 *   65536 layers x 65534 experts already fits, so the layer limit implies it).
 * A record, tokens x n_layers x top_k entries, must also be addressable
 * (size_t) in bytes, including the optional arrays; the builder checks each
 * product before it allocates. */
#define MOE_MAX_LAYERS 65536u
#define MOE_MAX_KEYS 0xFFFFFFFFu

enum moe_phase { MOE_PHASE_PREFILL = 0, MOE_PHASE_DECODE = 1 };

/* Precision tiers an expert can be stored at; bytes per expert per tier are
 * part of the trace header (0 = unknown). */
enum moe_precision {
    MOE_PREC_F32 = 0,
    MOE_PREC_F16,
    MOE_PREC_Q8,
    MOE_PREC_Q4,
    MOE_PREC_Q3,
    MOE_PREC_Q2,
    MOE_PREC_COUNT
};

typedef struct moe_trace {
    /* header */
    char model[64];   /* model name, free text */
    char source[64];  /* who produced it: "moesim gen", "moesim infer", "import csv" ... */
    uint32_t n_layers;
    uint32_t n_experts;   /* routed experts per layer */
    uint32_t top_k;       /* slots per token and layer */
    uint32_t n_shared;    /* shared (always-on) experts per layer, not in experts[] */
    uint32_t lookahead_depth; /* D: lookahead predictions per record, 0 = none */
    uint64_t expert_bytes[MOE_PREC_COUNT];
    char *meta;           /* free-form text (NUL-terminated), may be NULL */

    uint64_t n_steps;
    uint64_t n_tokens;

    /* per step */
    uint64_t *step_first_token; /* n_steps + 1 entries; tokens of step i are [first[i], first[i+1]) */
    uint64_t *step_id;          /* the step number as written in the source (kept for lossless CSV) */
    uint8_t *step_phase;        /* enum moe_phase */

    /* per token */
    uint32_t *token_seq;        /* sequence (request) id */
    uint32_t *token_pos;        /* token column of the source: position in its sequence */

    /* per token x layer x slot */
    uint16_t *experts;
    float *weights;             /* NULL if the trace carries no weights */
    float *router_logits;       /* NULL unless captured */
    uint16_t *lookahead;        /* NULL unless lookahead_depth > 0 */

    /* key sequences only (see above): n_tokens keys, each < n_experts */
    uint32_t *keys;

    /* ownership: either every array was malloc'ed, or they point into map */
    void *map;
    size_t map_len;
    int checksum_recalled; /* loaded without hashing: verified earlier (core/verified.h) */
} moe_trace;

static inline int moe_trace_is_keys(const moe_trace *t) { return t->keys != NULL; }

static inline size_t moe_trace_rec(const moe_trace *t, uint64_t tok, uint32_t layer) {
    return ((size_t)tok * t->n_layers + layer) * t->top_k;
}

void moe_trace_free(moe_trace *t);

/* The geometry limits above; the message names the field ("layers 70000
 * out of range 1..65536"). */
int moe_trace_check_geometry(uint32_t n_layers, uint32_t n_experts, uint32_t top_k,
                             uint32_t lookahead_depth, moe_error *err);

/* Check every invariant of an in-memory trace (monotone step offsets, expert
 * ids below n_experts, slots packed, finite weights...). Readers call this on
 * everything they load; the message names the step/token/layer at fault. */
int moe_trace_validate(const moe_trace *t, moe_error *err);

/* Total number of (token, layer, slot) entries that name an expert. */
uint64_t moe_trace_count_slots(const moe_trace *t);

/* The value of `key` in the trace's meta text (its "key=value" lines; the
 * first such line) into out, cut at cap; 0, or -1 when no line has it. */
int moe_trace_meta_get(const moe_trace *t, const char *key, char *out, size_t cap);

/* A copy of t in which every token is a step of its own (numbered 0, 1,
 * ... in token order, with the phase of the step it came from), for replays
 * that serve a prefill chunk or a batch token by token. Sequences,
 * positions, experts, weights, logits and lookahead are copied unchanged.
 * NULL with err for a key sequence or when memory runs out. */
moe_trace *moe_trace_token_steps(const moe_trace *t, moe_error *err);

/* ---- builder: what every importer and the generator use ---------------- */

typedef struct moe_trace_builder moe_trace_builder;

/* Geometry is fixed up front; with_weights / with_logits choose which
 * optional arrays exist. lookahead_depth 0 means none. NULL if the geometry
 * fails moe_trace_check_geometry() (call it first for the message) or memory
 * runs out. */
moe_trace_builder *moe_tb_new(uint32_t n_layers, uint32_t n_experts, uint32_t top_k,
                              int with_weights, int with_logits, uint32_t lookahead_depth);
/* Start a new step. */
int moe_tb_begin_step(moe_trace_builder *b, uint64_t step_id, int phase, moe_error *err);
/* Append a token to the current step; returns its index within the step. */
int64_t moe_tb_add_token(moe_trace_builder *b, uint32_t seq, uint32_t pos, moe_error *err);
/* Set one slot of token `tok_in_step` of the current step. Slots must be
 * filled so that no gap remains by moe_tb_finish (validated there). */
int moe_tb_set(moe_trace_builder *b, uint64_t tok_in_step, uint32_t layer, uint32_t slot,
               uint32_t expert, float weight, moe_error *err);
/* Pointer to the router logits of (token, layer) of the current step, or NULL. */
float *moe_tb_logits(moe_trace_builder *b, uint64_t tok_in_step, uint32_t layer);
/* Pointer to the lookahead slots (D x top_k) of (token, layer), or NULL. */
uint16_t *moe_tb_lookahead(moe_trace_builder *b, uint64_t tok_in_step, uint32_t layer);
/* Number of steps / tokens so far. */
uint64_t moe_tb_steps(const moe_trace_builder *b);
uint64_t moe_tb_tokens(const moe_trace_builder *b);
/* Finish: validates, returns the trace (owned by caller) or NULL with err.
 * The header strings are taken from the arguments. The builder is freed. */
moe_trace *moe_tb_finish(moe_trace_builder *b, const char *model, const char *source,
                         const char *meta, moe_error *err);
void moe_tb_abort(moe_trace_builder *b);

/* ---- file formats (core/trace_*.c) ------------------------------------- */

/* Load any supported trace by content sniffing (binary magic) and extension:
 * .moetrace, .csv. Messages name the file and place. */
moe_trace *moe_trace_load(const char *path, moe_error *err);
/* moe_trace_load with flags: MOE_LOAD_KEYS accepts key sequences (without
 * it they are refused with a message naming the commands that take them). */
#define MOE_LOAD_KEYS 1u
moe_trace *moe_trace_load_ex(const char *path, unsigned flags, moe_error *err);
/* A key-sequence trace of n requests over n_keys keys; takes ownership of
 * keys (malloc'ed). NULL with err if a key is out of range. */
moe_trace *moe_trace_from_keys(uint32_t *keys, uint64_t n, uint64_t n_keys, const char *source,
                               const char *meta, moe_error *err);
/* Write the binary .moetrace format (atomically: temp file + rename, so a
 * full disk or a kill never leaves a half-written trace under the name). */
int moe_trace_save(const moe_trace *t, const char *path, moe_error *err);
/* Write the CSV interchange form (header step,seq,token,layer,slot,expert,weight). */
int moe_trace_save_csv(const moe_trace *t, const char *path, moe_error *err);

#endif
