#include "CBuildStamp.h"

// Weak, so a stamped build replaces it at link time: scripts/lib/build-stamp compiles an
// object with the strong definition and the build passes it with -Xlinker. Only the link
// step changes, nothing is recompiled, and a build that was not stamped links this one.
__attribute__((weak)) const char *tsmp_build_commit(void) { return 0; }
