/* fifo: evict the expert that was inserted longest ago.
 *
 * Rule: insertion puts the expert at the newest end of a queue; hits do not
 * reorder it. The victim is the oldest-inserted resident expert that is not
 * protected (not needed by the (step, layer) being served). Parameters: none. */
#include "list_policy.h"

static void *fifo_create(const char *args, const moe_policy_env *env, char *canonical, size_t cap,
                         moe_error *err) {
    return moe_list_policy_create("fifo", args, env, canonical, cap, err);
}

static void fifo_on_hit(void *st, uint32_t key, const moe_access *a) { (void)st, (void)key, (void)a; }

const moe_policy_ops moe_policy_fifo = {
    .name = "fifo",
    .summary = "first in, first out (hits do not reorder)",
    .description =
        "An insertion puts the expert at the newest end of a queue and hits do not reorder it; "
        "the victim is the oldest-inserted expert outside the current set.",
    .reference =
        "the classic first-in, first-out queue",
    .create = fifo_create,
    .on_hit = fifo_on_hit,
    .on_insert = moe_list_policy_on_insert,
    .choose_victim = moe_list_policy_choose_victim,
    .on_evict = moe_list_policy_on_evict,
    .replace = moe_list_policy_replace,
    .destroy = moe_list_policy_destroy,
};
