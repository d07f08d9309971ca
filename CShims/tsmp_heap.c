#include "tsmp_heap.h"
#include <malloc.h>

size_t tsmp_heap_in_use_bytes(void) {
    struct mallinfo2 info = mallinfo2();
    /* uordblks misses blocks malloc served with mmap (large arrays, >= 128 KiB by default):
     * hblkhd counts those. */
    return info.uordblks + info.hblkhd;
}
