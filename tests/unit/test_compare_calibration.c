/* Calibration of the comparison's 95 % bootstrap interval (web/compare.h: compare_bootstrap),
 * the statistical property behind every "better"/"worse" verdict:
 *   - no shift: over 300 independent null data sets (LCP-like lognormal, n = 200 a side) the
 *     interval excludes 0 in at most 24 (8 %; nominal 5 %; P(Binomial(300, 0.05) > 24) < 0.01,
 *     so a failure means an interval that is too narrow, not bad luck);
 *   - a real shift (median 2000 -> 2600 ms, n = 200) is detected in at least 95 % of 100 data
 *     sets (power), and its interval covers the true p75 difference in at least 90 %;
 *   - a heavy-tailed metric (CLS-like: 60 % zeros, the rest exponential) keeps the false
 *     detection rate at most 8 % too (ties at 0 stress a percentile bootstrap).
 * The observed rates are printed as TAP comments. */
#include "config.h"

#include "web/compare.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "tap.h"

static uint64_t rs;

static double unif(void)
{
    uint64_t z = (rs += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return ((double)(z >> 11) + 0.5) / 9007199254740992.0;
}

static double lognormal(double median, double sigma)
{
    return median * exp(sigma * sqrt(-2 * log(unif())) * cos(2 * M_PI * unif()));
}

static double cls_like(void)
{
    return unif() < 0.6 ? 0 : -0.08 * log(unif());
}

#define N 200

int main(void)
{
    double a[N], b[N], diff, lo, hi;
    int fp = 0, sets = 300, bad = 0;
    for (int s = 1; s <= sets; s++) {
        rs = 7000 + (uint64_t)s;
        for (int i = 0; i < N; i++) {
            a[i] = lognormal(2000, 0.5);
            b[i] = lognormal(2000, 0.5);
        }
        if (compare_bootstrap(a, N, b, N, 75, (uint64_t)s, &diff, &lo, &hi) != 0 || !(lo <= hi))
            bad++;
        else if (lo > 0 || hi < 0)
            fp++;
    }
    printf("# null (lognormal, n=%d): %d of %d intervals exclude 0 (%.1f %%, nominal 5 %%)\n", N,
           fp, sets, 100.0 * fp / sets);
    TAP_OK(bad == 0, "calibration/bootstrap_runs");
    TAP_OK(fp <= 24, "calibration/null_false_detections_at_most_8pct (%d/%d)", fp, sets);

    /* power and coverage: true p75 of lognormal(m, s) is m * exp(s * 0.67449) */
    double truth = (2600 - 2000) * exp(0.5 * 0.6744897501960817);
    int found = 0, covered = 0, runs = 100;
    for (int s = 1; s <= runs; s++) {
        rs = 90000 + (uint64_t)s;
        for (int i = 0; i < N; i++) {
            a[i] = lognormal(2000, 0.5);
            b[i] = lognormal(2600, 0.5);
        }
        if (compare_bootstrap(a, N, b, N, 75, (uint64_t)s, &diff, &lo, &hi) != 0)
            continue;
        found += lo > 0;
        covered += lo <= truth && truth <= hi;
    }
    printf("# shift 2000 -> 2600 ms (n=%d): detected %d/%d, true p75 diff %.0f ms covered %d/%d\n",
           N, found, runs, truth, covered, runs);
    TAP_OK(found >= 95, "calibration/shift_detected_95pct (%d/%d)", found, runs);
    TAP_OK(covered >= 90, "calibration/coverage_of_true_difference (%d/%d)", covered, runs);

    fp = 0;
    for (int s = 1; s <= sets; s++) {
        rs = 300000 + (uint64_t)s;
        for (int i = 0; i < N; i++) {
            a[i] = cls_like();
            b[i] = cls_like();
        }
        if (compare_bootstrap(a, N, b, N, 75, (uint64_t)s, &diff, &lo, &hi) == 0 &&
            (lo > 0 || hi < 0))
            fp++;
    }
    printf("# null (CLS-like, 60 %% zeros): %d of %d intervals exclude 0 (%.1f %%)\n", fp, sets,
           100.0 * fp / sets);
    TAP_OK(fp <= 24, "calibration/null_with_ties_at_most_8pct (%d/%d)", fp, sets);
    TAP_DONE();
}
