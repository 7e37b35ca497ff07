/* runrec.h: turning a replay (config + result) into the forms it is reported
 * in: canonical config text (the run's identity in SQLite), a results-store
 * record, and a JSON object. Shared by run, sweep and the backend commands. */
#ifndef MOE_RUNREC_H
#define MOE_RUNREC_H

#include <stddef.h>

#include "../core/results.h"
#include "replay.h"

/* Canonical config text: sorted "key=value\n" lines. canonical_policy is the
 * policy's canonical name (from the result or moe_policy_canonical). */
int moe_run_config_text(const moe_replay_config *cfg, const char *canonical_policy, char *buf,
                        size_t cap);
/* The same with a message on failure (an unknown device or model profile,
 * a bad spec). Issue-4 settings add lines only when set, so a plain run's
 * text (and identity) is unchanged: capacity_bytes / capacity_frac (instead
 * of capacity), device and model (canonical, with every profile value),
 * precision, prefetch, skip, speculate. */
int moe_run_config_text_err(const moe_replay_config *cfg, const char *canonical_policy, char *buf,
                            size_t cap, moe_error *err);

/* The scalar metrics of a result (plain ones, then the extension's when
 * present); returns the count written (at most cap). Names are static. */
size_t moe_run_metrics(const moe_replay_result *res, moe_metric *out, size_t cap);

/* Store one finished replay as a run. */
int moe_run_store(moe_db *db, const char *experiment, const char *trace_hash,
                  const moe_replay_config *cfg, const moe_replay_result *res, moe_error *err);

/* Print the result as one JSON object on a line (malloc'ed string). */
char *moe_run_json(const moe_replay_config *cfg, const moe_replay_result *res, const char *trace_path);

/* The capacity as a person reads it: "4 experts per layer", "64 experts in
 * all", "12.0 GiB in all", "40% of all experts' bytes". Returns buf. */
const char *moe_capacity_text(const moe_replay_config *cfg, char *buf, size_t cap);

/* Print the human-readable summary. */
void moe_run_print(const moe_replay_config *cfg, const moe_replay_result *res, const char *trace_path);

#endif
