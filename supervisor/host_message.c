/* host_message.c - theater:simple/message-server-host: send and request.
 *
 * send puts a message in another actor's mailbox (supervisor_send, from = the
 * calling actor); a send to an actor another node runs parks the call until
 * that node accepted it (supervisor_send_remote). request does the same and waits for the answer, bounded by
 * the actor's timeout (at most 30 s) plus a short grace for the supervisor's
 * own timeout to arrive: the call parks (host_wait_end) and the worker goes on
 * with other actors until the reply callback answers the wait.
 *
 * The wait state is shared by two owners, the waiting call and the reply
 * callback, with a reference count: whoever is last frees it, so a reply that
 * comes after the waiter gave up touches nothing that is gone.
 * A request to the calling actor itself is refused (-1): the actor handles one
 * call at a time, so it could never answer.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "src/util/crypto.h"
#include "supervisor/host.h"
#include "supervisor/supervisor.h"

#define MOD "theater:simple/message-server-host"
#define MESSAGE_MAX ((size_t)16 << 20)
#define REQUEST_MAX_TIMEOUT_MS 30000u
#define REQUEST_GRACE_MS 2000u
/* The cluster answers a send within its tries (cluster/mail.c: 20 s, then one
 * more of 12 s at most); this only guards that promise. */
#define SEND_REMOTE_WAIT_MS 40000u

void host_message_reply(void *user, enum err_code rc, const struct err *err,
			const uint8_t *data, size_t len)
{
	struct host_wait *w = user;
	if (host_wait_claim(w)) {
		w->rc = rc;
		if (err && rc)
			w->e = *err;
		int keep = !rc || (rc == ERR_ACTOR_ERROR && data);   /* the refusal's bytes */
		if (keep && (w->data = malloc(len ? len : 1)) != NULL) {
			memcpy(w->data, data, len);
			w->len = len;
		} else if (!rc) {
			w->rc = err_set(&w->e, ERR_NOMEM, "out of memory for the response");
		}
	}
	host_wait_settle(w);
}

/* The target actor id: 36 bytes, a lowercase UUID; -1 otherwise. */
static int32_t read_id(struct wasm_caller *c, uint32_t ptr, uint32_t len, char out[37])
{
	uint8_t *id = NULL;
	int32_t rc = len == UUID_STR_LEN ? host_read(c, ptr, len, UUID_STR_LEN, &id) : HOST_EINVAL;
	if (!rc && !uuid_valid((char *)id))
		rc = HOST_EINVAL;
	if (!rc)
		memcpy(out, id, UUID_STR_LEN + 1);
	free(id);
	return rc;
}

int32_t host_message_args(struct wasm_caller *c, const struct wasm_value *args, char id[37],
			 uint8_t **msg, json_t *in, struct err *e)
{
	int32_t rc = read_id(c, args[0].of.i32, args[1].of.i32, id);
	if (rc) {
		err_set(e, ERR_BAD_ID, "the target must be an actor id (36 bytes)");
		return rc;
	}
	json_object_set_new(in, "to", json_string(id));
	rc = host_read(c, args[2].of.i32, args[3].of.i32, MESSAGE_MAX, msg);
	if (rc)
		err_set(e, ERR_INVALID, rc == HOST_ETOOBIG ? "the message is over %zu bytes"
			: "the message is outside the memory (limit %zu bytes)", MESSAGE_MAX);
	else
		json_object_set_new(in, "message", host_bytes_json(*msg, args[3].of.i32));
	return rc;
}

static json_t *output(int32_t rc, const struct err *e)
{
	json_t *out = json_pack("{s:i}", "result", rc);
	if (out && rc < 0 && e->msg[0])
		json_object_set_new(out, "error", json_string(e->msg));
	return out;
}

/* A send to another node's actor: done of supervisor_send_remote (user: a host_wait),
 * answered as a request without bytes. */
static void send_done(void *user, enum err_code rc, const struct err *err)
{
	host_message_reply(user, rc, err, (const uint8_t *)"", 0);
}

/* The rest of a send to another node's actor once its node answered (or not). */
static void send_finish(struct wasm_caller *c, struct actor *a, struct host_wait *w, void *ctx,
			struct wasm_value *results)
{
	(void)c;
	struct err e = {0};
	int32_t rc = 0;
	if (w->timed_out) {
		err_set(&e, ERR_TIMEOUT, "the receiver's node did not answer within %u ms",
			SEND_REMOTE_WAIT_MS);
		rc = HOST_ETIMEDOUT;
	} else if (w->rc) {
		e = w->e;
		if (!e.msg[0])
			err_set(&e, w->rc, "the send failed: %s", err_code_name(w->rc));
		rc = host_errno(w->rc);
	}
	host_set_i32(&results[0], rc);
	host_record(a, MOD, "send", json_incref(ctx), output(rc, &e));
}

static void json_ctx_free(void *p)
{
	json_decref(p);
}

