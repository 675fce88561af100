/* dirs.c - folders made as `mkdir -p` makes them; see dirs.h. Shared by the
 * content store (its folders under THEATER_HOME) and `theater new --dir`. */
#include "src/util/dirs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum err_code dirs_make(const char *path, struct err *err)
{
	char *p = strdup(path);
	enum err_code rc = ERR_OK;
	if (!p)
		return err_set(err, ERR_NOMEM, "out of memory");
	for (char *q = p + 1;; q++) {
		if (*q != '/' && *q != '\0')
			continue;
		char saved = *q;
		*q = '\0';
		if (mkdir(p, 0755) != 0 && errno != EEXIST) {
			rc = err_errno(err, ERR_IO, errno, "cannot create directory '%s'", p);
			break;
		}
		*q = saved;
		if (saved == '\0')
			break;
	}
	free(p);
	return rc;
}
