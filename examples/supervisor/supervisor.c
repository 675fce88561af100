/* supervisor - an actor that spawns children and looks after them
 * (theater:simple/supervisor).
 *
 * Initial state: {"child_manifest": {...}, "spawn": N, "child_state": {...}}:
 * init spawns N children (at most 16) from child_manifest (a manifest as in
 * POST /actors; the example uses the counter), each with child_state as its
 * initial state when given. The state then keeps the manifest, the children's
 * ids and what the actor has heard of them:
 *   {"child_manifest": ..., "child_state": ..., "children": ["<id>", ...],
 *    "exits": 0, "errors": 0, "last": <the last child event or null>}
 * Requests (JSON {"op": ...}):
 *   "list"     the ids the server knows as this actor's children (list-children);
 *   "spawn"    one more child; answers {"id": "<id>"};
 *   "restart"  restart-child, "stop" stop-child, "state" get-child-state: of
 *              {"id": "<id>"} or {"index": i} (an index into "children").
 * handle-child-exit and handle-child-error count the reports in the state.
 */
#define THEATER_ACTOR_IMPL
#include "theater/actor.h"

#include "theater/libc.h"
#include "theater/hosterr.h"
#include "theater/json.h"

#define MAX_SPAWN 16
#define ID_LEN 36

struct sup {
	const char *state;
	uint32_t state_len;
	struct js manifest, child_state, children, last;
	int64_t exits, errors;
};

static int sup_load(struct sup *s, const char *state, uint32_t len)
{
	struct js st, v;
	*s = (struct sup){state, len, {0, 0}, {0, 0}, js_cstr("[]"), js_cstr("null"), 0, 0};
	if (!js_parse(state, len, &st) || !js_is_object(st) ||
	    !js_get(st, "child_manifest", &s->manifest) || !js_is_object(s->manifest))
		return 0;
	if (js_get(st, "child_state", &v))
		s->child_state = v;
	if (js_get(st, "children", &v) && js_is_array(v))
		s->children = v;
	if (js_get(st, "last", &v))
		s->last = v;
	if (js_get(st, "exits", &v))
		js_int(v, &s->exits);
	if (js_get(st, "errors", &v))
		js_int(v, &s->errors);
	return 1;
}

/* The state, with `extra` (a quoted id, or NULL) appended to the children. */
static void write_state(struct jb *b, const struct sup *s, const char *extra)
{
	jb_cstr(b, "{\"child_manifest\":");
	jb_raw(b, s->manifest.p, s->manifest.n);
	if (s->child_state.n) {
		jb_cstr(b, ",\"child_state\":");
		jb_raw(b, s->child_state.p, s->child_state.n);
	}
	jb_cstr(b, ",\"children\":");
	if (extra) {
		jb_raw(b, s->children.p, s->children.n - 1);   /* without the ']' */
		if (js_count(s->children))
			jb_char(b, ',');
		jb_quote(b, extra, ID_LEN);
		jb_char(b, ']');
	} else {
		jb_raw(b, s->children.p, s->children.n);
	}
	jb_cstr(b, ",\"exits\":");
	jb_int(b, s->exits);
	jb_cstr(b, ",\"errors\":");
	jb_int(b, s->errors);
	jb_cstr(b, ",\"last\":");
	jb_raw(b, s->last.p, s->last.n);
	jb_char(b, '}');
}

static struct theater_result *fail(const struct sup *s, const char *what, int32_t rc)
{
	struct jb b;
	jb_init(&b, 96);
	jb_cstr(&b, what);
	jb_cstr(&b, ": ");
	jb_cstr(&b, hosterr_name(rc));
	jb_char(&b, 0);
	return theater_error(s->state, s->state_len, jb_ok(&b) ? b.p : what);
}

/* Spawns one child; its id into id[36]. */
static int32_t spawn_one(const struct sup *s, char id[ID_LEN])
{
	return theater_spawn(s->manifest.p, s->manifest.n, s->child_state.p, s->child_state.n,
			     id);
}

THEATER_EXPORT("init")
struct theater_result *init(const char *state, uint32_t len)
{
	struct sup s;
	struct js st, v;
	int64_t n = 0;
	if (!sup_load(&s, state, len))
		return theater_error(state, len, "the state needs a 'child_manifest' object");
	if (js_parse(state, len, &st) && js_get(st, "spawn", &v) &&
	    (!js_int(v, &n) || n < 0 || n > MAX_SPAWN))
		return theater_error(state, len, "'spawn' must be an integer from 0 to 16");
	struct jb b;
	for (int64_t i = 0; i < n; i++) {
		char *id = theater_alloc(ID_LEN);
		int32_t rc = id ? spawn_one(&s, id) : THEATER_EFAILED;
		if (rc < 0)
			return fail(&s, "cannot spawn a child", rc);
		jb_init(&b, s.state_len + 64);
		write_state(&b, &s, id);
		if (!jb_ok(&b) || !js_parse(b.p, b.len, &st) || !js_get(st, "children", &s.children))
			return theater_error(state, len, "out of memory");
	}
	jb_init(&b, s.state_len + 64);
	write_state(&b, &s, 0);
	theater_log("supervisor: children spawned", 28);
	return jb_ok(&b) ? theater_ok(b.p, b.len, 0, 0) : theater_error(state, len, "out of memory");
}

