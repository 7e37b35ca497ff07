/* none: never prefetches (the baseline; replays like no --prefetch but with
 * the prefetch metrics present). Parameters: none. */
#include <stdlib.h>

#include "prefetch.h"

static void *none_create(const moe_param *p, const moe_prefetch_env *env, moe_error *err) {
    (void)p; (void)env;
    void *st = malloc(1);
    if (!st) moe_fail(err, "out of memory");
    return st;
}
static void none_observe(void *st, uint64_t s, uint32_t l, const uint16_t *set, const uint32_t *nt, uint32_t n) {
    (void)st; (void)s; (void)l; (void)set; (void)nt; (void)n;
}
static uint32_t none_predict(void *st, uint64_t s, uint32_t l, uint32_t *target, uint16_t *out) {
    (void)st; (void)s; (void)l; (void)target; (void)out;
    return 0;
}

const moe_prefetch_ops moe_prefetch_none = {
    .name = "none",
    .summary = "no prefetching",
    .create = none_create,
    .observe = none_observe,
    .predict = none_predict,
    .destroy = free,
};
