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

/* The ops of a spec's policy ("s3fifo:small=0.1" -> s3fifo), or NULL. */
static const moe_policy_ops *ops_of(const char *canonical) {
    char name[64];
    size_t n = strcspn(canonical, ":");
    if (n >= sizeof name) return NULL;
    snprintf(name, sizeof name, "%.*s", (int)n, canonical);
    return moe_policy_find(name);
}

/* The value spec gives key ("k=v" pieces after ':'), else the template's
 * default; NULL if the policy has no such key. */
static const char *param_value(const moe_policy_ops *ops, const char *spec, const char *key, char *buf, size_t cap) {
    size_t kl = strlen(key);
    const char *args = strchr(spec, ':');
    for (const char *c = args ? args + 1 : ""; *c;) {
        size_t n = strcspn(c, ",");
        if (n > kl && !strncmp(c, key, kl) && c[kl] == '=') {
            snprintf(buf, cap, "%.*s", (int)(n - kl - 1), c + kl + 1);
            return buf;
        }
        c += n + (c[n] == ',');
    }
    for (size_t i = 0; i < ops->n_params; i++)
        if (!strcmp(ops->params[i].key, key)) return ops->params[i].default_value;
    return NULL;
}

int moe_policy_is_oracle(const char *spec) {
    char key[64], buf[256];
    const moe_policy_ops *ops = ops_of(spec);
    if (!ops || !ops->oracle_when) return 0;
    const char *eq = strchr(ops->oracle_when, '=');
    if (!eq) return 1; /* "": always */
    snprintf(key, sizeof key, "%.*s", (int)(eq - ops->oracle_when), ops->oracle_when);
    const char *v = param_value(ops, spec, key, buf, sizeof buf);
    return v && !strcmp(v, eq + 1);
}

int moe_policy_rank(const char *canonical) {
    const moe_policy_ops *ops = ops_of(canonical);
    int i = 0;
    while (registry[i] && registry[i] != ops) i++;
    return i;
}
