/* bus.c - the libnats wrapper (see bus.h). It turns libnats statuses into the
 * project's error codes, keeps the connection and its JetStream context, and
 * runs one thread per key-value watch (libnats's watchers are pulled with
 * kvWatcher_Next). Asynchronous stream publishes are numbered; each gets
 * exactly one answer (the stream's acknowledgement, its refusal, or libnats's
 * timeout after PUBLISH_WAIT_MS), recorded by number in a window of bits, so
 * bus_stream_wait knows which publishes are answered, not only how many. A wait
 * that gives up abandons the publishes it covers: their answers, if they come
 * later, are ignored, and nothing newer is mistaken for them. */
#include "cluster/bus.h"

#include <nats/nats.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "src/util/crypto.h"
#include "src/util/deadline.h"
#include "src/util/json.h"
#include "src/util/log.h"

#define PENDING_SLOTS 256
/* libnats answers an async publish with a timeout after this long (below the
 * waits' 5 s, so a wait sees the failure rather than timing out itself). */
#define PUBLISH_WAIT_MS 4000
#define NATS_STR_(x) #x
#define NATS_STR(x) NATS_STR_(x)
/* publishes that may be unanswered at once (libnats stalls past MAX_PENDING) */
#define MAX_PENDING 65536
#define ACK_WINDOW ((uint64_t)MAX_PENDING * 2)

struct bus {
	natsConnection *nc;
	jsCtx *js;
	pthread_mutex_t lock;         /* the counters below, async_why */
	pthread_cond_t acked;         /* signalled when an acknowledgement arrives */
	uint64_t published;           /* async publishes made (numbered from 1) */
	uint64_t done_below;          /* each publish numbered below is answered or
				       * abandoned by a wait */
	uint8_t *answered;            /* ACK_WINDOW bits: publish n >= done_below answered */
	uint64_t first_failed;        /* lowest publish number refused or lost; 0: none */
	uint64_t last_failed;         /* highest */
	char async_why[160];
	/* Requests answered without a waiting thread (bus_request_start): one
	 * subscription on "<rinbox>.*" made at the first; a request waits in rmap
	 * (by token, the last part of its reply subject) until answered or expired. */
	pthread_mutex_t rlock;
	natsSubscription *rsub;
	char rinbox[96];
	uint64_t rnext;
	struct pending *rmap[PENDING_SLOTS];
};

struct pending {
	uint64_t token;
	bus_reply_fn fn;
	void *user;
	char subject[128];
	struct pending *next;
};

struct bus_sub {
	natsSubscription *sub;
	bus_msg_fn fn;
	void *user;
	/* libnats calls on_complete once the subscription is closed and its handler
	 * has returned for the last time: bus_unsubscribe waits for it before the
	 * caller may free what the handler uses. */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int complete;
	int has_complete_cb;
};

struct bus_kv {
	struct bus *bus;
	kvStore *kv;
	char bucket[64];
};

struct bus_watch {
	struct bus_kv *kv;
	kvWatcher *w;
	bus_kv_fn fn;
	void *user;
	pthread_t thread;
	int stop;                     /* atomic */
	pthread_mutex_t lock;         /* w (replaced by watch_renew, stopped by bus_watch_stop) */
	unsigned stall_ms;            /* renew after this long without an entry; 0: never */
	int renew;                    /* atomic: bus_watch_renew asked for a fresh watcher */
};

static pthread_once_t open_once = PTHREAD_ONCE_INIT;
static natsStatus open_status = NATS_OK;

static void nats_open_once(void)
{
	open_status = nats_Open(-1);
}

static enum err_code code_of(natsStatus s)
{
	switch (s) {
	case NATS_OK: return ERR_OK;
	case NATS_NO_MEMORY: return ERR_NOMEM;
	case NATS_TIMEOUT: return ERR_TIMEOUT;
	case NATS_NOT_FOUND: return ERR_NOT_FOUND;
	default: return ERR_UNAVAILABLE;
	}
}

/* What a call that returned s failed on. libnats keeps its last error text per
 * thread and leaves it there when a later call fails without setting one: the
 * trials showed a heartbeat put that found no responders, and a compare-and-set
 * that timed out, both reporting an older "wrong last sequence". The text is
 * this call's only when its status is the one the call returned. */
static const char *status_text(natsStatus s)
{
	natsStatus last = NATS_OK;
	const char *text = nats_GetLastError(&last);
	if (!text || !*text || last != s)
		return natsStatus_GetText(s);
	return text;
}

/* An error naming what failed, with libnats's own text for this failure. */
static enum err_code fail(struct err *err, natsStatus s, const char *what, const char *name)
{
	return err_set(err, code_of(s), "nats: %s '%s': %s", what, name, status_text(s));
}

/* JetStream refused to create a stream with this many replicas: a single NATS
 * server (not clustered) cannot hold more than one, which no retry changes
 * (ERR_INVALID, with the option to use); a cluster with too few servers up may
 * place them later (the error stays retryable, with the same hint). 0 when jerr
 * is another error. */
static enum err_code replicas_refused(struct err *err, jsErrCode jerr, unsigned replicas,
				      const char *what, const char *name)
{
	if (jerr == JSStreamReplicasNotSupportedErr)
		return err_set(err, ERR_INVALID, "nats: %s '%s': the NATS server is not clustered, so "
			       "it holds one replica, not %u; start theater-server with "
			       "--nats-replicas 1 (THEATER_NATS_REPLICAS=1), or join a JetStream "
			       "cluster of %u servers or more", what, name, replicas, replicas);
	if (jerr == JSClusterNoPeersErr)
		return err_set(err, ERR_UNAVAILABLE, "nats: %s '%s': the JetStream cluster has no %u "
			       "servers to place its replicas on (--nats-replicas %u; are they all "
			       "up?)", what, name, replicas, replicas);
	return ERR_OK;
}

/* ---- the answers of async publishes, by number (b->lock held) ---- */

static int answered_bit(const struct bus *b, uint64_t n)
{
	return b->answered[(n % ACK_WINDOW) / 8] >> (n % 8) & 1;
}

static void set_answered(struct bus *b, uint64_t n, int on)
{
	uint8_t *byte = &b->answered[(n % ACK_WINDOW) / 8];
	*byte = (uint8_t)(on ? *byte | 1u << (n % 8) : *byte & ~(1u << (n % 8)));
}

static void mark_failed(struct bus *b, uint64_t first, uint64_t last, const char *why)
{
	if (!b->first_failed || first < b->first_failed)
		b->first_failed = first;
	if (last > b->last_failed)
		b->last_failed = last;
	snprintf(b->async_why, sizeof(b->async_why), "%s", why);
}

