/* sseparse.c - incremental text/event-stream parser; see sseparse.h. */
#include "tools/theater/sseparse.h"

#include <string.h>

void sseparse_init(struct sseparse *p, size_t max_line, sseparse_fn fn, void *user)
{
	memset(p, 0, sizeof(*p));
	buf_init(&p->line, max_line);
	buf_init(&p->data, 0);
	buf_init(&p->event, 256);
	buf_init(&p->id, 256);
	p->fn = fn;
	p->user = user;
}

void sseparse_release(struct sseparse *p)
{
	if (!p)
		return;
	buf_release(&p->line);
	buf_release(&p->data);
	buf_release(&p->event);
	buf_release(&p->id);
}

/* A blank line: emit the frame (when it has data) and start a new one. */
static int dispatch(struct sseparse *p)
{
	int stop = 0;
	if (p->has_data)
		stop = p->fn(p->user, p->event.len ? p->event.data : "message",
			     p->id.len ? p->id.data : NULL, p->data.data ? p->data.data : "");
	buf_reset(&p->data);
	buf_reset(&p->event);
	p->has_data = 0;
	return stop;
}

static enum err_code field(struct sseparse *p, const char *line, size_t len)
{
	const char *colon = memchr(line, ':', len);
	size_t nlen = colon ? (size_t)(colon - line) : len;
	const char *v = colon ? colon + 1 : line + len;
	size_t vlen = (size_t)(line + len - v);
	if (vlen && *v == ' ') {
		v++;
		vlen--;
	}
	if (nlen == 4 && memcmp(line, "data", 4) == 0) {
		enum err_code rc = p->has_data ? buf_append(&p->data, "\n", 1) : ERR_OK;
		p->has_data = 1;
		return rc ? rc : buf_append(&p->data, v, vlen);
	}
	if (nlen == 5 && memcmp(line, "event", 5) == 0) {
		buf_reset(&p->event);
		return buf_append(&p->event, v, vlen);
	}
	if (nlen == 2 && memcmp(line, "id", 2) == 0 && !memchr(v, '\0', vlen)) {
		buf_reset(&p->id);
		return buf_append(&p->id, v, vlen);
	}
	return ERR_OK;   /* retry:, comments and unknown fields */
}

/* One complete line in p->line. */
static int line_done(struct sseparse *p, struct err *err)
{
	int stop = 0;
	if (p->line.len == 0) {
		stop = dispatch(p);
	} else if (p->line.data[0] != ':' &&
		   field(p, p->line.data, p->line.len) != ERR_OK) {
		err_set(err, ERR_TOO_LARGE, "an event from the server is too large");
		return -1;
	}
	buf_reset(&p->line);
	return stop;
}

int sseparse_feed(struct sseparse *p, const char *data, size_t len, struct err *err)
{
	for (size_t i = 0; i < len; i++) {
		char ch = data[i];
		if (ch == '\n' && p->cr) {
			p->cr = 0;
			continue;
		}
		p->cr = ch == '\r';
		if (ch == '\n' || ch == '\r') {
			int rc = line_done(p, err);
			if (rc)
				return rc;
			continue;
		}
		if (buf_append(&p->line, &ch, 1) != ERR_OK) {
			err_set(err, ERR_TOO_LARGE, "a line from the server is over %zu bytes",
				p->line.limit);
			return -1;
		}
	}
	return 0;
}
