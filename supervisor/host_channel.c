/* host_channel.c - deferred requests and streamed answers: the host functions
 * defer-request, respond-to-request, fail-request and send-chunk of
 * theater:simple/message-server-host, and the send-http relay; see channel.h
 * and docs/actor-abi.md ("Deferred and streamed answers").
 *
 * A deferred request stays in the instance's table (a->chan, at most
 * CHANNEL_MAX_DEFERRED) until a call answers it. That answer is not sent at
 * once: it waits in the table until the call that made it is recorded and
 * durable (channel_flush, from the runtime after the call), so a client never
 * hears of an answer the chain could lose. Chunks go out as they are made
 * (they are progress, not the answer); each is a chain event: the host call's
 * own, or `message-server/chunk` for a chunk the send-http relay sent.
 *
 * When the instance goes (stop, failure, server stop) every deferred request is
 * answered with an error: a REST client cannot wait across a restart, so
 * deferred requests do not survive one (respond-to-request of an id from
 * before answers -2).
 */
#include <stdlib.h>
#include <string.h>

#include "src/util/crypto.h"
#include "src/util/log.h"
#include "supervisor/channel.h"
#include "supervisor/evbytes.h"
#include "supervisor/host.h"
#include "supervisor/record.h"
#include "supervisor/runtime.h"

#define MOD "theater:simple/message-server-host"
#define CHANNEL_MAX_DEFERRED 64
#define CHUNK_MAX ((size_t)1 << 20)
#define ANSWER_MAX ((size_t)16 << 20)
#define RELAY_LINE_MAX ((size_t)64 << 10)
#define RELAY_POINTER_MAX 256
#define RELAY_SECRETS 8
#define RELAY_SECRET_MIN 4
#define CHANNEL_MAX_OPEN 64
#define CHANNEL_MSG_MAX ((size_t)1 << 20)
#define CHANNEL_OPEN_TIMEOUT_MS 30000u
#define CHANNEL_OPEN_GRACE_MS 2000u
#define CHANNEL_ID_LIMIT ((uint64_t)1 << 53)   /* exact in a JSON number anywhere */

struct deferred {
	uint64_t id;
	struct reply *r;              /* one reference, given back by runtime_reply_send */
	int queued;                   /* answered by the call in progress; sent by flush */
	enum err_code rc;
	struct err e;
	uint8_t *data;
	size_t len;
};

/* One end of a channel between two actors. OPENING: the opener's, while its
 * open-channel waits for the target's answer; CLOSING: the peer closed it (or
 * its run ended), the close notice is on its way; the end goes when it is
 * delivered. */
enum end_state { END_OPENING, END_OPEN, END_CLOSING };

struct chan_end {
	uint64_t id;
	char peer[37];
	enum end_state st;
};

struct channel_tab {
	struct deferred v[CHANNEL_MAX_DEFERRED];
	size_t n;
	struct chan_end ends[CHANNEL_MAX_OPEN];
	size_t nends;
};

/* ---- the table (a->lock held) ---- */

static struct deferred *find_locked(struct actor *a, uint64_t id)
{
	for (size_t i = 0; a->chan && i < a->chan->n; i++)
		if (a->chan->v[i].id == id)
			return &a->chan->v[i];
	return NULL;
}

/* Takes every entry matching `queued_only` out of the table, into out. */
static size_t take_locked(struct actor *a, int queued_only, struct deferred *out)
{
	size_t n = 0, keep = 0;
	for (size_t i = 0; a->chan && i < a->chan->n; i++) {
		if (!queued_only || a->chan->v[i].queued)
			out[n++] = a->chan->v[i];
		else
			a->chan->v[keep++] = a->chan->v[i];
	}
	if (a->chan)
		a->chan->n = keep;
	return n;
}

size_t channel_count(struct actor *a)
{
	pthread_mutex_lock(&a->lock);
	size_t n = a->chan ? a->chan->n + a->chan->nends : 0;
	pthread_mutex_unlock(&a->lock);
	return n;
}

int channel_has_answers(struct actor *a)
{
	int any = 0;
	pthread_mutex_lock(&a->lock);
	for (size_t i = 0; a->chan && i < a->chan->n && !any; i++)
		any = a->chan->v[i].queued;
	pthread_mutex_unlock(&a->lock);
	return any;
}

static void send_all(struct supervisor *s, struct actor *a, struct deferred *v, size_t n,
		     const struct err *e)
{
	for (size_t i = 0; i < n; i++) {
		struct deferred *d = &v[i];
		if (e)
			runtime_reply_send(s, a, d->r, e->code, e, NULL, 0);
		else
			runtime_reply_send(s, a, d->r, d->rc, d->rc ? &d->e : NULL,
					   d->data ? d->data : (const uint8_t *)"", d->len);
		free(d->data);
	}
}

void channel_flush(struct supervisor *s, struct actor *a)
{
	struct deferred out[CHANNEL_MAX_DEFERRED];
	pthread_mutex_lock(&a->lock);
	size_t n = take_locked(a, 1, out);
	pthread_mutex_unlock(&a->lock);
	send_all(s, a, out, n, NULL);
}

static void close_peer(struct supervisor *s, const char *self, const char *peer, uint64_t id,
		       const char *reason, int from_self);

