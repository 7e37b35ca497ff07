/* test_bootstrap.c: sequence bootstrap of hit rates (core/bootstrap.h) on
 * hand-worked cases, against brute-force enumeration of every resample, and
 * the paired difference's sign. */
#include "../../core/bootstrap.h"
#include "check.h"

#define R MOE_BOOTSTRAP_RESAMPLES

/* One sequence: every resample is that sequence, so the interval has zero
 * width at its rate. */
static void one_sequence_zero_width(void) {
    uint64_t acc[1] = {10}, hits[1] = {7};
    moe_seq_counts run = {1, acc, hits};
    double v[R], lo, hi;
    moe_error err = {{0}};
    CHECK(moe_bootstrap_rates(&run, 1, R, 1, v, &err) == 0);
    for (size_t r = 0; r < R; r++) CHECK(v[r] == 0.7);
    CHECK_EQ_U(moe_percentile_interval(v, R, 0.95, &lo, &hi), R);
    CHECK(lo == 0.7 && hi == 0.7);
}

/* Two sequences, 2/10 and 9/10: a resample draws {a,a}, {a,b}, {b,a} or
 * {b,b}, so its rate is 0.2, 11/20 or 0.9, with probabilities 1/4, 1/2, 1/4.
 * Every value is one of those; the 2.5% and 97.5% points lie inside the
 * outer quarters, so the interval is [0.2, 0.9]. With unequal accesses
 * (1/2 and 30/40) the middle value is pooled, 31/42, not the mean of rates. */
static void two_sequences_achievable_bounds(void) {
    uint64_t acc[2] = {10, 10}, hits[2] = {2, 9};
    moe_seq_counts run = {2, acc, hits};
    double v[R], lo, hi;
    moe_error err = {{0}};
    CHECK(moe_bootstrap_rates(&run, 1, R, 1, v, &err) == 0);
    size_t n_mid = 0;
    for (size_t r = 0; r < R; r++) {
        CHECK(v[r] == 2.0 / 10 || v[r] == 11.0 / 20 || v[r] == 9.0 / 10);
        n_mid += v[r] == 11.0 / 20;
    }
    CHECK(n_mid > 400 && n_mid < 600); /* about half; a wrong draw (always one index) fails */
    moe_percentile_interval(v, R, 0.95, &lo, &hi);
    CHECK(lo == 0.2 && hi == 0.9);

    uint64_t acc2[2] = {2, 40}, hits2[2] = {1, 30};
    moe_seq_counts run2 = {2, acc2, hits2};
    CHECK(moe_bootstrap_rates(&run2, 1, R, 3, v, &err) == 0);
    int saw_pooled = 0;
    for (size_t r = 0; r < R; r++) {
        CHECK(v[r] == 0.5 || v[r] == 31.0 / 42 || v[r] == 0.75);
        saw_pooled |= v[r] == 31.0 / 42;
    }
    CHECK(saw_pooled);
}

/* The rate of resample r is sum hits / sum accesses over exactly the
 * indices moe_bootstrap_draw gives for r (recomputed here by hand). */
