/* __NAME__ - a theater actor in C, made with `theater new`.
 *
 * State: {"messages": n}, the number of messages it has received.
 * A message (handle-send) counts one and logs it; a request (handle-request)
 * answers the state. Change the three handlers to make it yours; the ABI and
 * the host functions are described in include/theater/actor.h.
 */
#define THEATER_ACTOR_IMPL
#include "theater/actor.h"

/* The n of {"messages": n} in a state; 0 when it is absent. */
static uint64_t messages_in(const char *s, uint32_t len)
{
	static const char key[] = "\"messages\"";
	uint32_t k = sizeof(key) - 1;
	for (uint32_t i = 0; i + k <= len; i++) {
		uint32_t j = 0;
		while (j < k && s[i + j] == key[j])
			j++;
		if (j < k)
			continue;
		uint64_t n = 0;
		for (i += k; i < len && (s[i] == ' ' || s[i] == ':'); i++)
			;
		for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			n = n * 10 + (uint64_t)(s[i] - '0');
		return n;
	}
	return 0;
}

/* {"messages":n} in memory from theater_alloc (it lives for this call). */
static char *state_of(uint64_t n, uint32_t *len_out)
{
	static const char head[] = "{\"messages\":";
	char digits[20];
	int k = 0;
	do {
		digits[k++] = (char)('0' + n % 10);
		n /= 10;
	} while (n);
	char *p = theater_alloc(sizeof(head) + 22);
	if (!p)
		return 0;
	uint32_t len = 0;
	for (uint32_t i = 0; i < sizeof(head) - 1; i++)
		p[len++] = head[i];
	while (k)
		p[len++] = digits[--k];
	p[len++] = '}';
	*len_out = len;
	return p;
}

static struct theater_result *keep(uint64_t n, int answer)
{
	uint32_t len;
	char *st = state_of(n, &len);
	if (!st)
		return theater_error(0, 0, "out of memory");
	return answer ? theater_ok(st, len, st, len) : theater_ok(st, len, 0, 0);
}

THEATER_EXPORT("init")
struct theater_result *init(const char *state, uint32_t len)
{
	theater_log("__NAME__: ready", theater_strlen("__NAME__: ready"));
	return keep(messages_in(state, len), 0);
}

THEATER_EXPORT("handle-send")
struct theater_result *handle_send(const char *state, uint32_t len, const char *msg,
				   uint32_t msg_len)
{
	(void)msg;
	(void)msg_len;
	theater_log("__NAME__: message received", theater_strlen("__NAME__: message received"));
	return keep(messages_in(state, len) + 1, 0);
}

THEATER_EXPORT("handle-request")
struct theater_result *handle_request(const char *state, uint32_t len, const char *req,
				      uint32_t req_len)
{
	(void)req;
	(void)req_len;
	return keep(messages_in(state, len), 1);
}
