/* policy.h: the one interface every eviction policy implements.
 *
 * A cache holds a subset of n_keys dense keys (expert ids of one layer in
 * per-layer scope, layer * n_experts + expert in global scope). The cache
 * (cache.c) owns residency and capacity; a policy only keeps its own order
 * and answers "whom to evict". Each policy lives in core/policies/<name>.c and
 * is listed once in core/policy_registry.c. */
#ifndef MOE_POLICY_H
#define MOE_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "params.h"
#include "trace.h"

#define MOE_NEVER UINT64_MAX

/* What the replay knows about the access being served. */
typedef struct moe_access {
    uint64_t time;      /* ordinal of this access in the replay (monotone) */
    uint64_t next_use;  /* time of the next access of this key, MOE_NEVER if none;
                           only filled for policies with MOE_POLICY_NEEDS_FUTURE */
    uint64_t step;      /* index of the step (forward pass) in the trace */
    uint32_t layer;
    uint32_t expert;
    float weight;       /* highest gate weight any token gave this expert here, NaN if unknown */
} moe_access;

struct moe_cache;

/* Everything a policy may look at when created. */
typedef struct moe_policy_env {
    uint32_t n_keys;
    uint32_t capacity;      /* in keys */
    uint32_t n_layers;      /* of the trace */
    uint32_t n_experts;     /* per layer */
    int32_t fixed_layer;    /* per-layer scope: the layer this cache serves; -1 = global */
    uint64_t seed;          /* for policies that draw random numbers */
    const moe_trace *trace; /* the replayed trace (for profiles / offline policies) */
} moe_policy_env;

static inline uint32_t moe_env_layer_of(const moe_policy_env *env, uint32_t key) {
    return env->fixed_layer >= 0 ? (uint32_t)env->fixed_layer : key / env->n_experts;
}
static inline uint32_t moe_env_expert_of(const moe_policy_env *env, uint32_t key) {
    return env->fixed_layer >= 0 ? key : key % env->n_experts;
}

enum {
    MOE_POLICY_NEEDS_FUTURE = 1 << 0, /* replay must compute moe_access.next_use */
    MOE_POLICY_NEEDS_ROUTING = 1 << 1, /* reads the trace's routing (env->trace->experts) when created:
                                          not for key sequences, which have none */
};

typedef struct moe_policy_ops {
    const char *name;
    const char *summary;  /* one line for `moesim policies` and --help */
    /* For `moesim policies NAME`: the exact rule in a paragraph (plain
     * text, wrapped by the printer), and where it comes from (paper,
     * system, or "ours"). */
    const char *description;
    const char *reference;
    /* The parameter template (keys, defaults, ranges, help) that create
     * parses a copy of; NULL / 0 for a policy without parameters. */
    const moe_param *params;
    size_t n_params;
    /* Whether the policy reads the future of the replayed trace (an upper
     * bound, not something a system can deploy): NULL never, "" always,
     * "key=value" when its parameter key has that value (default included). */
    const char *oracle_when;
    unsigned flags;
    /* Parse args (text after "name:"), allocate state. canonical receives the
     * full canonical name with effective parameters. */
    void *(*create)(const char *args, const moe_policy_env *env, char *canonical, size_t cap,
                    moe_error *err);
    void (*on_hit)(void *st, uint32_t key, const moe_access *a);
    void (*on_insert)(void *st, uint32_t key, const moe_access *a);
    /* Return a resident key that moe_cache_protected() says is not protected,
     * or -1 if every resident key is protected. */
    int64_t (*choose_victim)(void *st, const struct moe_cache *c, const moe_access *a);
    void (*on_evict)(void *st, uint32_t key);
    /* Optional (may be NULL): the miss of `key` in a full cache, in one call.
     * It must do exactly what
     *     v = choose_victim(st, c, a); if (v >= 0) { on_evict(st, v); on_insert(st, key, a); }
     * does and return v: a resident, unprotected victim now removed from the
     * policy's order with key inserted, or -1 (nothing changed) if every
     * resident key is protected. The cache calls it only in count mode with
     * used == capacity > 0, before it updates residency (c->resident[key] is
     * still 0 and the victim still resident), and keeps the generic three
     * calls for policies that leave it NULL. It exists to save indirect calls
     * on the replay's miss path; tests/unit/test_replay_ops.c runs every
     * policy with and without it and compares every result. */
    int64_t (*replace)(void *st, const struct moe_cache *c, uint32_t key, const moe_access *a);
    /* Called at each new step (forward pass) before its first access; may be NULL. */
    void (*on_step)(void *st, uint64_t step);
    /* Optional (may be NULL): forget every resident key, leaving the state a
     * fresh create() would give (a cold restart). Policies that derive
     * something expensive at create time (a profile read from a file, a
     * fitted model) provide it so --cold-per-seq does not redo that work per
     * sequence; without it the cache destroys and re-creates the policy. */
    void (*reset)(void *st);
    void (*destroy)(void *st);
} moe_policy_ops;

/* Registry (policy_registry.c). */
const moe_policy_ops *moe_policy_find(const char *name); /* name without args */
const moe_policy_ops *const *moe_policy_list(void);    /* NULL-terminated */
/* Whether a spec ("name" or "name:k=v,...", canonical or as written) reads
 * the future (its ops' oracle_when, defaults filled in); 0 for an unknown
 * name. The one rule every command that marks oracles uses. */
int moe_policy_is_oracle(const char *spec);
/* Position of the spec's policy in the registry (the order `moesim policies`
 * lists), or the number of policies for a name it does not know. */
int moe_policy_rank(const char *canonical);

#endif