/* done_below past the publishes answered in a row; the waits look again. */
static void advance(struct bus *b)
{
	while (b->done_below <= b->published && answered_bit(b, b->done_below))
		set_answered(b, b->done_below++, 0);
	pthread_cond_broadcast(&b->acked);
}

/* Publishes up to `upto` are given up on (failed, if unanswered): answers that
 * come for them later are ignored. */
static void abandon_upto(struct bus *b, uint64_t upto, const char *why)
{
	for (; b->done_below <= upto; b->done_below++) {
		if (answered_bit(b, b->done_below))
			set_answered(b, b->done_below, 0);
		else
			mark_failed(b, b->done_below, b->done_below, why);
	}
	advance(b);
}

/* Publish n is answered; why: NULL when stored, else the refusal. */
static void answer(struct bus *b, uint64_t n, const char *why)
{
	if (n < b->done_below || n > b->published)
		return;          /* abandoned by a wait already (or not ours) */
	if (why)
		mark_failed(b, n, n, why);
	set_answered(b, n, 1);
	advance(b);
}

/* Every async publish is answered here once: stored, refused, or timed out by
 * libnats after PUBLISH_WAIT_MS. */
static void on_async_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae,
			 void *closure)
{
	(void)js;
	struct bus *b = closure;
	const char *num = NULL;
	uint64_t n = natsMsgHeader_Get(msg, "Theater-Publish", &num) == NATS_OK && num
			     ? strtoull(num, NULL, 10) : 0;
	const char *why = NULL;
	if (pae && pae->Err == NATS_TIMEOUT)
		why = "no answer within " NATS_STR(PUBLISH_WAIT_MS) " ms";
	else if (!pa || pae)
		why = pae && pae->ErrText && *pae->ErrText
			      ? pae->ErrText : natsStatus_GetText(pae ? pae->Err : NATS_ERR);
	pthread_mutex_lock(&b->lock);
	answer(b, n, why);
	pthread_mutex_unlock(&b->lock);
	natsMsg_Destroy(msg);
}

/* libnats's callback thread: when a connection lost its server and which one
 * it found, for the log (a node's writes stall while it has none). No closure:
 * libnats may run these after bus_close has freed the bus. */
static void on_disconnected(natsConnection *nc, void *closure)
{
	(void)closure;
	if (!natsConnection_IsClosed(nc))      /* not bus_close's own */
		log_info("cluster", "nats: the connection lost its server; reconnecting");
}

static void on_reconnected(natsConnection *nc, void *closure)
{
	(void)closure;
	char url[256] = "";
	if (natsConnection_GetConnectedUrl(nc, url, sizeof(url)) != NATS_OK)
		url[0] = '\0';
	log_info("cluster", "nats: the connection reconnected to %s", url);
}

enum err_code bus_open(const char *urls, const char *name, unsigned connect_ms,
		       struct bus **out, struct err *err)
{
	return bus_open_ex(urls, name, connect_ms, NULL, out, err);
}

enum err_code bus_open_ex(const char *urls, const char *name, unsigned connect_ms,
			  int (*interrupted)(void), struct bus **out, struct err *err)
{
	pthread_once(&open_once, nats_open_once);
	if (open_status != NATS_OK)
		return err_set(err, ERR_INTERNAL, "nats: cannot initialise the client library: %s",
			       natsStatus_GetText(open_status));
	struct bus *b = calloc(1, sizeof(*b));
	char *list = strdup(urls);
	const char *servers[16];
	int n = 0;
	natsOptions *o = NULL;
	natsStatus s = NATS_NO_MEMORY;
	if (!b || !list)
		goto fail;
	pthread_mutex_init(&b->lock, NULL);
	pthread_mutex_init(&b->rlock, NULL);
	pthread_cond_init(&b->acked, NULL);
	b->done_below = 1;
	if (!(b->answered = calloc(ACK_WINDOW / 8, 1)))
		goto fail;
	for (char *save = NULL, *t = strtok_r(list, ",", &save); t && n < 16;
	     t = strtok_r(NULL, ",", &save))
		servers[n++] = t;
	if (n == 0) {
		free(list);
		free(b);
		return err_set(err, ERR_INVALID, "--nats: no server url in '%s'", urls);
	}
	if ((s = natsOptions_Create(&o)) || (s = natsOptions_SetServers(o, servers, n)) ||
	    (s = natsOptions_SetName(o, name)) || (s = natsOptions_SetMaxReconnect(o, -1)) ||
	    (s = natsOptions_SetReconnectWait(o, 250)) || (s = natsOptions_SetTimeout(o, 2000)) ||
	    (s = natsOptions_SetIgnoreDiscoveredServers(o, false)) ||
	    /* a server that stops answering (frozen, its host gone) is left
	     * within about 15 s, not the library's default of minutes */
	    (s = natsOptions_SetPingInterval(o, 5000)) || (s = natsOptions_SetMaxPingsOut(o, 3)) ||
	    (s = natsOptions_SetDisconnectedCB(o, on_disconnected, NULL)) ||
	    (s = natsOptions_SetReconnectedCB(o, on_reconnected, NULL)))
		goto fail;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		s = natsConnection_Connect(&b->nc, o);
		if (s == NATS_OK)
			break;
		struct timespec t;
		clock_gettime(CLOCK_MONOTONIC, &t);
		long ms = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
		if (ms >= (long)connect_ms || (interrupted && interrupted()))
			goto fail;
		struct timespec nap = {0, 200 * 1000000};
		nanosleep(&nap, NULL);
	}
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.Wait = 5000;
	jo.PublishAsync.MaxPending = MAX_PENDING;
	jo.PublishAsync.AckHandler = on_async_ack;
	jo.PublishAsync.AckHandlerClosure = b;
	if ((s = natsConnection_JetStream(&b->js, b->nc, &jo)))
		goto fail;
	natsOptions_Destroy(o);
	free(list);
	*out = b;
	return ERR_OK;
fail:;
	enum err_code rc = fail(err, s, "cannot connect to", urls);
	natsOptions_Destroy(o);
	free(list);
	if (b) {
		natsConnection_Destroy(b->nc);
		pthread_mutex_destroy(&b->lock);
		pthread_mutex_destroy(&b->rlock);
		free(b->answered);
		free(b);
	}
	return rc;
}

static void requests_fail_all(struct bus *b);

