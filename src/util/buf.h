/* buf.h - a growable byte buffer with a hard size limit.
 *
 * The contents are always NUL-terminated (the NUL is not counted in len), so a
 * buffer of text can be used as a C string. Growth beyond `limit` fails with
 * ERR_TOO_LARGE and leaves the buffer unchanged. A limit of 0 means SIZE_MAX/2.
 * Ownership: the struct is caller-owned (buf_init/buf_release); buf_steal hands
 * the data to the caller (free() it).
 * Threads: no locking; one thread at a time per buffer.
 */
#ifndef THEATER_UTIL_BUF_H
#define THEATER_UTIL_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "src/util/err.h"

struct buf {
	char *data;   /* NULL until the first append */
	size_t len;
	size_t cap;
	size_t limit;
};

void buf_init(struct buf *b, size_t limit);
void buf_release(struct buf *b);
void buf_reset(struct buf *b);                       /* len = 0, keeps memory */
enum err_code buf_reserve(struct buf *b, size_t extra);
enum err_code buf_append(struct buf *b, const void *data, size_t len);
enum err_code buf_puts(struct buf *b, const char *s);
enum err_code buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
enum err_code buf_vprintf(struct buf *b, const char *fmt, va_list ap);
char *buf_steal(struct buf *b, size_t *len_out);     /* never NULL on success paths; "" when empty */

#endif
