/* replay_check.h: everything moe_replay would refuse about a (trace,
 * config) pair, checked without replaying. The replay engines call these
 * same functions before they start, so a rule lives in one place and a
 * sweep can check its whole run list before the first run (and before it
 * touches its database).
 *
 * What is not checked here: a policy's own parameters (moe_policy_canonical
 * creates the policy for that), and anything that needs the replay itself
 * (out of memory, a cache state file of another geometry). */
#ifndef MOE_REPLAY_CHECK_H
#define MOE_REPLAY_CHECK_H

#include "../core/error.h"
#include "../core/trace.h"
#include "replay.h"

/* The whole check: the config alone (moe_replay_config_check: profiles
 * load, specs parse), then the rules that depend on the trace, the engine
 * the config selects, and the policy. 0 = the replay may start. */
int moe_replay_check(const moe_trace *t, const moe_replay_config *cfg, moe_error *err);

/* The rules that depend on the policy alone (its flags against the trace
 * and the engine): a key sequence has no routing for policies that read
 * it; the extended engine does not compute the future for policies that
 * need it. A sweep's `--policies all` leaves out the policies this refuses. */
int moe_replay_policy_check(const moe_trace *t, const moe_replay_config *cfg, moe_error *err);

/* The engine-specific rules (moe_replay_check calls the one that applies;
 * each engine calls its own before it starts). */
int moe_replay_keys_check(const moe_trace *t, const moe_replay_config *cfg, moe_error *err);
int moe_replay_plain_check(const moe_trace *t, const moe_replay_config *cfg, moe_error *err);
int moe_replay_ext_check(const moe_trace *t, const moe_replay_config *cfg, moe_error *err);

#endif
