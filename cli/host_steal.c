/* host_steal.c: the "steal" column of /proc/stat (host_steal.h). */
#include <math.h>
#include <stdio.h>
#include <unistd.h>

#include "host_steal.h"

double moe_host_steal_s(void) {
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return NAN;
    /* "cpu  user nice system idle iowait irq softirq steal ...", USER_HZ ticks */
    unsigned long long v[8];
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
                   &v[7]);
    fclose(f);
    long hz = sysconf(_SC_CLK_TCK);
    if (n != 8 || hz <= 0) return NAN;
    return (double)v[7] / (double)hz;
}

double moe_host_steal_share(double before_s, double after_s, double wall_s) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (isnan(before_s) || isnan(after_s) || !(wall_s > 0) || cpus < 1) return NAN;
    double s = (after_s - before_s) / (wall_s * (double)cpus);
    return s < 0 ? 0 : s > 1 ? 1 : s;
}