void bus_close(struct bus *b)
{
	if (!b)
		return;
	jsCtx_Destroy(b->js);
	natsConnection_Close(b->nc);
	requests_fail_all(b);
	natsSubscription_Destroy(b->rsub);
	natsConnection_Destroy(b->nc);
	pthread_mutex_destroy(&b->lock);
	pthread_mutex_destroy(&b->rlock);
	pthread_cond_destroy(&b->acked);
	free(b->answered);
	free(b);
}

int bus_connected(struct bus *b)
{
	return b && natsConnection_Status(b->nc) == NATS_CONN_STATUS_CONNECTED;
}

void bus_server(struct bus *b, char *buf, size_t size)
{
	if (natsConnection_GetConnectedUrl(b->nc, buf, size) != NATS_OK && size)
		buf[0] = '\0';
}

/* ---- core NATS ---- */

enum err_code bus_publish(struct bus *b, const char *subject, const void *data, size_t len,
			  struct err *err)
{
	natsStatus s = natsConnection_Publish(b->nc, subject, data, (int)len);
	return s ? fail(err, s, "cannot publish to", subject) : ERR_OK;
}

static enum err_code copy_out(const void *data, size_t len, uint8_t **out, size_t *len_out,
			      struct err *err)
{
	uint8_t *copy = malloc(len + 1);
	if (!copy)
		return err_set(err, ERR_NOMEM, "out of memory");
	if (len)
		memcpy(copy, data, len);
	copy[len] = '\0';
	*out = copy;
	*len_out = len;
	return ERR_OK;
}

enum err_code bus_request(struct bus *b, const char *subject, const void *data, size_t len,
			  unsigned timeout_ms, uint8_t **reply_out, size_t *reply_len,
			  struct err *err)
{
	natsMsg *m = NULL;
	natsStatus s = natsConnection_Request(&m, b->nc, subject, data, (int)len, timeout_ms);
	if (s == NATS_NO_RESPONDERS)
		return err_set(err, ERR_UNAVAILABLE, "nats: no one serves '%s'", subject);
	if (s == NATS_TIMEOUT)
		return err_set(err, ERR_TIMEOUT, "nats: no answer on '%s' within %u ms", subject,
			       timeout_ms);
	if (s)
		return fail(err, s, "request on", subject);
	enum err_code rc = copy_out(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m),
				    reply_out, reply_len, err);
	natsMsg_Destroy(m);
	return rc;
}

/* ---- requests without a waiting thread ---- */

/* rlock held: takes request `token` out of the map (NULL: answered or expired). */
static struct pending *pending_take_locked(struct bus *b, uint64_t token)
{
	struct pending **p = &b->rmap[token % PENDING_SLOTS];
	while (*p && (*p)->token != token)
		p = &(*p)->next;
	struct pending *q = *p;
	if (q)
		*p = q->next;
	return q;
}

static void on_reply(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
	(void)nc;
	(void)sub;
	struct bus *b = closure;
	const char *subj = natsMsg_GetSubject(m);
	const char *dot = subj ? strrchr(subj, '.') : NULL;
	uint64_t token = dot ? strtoull(dot + 1, NULL, 10) : 0;
	pthread_mutex_lock(&b->rlock);
	struct pending *q = token ? pending_take_locked(b, token) : NULL;
	pthread_mutex_unlock(&b->rlock);
	if (q) {
		struct err e = {0};
		if (natsMsg_IsNoResponders(m))
			q->fn(q->user, err_set(&e, ERR_UNAVAILABLE, "nats: no one serves '%s'",
					       q->subject), &e, NULL, 0);
		else
			q->fn(q->user, ERR_OK, NULL, (const uint8_t *)natsMsg_GetData(m),
			      (size_t)natsMsg_GetDataLength(m));
		free(q);
	}
	natsMsg_Destroy(m);
}

/* The connection is closed: every request still waiting fails. */
static void requests_fail_all(struct bus *b)
{
	for (;;) {
		struct pending *q = NULL;
		pthread_mutex_lock(&b->rlock);
		for (size_t i = 0; i < PENDING_SLOTS && !q; i++)
			if ((q = b->rmap[i]) != NULL)
				b->rmap[i] = q->next;
		pthread_mutex_unlock(&b->rlock);
		if (!q)
			return;
		struct err e = {0};
		q->fn(q->user, err_set(&e, ERR_UNAVAILABLE, "nats: the connection closed before "
				       "'%s' answered", q->subject), &e, NULL, 0);
		free(q);
	}
}

enum err_code bus_request_start(struct bus *b, const char *subject, const void *data,
				size_t len, bus_reply_fn fn, void *user, uint64_t *token_out,
				struct err *err)
{
	struct pending *q = calloc(1, sizeof(*q));
	if (!q)
		return err_set(err, ERR_NOMEM, "out of memory");
	q->fn = fn;
	q->user = user;
	snprintf(q->subject, sizeof(q->subject), "%s", subject);
	natsStatus s = NATS_OK;
	char reply[128];
	uint64_t token = 0;
	pthread_mutex_lock(&b->rlock);
	if (!b->rsub) {
		natsInbox *inbox = NULL;
		char wild[100];
		if (!(s = natsInbox_Create(&inbox))) {
			snprintf(b->rinbox, sizeof(b->rinbox), "%s", (const char *)inbox);
			snprintf(wild, sizeof(wild), "%s.*", b->rinbox);
			s = natsConnection_Subscribe(&b->rsub, b->nc, wild, on_reply, b);
			if (!s)
				natsSubscription_SetPendingLimits(b->rsub, 1 << 20, 1 << 30);
		}
		natsInbox_Destroy(inbox);
	}
	if (!s) {
		q->token = token = ++b->rnext;   /* q may be answered and freed once unlocked */
		snprintf(reply, sizeof(reply), "%s.%llu", b->rinbox, (unsigned long long)q->token);
		q->next = b->rmap[q->token % PENDING_SLOTS];
		b->rmap[q->token % PENDING_SLOTS] = q;
	}
	pthread_mutex_unlock(&b->rlock);
	if (s) {
		free(q);
		return fail(err, s, "cannot subscribe for answers from", subject);
	}
	s = natsConnection_PublishRequest(b->nc, subject, reply, data, (int)len);
	if (s) {
		pthread_mutex_lock(&b->rlock);
		struct pending *mine = pending_take_locked(b, token);
		pthread_mutex_unlock(&b->rlock);
		free(mine);
		if (mine)
			return fail(err, s, "request on", subject);
		/* answered meanwhile (the connection closed): fn ran */
	}
	*token_out = token;
	return ERR_OK;
}

