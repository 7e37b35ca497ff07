/* units.c: see units.h. */
#include "units.h"

#include <stdio.h>

const char *moe_bytes_text(double bytes, char *buf, size_t n) {
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    int u = 0;
    double v = bytes;
    while (u < 5 && (v >= 1024.0 || v <= -1024.0)) v /= 1024.0, u++;
    if (u == 0) snprintf(buf, n, "%.0f B", v);
    else snprintf(buf, n, "%.1f %s", v, unit[u]);
    return buf;
}