void channel_drop_all(struct supervisor *s, struct actor *a, const struct err *e)
{
	struct deferred out[CHANNEL_MAX_DEFERRED];
	pthread_mutex_lock(&a->lock);
	size_t n = take_locked(a, 0, out);
	struct channel_tab *t = a->chan;
	a->chan = NULL;
	pthread_mutex_unlock(&a->lock);
	/* Answers a call already made go out as made; the others get e. */
	for (size_t i = 0; i < n; i++)
		send_all(s, a, &out[i], 1, out[i].queued ? NULL : e);
	for (size_t i = 0; t && i < t->nends; i++)
		if (t->ends[i].st != END_CLOSING)
			close_peer(s, host_actor_id(a), t->ends[i].peer, t->ends[i].id, "ended", 0);
	free(t);
}

/* Takes out the deferred requests whose client stopped waiting (a->lock held),
 * so that they do not hold places; the caller gives their replies back. */
static size_t prune_locked(struct actor *a, struct deferred *out)
{
	size_t n = 0, keep = 0;
	for (size_t i = 0; a->chan && i < a->chan->n; i++) {
		struct deferred *d = &a->chan->v[i];
		if (!d->queued && !runtime_reply_waiting_locked(d->r))
			out[n++] = *d;
		else
			a->chan->v[keep++] = *d;
	}
	if (a->chan)
		a->chan->n = keep;
	return n;
}

/* ---- host functions ---- */

static enum err_code c_defer(struct wasm_caller *c, void *user, const struct wasm_value *args,
			     struct wasm_value *results, struct err *err)
{
	struct actor *a = user;
	int64_t rc;
	(void)c;
	(void)args;
	(void)err;
	if (host_disallowed(a, GRANT_MESSAGE, MOD, "defer-request", results, 1))
		return ERR_OK;
	uint64_t id = 0;
	const char *why = NULL;
	struct deferred gone[CHANNEL_MAX_DEFERRED];
	size_t ngone = 0;
	pthread_mutex_lock(&a->lock);
	if (!a->chan)
		a->chan = calloc(1, sizeof(*a->chan));
	if (a->chan && a->chan->n >= CHANNEL_MAX_DEFERRED)
		ngone = prune_locked(a, gone);
	if (!a->chan) {
		rc = HOST_EFAILED;
		why = "out of memory";
	} else if (a->chan->n >= CHANNEL_MAX_DEFERRED) {
		rc = HOST_EBUSY;
		why = "the actor already holds 64 deferred requests";
	} else if (!runtime_current_reply(a, &id) && (id = runtime_current_request(a)) != 0 &&
		   !find_locked(a, id)) {
		rc = (int64_t)id;   /* redelivered after a restart: no client waits for it */
		why = NULL;
	} else if (!runtime_current_reply(a, &id)) {
		rc = HOST_EINVAL;
		why = find_locked(a, runtime_current_request(a))
		      ? "the request is deferred already"
		      : "only a handle-request call can defer its request";
	} else {
		struct reply *r = runtime_defer_current(a, &id);
		a->chan->v[a->chan->n++] = (struct deferred){.id = id, .r = r};
		rc = (int64_t)id;
	}
	pthread_mutex_unlock(&a->lock);
	send_all(host_supervisor(a), a, gone, ngone, NULL);   /* nobody hears these */
	results[0] = (struct wasm_value){.type = WASM_I64, .of.i64 = (uint64_t)rc};
	json_t *out = json_pack("{s:I}", "result", (json_int_t)rc);
	if (why)
		json_object_set_new(out, "error", json_string(why));
	host_record(a, MOD, "defer-request", NULL, out);
	return ERR_OK;
}

/* respond-to-request (fail = 0) and fail-request (fail = 1). */
static void answer_deferred(struct wasm_caller *c, struct actor *a, const struct wasm_value *args,
			    struct wasm_value *results, int fail, const char *name)
{
	struct host_call k;
	uint8_t *data = NULL;
	uint64_t id = args[0].of.i64;
	host_call_init(&k);
	json_object_set_new(k.in, "request", json_integer((json_int_t)id));
	k.rc = host_read(c, args[1].of.i32, args[2].of.i32, ANSWER_MAX, &data);
	if (k.rc)
		err_set(&k.e, ERR_INVALID, "the answer is outside the memory or over 16 MiB");
	else
		json_object_set_new(k.in, fail ? "error" : "response",
				    evbytes_json(supervisor_store(host_supervisor(a)), data,
						 args[2].of.i32, NULL));
	pthread_mutex_lock(&a->lock);
	struct deferred *d = k.rc ? NULL : find_locked(a, id);
	if (!k.rc && (!d || d->queued)) {
		k.rc = HOST_ENOTFOUND;
		err_set(&k.e, ERR_NOT_FOUND, "no deferred request %llu waits for an answer (answered, "
			"or deferred before a restart)", (unsigned long long)id);
	} else if (d) {
		d->queued = 1;
		d->data = data;
		d->len = args[2].of.i32;
		data = NULL;
		if (fail) {
			d->rc = ERR_ACTOR_ERROR;
			err_set(&d->e, ERR_ACTOR_ERROR, "the actor returned an error: %.*s",
				(int)d->len, (const char *)d->data);
		}
	}
	struct reply *r = d && !k.rc ? d->r : NULL;   /* d may move once unlocked */
	pthread_mutex_unlock(&a->lock);
	if (r && !runtime_reply_waiting(a, r)) {
		k.rc = HOST_ETIMEDOUT;      /* still given back by the flush */
		err_set(&k.e, ERR_TIMEOUT, "the client of request %llu stopped waiting",
			(unsigned long long)id);
	}
	free(data);
	host_call_end(&k, a, MOD, name, results);
}