void bus_request_expire(struct bus *b, uint64_t token, unsigned waited_ms, int closing)
{
	pthread_mutex_lock(&b->rlock);
	struct pending *q = pending_take_locked(b, token);
	pthread_mutex_unlock(&b->rlock);
	if (!q)
		return;
	struct err e = {0};
	if (closing)
		q->fn(q->user, err_set(&e, ERR_UNAVAILABLE, "the server is shutting down; '%s' "
				       "did not answer", q->subject), &e, NULL, 0);
	else
		q->fn(q->user, err_set(&e, ERR_TIMEOUT, "nats: no answer on '%s' within %u ms",
				       q->subject, waited_ms), &e, NULL, 0);
	free(q);
}

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
	(void)nc;
	(void)sub;
	struct bus_sub *bs = closure;
	bs->fn(bs->user, natsMsg_GetReply(m), (const uint8_t *)natsMsg_GetData(m),
	       (size_t)natsMsg_GetDataLength(m));
	natsMsg_Destroy(m);
}

static void on_complete(void *closure)
{
	struct bus_sub *bs = closure;
	pthread_mutex_lock(&bs->mu);
	bs->complete = 1;
	pthread_cond_broadcast(&bs->cv);
	pthread_mutex_unlock(&bs->mu);
}

enum err_code bus_subscribe(struct bus *b, const char *subject, const char *queue,
			    bus_msg_fn fn, void *user, struct bus_sub **out, struct err *err)
{
	struct bus_sub *bs = calloc(1, sizeof(*bs));
	if (!bs)
		return err_set(err, ERR_NOMEM, "out of memory");
	bs->fn = fn;
	bs->user = user;
	pthread_mutex_init(&bs->mu, NULL);
	pthread_cond_init(&bs->cv, NULL);
	natsStatus s = queue ? natsConnection_QueueSubscribe(&bs->sub, b->nc, subject, queue,
							     on_msg, bs)
			     : natsConnection_Subscribe(&bs->sub, b->nc, subject, on_msg, bs);
	if (s) {
		pthread_cond_destroy(&bs->cv);
		pthread_mutex_destroy(&bs->mu);
		free(bs);
		return fail(err, s, "cannot subscribe to", subject);
	}
	bs->has_complete_cb =
		natsSubscription_SetOnCompleteCB(bs->sub, on_complete, bs) == NATS_OK;
	natsSubscription_SetPendingLimits(bs->sub, 1 << 20, 1 << 30);
	*out = bs;
	return ERR_OK;
}

void bus_unsubscribe(struct bus_sub *bs)
{
	if (!bs)
		return;
	/* Drain (messages already received are handled), then close. */
	if (natsSubscription_Drain(bs->sub) == NATS_OK)
		natsSubscription_WaitForDrainCompletion(bs->sub, 5000);
	else
		natsSubscription_Unsubscribe(bs->sub);
	/* The drain's end does not mean the handler has returned: wait for
	 * on_complete. Should it never come, bs is left allocated (a small leak)
	 * rather than freed under a handler that may still run. */
	int done = !bs->has_complete_cb;
	if (!done) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 10;
		pthread_mutex_lock(&bs->mu);
		while (!bs->complete &&
		       pthread_cond_timedwait(&bs->cv, &bs->mu, &until) == 0)
			;
		done = bs->complete;
		pthread_mutex_unlock(&bs->mu);
	}
	natsSubscription_Destroy(bs->sub);
	if (!done) {
		log_warn("cluster", "a NATS subscription did not complete within 10 s; "
			 "its context is kept");
		return;
	}
	pthread_cond_destroy(&bs->cv);
	pthread_mutex_destroy(&bs->mu);
	free(bs);
}

void bus_inbox(struct bus *b, char *buf, size_t size)
{
	(void)b;
	natsInbox *inbox = NULL;
	if (natsInbox_Create(&inbox) == NATS_OK)
		snprintf(buf, size, "%s", (const char *)inbox);
	else if (size)
		buf[0] = '\0';
	natsInbox_Destroy(inbox);
}

/* ---- key-value buckets ---- */

/* The stream behind a bucket, as js_CreateKeyValue makes it but without
 * direct get: every read is answered by the stream's leader, so a replica
 * that is still catching up (a NATS server just restarted) never answers with
 * an old placement or an old heartbeat. */
static natsStatus kv_stream_add(struct bus *b, const char *bucket, uint32_t ttl_ms,
				unsigned replicas, unsigned history, jsErrCode *jerr_out)
{
	char name[96], subject[128];
	snprintf(name, sizeof(name), "KV_%s", bucket);
	snprintf(subject, sizeof(subject), "$KV.%s.>", bucket);
	const char *subjects[] = {subject};
	jsStreamConfig cfg;
	jsStreamConfig_Init(&cfg);
	cfg.Name = name;
	cfg.Subjects = subjects;
	cfg.SubjectsLen = 1;
	cfg.MaxMsgsPerSubject = history ? history : 1;
	cfg.MaxAge = (int64_t)ttl_ms * 1000000;
	cfg.MaxBytes = -1;
	cfg.MaxMsgSize = -1;
	cfg.Storage = js_FileStorage;
	cfg.Replicas = (int64_t)replicas;
	cfg.Discard = js_DiscardNew;
	/* the de-duplication window: 2 min, never longer than the entries live */
	cfg.Duplicates = ttl_ms && (int64_t)ttl_ms * 1000000 < (int64_t)120 * 1000000000
				 ? (int64_t)ttl_ms * 1000000 : (int64_t)120 * 1000000000;
	cfg.AllowRollup = true;
	cfg.DenyDelete = true;
	cfg.AllowDirect = false;
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	natsStatus s = js_AddStream(&si, b->js, &cfg, NULL, &jerr);
	jsStreamInfo_Destroy(si);
	if (s == NATS_ERR && jerr == JSStreamNameExistErr)
		s = NATS_OK;             /* another node made it at the same moment */
	*jerr_out = jerr;
	return s;
}

/* A bucket made with direct get on (by js_CreateKeyValue: an older theater, or
 * the nats tool) lets any replica answer a read, a lagging one too: it is
 * updated to answer from the leader only (AllowDirect is a stream setting
 * JetStream lets us change; the values stay), and opened again so libnats
 * reads it that way. */
