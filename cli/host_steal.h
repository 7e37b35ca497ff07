/* host_steal.h: time this guest's CPUs were ready to run but the
 * hypervisor did not run them ("steal" in /proc/stat). On the two-vCPU VM
 * moesim is developed on, a tinymix run lost 1-25% of its CPU time this
 * way, varying run to run, and its decode time followed the loss (1.6 s
 * at 12% against 2.1 s at 25%). Most of it is not other guests' work but
 * the host waking a halted vCPU late: on 12-02 two busy loops saw 1-2%
 * steal while a loop of 200 us of work and 50 us sleeps saw 28% (each
 * sleep overshooting by ~330 us), and an offloaded run, which sleeps on
 * every read, 30-40%, for minutes; an hour earlier the same runs saw 0%.
 * So it is reported, as the state the run met, not used to discard runs. */
#ifndef MOE_HOST_STEAL_H
#define MOE_HOST_STEAL_H

/* Seconds of steal summed over all CPUs since boot; NaN where the kernel
 * does not report it (not Linux, or no /proc). */
double moe_host_steal_s(void);

/* The share of the CPUs' time stolen between two readings `wall_s` apart
 * (0..1), NaN if either reading is NaN or wall_s is not positive. */
double moe_host_steal_share(double before_s, double after_s, double wall_s);

#endif
