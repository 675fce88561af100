/* chain.c - /actors/{id}/chain (JSON pages or SSE), one event, verification,
 * and the /events lifecycle stream. Chain reads touch files, so the JSON routes
 * run on the worker pool. */
#include "api/api_int.h"

#include <errno.h>

#include <stdlib.h>
#include <string.h>

#include "src/util/crypto.h"

/* Last-Event-ID (a reconnecting browser) wins over ?after= (the first connect). */
static enum err_code resume_point(struct api_call *c, uint64_t *after, struct err *err)
{
	const char *last = http_request_header(c->req, "Last-Event-ID");
	if (last && *last) {
		char *end;
		if (*last < '0' || *last > '9')
			return err_set(err, ERR_INVALID, "Last-Event-ID must be an event id");
		errno = 0;
		*after = strtoull(last, &end, 10);
		if (*end || errno || *after > UINT64_MAX / 2)   /* the bound of ?after= */
			return err_set(err, ERR_INVALID, "Last-Event-ID must be an event id "
				       "from 0 to %llu", (unsigned long long)(UINT64_MAX / 2));
		return ERR_OK;
	}
	return api_query_u64(c, "after", 0, 0, UINT64_MAX / 2, after, err);
}

/* ?type=a,b&type=c: the event types a page keeps (none: every event). */
#define TYPES_MAX 16
#define TYPE_SCAN_MAX 10000   /* events read per filtered page; next_after goes on */

struct type_filter {
	size_t n;
	char names[TYPES_MAX][128];
};

static enum err_code type_filter_parse(struct api_call *c, struct type_filter *f, struct err *err)
{
	f->n = 0;
	for (size_t i = 0; i < http_request_query_count(c->req); i++) {
		if (strcmp(http_request_query_name(c->req, i), "type") != 0)
			continue;
		const char *v = http_request_query_value(c->req, i);
		if (!*v)
			return err_set(err, ERR_INVALID, "query parameter 'type' is empty (give "
				       "event types, separated by commas)");
		while (*v) {
			size_t len = strcspn(v, ",");
			if (len == 0 || len >= sizeof(f->names[0]))
				return err_set(err, ERR_INVALID, "query parameter 'type' must be event "
					       "types (1 to 127 bytes), separated by commas");
			if (f->n == TYPES_MAX)
				return err_set(err, ERR_INVALID, "query parameter 'type': at most %d "
					       "types", TYPES_MAX);
			memcpy(f->names[f->n], v, len);
			f->names[f->n++][len] = '\0';
			v += len + (v[len] == ',');
		}
	}
	return ERR_OK;
}

static int type_kept(const struct type_filter *f, const char *type)
{
	if (f->n == 0)
		return 1;
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->names[i], type) == 0)
			return 1;
	return 0;
}

static void job_page(void *arg)
{
	struct api_call *c = arg;
	struct err e = {0};
	struct type_filter f;
	uint64_t after, limit, length;
	int ended;
	if (api_query_u64(c, "after", 0, 0, UINT64_MAX / 2, &after, &e) ||
	    api_query_u64(c, "limit", 100, 1, 1000, &limit, &e) ||
	    type_filter_parse(c, &f, &e)) {
		api_problem_err(c, &e);
		return;
	}
	if (supervisor_chain_head(c->api->cfg.sup, c->params[0], &length, &ended, &e)) {
		api_problem_err(c, &e);
		return;
	}
	json_t *items = json_array();
	uint64_t seq = after + 1, kept = 0;
	for (; seq <= length && kept < limit && seq <= after + TYPE_SCAN_MAX; seq++) {
		struct chain_event ev = {0};
		int64_t ts = 0;
		if (supervisor_read_event(c->api->cfg.sup, c->params[0], seq, &ev, &ts, &e)) {
			json_decref(items);
			api_problem_err(c, &e);
			return;
		}
		if (type_kept(&f, ev.event_type)) {
			json_array_append_new(items, api_event_json(c->params[0], seq, ev.hash,
						ev.parent_hash, ev.event_type, ev.data, ev.data_len, ts));
			kept++;
		}
		chain_event_release(&ev);
	}
	json_t *o = json_pack("{s:o, s:I, s:b}", "items", items, "length", (json_int_t)length,
			      "ended", ended);
	json_object_set_new(o, "next_after",
			    seq <= length ? json_integer((json_int_t)(seq - 1)) : json_null());
	api_json(c, 200, o);
}

