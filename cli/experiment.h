/* experiment.h: experiment files (experiments/NAME.ini) and the run list of a
 * sweep.
 *
 * An experiment is a set of axes; the run list is their cartesian product in
 * a fixed order (trace, scope, cold_per_seq, seed, device, model, precision,
 * prefetch, policy, capacity: the last varies fastest), which makes the run
 * list deterministic: shard i/N of a sweep is "every run whose index in this
 * list is i-1 modulo N" on any machine.
 *
 * File format: docs/reference.md, "Experiment files" (every section and
 * key with its default); experiments/policies.ini is a worked example.
 *
 * A spec's own parameters may follow it in a list (a piece "k=v" without ':'
 * continues the previous spec), as on the sweep command line.
 *
 * ρ (rho) is moe-lrc's relative cache size, a multiple of top_k: per-layer
 * scope holds round(ρ·k) experts in each layer's cache; global scope holds
 * round(ρ·L·k) (layer, expert) keys in all, i.e. the same total memory.
 * Both are at least 1 and at most the number of keys. The run stores the
 * resulting integer capacity, so ρ = 1 and capacities = 2 on a top-2 trace
 * are the same run. */
#ifndef MOE_EXPERIMENT_H
#define MOE_EXPERIMENT_H

#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"
#include "../core/trace.h"
#include "../sim/replay.h"

typedef struct moe_str_list {
    char **v;
    size_t n, cap;
} moe_str_list;

int moe_str_list_push(moe_str_list *l, const char *s, size_t len);
void moe_str_list_free(moe_str_list *l);
/* Split a comma-separated list of specs: a piece "k=v" with no ':' joins the
 * previous piece (spec parameters use commas too). Whitespace is trimmed.
 * `what` names the list in messages. */
int moe_split_specs(const char *s, const char *what, moe_str_list *out, moe_error *err);

typedef struct moe_expectation {
    char *name, *metric, *selector, *source;
    double value, tolerance;
} moe_expectation;

typedef struct moe_experiment {
    char name[128];
    char path[512];           /* "" when built from the command line */
    moe_str_list traces;
    moe_str_list policies;    /* specs as written */
    /* policies[all_first .. all_first + all_n) came from "all": every
     * registered policy that applies to the run's options (the plan leaves
     * out, per run, those moe_replay_policy_check refuses) */
    size_t all_first, all_n;
    int scopes[2];
    size_t n_scopes;
    moe_str_list capacities;  /* one item per capacity (ranges expanded) */
    double *rho;
    size_t n_rho;
    int cold[2];
    size_t n_cold;
    uint64_t *seeds;
    size_t n_seeds;
    moe_str_list devices, models, precisions, prefetchers; /* "" item = unset */
    char *skip;               /* NULL = off */
    int on_miss;              /* enum moe_on_miss */
    uint32_t stream_dense;    /* layer buffers of --stream-dense, 0 = off */
    char *split;              /* NULL = uniform */
    int speculate;
    char *devices_path, *models_path;
    moe_expectation *expects;
    size_t n_expects;
} moe_experiment;

/* Load and validate an experiment file; every error names file:line. */
int moe_experiment_load(const char *path, moe_experiment *exp, moe_error *err);
/* Free everything (safe on a zeroed struct). */
void moe_experiment_free(moe_experiment *exp);

/* Capacity list text: "1,2,4", "1:32", "1:32:4", "12GiB", "40%" mixed;
 * ranges are expanded into single items. */
int moe_experiment_add_capacities(moe_experiment *exp, const char *s, moe_error *err);
/* Apply one [sweep] key (policies, scopes, capacities, rho, cold_per_seq,
 * seeds, prefetch, precision, device, model, skip, speculate, split, devices,
 * models) as the file would; the command line uses it for the same options. */
int moe_experiment_set(moe_experiment *exp, const char *key, const char *value, moe_error *err);
/* Policy list text, or "all" (every registered policy that applies to
 * the other options: see moe_experiment_plan). Unknown names fail. */
int moe_experiment_add_policies(moe_experiment *exp, const char *s, moe_error *err);

/* One planned run. The config's strings point into the experiment and into
 * `policy`, so the experiment must outlive the list; call moe_run_bind
 * before using cfg after copying a moe_exp_run. */
typedef struct moe_exp_run {
    size_t trace;             /* index into exp->traces */
    moe_replay_config cfg;    /* cfg.policy == policy (after moe_exp_run_bind) */
    char policy[256];         /* canonical spec */
} moe_exp_run;

static inline void moe_exp_run_bind(moe_exp_run *r) { r->cfg.policy = r->policy; }

/* Expand the axes against the loaded traces (same order as exp->traces;
 * duplicate traces, by hash, are planned once; a run equal to an earlier one,
 * by canonical config text, is dropped; a run of a policy that came from
 * "all" and does not apply to its options (moe_replay_policy_check) is
 * left out, with one "policy: reason" line per policy and reason appended
 * to left_out when it is not NULL). *runs is malloc'ed. The runs are not
 * checked beyond their specs: moe_replay_check does that. */
int moe_experiment_plan(const moe_experiment *exp, moe_trace *const *traces, char (*hashes)[65],
                        moe_exp_run **runs, size_t *n_runs, moe_str_list *left_out, moe_error *err);

#endif
