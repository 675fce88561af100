/* host_driver.c - a test actor (compiled by tests/test_e2e_host.c with clang
 * at test time) that drives every host interface of the actor ABI.
 *
 * handle-request takes one command line and answers with text, which always
 * starts with the host function's result code:
 *   now | sleep MS | random N | uuid | self
 *   store SID DATA | get SID HASH | label SID LABEL HASH | getlabel SID LABEL
 *   send ID MSG | request ID TIMEOUT_MS MSG | echo TEXT
 *   spawn STATE|- MANIFEST... | children | stop ID | restart ID | childstate ID
 *   http REQUEST_JSON...
 *   bad            out-of-bounds pointers to every function: the results
 *   trap           the call traps (the actor fails)
 * Built with -DTHEATER_DRIVER_ENV (tests/test_e2e_secrets.c) it also imports
 * theater:simple/environment:
 *   env NAME | exists NAME | listenv
 * handle-send makes the message its new state, so a test can see it arrived.
 */
#define THEATER_ACTOR_IMPL
#include "theater/actor.h"

#define BAD 0xFFFFFFF0u   /* beyond any memory this actor has */

struct out {
	char *p;
	uint32_t n, cap;
};

static struct out O;

static void out_init(uint32_t cap)
{
	O.p = theater_alloc(cap);
	O.n = 0;
	O.cap = O.p ? cap : 0;
}

static void put(const void *s, uint32_t n)
{
	if (O.n + n > O.cap)
		n = O.cap - O.n;
	theater_memcpy(O.p + O.n, s, n);
	O.n += n;
}

static void puts_(const char *s)
{
	put(s, theater_strlen(s));
}

