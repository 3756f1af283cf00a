/* stats.c — the summary of one variant's samples: median, min, max. */
#include <stdlib.h>

#include "bench.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void bench_stats(double *samples, size_t n, double *median, double *min, double *max)
{
    qsort(samples, n, sizeof(*samples), cmp_double);
    *min = samples[0];
    *max = samples[n - 1];
    *median = n % 2 ? samples[n / 2] : (samples[n / 2 - 1] + samples[n / 2]) / 2;
}