static void rates_follow_the_draws(void) {
    uint64_t acc[5] = {3, 8, 1, 12, 6}, hits[5] = {1, 5, 0, 11, 2};
    moe_seq_counts run = {5, acc, hits};
    double v[60];
    moe_error err = {{0}};
    CHECK(moe_bootstrap_rates(&run, 1, 60, 11, v, &err) == 0);
    size_t idx[5];
    for (size_t r = 0; r < 60; r += 7) {
        CHECK(moe_bootstrap_draw(5, 60, 11, r, idx, &err) == 0);
        uint64_t a = 0, h = 0;
        for (int i = 0; i < 5; i++) {
            CHECK(idx[i] < 5);
            a += acc[idx[i]];
            h += hits[idx[i]];
        }
        CHECK(v[r] == (double)h / (double)a);
    }
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The percentile rule against its definition by counting: the lower bound
 * is the smallest value v with #{x <= v} >= R * 0.025, the upper the
 * smallest with #{x <= v} >= R * 0.975. Checked on the exact bootstrap
 * distribution of 4 sequences (all 4^4 = 256 ordered resamples, each
 * once), then the Monte Carlo interval (20000 resamples) against it. */
static void percentile_rule_brute_force(void) {
    uint64_t acc[4] = {15, 15, 24, 25}, hits[4] = {4, 4, 6, 23};
    double all[256], sorted[256];
    size_t k = 0;
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++)
            for (int c = 0; c < 4; c++)
                for (int d = 0; d < 4; d++) {
                    uint64_t s = acc[a] + acc[b] + acc[c] + acc[d], h = hits[a] + hits[b] + hits[c] + hits[d];
                    all[k++] = (double)h / (double)s;
                }
    memcpy(sorted, all, sizeof all);
    qsort(sorted, 256, sizeof *sorted, cmp_d);
    double want[2];
    const double p[2] = {0.025, 0.975};
    for (int q = 0; q < 2; q++) {
        want[q] = NAN;
        for (int i = 0; i < 256 && isnan(want[q]); i++) {
            int count = 0;
            for (int j = 0; j < 256; j++) count += all[j] <= sorted[i];
            if (count >= 256 * p[q]) want[q] = sorted[i];
        }
        /* the exact CDF stays 0.008 away from p on both sides of the bound
         * (neither bound is an extreme), so 20000 draws (standard error of
         * the CDF about 0.001) cannot land on another value */
        int below = 0, upto = 0;
        for (int j = 0; j < 256; j++) below += all[j] < want[q], upto += all[j] <= want[q];
        CHECK(below > 0 && upto < 256 && below / 256.0 < p[q] - 0.008 && upto / 256.0 > p[q] + 0.008);
    }
    double lo, hi;
    memcpy(sorted, all, sizeof all);
    CHECK_EQ_U(moe_percentile_interval(sorted, 256, 0.95, &lo, &hi), 256);
    CHECK(lo == want[0] && hi == want[1]);

    static double v[20000];
    moe_seq_counts run = {4, acc, hits};
    moe_error err = {{0}};
    CHECK(moe_bootstrap_rates(&run, 1, 20000, 5, v, &err) == 0);
    moe_percentile_interval(v, 20000, 0.95, &lo, &hi);
    CHECK(lo == want[0] && hi == want[1]);
}

/* The nearest-rank rule by hand on 1..R shuffled: R = 1000 gives ranks
 * ceil(25) = 25 and ceil(975) = 975 (the products 1000 x 0.025 and
 * 1000 x 0.975 are not exact in binary: no rank may slip by one); R = 40:
 * ranks 1 and 39; R = 10: ranks ceil(0.25) = 1 and ceil(9.75) = 10. */
static void percentile_rule_by_hand(void) {
    static const size_t ns[3] = {1000, 40, 10}, want_lo[3] = {25, 1, 1}, want_hi[3] = {975, 39, 10};
    static double v[1000];
    for (int c = 0; c < 3; c++) {
        size_t n = ns[c];
        for (size_t i = 0; i < n; i++) v[i] = (double)((i * 7919) % n + 1); /* a permutation of 1..n */
        double lo, hi;
        CHECK_EQ_U(moe_percentile_interval(v, n, 0.95, &lo, &hi), n);
        CHECK_EQ_U(lo, want_lo[c]);
        CHECK_EQ_U(hi, want_hi[c]);
    }
}

/* Paired differences: policy A hits at least as often as B in every
 * sequence (more in some), so on every shared resample A's rate >= B's and
 * the difference's interval is >= 0; A better everywhere gives lo > 0 and
 * the reverse difference hi < 0. Evaluating A alone and B alone with the
 * same seed gives the same values as together: the resamples do not depend
 * on the set of runs. */
