/* messages.c - actors at work over REST: messages (202), requests (200 with
 * the actor's response), the current state and metrics. Accepting a message
 * records it (an fdatasync), so it runs on the worker pool. */
#include "api/api_int.h"

#include <stdlib.h>
#include <string.h>

#include "src/util/crypto.h"

static int check_id(struct api_call *c)
{
	if (uuid_valid(c->params[0]))
		return 1;
	api_problem(c, ERR_BAD_ID, "not an actor id (a lowercase uuid)");
	return 0;
}

static void job_message(void *arg)
{
	struct api_call *c = arg;
	struct err e = {0};
	size_t len;
	const uint8_t *body = http_request_body(c->req, &len);
	if (supervisor_send(c->api->cfg.sup, c->params[0], NULL, body, len, &e)) {
		api_problem_err(c, &e);
		return;
	}
	api_json(c, 202, json_pack("{s:s, s:I}", "status", "accepted", "size", (json_int_t)len));
}

void h_actor_message(struct api_call *c)
{
	if (check_id(c))
		api_defer(c, job_message);
}

static void on_reply(void *user, enum err_code rc, const struct err *err, const uint8_t *data,
		     size_t len)
{
	struct api_call *c = user;
	if (rc) {
		api_problem(c, rc, err ? err->msg : NULL);
		return;
	}
	uint8_t *copy = malloc(len + 1);
	if (!copy) {
		api_problem(c, ERR_NOMEM, "cannot copy the response");
		return;
	}
	memcpy(copy, data, len);
	json_error_t je;
	json_t *probe = json_loadb((const char *)data, len, JSON_DECODE_ANY, &je);
	const char *type = probe ? "application/json" : "application/octet-stream";
	json_decref(probe);
	api_bytes(c, 200, type, copy, len, NULL);
}

static void job_request(void *arg)
{
	struct api_call *c = arg;
	struct err e = {0};
	uint64_t timeout;
	if (api_query_u64(c, "timeout", 30, 300, &timeout, &e)) {
		api_problem_err(c, &e);
		return;
	}
	size_t len;
	const uint8_t *body = http_request_body(c->req, &len);
	if (supervisor_request(c->api->cfg.sup, c->params[0], NULL, body, len,
			       (uint32_t)(timeout ? timeout * 1000 : 1), on_reply, c, &e))
		api_problem_err(c, &e);
}

void h_actor_request(struct api_call *c)
{
	if (check_id(c))
		api_defer(c, job_request);
}

void h_actor_state(struct api_call *c)
{
	if (!check_id(c))
		return;
	struct err e = {0};
	uint8_t *data = NULL;
	size_t len = 0;
	if (supervisor_state(c->api->cfg.sup, c->params[0], &data, &len, &e)) {
		api_problem_err(c, &e);
		return;
	}
	json_error_t je;
	json_t *probe = json_loadb((const char *)data, len, JSON_DECODE_ANY, &je);
	const char *type = probe ? "application/json" : "application/octet-stream";
	json_decref(probe);
	api_bytes(c, 200, type, data, len, NULL);
}

void h_actor_metrics(struct api_call *c)
{
	if (!check_id(c))
		return;
	struct err e = {0};
	struct supervisor_metrics m;
	if (supervisor_metrics(c->api->cfg.sup, c->params[0], &m, &e)) {
		api_problem_err(c, &e);
		return;
	}
	json_t *o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:{s:I, s:I}, s:I, s:I, s:i}",
		"calls", (json_int_t)m.calls, "failures", (json_int_t)m.failures,
		"fuel", (json_int_t)m.fuel, "busy_us", (json_int_t)m.busy_us,
		"memory_bytes", (json_int_t)m.memory_bytes,
		"mailbox", "depth", (json_int_t)m.mailbox_depth, "capacity",
		(json_int_t)m.mailbox_capacity,
		"messages", (json_int_t)m.messages, "requests", (json_int_t)m.requests,
		"restarts", (int)m.restarts);
	api_json(c, 200, o);
}

static void restarted(void *user, enum err_code rc, const struct err *err)
{
	struct api_call *c = user;
	struct db_run r;
	struct err e = {0};
	if (rc) {
		api_problem(c, rc, err ? err->msg : NULL);
		return;
	}
	if (supervisor_get(c->api->cfg.sup, c->params[0], &r, &e)) {
		api_problem_err(c, &e);
		return;
	}
	json_t *o = api_run_json(&r);
	db_run_release(&r);
	api_json(c, 200, o);
}

void h_actor_restart(struct api_call *c)
{
	if (!check_id(c))
		return;
	const char *st = http_request_query(c->req, "state");
	if (st && strcmp(st, "last") != 0 && strcmp(st, "initial") != 0) {
		api_problem(c, ERR_INVALID, "query parameter 'state' must be 'last' (keep the last "
			    "good state, the default) or 'initial' (init afresh)");
		return;
	}
	supervisor_restart(c->api->cfg.sup, c->params[0], st && strcmp(st, "initial") == 0,
			   restarted, c);
}
