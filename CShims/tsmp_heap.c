#include "tsmp_heap.h"
#include <malloc.h>

size_t tsmp_heap_in_use_bytes(void) {
    return mallinfo2().uordblks;
}
