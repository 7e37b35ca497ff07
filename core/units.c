/* units.c: see units.h. */
#include "units.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *moe_bytes_text(double bytes, char *buf, size_t n) {
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    int u = 0;
    double v = bytes;
    while (u < 5 && (v >= 1024.0 || v <= -1024.0)) v /= 1024.0, u++;
    if (u == 0) snprintf(buf, n, "%.0f B", v);
    else snprintf(buf, n, "%.1f %s", v, unit[u]);
    return buf;
}

/* Digits after the point that leave three significant ones (v >= 0). */
static int decimals_for(double v) { return v < 10 ? 2 : v < 100 ? 1 : 0; }

/* v rounded as it will print with decimals_for(v) digits. */
static double as_printed(double v) {
    double scale = pow(10, decimals_for(v));
    return round(v * scale) / scale;
}

const char *moe_duration_text(double seconds, char *buf, size_t n) {
    static const struct { const char *name; double size, limit; } unit[] = {
        {"ns", 1e-9, 1000}, {"µs", 1e-6, 1000}, {"ms", 1e-3, 1000},
        {"s", 1, 60},       {"min", 60, 60},     {"h", 3600, INFINITY},
    };
    if (!isfinite(seconds)) return snprintf(buf, n, "n/a"), buf;
    if (seconds == 0) return snprintf(buf, n, "0 s"), buf;
    const char *sign = seconds < 0 ? "-" : "";
    double a = fabs(seconds);
    size_t u = 0;
    /* Take the largest unit the value reaches, then move up while the
     * printed value would reach that unit's limit (59.999 s is "1.00 min",
     * not "60.00 s"). */
    while (u + 1 < sizeof unit / sizeof *unit && a >= unit[u + 1].size) u++;
    while (u + 1 < sizeof unit / sizeof *unit && as_printed(a / unit[u].size) >= unit[u].limit) u++;
    double v = a / unit[u].size;
    if (u == 0 && v < 1) snprintf(buf, n, "%s%.3g %s", sign, v, unit[u].name); /* below 1 ns */
    else snprintf(buf, n, "%s%.*f %s", sign, decimals_for(as_printed(v)), v, unit[u].name);
    return buf;
}

int moe_bytes_parse(const char *what, const char *s, const char *also, uint64_t *bytes, moe_error *err) {
    static const struct { const char *unit; double mult; } units[] = {
        {"B", 1}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
        {"KiB", 1024.0}, {"MiB", 1048576.0}, {"GiB", 1073741824.0}, {"TiB", 1099511627776.0},
    };
    if (!s || !*s || *s == '-' || *s == '+' || isspace((unsigned char)*s))
        return moe_fail(err, "%s: expected a size such as 12GiB, got '%s'", what, s ? s : "");
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !isfinite(v) || v < 0) return moe_fail(err, "%s: bad size '%s'", what, s);
    while (isspace((unsigned char)*end)) end++;
    if (!*end) return 1;
    for (size_t i = 0; i < sizeof units / sizeof *units; i++)
        if (!strcasecmp(end, units[i].unit) && (strcmp(units[i].unit, "B") || !strcmp(end, "B"))) {
            double b = floor(v * units[i].mult);
            if (b < 1 || b > 1.8e19) return moe_fail(err, "%s: '%s' out of range", what, s);
            *bytes = (uint64_t)b;
            return 0;
        }
    return moe_fail(err, "%s: unknown unit '%s' in '%s' (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB%s%s)", what, end, s,
                    also ? ", " : "", also ? also : "");
}