static enum err_code c_respond(struct wasm_caller *c, void *user, const struct wasm_value *args,
			       struct wasm_value *results, struct err *err)
{
	(void)err;
	if (!host_disallowed(user, GRANT_MESSAGE, MOD, "respond-to-request", results, 0))
		answer_deferred(c, user, args, results, 0, "respond-to-request");
	return ERR_OK;
}

static enum err_code c_fail(struct wasm_caller *c, void *user, const struct wasm_value *args,
			    struct wasm_value *results, struct err *err)
{
	(void)err;
	if (!host_disallowed(user, GRANT_MESSAGE, MOD, "fail-request", results, 0))
		answer_deferred(c, user, args, results, 1, "fail-request");
	return ERR_OK;
}

int channel_chunk(struct actor *a, uint64_t id, const uint8_t *data, size_t len,
		  uint64_t *id_out)
{
	uint64_t cur = 0;
	pthread_mutex_lock(&a->lock);
	struct reply *r = runtime_current_reply(a, &cur);
	if (r && id && id != cur)
		r = NULL;
	struct deferred *d = r || !id ? NULL : find_locked(a, id);
	if (d && !d->queued) {
		r = d->r;
		cur = id;
	}
	int rc = !r ? -1 : data ? runtime_reply_chunk_locked(r, data, len) : 0;
	uint64_t req = runtime_current_request(a);
	if (!r && req && (id == 0 || id == req) && !find_locked(a, req)) {
		rc = 0;                   /* a request without a client (redelivered) */
		cur = req;
	}
	pthread_mutex_unlock(&a->lock);
	if (id_out)
		*id_out = cur;
	return rc;
}

static enum err_code c_chunk(struct wasm_caller *c, void *user, const struct wasm_value *args,
			     struct wasm_value *results, struct err *err)
{
	struct actor *a = user;
	struct host_call k;
	uint8_t *data = NULL;
	uint64_t id = 0;
	(void)err;
	if (host_disallowed(a, GRANT_MESSAGE, MOD, "send-chunk", results, 0))
		return ERR_OK;
	host_call_init(&k);
	json_object_set_new(k.in, "request", json_integer((json_int_t)args[0].of.i64));
	k.rc = host_read(c, args[1].of.i32, args[2].of.i32, CHUNK_MAX, &data);
	if (k.rc)
		err_set(&k.e, ERR_INVALID, "the chunk is outside the memory or over 1 MiB");
	if (!k.rc && (k.rc = channel_chunk(a, args[0].of.i64, data, args[2].of.i32, &id)) < 0) {
		k.rc = HOST_ENOTFOUND;
		err_set(&k.e, ERR_NOT_FOUND, "no request %llu to stream to",
			(unsigned long long)args[0].of.i64);
	} else if (!k.rc || k.rc == 1) {
		json_object_set_new(k.in, "request", json_integer((json_int_t)id));
		json_object_set_new(k.in, "data", evbytes_json(supervisor_store(host_supervisor(a)),
							      data, args[2].of.i32, NULL));
	}
	free(data);
	host_call_end(&k, a, MOD, "send-chunk", results);
	return ERR_OK;
}

/* ---- channels between actors ----
 *
 * Each actor holds its ends in its table (a->chan->ends). The opener adds its
 * end (OPENING) before the target hears of the channel, the target adds its
 * end when its handle-channel-open accepted, before the opener is answered. A
 * message or a close is mail in the peer's mailbox (after the sender's earlier
 * mail to it: per-sender FIFO); the runtime delivers it only while the peer
 * still holds its end (channel_mail_check). Closing takes one's own end out
 * and marks the peer's CLOSING; only a closer that found the peer's end open
 * sends the notice, so each close is told once. Two actor locks are never
 * held at once. */

static struct chan_end *end_find_locked(struct actor *a, uint64_t id)
{
	for (size_t i = 0; a->chan && i < a->chan->nends; i++)
		if (a->chan->ends[i].id == id)
			return &a->chan->ends[i];
	return NULL;
}

static void end_remove_locked(struct actor *a, struct chan_end *e)
{
	*e = a->chan->ends[--a->chan->nends];
}

/* The JSON envelope a receiving export gets (malloc'd, NUL-terminated):
 * {"channel", "from", "data" | "data_b64"} or {"channel", "from", "reason"}. */
static char *envelope(uint64_t id, const char *from, const uint8_t *data, size_t len,
		      const char *reason, size_t *len_out)
{
	json_t *o = json_pack("{s:I, s:s}", "channel", (json_int_t)id, "from", from);
	if (o && reason)
		json_object_set_new(o, "reason", json_string(reason));
	json_t *text = o && data ? json_stringn((const char *)data, len) : NULL;
	if (text) {
		json_object_set_new(o, "data", text);
	} else if (o && data) {
		char *b64 = base64_encode(data, len);
		json_object_set_new(o, "data_b64", json_string(b64 ? b64 : ""));
		free(b64);
	}
	char *out = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	*len_out = out ? strlen(out) : 0;
	return out;
}

