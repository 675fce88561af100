/* sse_client.c - see sse_client.h. Parses the event-stream format: lines of
 * "field: value", frames separated by a blank line, comments start with ':'. */
#include "tests/support/sse_client.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct ctx {
	struct sse_result *r;
	char *buf;
	size_t len;
	size_t stop_after, with_id;
	unsigned stall_ms;             /* before taking the first bytes */
	struct sse_frame cur;
};

static void add_frame(struct ctx *c)
{
	if (!c->cur.data && !c->cur.event && !c->cur.id)
		return;
	struct sse_result *r = c->r;
	r->frames = realloc(r->frames, (r->n + 1) * sizeof(*r->frames));
	if (!c->cur.event)
		c->cur.event = strdup("message");
	if (!c->cur.data)
		c->cur.data = strdup("");
	r->frames[r->n++] = c->cur;
	if (c->cur.id)
		c->with_id++;
	memset(&c->cur, 0, sizeof(c->cur));
}

static void line(struct ctx *c, const char *l)
{
	if (!*l) {
		add_frame(c);
		return;
	}
	if (l[0] == ':') {
		if (strstr(l, "ping"))
			c->r->pings++;
		return;
	}
	const char *colon = strchr(l, ':');
	size_t n = colon ? (size_t)(colon - l) : strlen(l);
	const char *v = colon ? colon + 1 : "";
	if (*v == ' ')
		v++;
	if (!strncmp(l, "retry", n) && n == 5)
		c->r->saw_retry = 1;
	else if (!strncmp(l, "id", n) && n == 2) {
		free(c->cur.id);
		c->cur.id = strdup(v);
	} else if (!strncmp(l, "event", n) && n == 5) {
		free(c->cur.event);
		c->cur.event = strdup(v);
	} else if (!strncmp(l, "data", n) && n == 4) {
		free(c->cur.data);
		c->cur.data = strdup(v);
	}
}

static size_t on_data(char *p, size_t size, size_t nmemb, void *user)
{
	struct ctx *c = user;
	size_t add = size * nmemb;
	if (c->stall_ms) {
		usleep(c->stall_ms * 1000u);
		c->stall_ms = 0;
	}
	size_t rawlen = c->r->raw ? strlen(c->r->raw) : 0;
	c->r->raw = realloc(c->r->raw, rawlen + add + 1);
	memcpy(c->r->raw + rawlen, p, add);
	c->r->raw[rawlen + add] = 0;
	c->buf = realloc(c->buf, c->len + add + 1);
	memcpy(c->buf + c->len, p, add);
	c->len += add;
	c->buf[c->len] = 0;
	char *start = c->buf, *nl;
	while ((nl = strchr(start, '\n'))) {
		*nl = 0;
		line(c, start);
		start = nl + 1;
	}
	size_t rest = c->len - (size_t)(start - c->buf);
	memmove(c->buf, start, rest);
	c->len = rest;
	c->buf[rest] = 0;
	if (c->stop_after && c->with_id >= c->stop_after)
		return 0;     /* enough: abort the transfer */
	return add;
}

static int small_rcvbuf(void *user, curl_socket_t fd, curlsocktype purpose)
{
	(void)user;
	int n = 4096;
	if (purpose == CURLSOCKTYPE_IPCXN)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &n, sizeof(n));
	return CURL_SOCKOPT_OK;
}

static int collect(const char *url, const char *last_id, size_t stop_after, long timeout_s,
		   unsigned stall_ms, struct sse_result *out)
{
	memset(out, 0, sizeof(*out));
	struct ctx c = {.r = out, .stop_after = stop_after, .stall_ms = stall_ms};
	CURL *h = curl_easy_init();
	struct curl_slist *hl = curl_slist_append(NULL, "Accept: text/event-stream");
	char lid[128];
	if (last_id) {
		snprintf(lid, sizeof(lid), "Last-Event-ID: %s", last_id);
		hl = curl_slist_append(hl, lid);
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &c);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, timeout_s);
	if (stall_ms) {
		curl_easy_setopt(h, CURLOPT_SOCKOPTFUNCTION, small_rcvbuf);
		curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 4096L);
	}
	CURLcode rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
	out->ended = rc == CURLE_OK;
	curl_slist_free_all(hl);
	curl_easy_cleanup(h);
	free(c.buf);
	free(c.cur.id);
	free(c.cur.event);
	free(c.cur.data);
	return 0;
}

int sse_collect(const char *url, const char *last_id, size_t stop_after, long timeout_s,
		struct sse_result *out)
{
	return collect(url, last_id, stop_after, timeout_s, 0, out);
}

int sse_collect_slow(const char *url, unsigned stall_ms, long timeout_s, struct sse_result *out)
{
	return collect(url, NULL, 0, timeout_s, stall_ms, out);
}

void sse_result_release(struct sse_result *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->frames[i].id);
		free(r->frames[i].event);
		free(r->frames[i].data);
	}
	free(r->frames);
	free(r->raw);
	memset(r, 0, sizeof(*r));
}
