/* __NAME__ - a theater actor in C (docs/sdk.md, docs/actor-abi.md).
 *
 * State: {"count": n}. Every message adds 1; the request "get" answers the count.
 * Memory from theater_alloc lives for one call: what the actor keeps is its state.
 */
#define THEATER_ACTOR_IMPL
#include "theater/actor.h"

/* The number after "count": in the state (0 when there is none). */
static int64_t count_of(const char *s, uint32_t n)
{
	static const char key[] = "\"count\":";
	for (uint32_t i = 0; i + 8 <= n; i++) {
		uint32_t k = 0;
		while (k < 8 && s[i + k] == key[k])
			k++;
		if (k < 8)
			continue;
		int64_t v = 0;
		uint32_t j = i + 8;
		while (j < n && s[j] == ' ')
			j++;
		while (j < n && s[j] >= '0' && s[j] <= '9')
			v = v * 10 + (s[j++] - '0');
		return v;
	}
	return 0;
}

/* Writes v in decimal at p; returns the length. */
static uint32_t put_int(char *p, int64_t v)
{
	char tmp[24];
	uint32_t n = 0, len = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		p[len++] = tmp[--n];
	return len;
}

static struct theater_result *with_count(int64_t count, int respond)
{
	char *p = theater_alloc(40);
	if (!p)
		return theater_error(0, 0, "out of memory");
	theater_memcpy(p, "{\"count\":", 9);
	uint32_t n = 9 + put_int(p + 9, count);
	p[n++] = '}';
	return respond ? theater_ok(p, n, p + 9, n - 10) : theater_ok(p, n, 0, 0);
}

THEATER_EXPORT("init")
struct theater_result *init(const char *state, uint32_t len)
{
	theater_log("__NAME__: ready", theater_strlen("__NAME__: ready"));
	return with_count(count_of(state, len), 0);
}

THEATER_EXPORT("handle-send")
struct theater_result *handle_send(const char *state, uint32_t len, const char *msg, uint32_t n)
{
	(void)msg;
	(void)n;
	return with_count(count_of(state, len) + 1, 0);
}

THEATER_EXPORT("handle-request")
struct theater_result *handle_request(const char *state, uint32_t len, const char *req, uint32_t n)
{
	if (n != 3 || req[0] != 'g' || req[1] != 'e' || req[2] != 't')
		return theater_error(state, len, "unknown request: ask \"get\"");
	return with_count(count_of(state, len), 1);
}