/* The channel id (0: none) and sender of an envelope. */
static uint64_t envelope_id(const uint8_t *data, size_t len, char from[37])
{
	json_t *o = json_loadb((const char *)data, len, 0, NULL);
	json_int_t id = json_integer_value(json_object_get(o, "channel"));
	const char *f = json_string_value(json_object_get(o, "from"));
	snprintf(from, 37, "%s", f ? f : "");
	json_decref(o);
	return id > 0 ? (uint64_t)id : 0;
}

/* Marks the peer's end of channel id CLOSING and sends it the close notice,
 * unless the peer no longer holds the channel open (it closed it itself). */
static void close_peer(struct supervisor *s, const char *self, const char *peer, uint64_t id,
		       const char *reason, int from_self)
{
	struct actor *p = reg_find(s, peer);
	int go = 0;
	if (p) {
		pthread_mutex_lock(&p->lock);
		struct chan_end *e = end_find_locked(p, id);
		if (e && e->st != END_CLOSING) {
			e->st = END_CLOSING;
			go = 1;
		}
		pthread_mutex_unlock(&p->lock);
		actor_unref(s, p);
	}
	size_t n = 0;
	char *env = go ? envelope(id, self, NULL, 0, reason, &n) : NULL;
	struct err e = {0};
	if (env && runtime_channel_deliver(s, peer, from_self ? self : NULL, 1, env, n, &e))
		log_info("host", "cannot tell '%s' that channel %llu closed: %s", peer,
			 (unsigned long long)id, e.msg);
	free(env);
}

int channel_mail_check(struct actor *a, int close, const uint8_t *data, size_t len)
{
	char from[37];
	uint64_t id = envelope_id(data, len, from);
	pthread_mutex_lock(&a->lock);
	struct chan_end *e = id ? end_find_locked(a, id) : NULL;
	int held = e != NULL;
	if (e && close)
		end_remove_locked(a, e);
	pthread_mutex_unlock(&a->lock);
	return held;
}

enum err_code channel_accept(struct supervisor *s, struct actor *a, const uint8_t *data,
			     size_t len, struct err *e)
{
	char from[37];
	uint64_t id = envelope_id(data, len, from);
	struct actor *o = reg_find(s, from);
	int waits = 0;
	if (o) {
		pthread_mutex_lock(&o->lock);
		struct chan_end *oe = end_find_locked(o, id);
		waits = oe && oe->st == END_OPENING;
		pthread_mutex_unlock(&o->lock);
		actor_unref(s, o);
	}
	if (!id || !waits)
		return err_set(e, ERR_TIMEOUT, "the opener of channel %llu stopped waiting",
			       (unsigned long long)id);
	enum err_code rc = ERR_OK;
	pthread_mutex_lock(&a->lock);
	if (!a->chan)
		a->chan = calloc(1, sizeof(*a->chan));
	if (!a->chan)
		rc = err_set(e, ERR_NOMEM, "out of memory");
	else if (a->chan->nends >= CHANNEL_MAX_OPEN)
		rc = err_set(e, ERR_BUSY, "actor '%s' already holds %d channels", host_actor_id(a),
			     CHANNEL_MAX_OPEN);
	else
		a->chan->ends[a->chan->nends++] = (struct chan_end){.id = id, .st = END_OPEN};
	if (!rc)
		snprintf(a->chan->ends[a->chan->nends - 1].peer, 37, "%s", from);
	pthread_mutex_unlock(&a->lock);
	return rc;
}

struct open_ctx {
	json_t *in;
	uint64_t id;
	uint32_t out;
	char to[37];
};

static void open_ctx_free(void *p)
{
	struct open_ctx *x = p;
	json_decref(x->in);
	free(x);
}

static void open_record(struct actor *a, json_t *in, json_t *out, int64_t rc,
			const struct err *e, struct wasm_value *results)
{
	results[0] = (struct wasm_value){.type = WASM_I64, .of.i64 = (uint64_t)rc};
	json_object_set_new(out, "result", json_integer((json_int_t)rc));
	if (rc < 0 && e->msg[0])
		json_object_set_new(out, "error", json_string(e->msg));
	host_record(a, MOD, "open-channel", in, out);
}

/* Takes the opener's end of id out of its table (the open failed). */
static void end_drop(struct actor *a, uint64_t id)
{
	pthread_mutex_lock(&a->lock);
	struct chan_end *e = end_find_locked(a, id);
	if (e)
		end_remove_locked(a, e);
	pthread_mutex_unlock(&a->lock);
}

