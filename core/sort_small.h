/* sort_small.h: ascending insertion sort of a few expert ids. The sets the
 * replay, the prefetchers and the miss-ratio curve sort hold top-k ids of a
 * handful of tokens, where insertion sort beats anything with set-up cost. */
#ifndef MOE_SORT_SMALL_H
#define MOE_SORT_SMALL_H

#include <stdint.h>

static inline void moe_sort_u16(uint16_t *a, uint32_t n) {
    for (uint32_t i = 1; i < n; i++) {
        uint16_t v = a[i];
        uint32_t j = i;
        while (j && a[j - 1] > v) { a[j] = a[j - 1]; j--; }
        a[j] = v;
    }
}

#endif
