/* policy_registry.c: turns core/policies/registry.def into the name table.
 * Adding a policy = one file in core/policies/ plus one line in registry.def. */
#include <stdio.h>
#include <string.h>

#include "policy.h"

#define POLICY(n) extern const moe_policy_ops moe_policy_##n;
#include "policies/registry.def"
#undef POLICY

static const moe_policy_ops *const registry[] = {
#define POLICY(n) &moe_policy_##n,
#include "policies/registry.def"
#undef POLICY
    NULL,
};

const moe_policy_ops *const *moe_policy_list(void) { return registry; }

const moe_policy_ops *moe_policy_find(const char *name) {
    for (const moe_policy_ops *const *p = registry; *p; p++)
        if (!strcmp((*p)->name, name)) return *p;
    return NULL;
}

/* The ops of a canonical spec's policy ("s3fifo:small=0.1" -> s3fifo), or NULL. */
static const moe_policy_ops *ops_of(const char *canonical) {
    char name[64];
    size_t n = strcspn(canonical, ":");
    if (n >= sizeof name) return NULL;
    snprintf(name, sizeof name, "%.*s", (int)n, canonical);
    return moe_policy_find(name);
}

int moe_policy_is_oracle(const char *canonical) {
    const moe_policy_ops *ops = ops_of(canonical);
    if (ops && (ops->flags & MOE_POLICY_NEEDS_FUTURE)) return 1;
    return strstr(canonical, "profile=self") || strstr(canonical, "oracle");
}

int moe_policy_rank(const char *canonical) {
    const moe_policy_ops *ops = ops_of(canonical);
    int i = 0;
    while (registry[i] && registry[i] != ops) i++;
    return i;
}