void h_chain(struct api_call *c)
{
	struct err e = {0};
	if (!uuid_valid(c->params[0])) {
		api_problem(c, ERR_BAD_ID, "not an actor id (a lowercase uuid)");
		return;
	}
	if (!sse_accepted(c)) {
		api_defer(c, job_page);
		return;
	}
	uint64_t after, length;
	int ended;
	static const char *const page_only[] = {"type", "limit"};
	for (size_t i = 0; i < sizeof(page_only) / sizeof(page_only[0]); i++) {
		if (!http_request_query(c->req, page_only[i]))
			continue;
		char detail[160];
		snprintf(detail, sizeof(detail), "query parameter '%s' is for JSON pages only, not "
			 "the live stream (Accept: text/event-stream)", page_only[i]);
		api_problem(c, ERR_INVALID, detail);
		return;
	}
	/* A damaged chain's stream would end where the damage is, and EventSource
	 * would reconnect there for ever: a problem answer stops it. */
	if (resume_point(c, &after, &e) ||
	    supervisor_chain_head(c->api->cfg.sup, c->params[0], &length, &ended, &e) ||
	    supervisor_chain_check(c->api->cfg.sup, c->params[0], &e)) {
		api_problem_err(c, &e);
		return;
	}
	if (ended && after >= length) {
		api_empty(c, 204, NULL);    /* finished and fully seen: EventSource stops */
		return;
	}
	sse_chain(c, c->params[0], after, ended);
}

static void job_event(void *arg)
{
	struct api_call *c = arg;
	struct err e = {0};
	char *end;
	errno = 0;
	uint64_t seq = strtoull(c->params[1], &end, 10);
	if (*end || errno || seq == 0 || c->params[1][0] < '0' || c->params[1][0] > '9') {
		api_problem(c, ERR_INVALID, "the event seq must be an integer from 1 to "
			    "18446744073709551615");
		return;
	}
	struct chain_event ev = {0};
	int64_t ts = 0;
	if (supervisor_read_event(c->api->cfg.sup, c->params[0], seq, &ev, &ts, &e)) {
		api_problem_err(c, &e);
		return;
	}
	json_t *o = api_event_json(c->params[0], seq, ev.hash, ev.parent_hash, ev.event_type,
				   ev.data, ev.data_len, ts);
	chain_event_release(&ev);
	api_json(c, 200, o);
}

void h_chain_event(struct api_call *c)
{
	if (!uuid_valid(c->params[0])) {
		api_problem(c, ERR_BAD_ID, "not an actor id (a lowercase uuid)");
		return;
	}
	api_defer(c, job_event);
}

static void job_verify(void *arg)
{
	struct api_call *c = arg;
	struct err e = {0};
	struct chain_verify_result v = {0};
	if (supervisor_verify(c->api->cfg.sup, c->params[0], &v, &e)) {
		api_problem_err(c, &e);
		return;
	}
	char head[65];
	hex_encode(v.head, 32, head);
	json_t *o = json_pack("{s:b, s:I, s:s}", "valid", v.valid, "length",
			      (json_int_t)v.length, "head", head);
	json_object_set_new(o, "first_bad_seq",
			    v.valid ? json_null() : json_integer((json_int_t)v.first_bad_seq));
	if (!v.valid && v.detail[0])
		json_object_set_new(o, "detail", json_string(v.detail));
	api_json(c, 200, o);
}

void h_chain_verify(struct api_call *c)
{
	if (!uuid_valid(c->params[0])) {
		api_problem(c, ERR_BAD_ID, "not an actor id (a lowercase uuid)");
		return;
	}
	api_defer(c, job_verify);
}

void h_events(struct api_call *c)
{
	struct err e = {0};
	uint64_t after;
	if (resume_point(c, &after, &e)) {
		api_problem_err(c, &e);
		return;
	}
	sse_lifecycle(c, after);
}
