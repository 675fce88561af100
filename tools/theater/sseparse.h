/* sseparse.h - an incremental parser of server-sent events (the text/event-
 * stream format of the HTML standard): bytes in, whole frames out.
 *
 * Lines end in LF, CR or CRLF (a CR at the end of one chunk followed by LF at
 * the start of the next is one line end); `field: value` lines build a frame
 * (id, event, data; several data lines join with LF); a blank line emits it;
 * comment lines (":") and unknown fields are ignored. A frame with no data is
 * not emitted, as in the standard. The id persists across frames once set.
 * A line longer than the limit fails the feed with ERR_TOO_LARGE.
 * Ownership: caller-owned struct (sseparse_init / sseparse_release).
 */
#ifndef THEATER_CLI_SSEPARSE_H
#define THEATER_CLI_SSEPARSE_H

#include <stddef.h>

#include "src/util/buf.h"
#include "src/util/err.h"

/* Return nonzero to stop: sseparse_feed then returns 1 at once. */
typedef int (*sseparse_fn)(void *user, const char *event, const char *id, const char *data);

struct sseparse {
	struct buf line;     /* the line being read */
	struct buf data;     /* data lines of the frame being built */
	struct buf event;
	struct buf id;       /* last id seen (persists) */
	int has_data;
	int cr;              /* the previous byte was a CR */
	sseparse_fn fn;
	void *user;
};

void sseparse_init(struct sseparse *p, size_t max_line, sseparse_fn fn, void *user);
void sseparse_release(struct sseparse *p);
/* 0: consumed; 1: the callback asked to stop; -1: a line over the limit or out
 * of memory (err says which). */
int sseparse_feed(struct sseparse *p, const char *data, size_t len, struct err *err);

#endif
