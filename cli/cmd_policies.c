/* cmd_policies.c: `moesim policies` — list the registry. */
#include <stdio.h>
#include <string.h>

#include "../core/policy.h"
#include "commands.h"

int cmd_policies(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        puts("usage: moesim policies [--names]\n\nList every eviction policy with its parameters and rule.\n\n"
             "  --names      the names alone, one a line (for scripts and shell completion)");
        return 0;
    }
    if (argc == 2 && !strcmp(argv[1], "--names")) {
        for (const moe_policy_ops *const *p = moe_policy_list(); *p; p++) puts((*p)->name);
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "moesim policies: unexpected argument '%s'\n", argv[1]);
        return 2;
    }
    for (const moe_policy_ops *const *p = moe_policy_list(); *p; p++)
        printf("%-12s %s\n", (*p)->name, (*p)->summary);
    return 0;
}
