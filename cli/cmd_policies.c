/* cmd_policies.c: `moesim policies [NAME]` — the registry: every eviction
 * policy with its parameters (defaults) and whether it is an oracle, or one
 * policy's rule, parameters, oracle status and reference. The text lives in
 * each policy's ops struct (a file in core/policies/), so adding a policy stays one
 * file plus a registry line. */
#include <stdio.h>
#include <string.h>

#include "../core/policy.h"
#include "cli.h"
#include "commands.h"

static const char policies_usage[] =
    "usage: moesim policies [NAME[:k=v,...] | --names]\n"
    "\n"
    "Without NAME: every eviction policy, one line each (name, what it evicts),\n"
    "then its parameters with their defaults; oracles (policies that read the\n"
    "future of the replayed trace: upper bounds, not deployable) are marked.\n"
    "With NAME: the policy's exact rule, its parameters (type, range, default,\n"
    "meaning), whether it is an oracle (for the parameters given, defaults\n"
    "filled in) and where the rule comes from.\n"
    "\n"
    "  --names      the names alone, one a line (for scripts and shell completion)\n"
    "  -h, --help   this text\n";

/* "name:k=v,..." with every default (the spec a bare name means). */
static void default_spec(const moe_policy_ops *ops, char *buf, size_t cap) {
    size_t n = (size_t)snprintf(buf, cap, "%s", ops->name);
    for (size_t i = 0; i < ops->n_params && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%s=%s", i ? "," : ":", ops->params[i].key, ops->params[i].default_value);
}

/* When the policy reads the future, in words ("" if never). */
static const char *oracle_words(const moe_policy_ops *ops, char *buf, size_t cap) {
    if (!ops->oracle_when) snprintf(buf, cap, "%s", "");
    else if (!*ops->oracle_when) snprintf(buf, cap, "oracle");
    else snprintf(buf, cap, "oracle with %s%s", ops->oracle_when, moe_policy_is_oracle(ops->name) ? " (the default)" : "");
    return buf;
}

/* Print text wrapped at `width` columns, every line indented by `indent`. */
static void wrap(const char *text, int indent, int width) {
    int col = 0;
    for (const char *w = text; *w;) {
        while (*w == ' ') w++;
        size_t n = strcspn(w, " ");
        if (!n) break;
        if (col && col + 1 + (int)n > width) putchar('\n'), col = 0;
        if (!col) col = printf("%*s", indent, "");
        else col += printf(" ");
        col += printf("%.*s", (int)n, w);
        w += n;
    }
    if (col) putchar('\n');
}

static void list_all(void) {
    char orc[96];
    for (const moe_policy_ops *const *p = moe_policy_list(); *p; p++) {
        const moe_policy_ops *o = *p;
        oracle_words(o, orc, sizeof orc);
        printf("%-13s %s%s\n", o->name, !strcmp(orc, "oracle") ? "[oracle] " : "", o->summary);
        if (o->n_params || (o->oracle_when && *o->oracle_when)) {
            printf("%-13s", "");
            for (size_t i = 0; i < o->n_params; i++)
                printf("%s%s=%s", i ? ", " : " parameters: ", o->params[i].key, o->params[i].default_value);
            if (o->oracle_when && *o->oracle_when) printf("; [%s]", orc);
            printf("\n");
        }
    }
    printf("\n[oracle] = reads the future of the replayed trace: an upper bound, not a policy a system can run.\n"
           "`moesim policies NAME`: a policy's rule, parameters and reference.\n");
}

static int show_one(const char *spec) {
    char name[64], orc[96], def[512];
    size_t n = strcspn(spec, ":");
    snprintf(name, sizeof name, "%.*s", (int)(n < sizeof name ? n : sizeof name - 1), spec);
    const moe_policy_ops *o = moe_policy_find(name);
    if (!o) {
        const char *names[64];
        size_t k = 0;
        for (const moe_policy_ops *const *p = moe_policy_list(); *p && k < 64; p++) names[k++] = (*p)->name;
        char close[512], all[1024] = "";
        cli_close_names(name, names, k, close, sizeof close);
        for (size_t i = 0; i < k; i++) snprintf(all + strlen(all), sizeof all - strlen(all), "%s%s", i ? ", " : "", names[i]);
        if (*close) fprintf(stderr, "moesim policies: unknown policy '%s'; close: %s (known: %s)\n", name, close, all);
        else fprintf(stderr, "moesim policies: unknown policy '%s' (known: %s)\n", name, all);
        return 2;
    }
    default_spec(o, def, sizeof def);
    printf("%s: %s\n\nRule\n", o->name, o->summary);
    wrap(o->description ? o->description : o->summary, 2, 78);
    printf("\nParameters%s\n", o->n_params ? "" : ": none");
    for (size_t i = 0; i < o->n_params; i++) {
        const moe_param *q = &o->params[i];
        char kind[96];
        if (q->type == MOE_PARAM_STRING) snprintf(kind, sizeof kind, "text");
        else snprintf(kind, sizeof kind, "%s %g..%g", q->type == MOE_PARAM_INT ? "integer" : "number", q->min, q->max);
        printf("  %-10s %s, default %s: %s\n", q->key, kind, q->default_value, q->help ? q->help : "");
    }
    if (o->n_params) printf("  (default spec: %s)\n", def);
    oracle_words(o, orc, sizeof orc);
    printf("\nOracle\n");
    if (!o->oracle_when) printf("  no: it decides from the past only\n");
    else if (!*o->oracle_when) printf("  yes, always: it reads the future of the replayed trace (an upper bound)\n");
    else {
        printf("  %s: it reads the future of the replayed trace (an upper bound)\n", orc);
        if (spec[n] == ':')
            printf("  %s: %s\n", spec, moe_policy_is_oracle(spec) ? "an oracle" : "not an oracle");
    }
    printf("\nReference\n");
    wrap(o->reference ? o->reference : "-", 2, 78);
    return 0;
}

int cmd_policies(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(policies_usage, stdout);
        return 0;
    }
    if (argc == 2 && !strcmp(argv[1], "--names")) { /* for scripts and shell completion */
        for (const moe_policy_ops *const *p = moe_policy_list(); *p; p++) puts((*p)->name);
        return 0;
    }
    if (argc > 2 || (argc > 1 && argv[1][0] == '-')) {
        fprintf(stderr, "moesim policies: unexpected argument '%s'\n%s", argv[argc > 2 ? 2 : 1], policies_usage);
        return 2;
    }
    if (argc == 2) return show_one(argv[1]);
    list_all();
    return 0;
}
