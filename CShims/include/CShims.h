/// CShims: only what Swift cannot import (function-like ioctl macros such as TUNSETIFF,
/// variadic ioctl, socket options, libnl glue). Every symbol is prefixed `tsmp_`.
/// One header per concern; this umbrella is what Swift imports.
#ifndef TSMP_CSHIMS_H
#define TSMP_CSHIMS_H
#include "tsmp_io.h"
#include "tsmp_netlink.h"
#include "tsmp_heap.h"
#endif
