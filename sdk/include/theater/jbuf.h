/* theater/jbuf.h - a growable byte buffer for building JSON (and any text) in an actor.
 *
 * Memory comes from theater_alloc, so a buffer lives for one call, which is
 * exactly as long as a new state or a response must live: the host copies
 * them out when the handler returns. Growing allocates a bigger block and
 * copies (the bump allocator cannot grow in place); the old block is simply
 * forgotten until the heap is reset before the next call.
 *
 * Errors: when memory runs out the buffer stops growing and remembers it in
 * `oom`; writes after that are ignored. Check jb_ok() once, at the end.
 * Include theater/actor.h first.
 */
#ifndef THEATER_JBUF_H
#define THEATER_JBUF_H

#include <stdint.h>

struct jb {
	char *p;
	uint32_t len, cap;
	int oom;
};

static inline void jb_init(struct jb *b, uint32_t cap)
{
	b->len = 0;
	b->cap = cap ? cap : 64;
	b->p = theater_alloc(b->cap);
	b->oom = b->p == 0;
	if (b->oom)
		b->cap = 0;
}

static inline int jb_ok(const struct jb *b)
{
	return !b->oom;
}

/* Room for `more` bytes; 0 when memory ran out. */
static inline int jb_reserve(struct jb *b, uint32_t more)
{
	if (b->oom)
		return 0;
	if (more <= b->cap - b->len)
		return 1;
	if (more > UINT32_MAX / 2 - b->len) {
		b->oom = 1;
		return 0;
	}
	uint32_t cap = b->cap * 2 > b->len + more ? b->cap * 2 : b->len + more;
	char *p = theater_alloc(cap);
	if (!p) {
		b->oom = 1;
		return 0;
	}
	theater_memcpy(p, b->p, b->len);
	b->p = p;
	b->cap = cap;
	return 1;
}

static inline void jb_raw(struct jb *b, const void *s, uint32_t n)
{
	if (jb_reserve(b, n)) {
		theater_memcpy(b->p + b->len, s, n);
		b->len += n;
	}
}

static inline void jb_cstr(struct jb *b, const char *s)
{
	jb_raw(b, s, theater_strlen(s));
}

static inline void jb_char(struct jb *b, char c)
{
	jb_raw(b, &c, 1);
}

static inline void jb_int(struct jb *b, int64_t v)
{
	char tmp[24];
	int n = 0;
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
	do {
		tmp[sizeof(tmp) - 1 - n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		tmp[sizeof(tmp) - 1 - n++] = '-';
	jb_raw(b, tmp + sizeof(tmp) - n, (uint32_t)n);
}

/* s[0..n) as a JSON string, quotes included. Bytes from 0x80 up pass through
 * (the text is expected to be UTF-8); control characters are escaped. */
static inline void jb_quote(struct jb *b, const char *s, uint32_t n)
{
	static const char hex[] = "0123456789abcdef";
	jb_char(b, '"');
	for (uint32_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc = c == '"' ? '"' : c == '\\' ? '\\' : c == '\n' ? 'n' : c == '\r' ? 'r'
			 : c == '\t' ? 't' : c == '\b' ? 'b' : c == '\f' ? 'f' : 0;
		if (esc) {
			char e[2] = {'\\', esc};
			jb_raw(b, e, 2);
		} else if (c < 0x20) {
			char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
			jb_raw(b, e, 6);
		} else {
			jb_char(b, (char)c);
		}
	}
	jb_char(b, '"');
}

static inline void jb_quote_cstr(struct jb *b, const char *s)
{
	jb_quote(b, s, theater_strlen(s));
}

#endif