static natsStatus kv_no_direct(struct bus *b, const char *bucket, kvStore **kv)
{
	char name[96];
	snprintf(name, sizeof(name), "KV_%s", bucket);
	jsStreamInfo *si = NULL, *after = NULL;
	jsErrCode jerr = 0;
	natsStatus s = js_GetStreamInfo(&si, b->js, name, NULL, &jerr);
	if (s || !si->Config->AllowDirect) {
		jsStreamInfo_Destroy(si);
		return s;
	}
	log_warn("cluster", "bucket '%s' answers reads from any replica (direct get): turning "
		 "that off", bucket);
	si->Config->AllowDirect = false;
	s = js_UpdateStream(&after, b->js, si->Config, NULL, &jerr);
	jsStreamInfo_Destroy(after);
	jsStreamInfo_Destroy(si);
	if (s)
		return s;
	kvStore *fresh = NULL;
	if ((s = js_KeyValue(&fresh, b->js, bucket)))
		return s;
	kvStore_Destroy(*kv);
	*kv = fresh;
	return NATS_OK;
}

enum err_code bus_kv_open(struct bus *b, const char *bucket, uint32_t ttl_ms,
			  unsigned replicas, unsigned history, struct bus_kv **out,
			  struct err *err)
{
	struct bus_kv *kv = calloc(1, sizeof(*kv));
	if (!kv)
		return err_set(err, ERR_NOMEM, "out of memory");
	kv->bus = b;
	snprintf(kv->bucket, sizeof(kv->bucket), "%s", bucket);
	natsStatus s = js_KeyValue(&kv->kv, b->js, bucket);
	if (s == NATS_NOT_FOUND) {
		jsErrCode jerr = 0;
		s = kv_stream_add(b, bucket, ttl_ms, replicas, history, &jerr);
		if (!s)
			s = js_KeyValue(&kv->kv, b->js, bucket);
		if (s) {   /* another node may have created it at the same moment */
			struct err why = {0};
			if (!replicas_refused(&why, jerr, replicas, "cannot create key-value bucket",
					      bucket))
				fail(&why, s, "cannot create key-value bucket", bucket);
			if (js_KeyValue(&kv->kv, b->js, bucket) == NATS_OK)
				s = NATS_OK;
			else {
				free(kv);
				*err = why;
				return why.code;
			}
		}
	}
	if (s) {
		free(kv);
		return fail(err, s, "cannot open key-value bucket", bucket);
	}
	if ((s = kv_no_direct(b, bucket, &kv->kv))) {
		kvStore_Destroy(kv->kv);
		free(kv);
		return fail(err, s, "cannot turn direct get off in key-value bucket", bucket);
	}
	*out = kv;
	return ERR_OK;
}

void bus_kv_close(struct bus_kv *kv)
{
	if (!kv)
		return;
	kvStore_Destroy(kv->kv);
	free(kv);
}

enum err_code bus_kv_get(struct bus_kv *kv, const char *key, uint8_t **data_out,
			 size_t *len_out, uint64_t *rev_out, struct err *err)
{
	kvEntry *e = NULL;
	natsStatus s = kvStore_Get(&e, kv->kv, key);
	if (s == NATS_NOT_FOUND)
		return err_set(err, ERR_NOT_FOUND, "nats: no key '%s' in '%s'", key, kv->bucket);
	if (s)
		return fail(err, s, "cannot read key", key);
	enum err_code rc = copy_out(kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), data_out,
				    len_out, err);
	if (rev_out)
		*rev_out = kvEntry_Revision(e);
	kvEntry_Destroy(e);
	return rc;
}

enum err_code bus_kv_get_revision(struct bus_kv *kv, const char *key, uint64_t rev,
				  uint8_t **data_out, size_t *len_out, struct err *err)
{
	kvEntry *e = NULL;
	natsStatus s = kvStore_GetRevision(&e, kv->kv, key, rev);
	if (s == NATS_NOT_FOUND)
		return err_set(err, ERR_NOT_FOUND, "nats: no revision %llu of key '%s' in '%s'",
			       (unsigned long long)rev, key, kv->bucket);
	if (s)
		return fail(err, s, "cannot read key", key);
	enum err_code rc = copy_out(kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), data_out,
				    len_out, err);
	kvEntry_Destroy(e);
	return rc;
}

static int msg_get(struct bus *b, const char *name, const char *subject, uint64_t seq,
		   unsigned timeout_ms, uint64_t *next_seq, uint8_t **data, size_t *len,
		   struct err *err);

static enum err_code kv_publish_msg(struct bus_kv *kv, const char *key, const void *data,
				    size_t len, jsPubOptions *po, int rollup, const char *what,
				    uint64_t *rev_out, struct err *err);

/* One write of key, published by hand (not kvStore_Put/Update) so the answer's
 * JetStream error code is ours to read: a compare-and-set lost is error 10071
 * (JSStreamWrongLastSequenceErr), whatever libnats's last error text says.
 * po carries the expectation (none, no message yet, the key's last revision,
 * or the stream's last sequence). */
static enum err_code kv_publish(struct bus_kv *kv, const char *key, const void *data,
				size_t len, jsPubOptions *po, const char *what,
				uint64_t *rev_out, struct err *err)
{
	return kv_publish_msg(kv, key, data, len, po, 0, what, rev_out, err);
}

/* rollup: the message replaces every earlier one of the key (Nats-Rollup: sub),
 * once its expectation held. */
static enum err_code kv_publish_msg(struct bus_kv *kv, const char *key, const void *data,
				    size_t len, jsPubOptions *po, int rollup, const char *what,
				    uint64_t *rev_out, struct err *err)
{
	char subject[256];
	snprintf(subject, sizeof(subject), "$KV.%s.%s", kv->bucket, key);
	jsPubAck *pa = NULL;
	jsErrCode jerr = 0;
	natsMsg *m = NULL;
	natsStatus s = natsMsg_Create(&m, subject, NULL, data, (int)len);
	if (!s && rollup)
		s = natsMsgHeader_Set(m, JSMsgRollup, JSMsgRollupSubject);
	if (!s)
		s = js_PublishMsg(&pa, kv->bus->js, m, po, &jerr);
	natsMsg_Destroy(m);
	if (s == NATS_OK) {
		if (rev_out)
			*rev_out = pa ? pa->Sequence : 0;
		jsPubAck_Destroy(pa);
		return ERR_OK;
	}
	jsPubAck_Destroy(pa);
	const char *text = status_text(s);
	if (s == NATS_ERR && jerr == JSStreamWrongLastSequenceErr)
		return err_set(err, ERR_CONFLICT, "nats: key '%s' in '%s' was changed by another "
			       "writer (%.120s)", key, kv->bucket, text);
	return err_set(err, code_of(s), "nats: cannot %s key '%s' in '%s': %.120s (status %d, "
		       "jetstream error %d)", what, key, kv->bucket, text, (int)s, (int)jerr);
}

