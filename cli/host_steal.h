/* host_steal.h: CPU time the hypervisor ran other guests on this guest's
 * CPUs ("steal" in /proc/stat). On the two-vCPU VM moesim is developed on,
 * a tinymix run lost 1-25% of its CPU time this way, varying run to run,
 * and its decode time followed the loss (1.6 s at 12% against 2.1 s at
 * 25%): a measured run says how much the host took, so a row can be told
 * from one the timing model got wrong. */
#ifndef MOE_HOST_STEAL_H
#define MOE_HOST_STEAL_H

/* Seconds of steal summed over all CPUs since boot; NaN where the kernel
 * does not report it (not Linux, or no /proc). */
double moe_host_steal_s(void);

/* The share of the CPUs' time stolen between two readings `wall_s` apart
 * (0..1), NaN if either reading is NaN or wall_s is not positive. */
double moe_host_steal_share(double before_s, double after_s, double wall_s);

#endif