/* The rest of open-channel once the target answered (or the wait ran out). */
static void open_done(struct wasm_caller *c, struct actor *a, struct host_wait *w, void *ctx,
		      struct wasm_value *results)
{
	struct open_ctx *x = ctx;
	struct err e = {0};
	json_t *out = json_object();
	int64_t rc = (int64_t)x->id;
	if (w->timed_out || w->rc) {
		if (w->timed_out)
			err_set(&e, ERR_TIMEOUT, "no answer within %u ms", CHANNEL_OPEN_TIMEOUT_MS);
		else
			e = w->e;
		rc = w->timed_out ? HOST_ETIMEDOUT : w->rc == ERR_ACTOR_ERROR ? HOST_EDENIED
		     : w->rc == ERR_CONFLICT ? HOST_ENOTFOUND : host_errno(w->rc);
		end_drop(a, x->id);
		/* a late accept is refused (channel_accept): the target keeps no end */
	}
	if (w->rc == ERR_ACTOR_ERROR) {
		json_object_set_new(out, "rejected", host_bytes_json(w->data, w->len));
		if (w->data)
			host_return_bytes(c, a, x->out, w->data, w->len);
	} else if (!w->timed_out && !w->rc) {
		json_object_set_new(out, "channel", json_integer((json_int_t)x->id));
		json_object_set_new(out, "message", host_bytes_json(w->data, w->len));
		pthread_mutex_lock(&a->lock);
		struct chan_end *ce = end_find_locked(a, x->id);
		if (ce && ce->st == END_OPENING)
			ce->st = END_OPEN;
		pthread_mutex_unlock(&a->lock);
		int32_t wr = host_return_bytes(c, a, x->out, w->data ? w->data : (uint8_t *)"",
					       w->len);
		if (wr < 0)
			err_set(&e, ERR_NOMEM, "cannot write the accept message");
	}
	open_record(a, json_incref(x->in), out, rc, &e, results);
}

/* Adds the opener's end (OPENING) with a fresh id; 0 or a negative result. */
static int32_t end_open(struct actor *a, const char *to, uint64_t *id_out, struct err *e)
{
	uint64_t id = 0;
	if (random_bytes(&id, sizeof(id)))
		return err_set(e, ERR_INTERNAL, "no random bytes for a channel id"), HOST_EFAILED;
	id = id % (CHANNEL_ID_LIMIT - 1) + 1;
	int32_t rc = 0;
	pthread_mutex_lock(&a->lock);
	if (!a->chan)
		a->chan = calloc(1, sizeof(*a->chan));
	if (!a->chan) {
		rc = HOST_EFAILED;
		err_set(e, ERR_NOMEM, "out of memory");
	} else if (a->chan->nends >= CHANNEL_MAX_OPEN) {
		rc = HOST_EBUSY;
		err_set(e, ERR_BUSY, "the actor already holds %d channels", CHANNEL_MAX_OPEN);
	} else {
		struct chan_end *ce = &a->chan->ends[a->chan->nends++];
		*ce = (struct chan_end){.id = id, .st = END_OPENING};
		snprintf(ce->peer, sizeof(ce->peer), "%s", to);
	}
	pthread_mutex_unlock(&a->lock);
	*id_out = id;
	return rc;
}

static enum err_code c_open(struct wasm_caller *c, void *user, const struct wasm_value *args,
			    struct wasm_value *results, struct err *err)
{
	struct actor *a = user;
	if (host_disallowed(a, GRANT_MESSAGE, MOD, "open-channel", results, 1))
		return ERR_OK;
	struct err e = {0};
	char to[37];
	uint8_t *msg = NULL, *probe = NULL;
	json_t *in = json_object();
	uint64_t id = 0;
	int32_t rc = host_message_args(c, args, to, &msg, in, &e);
	if (!rc && args[3].of.i32 > CHANNEL_MSG_MAX) {
		rc = HOST_ETOOBIG;
		err_set(&e, ERR_TOO_LARGE, "the message is over %zu bytes", CHANNEL_MSG_MAX);
	}
	if (!rc && strcmp(to, host_actor_id(a)) == 0) {
		rc = HOST_EINVAL;
		err_set(&e, ERR_INVALID, "an actor cannot open a channel to itself");
	}
	if (!rc && (rc = host_read(c, args[4].of.i32, 8, 8, &probe)))
		err_set(&e, ERR_INVALID, "the out slot is outside the memory");
	free(probe);
	if (!rc)
		rc = end_open(a, to, &id, &e);
	size_t n = 0;
	char *env = rc ? NULL : envelope(id, host_actor_id(a), msg, args[3].of.i32, NULL, &n);
	struct host_wait *w = NULL;
	struct open_ctx *x = NULL;
	if (!rc && (!env || !(w = host_wait_new()) || !(x = calloc(1, sizeof(*x))))) {
		err_set(&e, ERR_NOMEM, "out of memory");
		rc = HOST_EFAILED;
	}
	if (!rc) {
		enum err_code sc = runtime_channel_open(host_supervisor(a), to, host_actor_id(a), env,
							n, CHANNEL_OPEN_TIMEOUT_MS,
							host_message_reply, w, &e);
		if (sc) {
			host_wait_unref(w);   /* the callback's reference: it will not run */
			rc = sc == ERR_CONFLICT ? HOST_ENOTFOUND : host_errno(sc);
		}
	}
	free(msg);
	free(env);
	if (rc) {
		if (id)
			end_drop(a, id);
		if (w)
			host_wait_unref(w);
		free(x);
		open_record(a, in, json_object(), rc, &e, results);
		return ERR_OK;
	}
	json_object_set_new(in, "channel", json_integer((json_int_t)id));
	*x = (struct open_ctx){.in = in, .id = id, .out = args[4].of.i32};
	snprintf(x->to, sizeof(x->to), "%s", to);
	return host_wait_end(c, a, w, CHANNEL_OPEN_TIMEOUT_MS + CHANNEL_OPEN_GRACE_MS, open_done,
			     x, open_ctx_free, results, err);
}

