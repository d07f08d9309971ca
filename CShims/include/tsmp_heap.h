#ifndef TSMP_HEAP_H
#define TSMP_HEAP_H
#include <stddef.h>
/* Bytes of heap in use (glibc mallinfo2: uordblks + hblkhd), for `tsmp bench-engine`'s memory per
 * flow. mallinfo2 is not visible to Swift's Glibc module (it needs glibc >= 2.33 headers). */
size_t tsmp_heap_in_use_bytes(void);
#endif
