/* stream_actor.c - a test actor (compiled by tests/test_e2e_stream.c with clang
 * at test time) for deferred replies, streamed answers and timers.
 *
 * Its state is {"pending": the last deferred request id (0: none), "ticks": the
 * ticks received, "last": the last tick's message (or null)}.
 * handle-request takes one command:
 *   stream N WORD   sends the chunks "WORD1 ", ..., "WORDN " and answers them
 *                   joined; the answer is "<rc of the last send-chunk>:" + them
 *   defer           defers the request (the output "not the answer" must never
 *                   reach the client); pending = its id
 *   deferwait       defers the request, sends the chunk "waiting" and, when a
 *                   client streams it (send-chunk 1), sleeps 60 s (the call
 *                   parks); answers "<id> <rc of send-chunk>", pending = its id
 *   answer TEXT     answers the pending request with TEXT; answers the rc
 *   fail TEXT       fails the pending request with TEXT; answers the rc
 *   chunk TEXT      sends TEXT as a chunk of the pending request; answers the rc
 *   timer NAME DELAY PERIOD   set-timer; answers the rc
 *   cancel NAME     cancel-timer; answers the rc
 *   state           answers the state
 * handle-send takes the same `answer`, `fail` and `chunk` commands (an answer
 * from another call than a request's).
 * handle-timer counts the tick; a tick of the timer named "answer" answers the
 * pending request with "tick <message>".
 */
#define THEATER_ACTOR_IMPL
#include "theater/actor.h"

#include "theater/libc.h"
#include "theater/json.h"

struct st {
	int64_t pending, ticks;
	struct js last;
};

static void load(struct st *s, const char *state, uint32_t len)
{
	struct js o, v;
	*s = (struct st){0, 0, js_cstr("null")};
	if (!js_parse(state, len, &o) || !js_is_object(o))
		return;
	if (js_get(o, "pending", &v))
		js_int(v, &s->pending);
	if (js_get(o, "ticks", &v))
		js_int(v, &s->ticks);
	if (js_get(o, "last", &v))
		s->last = v;
}

static struct jb save(const struct st *s)
{
	struct jb b;
	jb_init(&b, s->last.n + 96);
	jb_cstr(&b, "{\"pending\":");
	jb_int(&b, s->pending);
	jb_cstr(&b, ",\"ticks\":");
	jb_int(&b, s->ticks);
	jb_cstr(&b, ",\"last\":");
	jb_raw(&b, s->last.p, s->last.n);
	jb_char(&b, '}');
	return b;
}

/* The next space-separated word of [*p, end), as (start, len). */
static uint32_t word(const char **p, const char *end, const char **w)
{
	while (*p < end && **p == ' ')
		(*p)++;
	*w = *p;
	while (*p < end && **p != ' ')
		(*p)++;
	return (uint32_t)(*p - *w);
}

static int64_t number(const char *w, uint32_t n)
{
	int64_t v = 0;
	for (uint32_t i = 0; i < n; i++)
		v = v * 10 + (w[i] - '0');
	return v;
}

static int is(const char *w, uint32_t n, const char *cmd)
{
	return n == theater_strlen(cmd) && memcmp(w, cmd, n) == 0;
}

static struct theater_result *reply(struct st *s, const char *text, uint32_t n)
{
	struct jb b = save(s);
	return theater_ok(b.p, b.len, text, n);
}

static struct theater_result *reply_rc(struct st *s, int64_t rc)
{
	struct jb t;
	jb_init(&t, 24);
	jb_int(&t, rc);
	return reply(s, t.p, t.len);
}

/* answer / fail / chunk on the pending request; 1 when cmd was one of them. */
static int pending_cmd(struct st *s, const char *w, uint32_t n, const char *rest,
		       uint32_t rest_n, int64_t *rc)
{
	if (is(w, n, "answer")) {
		*rc = theater_respond_to_request(s->pending, rest, rest_n);
		s->pending = 0;
	} else if (is(w, n, "fail")) {
		*rc = theater_fail_request(s->pending, rest, rest_n);
		s->pending = 0;
	} else if (is(w, n, "chunk")) {
		*rc = theater_send_chunk(s->pending, rest, rest_n);
	} else {
		return 0;
	}
	return 1;
}

