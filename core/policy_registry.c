/* policy_registry.c: turns core/policies/registry.def into the name table.
 * Adding a policy = one file in core/policies/ plus one line in registry.def. */
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
