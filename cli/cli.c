/* cli.c: option value parsing and error printing for the commands. */
#include "cli.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void cli_progress_start(cli_progress *p, const char *cmd, const char *what, const char *unit, double unit_div) {
    *p = (cli_progress){.cmd = cmd, .what = what, .unit = unit, .unit_div = unit_div, .start = now_s()};
}

void cli_progress_update(void *ctx, uint64_t done, uint64_t total) {
    cli_progress *p = ctx;
    static double after = -1;
    if (after < 0) after = getenv("MOESIM_PROGRESS_AFTER") ? atof(getenv("MOESIM_PROGRESS_AFTER")) : 1.0;
    double t = now_s();
    if (!cli_is_tty(2) || t - p->start < after || t - p->last < 0.2) return;
    p->last = t, p->drawn = 1;
    if (total)
        fprintf(stderr, "\rmoesim %s: %s: %3.0f%% (%.1f of %.1f %s) ", p->cmd, p->what,
                100.0 * (double)done / (double)total, (double)done / p->unit_div, (double)total / p->unit_div, p->unit);
    else
        fprintf(stderr, "\rmoesim %s: %s: %.1f %s ", p->cmd, p->what, (double)done / p->unit_div, p->unit);
}

void cli_progress_clear(cli_progress *p) {
    if (p->drawn) fprintf(stderr, "\r%*s\r", 79, ""), p->drawn = 0;
}

void cli_subst(const char *s, const char *placeholder, const char *value, char *out, size_t cap) {
    const char *p = strstr(s, placeholder);
    if (!p) snprintf(out, cap, "%s", s);
    else snprintf(out, cap, "%.*s%s%s", (int)(p - s), s, value, p + strlen(placeholder));
}

int cli_spec_in_list(const char *spec, const char *list) {
    for (const char *c = list; *c;) {
        size_t n = strcspn(c, ",");
        int exact = memchr(c, ':', n) != NULL;
        if (n && !strncmp(spec, c, n) && (!spec[n] || (spec[n] == ':' && !exact))) return 1;
        c += n + (c[n] == ',');
    }
    return 0;
}

static void spec_in_fn(sqlite3_context *cx, int argc, sqlite3_value **v) {
    (void)argc;
    const unsigned char *spec = sqlite3_value_text(v[0]), *list = sqlite3_value_text(v[1]);
    sqlite3_result_int(cx, spec && list && cli_spec_in_list((const char *)spec, (const char *)list));
}

int cli_sql_spec_in(sqlite3 *h) {
    return sqlite3_create_function(h, "spec_in", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, spec_in_fn, NULL, NULL);
}

void cli_csv_field(FILE *f, const char *s) {
    if (!s) return;
    if (strpbrk(s, ",\"\n\r")) {
        fputc('"', f);
        for (; *s; s++) {
            if (*s == '"') fputc('"', f);
            fputc(*s, f);
        }
        fputc('"', f);
    } else {
        fputs(s, f);
    }
}