static void put_int(int64_t v)
{
	char b[24];
	int i = 24;
	uint64_t u = v < 0 ? (uint64_t)-v : (uint64_t)v;
	do {
		b[--i] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		b[--i] = '-';
	put(b + i, (uint32_t)(24 - i));
}

static void put_hex(const unsigned char *p, uint32_t n)
{
	static const char digits[] = "0123456789abcdef";
	for (uint32_t i = 0; i < n; i++) {
		put(&digits[p[i] >> 4], 1);
		put(&digits[p[i] & 15], 1);
	}
}

/* The next space-separated word of [*p, end). */
static const char *word(const char **p, const char *end, uint32_t *len)
{
	while (*p < end && **p == ' ')
		(*p)++;
	const char *w = *p;
	while (*p < end && **p != ' ')
		(*p)++;
	*len = (uint32_t)(*p - w);
	return w;
}

/* The rest of the line after one space. */
static const char *rest(const char **p, const char *end, uint32_t *len)
{
	if (*p < end && **p == ' ')
		(*p)++;
	*len = (uint32_t)(end - *p);
	return *p;
}

static int64_t number(const char *w, uint32_t n)
{
	int64_t v = 0;
	int neg = n && w[0] == '-';
	for (uint32_t i = neg; i < n; i++)
		v = v * 10 + (w[i] - '0');
	return neg ? -v : v;
}

static int is(const char *w, uint32_t n, const char *s)
{
	uint32_t m = theater_strlen(s);
	if (m != n)
		return 0;
	for (uint32_t i = 0; i < n; i++)
		if (w[i] != s[i])
			return 0;
	return 1;
}

/* "<rc>" then, when rc >= 0, " " and the bytes the host returned. */
static void put_result_bytes(int32_t rc, struct theater_bytes *b)
{
	put_int(rc);
	if (rc >= 0) {
		puts_(" ");
		put((const void *)(uintptr_t)b->ptr, b->len);
	}
}

static void cmd_store(const char *p, const char *end, const char *cmd, uint32_t cn)
{
	uint32_t sn, an, bn;
	const char *sid = word(&p, end, &sn);
	struct theater_bytes b = {0, 0};
	if (is(cmd, cn, "store")) {
		const char *data = rest(&p, end, &an);
		char hash[64];
		int32_t rc = theater_store(sid, sn, data, an, hash);
		put_int(rc);
		if (rc >= 0) {
			puts_(" ");
			put(hash, 64);
		}
	} else if (is(cmd, cn, "get")) {
		const char *hash = word(&p, end, &an);
		put_result_bytes(an == 64 ? theater_store_get(sid, sn, hash, &b) : -100, &b);
	} else if (is(cmd, cn, "label")) {
		const char *label = word(&p, end, &an);
		const char *hash = word(&p, end, &bn);
		put_int(bn == 64 ? theater_store_label(sid, sn, label, an, hash) : -100);
	} else {
		const char *label = word(&p, end, &an);
		put_result_bytes(theater_store_get_by_label(sid, sn, label, an, &b), &b);
	}
}

static void cmd_child(const char *p, const char *end, const char *cmd, uint32_t cn)
{
	uint32_t n;
	const char *id = word(&p, end, &n);
	struct theater_bytes b = {0, 0};
	if (is(cmd, cn, "stop"))
		put_int(theater_stop_child(id, n));
	else if (is(cmd, cn, "restart"))
		put_int(theater_restart_child(id, n));
	else
		put_result_bytes(theater_get_child_state(id, n, &b), &b);
}

static void cmd_spawn(const char *p, const char *end)
{
	uint32_t sn, mn;
	const char *state = word(&p, end, &sn);
	const char *manifest = rest(&p, end, &mn);
	char id[36];
	int32_t rc = is(state, sn, "-") ? theater_spawn(manifest, mn, 0, 0, id)
					 : theater_spawn(manifest, mn, state, sn, id);
	put_int(rc);
	if (rc >= 0 || rc == THEATER_EFAILED || rc == THEATER_ETIMEDOUT) {
		puts_(" ");
		put(id, 36);
	}
}

static void cmd_messages(const char *p, const char *end, const char *cmd, uint32_t cn)
{
	uint32_t idn, tn, mn;
	const char *id = word(&p, end, &idn);
	struct theater_bytes b = {0, 0};
	if (is(cmd, cn, "send")) {
		const char *msg = rest(&p, end, &mn);
		put_int(theater_send(id, idn, msg, mn));
		return;
	}
	const char *t = word(&p, end, &tn);
	const char *msg = rest(&p, end, &mn);
	put_result_bytes(theater_request(id, idn, msg, mn, (uint32_t)number(t, tn), &b), &b);
}

/* Every function with a pointer beyond the memory: each must answer -1. */
static void cmd_bad(void)
{
	struct theater_bytes b = {0, 0};
	char buf[64];
	const char *bad = (const char *)(uintptr_t)BAD;
	int32_t rcs[] = {
		theater_random_bytes((void *)(uintptr_t)BAD, 16),
		theater_generate_uuid((char *)(uintptr_t)BAD),
		theater_store(bad, 4, "x", 1, buf),
		theater_store("pub", 3, bad, 16, buf),
		theater_store("pub", 3, "x", 1, (char *)(uintptr_t)BAD),
		theater_store_get("pub", 3, bad, &b),
		theater_store_get_by_label("pub", 3, "l", 1, (struct theater_bytes *)(uintptr_t)BAD),
		theater_store_label("pub", 3, bad, 5, buf),
		theater_send(bad, 36, "x", 1),
		theater_request(bad, 36, "x", 1, 100, &b),
		theater_spawn(bad, 100, 0, 0, buf),
		theater_list_children((struct theater_bytes *)(uintptr_t)BAD),
		theater_stop_child(bad, 36),
		theater_get_child_state(bad, 36, &b),
		theater_send_http(bad, 10, &b),
		theater_send_http("{}", 2, (struct theater_bytes *)(uintptr_t)BAD),
	};
	for (uint32_t i = 0; i < sizeof(rcs) / sizeof(rcs[0]); i++) {
		if (i)
			puts_(" ");
		put_int(rcs[i]);
	}
}

static void cmd_misc(const char *p, const char *end, const char *cmd, uint32_t cn)
{
	uint32_t n;
	unsigned char rnd[256];
	char id[36];
	if (is(cmd, cn, "now")) {
		put_int(theater_now());
	} else if (is(cmd, cn, "sleep")) {
		const char *w = word(&p, end, &n);
		put_int(theater_sleep(number(w, n)));
	} else if (is(cmd, cn, "random")) {
		const char *w = word(&p, end, &n);
		int64_t len = number(w, n);
		int32_t rc = theater_random_bytes(rnd, (uint32_t)len);
		put_int(rc);
		if (rc > 0) {
			puts_(" ");
			put_hex(rnd, (uint32_t)rc);
		}
	} else if (is(cmd, cn, "uuid") || is(cmd, cn, "self")) {
		int32_t rc = is(cmd, cn, "uuid") ? theater_generate_uuid(id) : theater_self_id(id);
		put_int(rc);
		puts_(" ");
		put(id, 36);
	} else if (is(cmd, cn, "echo")) {
		const char *t = rest(&p, end, &n);
		put(t, n);
	} else if (is(cmd, cn, "trap")) {
		__builtin_trap();
	} else {
		puts_("unknown command");
	}
}

static void dispatch(const char *p, const char *end)
{
	uint32_t cn, n;
	const char *cmd = word(&p, end, &cn);
	struct theater_bytes b = {0, 0};
	if (is(cmd, cn, "store") || is(cmd, cn, "get") || is(cmd, cn, "label") ||
	    is(cmd, cn, "getlabel"))
		cmd_store(p, end, cmd, cn);
	else if (is(cmd, cn, "stop") || is(cmd, cn, "restart") || is(cmd, cn, "childstate"))
		cmd_child(p, end, cmd, cn);
	else if (is(cmd, cn, "send") || is(cmd, cn, "request"))
		cmd_messages(p, end, cmd, cn);
	else if (is(cmd, cn, "spawn"))
		cmd_spawn(p, end);
	else if (is(cmd, cn, "children"))
		put_result_bytes(theater_list_children(&b), &b);
	else if (is(cmd, cn, "http")) {
		const char *req = rest(&p, end, &n);
		put_result_bytes(theater_send_http(req, n, &b), &b);
	} else if (is(cmd, cn, "bad"))
		cmd_bad();
#ifdef THEATER_DRIVER_ENV
	else if (is(cmd, cn, "env")) {
		const char *name = word(&p, end, &n);
		put_result_bytes(theater_env_get(name, n, &b), &b);
	} else if (is(cmd, cn, "exists")) {
		const char *name = word(&p, end, &n);
		put_int(theater_env_exists(name, n));
	} else if (is(cmd, cn, "listenv"))
		put_result_bytes(theater_env_list(&b), &b);
#endif
	else
		cmd_misc(p, end, cmd, cn);
}

THEATER_EXPORT("init") struct theater_result *init(const char *state, uint32_t len)
{
	return theater_ok(state, len, 0, 0);
}

THEATER_EXPORT("handle-send")
struct theater_result *handle_send(const char *state, uint32_t len, const char *msg, uint32_t n)
{
	(void)state;
	(void)len;
	return theater_ok(msg, n, 0, 0);
}

THEATER_EXPORT("handle-request")
struct theater_result *handle_request(const char *state, uint32_t len, const char *req, uint32_t n)
{
	out_init(1u << 20);
	dispatch(req, req + n);
	return theater_ok(state, len, O.p, O.n);
}