/* The child named by {"id": ...} or {"index": i}; 0 when there is none. */
static int child_of(const struct sup *s, struct js req, struct js *id)
{
	struct js v;
	int64_t i;
	if (js_get_string(req, "id", id))
		return id->n == ID_LEN;
	if (!js_get(req, "index", &v) || !js_int(v, &i) || i < 0 || i > 1000000)
		return 0;
	return js_at(s->children, (uint32_t)i, &v) && js_string(v, id) && id->n == ID_LEN;
}

static struct theater_result *bytes_answer(const struct sup *s, const char *what, int32_t rc,
					   struct theater_bytes out)
{
	if (rc < 0)
		return fail(s, what, rc);
	return theater_ok(s->state, s->state_len, (const void *)(uintptr_t)out.ptr, out.len);
}

static struct theater_result *spawn_request(const struct sup *s)
{
	char *id = theater_alloc(ID_LEN);
	int32_t rc = id ? spawn_one(s, id) : THEATER_EFAILED;
	if (rc < 0)
		return fail(s, "cannot spawn a child", rc);
	struct jb st, out;
	jb_init(&st, s->state_len + 64);
	write_state(&st, s, id);
	jb_init(&out, 64);
	jb_cstr(&out, "{\"id\":");
	jb_quote(&out, id, ID_LEN);
	jb_char(&out, '}');
	if (!jb_ok(&st) || !jb_ok(&out))
		return theater_error(s->state, s->state_len, "out of memory");
	return theater_ok(st.p, st.len, out.p, out.len);
}

/* restart / stop: answers {"restarted": "<id>"} / {"stopped": "<id>"}. */
static struct theater_result *control(const struct sup *s, struct js id, int restart)
{
	int32_t rc = restart ? theater_restart_child(id.p, id.n) : theater_stop_child(id.p, id.n);
	if (rc < 0)
		return fail(s, restart ? "cannot restart the child" : "cannot stop the child", rc);
	struct jb out;
	jb_init(&out, 64);
	jb_cstr(&out, restart ? "{\"restarted\":" : "{\"stopped\":");
	jb_quote(&out, id.p, id.n);
	jb_char(&out, '}');
	if (!jb_ok(&out))
		return theater_error(s->state, s->state_len, "out of memory");
	return theater_ok(s->state, s->state_len, out.p, out.len);
}

THEATER_EXPORT("handle-request")
struct theater_result *handle_request(const char *state, uint32_t len, const char *msg,
				      uint32_t msg_len)
{
	struct sup s;
	struct js req, op, id;
	struct theater_bytes out = {0, 0};
	if (!sup_load(&s, state, len))
		return theater_error(state, len, "the state is not a supervisor state");
	if (!js_parse(msg, msg_len, &req) || !js_is_object(req) || !js_get_string(req, "op", &op))
		return theater_error(state, len, "a request is {\"op\": \"list\" | \"spawn\" | "
				     "\"restart\" | \"stop\" | \"state\", ...}");
	if (js_bytes_eq(op, "list"))
		return bytes_answer(&s, "cannot list the children", theater_list_children(&out), out);
	if (js_bytes_eq(op, "spawn"))
		return spawn_request(&s);
	int restart = js_bytes_eq(op, "restart"), stop = js_bytes_eq(op, "stop");
	if (!restart && !stop && !js_bytes_eq(op, "state"))
		return theater_error(state, len, "unknown op; use list, spawn, restart, stop or state");
	if (!child_of(&s, req, &id))
		return theater_error(state, len, "name the child with \"id\" or \"index\"");
	if (restart || stop)
		return control(&s, id, restart);
	return bytes_answer(&s, "cannot read the child's state",
			    theater_get_child_state(id.p, id.n, &out), out);
}

/* A report about a child: counted, and kept as "last". */
static struct theater_result *heard(const char *state, uint32_t len, const char *info,
				    uint32_t info_len, int error)
{
	struct sup s;
	struct js ev;
	if (!sup_load(&s, state, len))
		return theater_error(state, len, "the state is not a supervisor state");
	if (js_parse(info, info_len, &ev))
		s.last = ev;
	if (error)
		s.errors++;
	else
		s.exits++;
	const char *note = error ? "supervisor: a child failed" : "supervisor: a child exited";
	theater_log(note, theater_strlen(note));
	struct jb b;
	jb_init(&b, len + info_len + 64);
	write_state(&b, &s, 0);
	return jb_ok(&b) ? theater_ok(b.p, b.len, 0, 0) : theater_error(state, len, "out of memory");
}

THEATER_EXPORT("handle-child-exit")
struct theater_result *handle_child_exit(const char *state, uint32_t len, const char *info,
					 uint32_t info_len)
{
	return heard(state, len, info, info_len, 0);
}

THEATER_EXPORT("handle-child-error")
struct theater_result *handle_child_error(const char *state, uint32_t len, const char *info,
					  uint32_t info_len)
{
	return heard(state, len, info, info_len, 1);
}