static enum err_code m_send(struct wasm_caller *c, void *user, const struct wasm_value *args,
			    struct wasm_value *results, struct err *err)
{
	if (host_disallowed(user, GRANT_MESSAGE, MOD, "send", results, 0))
		return ERR_OK;
	struct err e = {0};
	char to[37];
	uint8_t *msg = NULL;
	json_t *in = json_object();
	struct supervisor *s = host_supervisor(user);
	int32_t rc = host_message_args(c, args, to, &msg, in, &e);
	enum err_code sc = rc ? ERR_OK : supervisor_send(s, to, host_actor_id(user), msg,
							  args[3].of.i32, &e);
	struct host_wait *w = NULL;
	/* another node's actor: the call parks until that node accepted it */
	if (sc == ERR_NOT_FOUND && supervisor_remote_hooks(s)) {
		memset(&e, 0, sizeof(e));
		if (!(w = host_wait_new()))
			sc = err_set(&e, ERR_NOMEM, "out of memory");
		else if ((sc = supervisor_send_remote(s, to, host_actor_id(user), msg,
						      args[3].of.i32, send_done, w, &e)))
			host_wait_unref(w);   /* the callback's reference: it will not run */
	}
	free(msg);
	if (w && !sc)
		return host_wait_end(c, user, w, SEND_REMOTE_WAIT_MS, send_finish, in,
				     json_ctx_free, results, err);
	if (w)
		host_wait_unref(w);
	if (!rc)
		rc = host_errno(sc);
	host_set_i32(&results[0], rc);
	host_record(user, MOD, "send", in, output(rc, &e));
	return ERR_OK;
}

/* What a request's finish needs. */
struct request_ctx {
	json_t *in;
	uint32_t timeout_ms, out;
};

static void request_ctx_free(void *p)
{
	struct request_ctx *x = p;
	json_decref(x->in);
	free(x);
}

static void record_request(struct actor *a, json_t *in, json_t *out, int32_t rc,
			   const struct err *e, struct wasm_value *results)
{
	host_set_i32(&results[0], rc);
	json_object_set_new(out, "result", json_integer(rc));
	if (rc < 0 && e->msg[0])
		json_object_set_new(out, "error", json_string(e->msg));
	host_record(a, MOD, "request", in, out);
}

/* The rest of request once the answer came (or the wait timed out). */
static void request_done(struct wasm_caller *c, struct actor *a, struct host_wait *w, void *ctx,
			 struct wasm_value *results)
{
	struct request_ctx *x = ctx;
	struct err e = {0};
	json_t *out = json_object();
	int32_t rc;
	if (w->timed_out) {
		err_set(&e, ERR_TIMEOUT, "no answer within %u ms", x->timeout_ms);
		rc = HOST_ETIMEDOUT;
	} else if (w->rc) {
		e = w->e;
		if (!e.msg[0])
			err_set(&e, w->rc, "the request failed: %s", err_code_name(w->rc));
		rc = host_errno(w->rc);
	} else {
		json_object_set_new(out, "response", host_bytes_json(w->data, w->len));
		rc = host_return_bytes(c, a, x->out, w->data, w->len);
	}
	record_request(a, json_incref(x->in), out, rc, &e, results);
}

static enum err_code m_request(struct wasm_caller *c, void *user, const struct wasm_value *args,
			       struct wasm_value *results, struct err *err)
{
	if (host_disallowed(user, GRANT_MESSAGE, MOD, "request", results, 0))
		return ERR_OK;
	struct err e = {0};
	char to[37];
	uint8_t *msg = NULL, *probe = NULL;
	json_t *in = json_object();
	uint32_t timeout = args[4].of.i32;
	if (timeout == 0 || timeout > REQUEST_MAX_TIMEOUT_MS)
		timeout = REQUEST_MAX_TIMEOUT_MS;
	int32_t rc = host_message_args(c, args, to, &msg, in, &e);
	json_object_set_new(in, "timeout_ms", json_integer(timeout));
	if (!rc && strcmp(to, host_actor_id(user)) == 0) {
		err_set(&e, ERR_INVALID, "an actor cannot send a request to itself");
		rc = HOST_EINVAL;
	}
	if (!rc && (rc = host_read(c, args[5].of.i32, 8, 8, &probe)))
		err_set(&e, ERR_INVALID, "the out slot is outside the memory");
	free(probe);
	struct host_wait *w = NULL;
	struct request_ctx *x = NULL;
	if (!rc && (!(w = host_wait_new()) || !(x = malloc(sizeof(*x))))) {
		err_set(&e, ERR_NOMEM, "out of memory");
		rc = HOST_EFAILED;
	}
	if (!rc) {
		enum err_code sc = supervisor_request(host_supervisor(user), to, host_actor_id(user),
						      msg, args[3].of.i32, timeout, host_message_reply, w,
						      &e);
		if (sc) {
			host_wait_unref(w);   /* the callback's reference: it will not run */
			rc = host_errno(sc);
		}
	}
	free(msg);
	if (rc) {
		if (w)
			host_wait_unref(w);
		free(x);
		record_request(user, in, json_object(), rc, &e, results);
		return ERR_OK;
	}
	*x = (struct request_ctx){in, timeout, args[5].of.i32};
	/* the supervisor answers within timeout; the grace only guards that promise */
	return host_wait_end(c, user, w, timeout + REQUEST_GRACE_MS, request_done, x,
			     request_ctx_free, results, err);
}

#define I WASM_I32
const struct host_fn host_message_fns[] = {
	{MOD, "send", GRANT_MESSAGE, 4, 1, {I, I, I, I}, {I}, m_send},
	{MOD, "request", GRANT_MESSAGE, 6, 1, {I, I, I, I, I, I}, {I}, m_request},
	{NULL, NULL, 0, 0, 0, {0}, {0}, NULL},
};
#undef I