enum err_code bus_kv_put(struct bus_kv *kv, const char *key, const void *data, size_t len,
			 uint64_t *rev_out, struct err *err)
{
	jsPubOptions po;
	jsPubOptions_Init(&po);
	return kv_publish(kv, key, data, len, &po, "write", rev_out, err);
}

enum err_code bus_kv_create(struct bus_kv *kv, const char *key, const void *data, size_t len,
			    uint64_t *rev_out, struct err *err)
{
	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.ExpectNoMessage = true;
	return kv_publish(kv, key, data, len, &po, "create", rev_out, err);
}

/* A compare-and-set at the key's revision `last` (0: the key has no message). */
static enum err_code kv_set_at(struct bus_kv *kv, const char *key, const void *data, size_t len,
			       uint64_t last, int rollup, uint64_t *rev_out, struct err *err)
{
	jsPubOptions po;
	jsPubOptions_Init(&po);
	if (last)
		po.ExpectLastSubjectSeq = last;
	else
		po.ExpectNoMessage = true;
	return kv_publish_msg(kv, key, data, len, &po, rollup, rollup ? "replace" : "update",
			      rev_out, err);
}

enum err_code bus_kv_update(struct bus_kv *kv, const char *key, const void *data, size_t len,
			    uint64_t last, uint64_t *rev_out, struct err *err)
{
	return kv_set_at(kv, key, data, len, last, 0, rev_out, err);
}

enum err_code bus_kv_replace(struct bus_kv *kv, const char *key, const void *data, size_t len,
			     uint64_t last, uint64_t *rev_out, struct err *err)
{
	return kv_set_at(kv, key, data, len, last, 1, rev_out, err);
}

enum err_code bus_kv_forget(struct bus_kv *kv, const char *key, struct err *err)
{
	char stream[96], subject[256];
	snprintf(stream, sizeof(stream), "KV_%s", kv->bucket);
	snprintf(subject, sizeof(subject), "$KV.%s.%s", kv->bucket, key);
	return bus_stream_purge_subject(kv->bus, stream, subject, err);
}

enum err_code bus_kv_update_by_stream(struct bus_kv *kv, const char *key, const void *data,
				      size_t len, uint64_t last, uint64_t *rev_out,
				      struct err *err)
{
	char stream[96], subject[256];
	snprintf(stream, sizeof(stream), "KV_%s", kv->bucket);
	snprintf(subject, sizeof(subject), "$KV.%s.%s", kv->bucket, key);
	/* 1. the stream's last sequence, from its leader */
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	natsStatus s = js_GetStreamInfo(&si, kv->bus->js, stream, NULL, &jerr);
	if (s)
		return fail(err, s, "cannot read the state of stream", stream);
	uint64_t stream_last = si->State.LastSeq;
	jsStreamInfo_Destroy(si);
	/* 2. the key's last revision, read after it: still `last` */
	natsMsg *m = NULL;
	s = js_GetLastMsg(&m, kv->bus->js, stream, subject, NULL, &jerr);
	if (s)
		return fail(err, s, "cannot read key", key);
	uint64_t now = natsMsg_GetSequence(m);
	natsMsg_Destroy(m);
	if (now != last)
		return err_set(err, ERR_CONFLICT, "nats: key '%s' in '%s' is at revision %llu, not "
			       "%llu (wrong last sequence: %llu)", key, kv->bucket,
			       (unsigned long long)now, (unsigned long long)last,
			       (unsigned long long)now);
	/* and no later message on the key when the stream is scanned forward from
	 * there (not through the per-key index the refused check used) */
	uint64_t later = 0;
	uint8_t *data_later = NULL;
	size_t len_later = 0;
	int got = msg_get(kv->bus, stream, subject, last + 1, 5000, &later, &data_later,
			  &len_later, err);
	free(data_later);
	if (got < 0)
		return err->code ? err->code : ERR_UNAVAILABLE;
	if (got > 0)
		return err_set(err, ERR_CONFLICT, "nats: key '%s' in '%s' has revision %llu after "
			       "%llu (wrong last sequence: %llu)", key, kv->bucket,
			       (unsigned long long)later - 1, (unsigned long long)last,
			       (unsigned long long)later - 1);
	/* 3. written only if nothing was stored since 1 */
	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.ExpectLastSeq = stream_last;
	return kv_publish(kv, key, data, len, &po, "update", rev_out, err);
}

enum err_code bus_kv_delete(struct bus_kv *kv, const char *key, struct err *err)
{
	natsStatus s = kvStore_Delete(kv->kv, key);
	return s ? fail(err, s, "cannot delete key", key) : ERR_OK;
}

/* A watcher that failed (its consumer lost while NATS elected new leaders, a
 * reconnect) is made again: it delivers every current value again, then the
 * changes, so the watch misses nothing. */
static int watch_renew(struct bus_watch *w, int asked)
{
	pthread_mutex_lock(&w->lock);
	kvWatcher *old = w->w;
	w->w = NULL;
	pthread_mutex_unlock(&w->lock);
	kvWatcher_Destroy(old);
	struct timespec nap = {0, 500 * 1000000};
	if (!asked)                      /* after a failure: not in a tight loop */
		nanosleep(&nap, NULL);
	kvWatcher *fresh = NULL;
	if (kvStore_WatchAll(&fresh, w->kv->kv, NULL) != NATS_OK)
		return 0;
	pthread_mutex_lock(&w->lock);
	if (__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE)) {
		pthread_mutex_unlock(&w->lock);
		kvWatcher_Destroy(fresh);
		return 0;
	}
	w->w = fresh;
	pthread_mutex_unlock(&w->lock);
	return 1;
}

static void *watch_main(void *arg)
{
	pthread_setname_np(pthread_self(), "nats-watch");
	struct bus_watch *w = arg;
	struct timespec last;
	clock_gettime(CLOCK_MONOTONIC, &last);
	while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE)) {
		kvEntry *e = NULL;
		if (!w->w && !watch_renew(w, 0))
			continue;
		if (__atomic_exchange_n(&w->renew, 0, __ATOMIC_ACQ_REL)) {
			watch_renew(w, 1);
			clock_gettime(CLOCK_MONOTONIC, &last);
			continue;
		}
		natsStatus s = kvWatcher_Next(&e, w->w, 500);
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		long quiet = (now.tv_sec - last.tv_sec) * 1000 + (now.tv_nsec - last.tv_nsec) / 1000000;
		if (s == NATS_TIMEOUT && w->stall_ms && quiet > (long)w->stall_ms) {
			/* a watcher whose consumer vanished can stay silent forever */
			log_warn("cluster", "watch of '%s' silent for %ld ms: watching again",
				 w->kv->bucket, quiet);
			watch_renew(w, 0);
			last = now;
			continue;
		}
		if (s == NATS_TIMEOUT)
			continue;
		last = now;
		if (s) {
			if (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE)) {
				log_warn("cluster", "watch of '%s' lost (%s): watching again",
					 w->kv->bucket, natsStatus_GetText(s));
				watch_renew(w, 0);
			}
			continue;
		}
		if (!e) {                /* the marker after the initial values */
			w->fn(w->user, NULL, NULL, 0, 0, 0);
			continue;
		}
		kvOperation op = kvEntry_Operation(e);
		w->fn(w->user, kvEntry_Key(e), (const uint8_t *)kvEntry_Value(e),
		      (size_t)kvEntry_ValueLen(e), kvEntry_Revision(e), op != kvOp_Put);
		kvEntry_Destroy(e);
	}
	return NULL;
}

