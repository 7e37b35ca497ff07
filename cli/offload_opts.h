/* offload_opts.h: the options of an offloaded run, shared by `moesim infer
 * --offload` and `moesim validate` (parsed by name, like replay_opts.h). */
#ifndef MOE_OFFLOAD_OPTS_H
#define MOE_OFFLOAD_OPTS_H

#include <stddef.h>
#include <stdint.h>

#include "../backend/offload.h"
#include "../core/error.h"

typedef struct moe_offload_opts {
    const char *pack;          /* --offload PATH | auto (NULL = resident run) */
    const char *policy;        /* default lru */
    const char *capacity;      /* text: N experts, bytes or P% (replay_opts.h) */
    int global, cold_per_seq;
    uint64_t seed;
    const char *split, *prefetch, *prefetch_log, *save_state, *load_state;
    const char *steps_out;     /* per-step measured figures (CSV) */
    int io_mode;               /* default direct */
    uint64_t io_threads;       /* 0 = caller's default */
    uint64_t prefill_chunk;    /* 0 = MOE_ENGINE_MAX_STEP */
    int on_miss;               /* enum moe_on_miss (core/on_miss.h) */
    const char *skip;          /* --skip spec (sim/replay_ext.h), NULL = off */
    const char *precision;     /* static plan choosing each expert's pack (several packs), NULL = one pack */
    const char *route_from;    /* --route-from TRACE: execute its routing instead of a prompt */
    uint64_t route_steps;      /* --route-steps N: its first N steps (0 = all) */
    int route_truncate;        /* --route-truncate: a model of fewer layers takes the trace's first ones */
    uint32_t stream_dense;     /* --stream-dense[=B]: layer buffers of the dense stream (0 = dense resident) */
    const char *dense_pack;    /* --dense-pack F (default MODEL_DIR/dense.pack) */
    int n_set;                 /* options given other than --offload (infer refuses them alone) */
    const char *first_set;     /* the first of them, for the message */
} moe_offload_opts;

/* getopt_long entries of these options (value 'X': hand them to
 * moe_offload_opt_set by name); every command that runs offloaded lists them. */
#define MOE_OFFLOAD_LONGOPTS                                                                                 \
    {"offload", required_argument, 0, 'X'}, {"policy", required_argument, 0, 'X'},                          \
    {"capacity", required_argument, 0, 'X'}, {"scope", required_argument, 0, 'X'},                          \
    {"cold-per-seq", no_argument, 0, 'X'}, {"split", required_argument, 0, 'X'},                            \
    {"prefetch", required_argument, 0, 'X'}, {"prefetch-log", required_argument, 0, 'X'},                   \
    {"io", required_argument, 0, 'X'}, {"io-threads", required_argument, 0, 'X'},                           \
    {"save-state", required_argument, 0, 'X'}, {"load-state", required_argument, 0, 'X'},                  \
    {"steps-out", required_argument, 0, 'X'}, {"speculate", no_argument, 0, 'X'},                          \
    {"on-miss", required_argument, 0, 'X'}, {"skip", required_argument, 0, 'X'},                             \
    {"precision", required_argument, 0, 'X'}, {"route-from", required_argument, 0, 'X'},                    \
    {"route-steps", required_argument, 0, 'X'}, {"route-truncate", no_argument, 0, 'X'},                   \
    {"stream-dense", optional_argument, 0, 'X'}, {"dense-pack", required_argument, 0, 'X'}

void moe_offload_opts_init(moe_offload_opts *o);
/* 0 = applied, 1 = not an offload option, -1 = bad value. Names without
 * the leading "--": offload, policy, capacity, scope, cold-per-seq, seed,
 * split, prefetch, prefetch-log, save-state, load-state, io, io-threads,
 * prefill-chunk, steps-out, stream-dense (value NULL = 2 buffers), dense-pack. */
int moe_offload_opt_set(moe_offload_opts *o, const char *name, const char *value, moe_error *err);
extern const char moe_offload_opts_help[];

/* The pack's path: PATH as given, or for "auto" MODEL_DIR/experts.pack,
 * written first (bf16 or the model's dtype) when it does not exist. */
int moe_offload_pack_path(const moe_offload_opts *o, const char *model_dir, char *out, size_t cap, moe_error *err);
/* --stream-dense: the dense pack's path (--dense-pack, else
 * MODEL_DIR/dense.pack) into out, refused with how to make it when it does
 * not exist; "" without --stream-dense. */
int moe_offload_dense_path(const moe_offload_opts *o, const char *model_dir, char *out, size_t cap, moe_error *err);
/* moe_model_load_ex flags for an offloaded run: no experts, and with
 * --stream-dense no dense weights either. */
unsigned moe_offload_load_flags(const moe_offload_opts *o);
/* Fill a backend config (pack path resolved by the caller; capacity given
 * in bytes or % is converted to whole experts of the pack's size, per layer
 * in per-layer scope). */
int moe_offload_config_of(const moe_offload_opts *o, const char *pack_path, const moe_model *m,
                          moe_offload_config *oc, moe_error *err);

#endif
