/* lru: evict the least recently used resident expert.
 *
 * Rule: every access (hit or insertion) moves the expert to the most-recent
 * end; the victim is the least recent expert that is not protected (not
 * needed by the (step, layer) being served). Parameters: none. */
#include "list_policy.h"

static void *lru_create(const char *args, const moe_policy_env *env, char *canonical, size_t cap,
                        moe_error *err) {
    return moe_list_policy_create("lru", args, env, canonical, cap, err);
}

static void lru_on_hit(void *st, uint32_t key, const moe_access *a) {
    (void)a;
    moe_list_move_to_head(st, key);
}

const moe_policy_ops moe_policy_lru = {
    .name = "lru",
    .summary = "least recently used",
    .description =
        "Every access (hit or insertion) moves the expert to the most recent end; the victim is "
        "the least recently used expert outside the set the current (step, layer) needs.",
    .reference =
        "the classic recency rule (stack algorithms: Mattson et al., IBM Systems Journal 9(2), "
        "1970)",
    .create = lru_create,
    .on_hit = lru_on_hit,
    .on_insert = moe_list_policy_on_insert,
    .choose_victim = moe_list_policy_choose_victim,
    .on_evict = moe_list_policy_on_evict,
    .replace = moe_list_policy_replace,
    .destroy = moe_list_policy_destroy,
};