static void paired_difference_sign(void) {
    uint64_t acc[6] = {40, 35, 50, 20, 45, 30};
    uint64_t ha[6] = {30, 20, 41, 10, 40, 25}, hb[6] = {30, 18, 35, 10, 33, 24};
    moe_seq_counts runs[2] = {{6, acc, ha}, {6, acc, hb}};
    static double v[2 * R], va[R], vb[R], d[R];
    moe_error err = {{0}};
    CHECK(moe_bootstrap_rates(runs, 2, R, 9, v, &err) == 0);
    CHECK(moe_bootstrap_rates(&runs[0], 1, R, 9, va, &err) == 0);
    CHECK(moe_bootstrap_rates(&runs[1], 1, R, 9, vb, &err) == 0);
    for (size_t r = 0; r < R; r++) {
        CHECK(v[2 * r] == va[r] && v[2 * r + 1] == vb[r]);
        d[r] = va[r] - vb[r];
        CHECK(d[r] >= 0);
    }
    double lo, hi;
    moe_percentile_interval(d, R, 0.95, &lo, &hi);
    CHECK(lo >= 0 && hi > 0);

    uint64_t hc[6] = {31, 21, 42, 11, 41, 26}; /* one more hit than A everywhere */
    moe_seq_counts rc = {6, acc, hc};
    static double vc[R];
    CHECK(moe_bootstrap_rates(&rc, 1, R, 9, vc, &err) == 0);
    for (size_t r = 0; r < R; r++) d[r] = vc[r] - va[r];
    moe_percentile_interval(d, R, 0.95, &lo, &hi);
    CHECK(lo > 0);
    for (size_t r = 0; r < R; r++) d[r] = va[r] - vc[r];
    moe_percentile_interval(d, R, 0.95, &lo, &hi);
    CHECK(hi < 0);
}

/* Same seed, same values; another seed, other resamples; seeds GSL would
 * alias (0, beyond 32 bits) and mismatched runs are refused. */
static void seeds_and_errors(void) {
    uint64_t acc[8] = {5, 6, 7, 8, 9, 10, 11, 12}, hits[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    moe_seq_counts run = {8, acc, hits};
    double a[100], b[100], c[100];
    moe_error err = {{0}};
    CHECK(moe_bootstrap_rates(&run, 1, 100, 4, a, &err) == 0);
    CHECK(moe_bootstrap_rates(&run, 1, 100, 4, b, &err) == 0);
    CHECK(moe_bootstrap_rates(&run, 1, 100, 5, c, &err) == 0);
    CHECK(!memcmp(a, b, sizeof a));
    CHECK(memcmp(a, c, sizeof a) != 0);
    CHECK(moe_bootstrap_rates(&run, 1, 100, 0, a, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "seed 0");
    CHECK(moe_bootstrap_rates(&run, 1, 100, 1ull << 32, a, &err) == -1);
    moe_seq_counts two[2] = {run, {7, acc, hits}};
    CHECK(moe_bootstrap_rates(two, 2, 100, 1, a, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "same sequences");
}

/* A resample of sequences without accesses has no rate (NaN); the interval
 * is taken over the others, and is NaN when there are none. */
static void empty_sequences(void) {
    uint64_t acc[2] = {0, 4}, hits[2] = {0, 3};
    moe_seq_counts run = {2, acc, hits};
    double v[R], lo, hi;
    moe_error err = {{0}};
    CHECK(moe_bootstrap_rates(&run, 1, R, 1, v, &err) == 0);
    size_t nan = 0;
    for (size_t r = 0; r < R; r++) {
        CHECK(isnan(v[r]) || v[r] == 0.75);
        nan += isnan(v[r]);
    }
    CHECK(nan > 150 && nan < 350); /* {0,0} in a quarter of the draws */
    CHECK_EQ_U(moe_percentile_interval(v, R, 0.95, &lo, &hi), R - nan);
    CHECK(lo == 0.75 && hi == 0.75);
    double none[3] = {NAN, NAN, NAN};
    CHECK_EQ_U(moe_percentile_interval(none, 3, 0.95, &lo, &hi), 0);
    CHECK(isnan(lo) && isnan(hi));
}

int main(void) {
    RUN(one_sequence_zero_width);
    RUN(two_sequences_achievable_bounds);
    RUN(rates_follow_the_draws);
    RUN(percentile_rule_brute_force);
    RUN(percentile_rule_by_hand);
    RUN(paired_difference_sign);
    RUN(seeds_and_errors);
    RUN(empty_sequences);
    CHECK_EXIT();
}