static enum err_code c_send_on(struct wasm_caller *c, void *user, const struct wasm_value *args,
			       struct wasm_value *results, struct err *err)
{
	struct actor *a = user;
	struct host_call k;
	uint8_t *data = NULL;
	uint64_t id = args[0].of.i64;
	char peer[37] = "";
	(void)err;
	if (host_disallowed(a, GRANT_MESSAGE, MOD, "send-on-channel", results, 0))
		return ERR_OK;
	host_call_init(&k);
	json_object_set_new(k.in, "channel", json_integer((json_int_t)id));
	k.rc = host_read(c, args[1].of.i32, args[2].of.i32, CHANNEL_MSG_MAX, &data);
	if (k.rc)
		err_set(&k.e, ERR_INVALID, k.rc == HOST_ETOOBIG ? "the message is over 1 MiB"
			: "the message is outside the memory");
	if (!k.rc) {
		json_object_set_new(k.in, "message", host_bytes_json(data, args[2].of.i32));
		pthread_mutex_lock(&a->lock);
		struct chan_end *ce = end_find_locked(a, id);
		if (ce && ce->st == END_OPEN)
			snprintf(peer, sizeof(peer), "%s", ce->peer);
		pthread_mutex_unlock(&a->lock);
		if (!peer[0]) {
			k.rc = HOST_ENOTFOUND;
			err_set(&k.e, ERR_NOT_FOUND, "no open channel %llu (closed, or opened before "
				"a restart)", (unsigned long long)id);
		}
	}
	size_t n = 0;
	char *env = k.rc ? NULL : envelope(id, host_actor_id(a), data, args[2].of.i32, NULL, &n);
	if (!k.rc && !env) {
		k.rc = HOST_EFAILED;
		err_set(&k.e, ERR_NOMEM, "out of memory");
	}
	if (!k.rc) {
		enum err_code sc = runtime_channel_deliver(host_supervisor(a), peer, host_actor_id(a),
							   0, env, n, &k.e);
		k.rc = sc == ERR_CONFLICT ? HOST_ENOTFOUND : host_errno(sc);
	}
	free(env);
	free(data);
	host_call_end(&k, a, MOD, "send-on-channel", results);
	return ERR_OK;
}

static enum err_code c_close(struct wasm_caller *c, void *user, const struct wasm_value *args,
			     struct wasm_value *results, struct err *err)
{
	struct actor *a = user;
	struct host_call k;
	uint64_t id = args[0].of.i64;
	char peer[37] = "";
	int was_open = 0;
	(void)c;
	(void)err;
	if (host_disallowed(a, GRANT_MESSAGE, MOD, "close-channel", results, 0))
		return ERR_OK;
	host_call_init(&k);
	json_object_set_new(k.in, "channel", json_integer((json_int_t)id));
	pthread_mutex_lock(&a->lock);
	struct chan_end *ce = end_find_locked(a, id);
	if (ce) {
		snprintf(peer, sizeof(peer), "%s", ce->peer);
		was_open = ce->st != END_CLOSING;
		end_remove_locked(a, ce);
	}
	pthread_mutex_unlock(&a->lock);
	if (!peer[0]) {
		k.rc = HOST_ENOTFOUND;
		err_set(&k.e, ERR_NOT_FOUND, "no channel %llu (closed, or opened before a restart)",
			(unsigned long long)id);
	} else if (was_open) {
		close_peer(host_supervisor(a), host_actor_id(a), peer, id, "closed", 1);
	}
	host_call_end(&k, a, MOD, "close-channel", results);
	return ERR_OK;
}

/* ---- the send-http relay ---- */

struct relayed {
	uint8_t *data;
	size_t len;
};

struct channel_relay {
	struct actor *a;              /* a reference */
	uint64_t id;
	char pointer[RELAY_POINTER_MAX];
	char *line;                   /* the incomplete line (the transfer's) */
	size_t len;
	int skipping;                 /* the current line is too long: dropped */
	pthread_mutex_t lock;         /* the chunks sent and the references */
	struct relayed *sent;
	size_t nsent, capsent, recorded;
	int refs;
	int finished;                 /* recorded by the call: nothing more is sent */
	char *hold;                   /* text held back: a secret may go on in the */
	size_t nhold;                 /* next line (at most the longest secret - 1) */
	struct {
		char name[160];
		uint8_t *value;
		size_t len;
	} secret[RELAY_SECRETS];
	size_t nsecrets;
};

static void relay_unref(struct channel_relay *x)
{
	pthread_mutex_lock(&x->lock);
	int last = --x->refs == 0;
	pthread_mutex_unlock(&x->lock);
	if (!last)
		return;
	for (size_t i = 0; i < x->nsent; i++)
		free(x->sent[i].data);
	free(x->sent);
	for (size_t i = 0; i < x->nsecrets; i++) {
		secure_zero(x->secret[i].value, x->secret[i].len);
		free(x->secret[i].value);
	}
	free(x->line);
	free(x->hold);
	pthread_mutex_destroy(&x->lock);
	actor_unref(host_supervisor(x->a), x->a);
	free(x);
}

