/* dirs.h - folders made as `mkdir -p` makes them.
 * Threads: thread-safe (touches only its arguments and the file system). */
#ifndef THEATER_UTIL_DIRS_H
#define THEATER_UTIL_DIRS_H

#include "src/util/err.h"

/* Makes path and every missing folder above it (mode 0755); a folder that
 * exists already is fine. ERR_NOMEM, or ERR_IO naming the folder that could not
 * be made. */
enum err_code dirs_make(const char *path, struct err *err);

#endif