enum err_code bus_kv_watch(struct bus_kv *kv, unsigned stall_ms, bus_kv_fn fn, void *user,
			   struct bus_watch **out, struct err *err)
{
	struct bus_watch *w = calloc(1, sizeof(*w));
	if (!w)
		return err_set(err, ERR_NOMEM, "out of memory");
	w->kv = kv;
	w->fn = fn;
	w->user = user;
	w->stall_ms = stall_ms;
	pthread_mutex_init(&w->lock, NULL);
	natsStatus s = kvStore_WatchAll(&w->w, kv->kv, NULL);
	if (s) {
		free(w);
		return fail(err, s, "cannot watch bucket", kv->bucket);
	}
	if (pthread_create(&w->thread, NULL, watch_main, w)) {
		kvWatcher_Destroy(w->w);
		free(w);
		return err_set(err, ERR_NOMEM, "cannot start a watch thread");
	}
	*out = w;
	return ERR_OK;
}

void bus_watch_renew(struct bus_watch *w)
{
	if (w)
		__atomic_store_n(&w->renew, 1, __ATOMIC_RELEASE);
}

void bus_watch_stop(struct bus_watch *w)
{
	if (!w)
		return;
	__atomic_store_n(&w->stop, 1, __ATOMIC_RELEASE);
	pthread_mutex_lock(&w->lock);
	if (w->w)
		kvWatcher_Stop(w->w);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	kvWatcher_Destroy(w->w);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

/* ---- JetStream: one stream ---- */

enum err_code bus_stream_ensure(struct bus *b, const char *name, const char *pattern,
				unsigned replicas, struct err *err)
{
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	natsStatus s = js_GetStreamInfo(&si, b->js, name, NULL, &jerr);
	if (s == NATS_NOT_FOUND) {
		jsStreamConfig cfg;
		jsStreamConfig_Init(&cfg);
		const char *subjects[] = {pattern};
		cfg.Name = name;
		cfg.Subjects = subjects;
		cfg.SubjectsLen = 1;
		cfg.Storage = js_FileStorage;
		cfg.Replicas = (int64_t)replicas;
		cfg.Duplicates = (int64_t)120 * 1000000000;   /* de-duplication window: 2 min */
		s = js_AddStream(&si, b->js, &cfg, NULL, &jerr);
		jsErrCode add_err = jerr;
		if (s)   /* another node may have created it at the same moment */
			s = js_GetStreamInfo(&si, b->js, name, NULL, &jerr);
		if (s && replicas_refused(err, add_err, replicas, "cannot create stream", name)) {
			jsStreamInfo_Destroy(si);
			return err->code;
		}
	}
	jsStreamInfo_Destroy(si);
	return s ? fail(err, s, "cannot create stream", name) : ERR_OK;
}

static natsStatus msg_new(natsMsg **m, const char *subject, const void *data, size_t len,
			  const char *msg_id)
{
	natsStatus s = natsMsg_Create(m, subject, NULL, data, (int)len);
	if (!s && msg_id)
		s = natsMsgHeader_Set(*m, "Nats-Msg-Id", msg_id);
	return s;
}

enum err_code bus_stream_publish(struct bus *b, const char *subject, const void *data,
				 size_t len, const char *msg_id, unsigned timeout_ms,
				 struct err *err)
{
	natsMsg *m = NULL;
	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.MaxWait = timeout_ms;
	jsPubAck *pa = NULL;
	jsErrCode jerr = 0;
	natsStatus s = msg_new(&m, subject, data, len, msg_id);
	if (!s)
		s = js_PublishMsg(&pa, b->js, m, &po, &jerr);
	natsMsg_Destroy(m);
	jsPubAck_Destroy(pa);
	return s ? fail(err, s, "stream did not acknowledge", subject) : ERR_OK;
}

enum err_code bus_stream_publish_async(struct bus *b, const char *subject, const void *data,
				       size_t len, const char *msg_id, struct err *err)
{
	natsMsg *m = NULL;
	natsStatus s = msg_new(&m, subject, data, len, msg_id);
	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.MaxWait = PUBLISH_WAIT_MS;    /* so that every publish is answered */
	/* Numbered under the lock and sent in that order (the callers hold their
	 * actor's record lock; numbers only need to be unique and increasing). */
	pthread_mutex_lock(&b->lock);
	uint64_t n = ++b->published;     /* before: the answer may come at once */
	if (n - b->done_below >= ACK_WINDOW)   /* libnats's MaxPending makes it rare */
		abandon_upto(b, n - ACK_WINDOW, "too many publishes unanswered");
	char num[24];
	snprintf(num, sizeof(num), "%llu", (unsigned long long)n);
	if (!s)
		s = natsMsgHeader_Set(m, "Theater-Publish", num);
	pthread_mutex_unlock(&b->lock);
	if (!s)
		s = js_PublishMsgAsync(b->js, &m, &po);   /* takes m on success */
	natsMsg_Destroy(m);
	if (s) {
		pthread_mutex_lock(&b->lock);
		answer(b, n, natsStatus_GetText(s));   /* no other answer will come */
		pthread_mutex_unlock(&b->lock);
		return fail(err, s, "cannot publish to", subject);
	}
	return ERR_OK;
}

enum err_code bus_stream_wait(struct bus *b, unsigned timeout_ms, struct err *err)
{
	return bus_stream_wait_after(b, 0, timeout_ms, err);
}

enum err_code bus_stream_wait_after(struct bus *b, uint64_t after, unsigned timeout_ms,
				    struct err *err)
{
	struct timespec until = deadline_after_ms(CLOCK_REALTIME, timeout_ms);
	pthread_mutex_lock(&b->lock);
	uint64_t target = b->published;
	int timed_out = 0;
	while (b->done_below <= target && !timed_out)
		timed_out = pthread_cond_timedwait(&b->acked, &b->lock, &until) != 0 &&
			    b->done_below <= target;
	/* Given up: the caller fails (writes are refused, and what was written
	 * since is published again); what this wait covered and is still
	 * unanswered counts as lost. */
	if (timed_out)
		abandon_upto(b, target, "lost");
	/* Every wait that covers a failed publish fails, until
	 * bus_stream_forgive says it was published again. */
	int failed = after ? b->last_failed > after
			   : b->first_failed && b->first_failed <= target;
	char why[160];
	snprintf(why, sizeof(why), "%s", b->async_why);
	pthread_mutex_unlock(&b->lock);
	if (timed_out)
		return err_set(err, ERR_UNAVAILABLE, "nats: the stream did not acknowledge within "
			       "%u ms", timeout_ms);
	if (failed)
		return err_set(err, ERR_UNAVAILABLE, "nats: the stream did not store a publish: %s",
			       *why ? why : "lost");
	return ERR_OK;
}

uint64_t bus_stream_published(struct bus *b)
{
	pthread_mutex_lock(&b->lock);
	uint64_t n = b->published;
	pthread_mutex_unlock(&b->lock);
	return n;
}

void bus_stream_forgive(struct bus *b, uint64_t upto)
{
	pthread_mutex_lock(&b->lock);
	if (b->first_failed && b->first_failed <= upto)
		b->first_failed = 0;
	b->async_why[0] = '\0';
	pthread_mutex_unlock(&b->lock);
}

/* One message of the stream: the first on subject at or after stream sequence
 * seq, through JetStream's STREAM.MSG.GET API (answered by the stream's leader,
 * no consumer needed). 1 with *next_seq and the data; 0 when there is none. */
static int msg_get(struct bus *b, const char *name, const char *subject, uint64_t seq,
		   unsigned timeout_ms, uint64_t *next_seq, uint8_t **data, size_t *len,
		   struct err *err)
{
	char api[160];
	snprintf(api, sizeof(api), "$JS.API.STREAM.MSG.GET.%s", name);
	json_t *q = json_pack("{s:I, s:s}", "seq", (json_int_t)seq, "next_by_subj", subject);
	char *body = q ? json_compact(q) : NULL;
	json_decref(q);
	if (!body) {
		err_set(err, ERR_NOMEM, "out of memory");
		return -1;
	}
	uint8_t *raw = NULL;
	size_t rlen = 0;
	enum err_code rc = bus_request(b, api, body, strlen(body), timeout_ms, &raw, &rlen, err);
	free(body);
	if (rc)
		return -1;
	struct err e = {0};
	json_t *ans = json_parse((const char *)raw, rlen, 16, &e);
	free(raw);
	json_t *m = json_object_get(ans, "message");
	json_t *jerr = json_object_get(ans, "error");
	int got = 0;
	if (m) {
		const char *b64 = json_string_value(json_object_get(m, "data"));
		*next_seq = (uint64_t)json_integer_value(json_object_get(m, "seq")) + 1;
		*data = b64 ? base64_decode(b64, strlen(b64), len) : calloc(1, 1);
		if (b64 && !*b64) {
			free(*data);
			*data = calloc(1, 1);
			*len = 0;
		}
		got = *data ? 1 : -1;
		if (got < 0)
			err_set(err, ERR_CORRUPT, "nats: a message of '%s' is not base64", subject);
	} else if (jerr && json_integer_value(json_object_get(jerr, "code")) == 404) {
		got = 0;
	} else {
		const char *d = json_string_value(json_object_get(jerr, "description"));
		err_set(err, ERR_UNAVAILABLE, "nats: cannot read stream '%s': %s", name,
			d ? d : "unexpected answer");
		got = -1;
	}
	json_decref(ans);
	return got;
}

enum err_code bus_stream_purge_subject(struct bus *b, const char *name, const char *subject,
				       struct err *err)
{
	jsOptions o;
	jsOptions_Init(&o);
	o.Stream.Purge.Subject = subject;
	jsErrCode jerr = 0;
	natsStatus s = js_PurgeStream(b->js, name, &o, &jerr);
	if (s == NATS_OK)
		return ERR_OK;
	return err_set(err, code_of(s), "nats: cannot purge '%s' from stream '%s': %.120s "
		       "(status %d, jetstream error %d)", subject, name, status_text(s), (int)s,
		       (int)jerr);
}

/* The last message on subject (asked of the stream's leader): 1 and *m (destroy
 * it), 0 when there is none, -1 when it could not say (err). */
static int last_msg(struct bus *b, const char *name, const char *subject, natsMsg **m,
		    struct err *err)
{
	jsErrCode jerr = 0;
	*m = NULL;
	natsStatus s = js_GetLastMsg(m, b->js, name, subject, NULL, &jerr);
	if (s == NATS_OK)
		return 1;
	natsMsg_Destroy(*m);
	*m = NULL;
	if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr)
		return 0;
	fail(err, s, "cannot read stream", name);
	return -1;
}

