#ifndef TSMP_BUILD_STAMP_H
#define TSMP_BUILD_STAMP_H

/// The git commit this binary was built from ("0123456789ab", "-dirty" appended when the tree
/// had changes), or NULL when nobody stamped the build (a plain `swift build`, the tests).
const char *tsmp_build_commit(void);

#endif