int32_t channel_relay_new(struct actor *a, const json_t *relay, struct channel_relay **out,
			  struct err *e)
{
	*out = NULL;
	if (!relay)
		return 0;
	static const char *const keys[] = {"request", "pointer", NULL};
	const json_t *req = json_object_get(relay, "request");
	const char *ptr = json_string_value(json_object_get(relay, "pointer"));
	if (!json_is_object(relay) || json_check_keys(relay, keys, "relay", e) ||
	    (req && (!json_is_integer(req) || json_integer_value(req) < 0)) || !ptr ||
	    (ptr[0] && ptr[0] != '/') || strlen(ptr) >= RELAY_POINTER_MAX) {
		if (!e->msg[0] || e->code != ERR_UNKNOWN_KEY)
			err_set(e, ERR_INVALID, "relay must be {\"request\": id (0: this call's), "
				"\"pointer\": a JSON pointer such as \"/choices/0/delta/content\"}");
		return HOST_EINVAL;
	}
	uint64_t id = req ? (uint64_t)json_integer_value(req) : 0;
	if (channel_chunk(a, id, NULL, 0, &id) < 0) {     /* only finds it: nothing is sent */
		err_set(e, ERR_NOT_FOUND, "no request %lld to relay to",
			req ? (long long)json_integer_value(req) : 0LL);
		return HOST_ENOTFOUND;
	}
	struct channel_relay *x = calloc(1, sizeof(*x));
	if (!x) {
		err_set(e, ERR_NOMEM, "out of memory");
		return HOST_EFAILED;
	}
	x->a = a;
	actor_ref(host_supervisor(a), a);
	x->id = id;
	x->refs = 2;                  /* the call's and the transfer's */
	pthread_mutex_init(&x->lock, NULL);
	snprintf(x->pointer, sizeof(x->pointer), "%s", ptr);
	*out = x;
	return 0;
}

/* The value at a JSON pointer (RFC 6901), borrowed; NULL when there is none. */
static const json_t *pointer_get(const json_t *v, const char *p)
{
	while (v && *p == '/') {
		char key[RELAY_POINTER_MAX];
		size_t n = 0;
		for (p++; *p && *p != '/' && n < sizeof(key) - 1; p++) {
			if (p[0] == '~' && (p[1] == '0' || p[1] == '1'))
				key[n++] = *++p == '0' ? '~' : '/';
			else
				key[n++] = *p;
		}
		key[n] = 0;
		if (json_is_array(v)) {
			char *end;
			unsigned long i = strtoul(key, &end, 10);
			v = n && !*end ? json_array_get(v, i) : NULL;
		} else {
			v = json_object_get(v, key);
		}
	}
	return v;
}

void channel_relay_secret(struct channel_relay *x, const char *name, const uint8_t *value,
			  size_t len)
{
	if (!x || len < RELAY_SECRET_MIN || x->nsecrets == RELAY_SECRETS)
		return;
	uint8_t *copy = malloc(len);
	if (!copy)
		return;
	memcpy(copy, value, len);
	snprintf(x->secret[x->nsecrets].name, sizeof(x->secret[0].name), "%s", name);
	x->secret[x->nsecrets].value = copy;
	x->secret[x->nsecrets++].len = len;
}

/* The chunk with every secret value replaced by "[secret:NAME]" (malloc'd), or
 * NULL when it holds none (or out of memory: then *dropped is set). */
static char *scrubbed(const struct channel_relay *x, const char *text, size_t len,
		      size_t *len_out, int *dropped)
{
	char *cur = NULL;
	for (size_t i = 0; i < x->nsecrets; i++) {
		const char *src = cur ? cur : text;
		size_t n = cur ? *len_out : len, vl = x->secret[i].len;
		if (!memmem(src, n, x->secret[i].value, vl))
			continue;
		char mark[180];
		int ml = snprintf(mark, sizeof(mark), "[secret:%s]", x->secret[i].name);
		char *out = malloc(n / vl * (size_t)ml + n + 1);
		if (!out) {
			*dropped = 1;
			free(cur);
			return NULL;
		}
		size_t o = 0;
		for (size_t k = 0; k < n;) {
			if (k + vl <= n && memcmp(src + k, x->secret[i].value, vl) == 0) {
				memcpy(out + o, mark, (size_t)ml);
				o += (size_t)ml;
				k += vl;
			} else {
				out[o++] = src[k++];
			}
		}
		free(cur);
		cur = out;
		*len_out = o;
	}
	return cur;
}

/* Keeps a copy of a chunk sent, for the call's finish to record (x->lock held). */
static void keep_sent_locked(struct channel_relay *x, const char *text, size_t len)
{
	uint8_t *copy = malloc(len);
	if (copy && x->nsent == x->capsent) {
		size_t cap = x->capsent ? x->capsent * 2 : 16;
		struct relayed *v = realloc(x->sent, cap * sizeof(*v));
		if (v) {
			x->sent = v;
			x->capsent = cap;
		}
	}
	if (copy && x->nsent < x->capsent) {
		memcpy(copy, text, len);
		x->sent[x->nsent++] = (struct relayed){copy, len};
		copy = NULL;
	}
	free(copy);
}

/* How many bytes to send now: all but the longest secret - 1, so that a value
 * that begins at the end of one line's text and goes on in the next is
 * replaced too. The cut moves back to a UTF-8 character's start. */