THEATER_EXPORT("init")
struct theater_result *init(const char *state, uint32_t len)
{
	struct st s;
	load(&s, state, len);
	return reply(&s, 0, 0);
}

THEATER_EXPORT("handle-request")
struct theater_result *handle_request(const char *state, uint32_t len, const char *msg,
				      uint32_t msg_len)
{
	struct st s;
	const char *p = msg, *end = msg + msg_len, *w, *a;
	int64_t rc;
	load(&s, state, len);
	uint32_t n = word(&p, end, &w);
	const char *rest = p < end ? p + 1 : end;
	uint32_t rest_n = (uint32_t)(end - rest);
	if (pending_cmd(&s, w, n, rest, rest_n, &rc))
		return reply_rc(&s, rc);
	if (is(w, n, "stream")) {
		uint32_t an = word(&p, end, &a);
		int64_t count = number(a, an);
		uint32_t wn = word(&p, end, &a);
		struct jb all;
		jb_init(&all, 256);
		rc = 0;
		for (int64_t i = 1; i <= count; i++) {
			struct jb c;
			jb_init(&c, wn + 24);
			jb_raw(&c, a, wn);
			jb_int(&c, i);
			jb_char(&c, ' ');
			rc = theater_send_chunk(0, c.p, c.len);
			jb_raw(&all, c.p, c.len);
		}
		struct jb out;
		jb_init(&out, all.len + 24);
		jb_int(&out, rc);
		jb_char(&out, ':');
		jb_raw(&out, all.p, all.len);
		return reply(&s, out.p, out.len);
	}
	if (is(w, n, "defer")) {
		s.pending = theater_defer_request();
		return reply(&s, "not the answer", 14);
	}
	if (is(w, n, "deferwait")) {
		s.pending = theater_defer_request();
		int32_t crc = theater_send_chunk(s.pending, "waiting", 7);
		if (crc == 1)
			theater_sleep(60000);
		struct jb out;
		jb_init(&out, 48);
		jb_int(&out, s.pending);
		jb_char(&out, ' ');
		jb_int(&out, crc);
		return reply(&s, out.p, out.len);
	}
	if (is(w, n, "timer")) {
		const char *name;
		uint32_t nn = word(&p, end, &name);
		uint32_t dn = word(&p, end, &a);
		int64_t delay = number(a, dn);
		uint32_t pn = word(&p, end, &a);
		return reply_rc(&s, theater_set_timer(name, nn, delay, number(a, pn)));
	}
	if (is(w, n, "cancel")) {
		uint32_t nn = word(&p, end, &a);
		return reply_rc(&s, theater_cancel_timer(a, nn));
	}
	if (is(w, n, "state")) {
		struct jb b = save(&s);
		return theater_ok(state, len, b.p, b.len);
	}
	return theater_error(state, len, "unknown command");
}

THEATER_EXPORT("handle-send")
struct theater_result *handle_send(const char *state, uint32_t len, const char *msg,
				   uint32_t msg_len)
{
	struct st s;
	const char *p = msg, *end = msg + msg_len, *w;
	int64_t rc;
	load(&s, state, len);
	uint32_t n = word(&p, end, &w);
	const char *rest = p < end ? p + 1 : end;
	if (!pending_cmd(&s, w, n, rest, (uint32_t)(end - rest), &rc))
		return theater_error(state, len, "unknown command");
	return reply(&s, 0, 0);
}

THEATER_EXPORT("handle-timer")
struct theater_result *handle_timer(const char *state, uint32_t len, const char *msg,
				    uint32_t msg_len)
{
	struct st s;
	struct js tick, name;
	load(&s, state, len);
	s.ticks++;
	s.last = (struct js){msg, msg_len};
	if (s.pending && js_parse(msg, msg_len, &tick) && js_get(tick, "timer", &name) &&
	    js_str_eq(name, "answer")) {
		struct jb t;
		jb_init(&t, msg_len + 8);
		jb_cstr(&t, "tick ");
		jb_raw(&t, msg, msg_len);
		theater_respond_to_request(s.pending, t.p, t.len);
		s.pending = 0;
	}
	return reply(&s, 0, 0);
}