int bus_stream_has(struct bus *b, const char *name, const char *subject, struct err *err)
{
	natsMsg *m = NULL;
	int got = last_msg(b, name, subject, &m, err);
	natsMsg_Destroy(m);
	return got;
}

int bus_stream_last(struct bus *b, const char *name, const char *subject, uint8_t **data,
		    size_t *len, struct err *err)
{
	natsMsg *m = NULL;
	*data = NULL;
	*len = 0;
	int got = last_msg(b, name, subject, &m, err);
	if (got <= 0)
		return got;
	int n = natsMsg_GetDataLength(m);
	*data = malloc((size_t)n + 1);
	if (*data) {
		memcpy(*data, natsMsg_GetData(m), (size_t)n);
		(*data)[n] = 0;
		*len = (size_t)n;
	}
	natsMsg_Destroy(m);
	if (!*data) {
		err_set(err, ERR_NOMEM, "out of memory");
		return -1;
	}
	return 1;
}

enum err_code bus_stream_read(struct bus *b, const char *name, const char *subject,
			      unsigned timeout_ms, bus_read_fn fn, void *user, struct err *err)
{
	uint64_t seq = 1;
	for (;;) {
		uint8_t *data = NULL;
		size_t len = 0;
		uint64_t next = 0;
		int got = msg_get(b, name, subject, seq, timeout_ms, &next, &data, &len, err);
		if (got < 0)
			return err->code ? err->code : ERR_UNAVAILABLE;
		if (got == 0)
			return ERR_OK;
		int stop = fn(user, data, len);
		free(data);
		if (stop)
			return ERR_OK;
		seq = next;
	}
}
