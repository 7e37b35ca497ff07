/* replay_opts.h: replay options by name, shared by `moesim run`, `moesim
 * sweep` (experiment files) and anything else that builds a
 * moe_replay_config from text.
 *
 *   moe_replay_opt_set(&cfg, "capacity", "12GiB", &err);
 *   moe_replay_opt_set(&cfg, "prefetch", "gate:ahead=1,n=2", &err);
 *   moe_replay_opt_set(&cfg, "speculate", NULL, &err);      // flags: NULL, "1", "on"
 *
 * Names (a '_' may stand for '-'): policy, capacity, scope, cold-per-seq,
 * seed, count-from, prefetch, speculate, skip, precision, device, model, devices, models,
 * split, load-state, save-state, stream-dense (NULL or "on": 2 layer buffers).
 * Values are validated (specs canonicalised, capacities parsed) but string
 * values are stored by pointer: they must outlive cfg. */
#ifndef MOE_REPLAY_OPTS_H
#define MOE_REPLAY_OPTS_H

#include <stddef.h>

#include "../core/error.h"
#include "replay.h"

/* 0 = applied, 1 = `name` is not a replay option (caller's own), -1 = bad value. */
int moe_replay_opt_set(moe_replay_config *cfg, const char *name, const char *value, moe_error *err);

/* Capacity text: "N" experts, "N[.f]{B,KB,MB,GB,TB,KiB,MiB,GiB,TiB}" bytes in
 * all, or "P%" of all experts' bytes (at their precision). Sets exactly one
 * of cfg->capacity, capacity_bytes, capacity_frac and clears the others. */
int moe_replay_parse_capacity(moe_replay_config *cfg, const char *s, moe_error *err);

/* Check a finished config before a long run: loads the device and model
 * profiles and canonicalises every spec (the trace-dependent checks happen
 * in moe_replay). */
int moe_replay_config_check(const moe_replay_config *cfg, moe_error *err);

/* Help text for the options above, for --help screens. */
extern const char moe_replay_opts_help[];

#endif