static size_t hold_from(const struct channel_relay *x, const char *text, size_t len)
{
	size_t keep = 0;
	for (size_t i = 0; i < x->nsecrets; i++)
		if (x->secret[i].len - 1 > keep)
			keep = x->secret[i].len - 1;
	size_t cut = len > keep ? len - keep : 0;
	while (cut > 0 && cut < len && ((unsigned char)text[cut] & 0xC0) == 0x80)
		cut--;
	return cut;
}

/* Sends text (after what was held back) as a chunk, scrubbed, holding back the
 * tail a secret could still begin in; final: sends everything. x->lock held. */
static void relay_emit_locked(struct channel_relay *x, const char *text, size_t len, int final)
{
	if (x->finished)
		return;
	char *all = malloc(x->nhold + len + 1);
	if (!all)
		return;
	memcpy(all, x->hold ? x->hold : "", x->nhold);
	memcpy(all + x->nhold, text, len);
	size_t n = x->nhold + len, clean_len = 0;
	int dropped = 0;
	char *clean = n ? scrubbed(x, all, n, &clean_len, &dropped) : NULL;
	if (clean) {
		free(all);
		all = clean;
		n = clean_len;
	}
	size_t cut = final ? n : hold_from(x, all, n);
	if (!dropped && cut && channel_chunk(x->a, x->id, (const uint8_t *)all, cut, NULL) >= 0)
		keep_sent_locked(x, all, cut);
	free(x->hold);
	x->hold = NULL;
	x->nhold = 0;
	if (cut < n && (x->hold = malloc(n - cut)) != NULL) {
		memcpy(x->hold, all + cut, n - cut);
		x->nhold = n - cut;
	}
	free(all);
}

static void relay_line(struct channel_relay *x, const char *line, size_t n)
{
	if (n && line[n - 1] == '\r')
		n--;
	if (n < 5 || memcmp(line, "data:", 5) != 0)
		return;
	line += 5;
	n -= 5;
	if (n && *line == ' ') {
		line++;
		n--;
	}
	json_t *j = json_loadb(line, n, 0, NULL);
	const json_t *v = pointer_get(j, x->pointer);
	const char *text = json_string_value(v);
	size_t len = json_string_length(v);
	if (text && len) {
		pthread_mutex_lock(&x->lock);
		relay_emit_locked(x, text, len, 0);
		pthread_mutex_unlock(&x->lock);
	}
	json_decref(j);
}

int channel_relay_feed(void *relay, const uint8_t *data, size_t len)
{
	struct channel_relay *x = relay;
	if (!data) {                  /* the transfer is over */
		relay_unref(x);
		return 0;
	}
	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\n') {
			if (!x->skipping)
				relay_line(x, x->line ? x->line : "", x->len);
			x->len = 0;
			x->skipping = 0;
			continue;
		}
		if (x->skipping)
			continue;
		if (!x->line && !(x->line = malloc(RELAY_LINE_MAX))) {
			x->skipping = 1;
			continue;
		}
		if (x->len == RELAY_LINE_MAX) {
			x->skipping = 1;   /* no event of ours is that long */
			continue;
		}
		x->line[x->len++] = (char)data[i];
	}
	return 0;
}

size_t channel_relay_record(struct channel_relay *x)
{
	if (!x)
		return 0;
	struct supervisor *s = host_supervisor(x->a);
	/* The lock is held throughout: the transfer may still add (and move) them.
	 * Order: x->lock, then the actor's record and state locks. */
	pthread_mutex_lock(&x->lock);
	relay_emit_locked(x, "", 0, 1);   /* what was held back: the response is over */
	x->finished = 1;
	size_t from = x->recorded, to = x->nsent;
	x->recorded = to;
	for (size_t i = from; i < to; i++) {
		struct err e = {0};
		const struct relayed *c = &x->sent[i];
		json_t *ev = json_pack("{s:I, s:s, s:o}", "request", (json_int_t)x->id, "via",
				       "send-http", "data", evbytes_json(supervisor_store(s), c->data,
									 c->len, NULL));
		if (record_event_ex(s, x->a, "message-server/chunk", ev, NULL, NULL, 1, &e))
			log_error_limited("host", "cannot record a chunk of '%s': %s",
					  host_actor_id(x->a), e.msg);
		runtime_account_bytes(x->a, c->len);
	}
	pthread_mutex_unlock(&x->lock);
	return to;
}

void channel_relay_free(struct channel_relay *x)
{
	if (x)
		relay_unref(x);
}

#define I WASM_I32
#define L WASM_I64
const struct host_fn host_channel_fns[] = {
	{MOD, "defer-request", GRANT_MESSAGE, 0, 1, {0}, {L}, c_defer},
	{MOD, "respond-to-request", GRANT_MESSAGE, 3, 1, {L, I, I}, {I}, c_respond},
	{MOD, "fail-request", GRANT_MESSAGE, 3, 1, {L, I, I}, {I}, c_fail},
	{MOD, "send-chunk", GRANT_MESSAGE, 3, 1, {L, I, I}, {I}, c_chunk},
	{MOD, "open-channel", GRANT_MESSAGE, 5, 1, {I, I, I, I, I}, {L}, c_open},
	{MOD, "send-on-channel", GRANT_MESSAGE, 3, 1, {L, I, I}, {I}, c_send_on},
	{MOD, "close-channel", GRANT_MESSAGE, 1, 1, {L}, {I}, c_close},
	{NULL, NULL, 0, 0, 0, {0}, {0}, NULL},
};
#undef I
#undef L
