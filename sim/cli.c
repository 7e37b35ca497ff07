/* cli.c: option value parsing and error printing for the commands. */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int cli_parse_u64(const char *opt, const char *s, uint64_t max, uint64_t *out, moe_error *err) {
    char *end;
    errno = 0;
    if (!s || !*s || *s == '-' || *s == '+') return moe_fail(err, "%s: expected a non-negative integer, got '%s'", opt, s ? s : "");
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno) return moe_fail(err, "%s: expected a non-negative integer, got '%s'", opt, s);
    if (v > max) return moe_fail(err, "%s: %llu is larger than %llu", opt, v, (unsigned long long)max);
    *out = v;
    return 0;
}

int cli_error(const char *cmd, const moe_error *err) {
    fprintf(stderr, "moesim %s: %s\n", cmd, err->msg);
    return 1;
}

int cli_is_tty(int fd) { return isatty(fd); }
