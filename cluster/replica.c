/* replica.c - what lets another node bring an actor back: every chain event
 * published to the replicated JetStream stream THEATER_CHAINS (subject
 * theater.stream.chain.<actor id>, message id "<id>:<seq>:<node>:<hash>" so a
 * retry is stored once), the content-store blobs they name and the package
 * bytes beside them (theater.stream.blob.<store>.<sha256>, blob.c), failover
 * when a node's heartbeat lapses, and fencing of a node that comes back.
 *
 * Replication is the supervisor's replica hook (supervisor.h): publish runs
 * under the actor's record lock, so the stream holds each actor's events in seq
 * order; wait is JetStream's "every async publish so far acknowledged", called
 * where the supervisor reports a synced event, so one wait covers a whole
 * group-commit batch. A failed wait makes the node refuse writes for a while
 * (cluster_unwritable) rather than acknowledge what it cannot replicate.
 *
 * Failover: when a node's beat lapses, each survivor looks at the actors
 * placed on it. The node that the actor id hashes to among the nodes up
 * claims it at once; any other survivor claims it after three lapses more (in
 * case the preferred one died too). A claim is a compare-and-set of the
 * placement key at the revision read, so exactly one node wins; the winner
 * rebuilds the chain from the stream (every event checked: seq without a gap,
 * the hash recomputed equal to the one published; after a split brain, the
 * newer copy's chain followed by parent hashes, rebuild_pick), puts the
 * package back in its content store, and recovers the actor
 * (supervisor_adopt, durable.c).
 *
 * Fencing: events of an actor placed on another node are never published, and
 * a node that joins (after a crash) kills the runs it recovered locally whose
 * placement moved while it was away. Before it does, it publishes again what
 * the stream lost of such a chain, when that cannot fork it (job_heal).
 *
 * Deleting: a tombstone in the placement bucket (cluster.c, cluster_unplace)
 * is final. A copy of a tombstoned actor is deleted here wherever a fence
 * meets it (forget_now: the bucket's leader confirms first), its events are
 * never published (the deleting set), and its chain subject is purged once
 * the local delete is done. A tombstone older than the tombstone age is
 * removed after purging the subject again, so "no key and no event in the
 * stream" is what a removed tombstone leaves: the join fence stops, rather
 * than places, an old run that the cluster knows nothing of. */
#include "cluster/cluster_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "src/store.h"
#include "src/util/crypto.h"
#include "src/util/log.h"
#include "supervisor/durable.h"

#define CHAIN_STREAM "THEATER_CHAINS"

static void chain_subject(const char *id, char *buf, size_t size)
{
	snprintf(buf, size, "theater.stream.chain.%s", id);
}

/* ---- the replica hooks ---- */

/* A publish was refused or lost: writes are refused for a while, and the
 * events written since are published again once the stream answers
 * (replica_resync), so the stream has no hole. */
static void mark_unreplicated(struct cluster *c)
{
	__atomic_add_fetch(&c->stat_unreplicated, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&c->unhealthy_until_ms, cluster_mono_ms() + 5000, __ATOMIC_RELEASE);
	int64_t since = cluster_unix_ms() - 10000;
	int64_t zero = 0;
	__atomic_compare_exchange_n(&c->resync_since_ms, &zero, since, 0, __ATOMIC_ACQ_REL,
				    __ATOMIC_ACQUIRE);
	blob_forget_all(c);
}

struct blob_pub {
	struct cluster *c;
	const struct supervisor_event *ev;
};

/* Before the event: each blob it names (so the wait that acknowledges the
 * event acknowledges them too). */
static void publish_blob(void *user, const char *store_id, const char *sha256)
{
	struct blob_pub *p = user;
	struct err e = {0};
	if (blob_publish(p->c, store_id, sha256, 0, &e)) {
		log_error_limited("cluster",
				  "blob %s named by event %llu of '%s' not replicated: %s", sha256,
				  (unsigned long long)p->ev->seq, p->ev->actor_id, e.msg);
		mark_unreplicated(p->c);
	}
}

static void spawned_package(const uint8_t *data, size_t len, char package[65]);

/* Publishes one event (and the blobs it names) asynchronously; rev 0: not said.
 * again: a number for a message id of its own (job_heal), 0 for the usual one.
 * A `spawned` event names its package: published before it like any blob, so
 * whatever acknowledged the spawn lets another node rebuild the actor (the
 * placement used to publish it, and only when the spawn had resolved it by
 * then: a spawn answered without ?wait=running left it on its node alone). */
static void publish_event(struct cluster *c, const struct supervisor_event *ev, uint64_t rev,
			  int64_t again)
{
	struct blob_pub bp = {c, ev};
	blob_each_ref(ev->data, ev->data_len, publish_blob, &bp);
	blob_each_actor_ref(ev->event_type, ev->data, ev->data_len, publish_blob, &bp, NULL);
	if (strcmp(ev->event_type, "spawned") == 0) {
		char package[65];
		spawned_package(ev->data, ev->data_len, package);
		if (sha256_hex_valid(package))
			publish_blob(&bp, DURABLE_PACKAGES_STORE, package);
	}
	char hash[65], parent[65];
	hex_encode(ev->hash, 32, hash);
	hex_encode(ev->parent_hash, 32, parent);
	/* "node": which copy published it, so a rebuild can tell a new owner's
	 * events from an old owner's of the same seqs (rebuild_choose) */
	json_t *head = json_pack("{s:I, s:s, s:s, s:s, s:I, s:s}", "seq", (json_int_t)ev->seq,
				 "type", ev->event_type, "hash", hash, "parent", parent, "ts",
				 (json_int_t)ev->timestamp, "node", c->node);
	/* "rev": the placement revision this copy runs under, so a rebuild can
	 * tell two claims' copies apart (a later claim has a higher one) */
	if (head && rev)
		json_object_set_new(head, "rev", json_integer((json_int_t)rev));
	size_t n = 0;
	char *msg = head ? cluster_envelope(head, ev->data, ev->data_len, &n) : NULL;
	json_decref(head);
	char subject[96], id[192];
	chain_subject(ev->actor_id, subject, sizeof(subject));
	/* The stream drops a message whose id it stored in the last 2 minutes: a
	 * retry of this very event, but nothing else. With the node and the
	 * event's hash, a new owner's event never passes for the old owner's of
	 * the same seq, nor this node's event for one an older copy here
	 * published at that seq before the actor moved away and back. */
	snprintf(id, sizeof(id), "%s:%llu:%s:%.16s", ev->actor_id, (unsigned long long)ev->seq,
		 c->node, hash);
	/* An event published again because the stream lost it: the stream may still
	 * remember the first publish's id (a purge or a lagging leader does not
	 * forget it) and would drop this one as a retry. A copy that was not lost
	 * after all is kept once by the rebuild (rebuild_dedup). */
	if (again)
		snprintf(id + strlen(id), sizeof(id) - strlen(id), ":again-%lld", (long long)again);
	struct err e = {0};
	if (!msg || bus_stream_publish_async(c->bus, subject, msg, n, id, &e)) {
		log_error_limited("cluster", "event %llu of '%s' not replicated: %s",
				  (unsigned long long)ev->seq, ev->actor_id,
				  msg ? e.msg : "out of memory");
		mark_unreplicated(c);
	}
	free(msg);
}

static void on_publish(void *user, const struct supervisor_event *ev)
{
	struct cluster *c = user;
	char owner[CLUSTER_NODE_MAX];
	uint64_t rev = 0;
	if (cluster_lookup_rev(c, ev->actor_id, owner, &rev) && strcmp(owner, c->node) != 0)
		return;                  /* fenced: it moved to another node */
	if (cluster_is_deleting(c, ev->actor_id))
		return;                  /* deleted: its tombstone is written */
	if (__atomic_load_n(&c->suspect, __ATOMIC_ACQUIRE)) {
		/* it may have moved while our heartbeats failed: published again
		 * once its placement is confirmed (replica_verify, then resync) */
		mark_unreplicated(c);
		return;
	}
	publish_event(c, ev, rev, 0);
}

static enum err_code on_wait(void *user, struct err *err)
{
	struct cluster *c = user;
	enum err_code rc = bus_stream_wait(c->bus, 5000, err);
	if (rc)
		mark_unreplicated(c);
	else if (__atomic_load_n(&c->suspect, __ATOMIC_ACQUIRE))
		/* stored in the stream, but another node may have rebuilt the chain
		 * without it meanwhile: not acknowledged (the caller says 503) */
		rc = err_set(err, ERR_UNAVAILABLE, "this node lost the cluster long enough for "
			     "its actors to be taken over; it is checking their placement");
	return rc;
}

/* The fence on acknowledgement: after the stream acknowledged an actor's
 * events, the placement key (read from the bucket's leader, not the watch)
 * must still name this node. A node that took the actor over claimed it with a
 * compare-and-set and then rebuilt the chain from the stream: a claim after
 * this read rebuilds from a stream that already holds these events; a claim
 * before it is seen here, and the events are not acknowledged (503) and the
 * copy here is killed. Without it, a live owner whose watch lagged behind a
 * claim went on answering 202 for events the new owner never saw (session 9's
 * failover trials: 15 acknowledged messages lost). One read per actor per
 * commit batch. A read that fails (the bucket's leader is being elected) fails
 * every confirm for the next CONFIRM_BACKOFF_MS without another read: one
 * committer thread serves the whole node, and a batch of many actors must not
 * wait a read timeout (5 s) for each. */
#define CONFIRM_BACKOFF_MS 1000
static const char CONFIRM_BLOCKED[] = "the placement bucket could not be read in the last second";

static int confirm_blocked(struct cluster *c)
{
	return cluster_mono_ms() < __atomic_load_n(&c->confirm_blocked_until_ms, __ATOMIC_ACQUIRE);
}

static enum err_code on_confirm(void *user, const char *actor_id, struct err *err)
{
	struct cluster *c = user;
	char owner[CLUSTER_NODE_MAX];
	struct err le = {0};
	enum err_code rc = ERR_UNAVAILABLE;
	int deleted = 0;
	if (confirm_blocked(c))
		err_set(&le, rc, "%s", CONFIRM_BLOCKED);
	else if ((rc = cluster_locate_ex(c, actor_id, owner, &deleted, &le)) &&
		 rc != ERR_NOT_FOUND)
		__atomic_store_n(&c->confirm_blocked_until_ms, cluster_mono_ms() + CONFIRM_BACKOFF_MS,
				 __ATOMIC_RELEASE);
	if (deleted) {
		if (cluster_is_deleting(c, actor_id))
			return ERR_OK;   /* our own delete's last events */
		/* a copy here of an actor deleted from the cluster (a node that
		 * was away): never acknowledged, and deleted here too */
		log_warn("cluster", "'%s' was deleted from the cluster while this node still ran "
			 "it: not acknowledged, and the copy here is deleted", actor_id);
		replica_forget(c, actor_id);
		return err_set(err, ERR_NOT_FOUND, "actor '%s' not found (it was deleted)",
			       actor_id);
	}
	if (rc == ERR_NOT_FOUND)
		return ERR_OK;           /* never placed: nobody else can hold it */
	if (rc)
		return err_set(err, ERR_UNAVAILABLE, "the events of '%s' are stored, but this "
			       "node cannot confirm it still runs the actor (%s): not "
			       "acknowledged", actor_id, le.msg);
	if (strcmp(owner, c->node) == 0)
		return ERR_OK;
	log_warn("cluster", "'%s' was taken over by node '%s' while this node still ran it: "
		 "its latest events are not acknowledged and the copy here is killed",
		 actor_id, owner);
	replica_fence(c, actor_id, owner);
	return err_set(err, ERR_UNAVAILABLE, "actor '%s' was taken over by node '%s'; this "
		       "node's copy is being stopped: send it again", actor_id, owner);
}

const char *cluster_unwritable(struct cluster *c)
{
	if (!bus_connected(c->bus))
		return "not connected to NATS";
	if (__atomic_load_n(&c->suspect, __ATOMIC_ACQUIRE))
		return "its heartbeats failed; it is reading the placement of every actor here again";
	if (cluster_mono_ms() < __atomic_load_n(&c->unhealthy_until_ms, __ATOMIC_ACQUIRE))
		return "an event could not be replicated in the last 5 s";
	if (confirm_blocked(c))
		return CONFIRM_BLOCKED;
	return NULL;
}

/* ---- rounds: one job per actor, at once on the failover threads ---- */

/* An actor a round works on: a takeover's (id, the node it was placed on, the
 * revision of that placement), or only its id. */
struct candidate {
	char id[37];
	char from[CLUSTER_NODE_MAX];
	uint64_t rev;
};

/* A round runs fn (a takeover, an adoption, a check of a placement) for every
 * candidate at once on the failover threads, each a few round trips to NATS
 * (and for a takeover a rebuild: 35 ms each in bench/cluster; one after the
 * other, a survivor took 150 actors over in 7 s), and returns when all are
 * done: the next round sees what this one claimed. */
struct round {
	pthread_mutex_t lock;
	pthread_cond_t done;
	size_t left;
};

struct round_job {
	struct cluster *c;
	const struct candidate *k;
	void (*fn)(struct cluster *c, const struct candidate *k);
	struct round *r;
};

static void round_job_run(void *arg)
{
	struct round_job *j = arg;
	j->fn(j->c, j->k);
	pthread_mutex_lock(&j->r->lock);
	if (--j->r->left == 0)
		pthread_cond_signal(&j->r->done);
	pthread_mutex_unlock(&j->r->lock);
	free(j);
}

static void run_round(struct cluster *c, const struct candidate *v, size_t n,
		      void (*fn)(struct cluster *c, const struct candidate *k))
{
	struct round r = {.left = n};
	pthread_mutex_init(&r.lock, NULL);
	pthread_cond_init(&r.done, NULL);
	for (size_t i = 0; i < n; i++) {
		struct round_job *j = malloc(sizeof(*j));
		if (j)
			*j = (struct round_job){c, &v[i], fn, &r};
		if (j && pool_submit(c->failover_pool, round_job_run, j) == ERR_OK)
			continue;
		pthread_mutex_lock(&r.lock);    /* no thread for it: here */
		r.left--;
		pthread_mutex_unlock(&r.lock);
		free(j);
		fn(c, &v[i]);
	}
	pthread_mutex_lock(&r.lock);
	while (r.left)
		pthread_cond_wait(&r.done, &r.lock);
	pthread_mutex_unlock(&r.lock);
	pthread_cond_destroy(&r.done);
	pthread_mutex_destroy(&r.lock);
}

/* ---- after our heartbeats failed: which actors are still ours ---- */

static void fenced(void *user, enum err_code rc, const struct err *err);

/* Stops the copy here of an actor that runs elsewhere now (killed: its events
 * are not acknowledged). */
static void fence_stop(struct cluster *c, const char *id)
{
	char *copy = strdup(id);
	if (!copy)
		return;
	__atomic_add_fetch(&c->stat_fenced, 1, __ATOMIC_RELAXED);
	supervisor_stop(c->sup, id, 1, fenced, copy);
}

/* A live actor here, its placement read from the bucket: killed here when
 * another node holds it now. A read that fails sets c->verify_failed. */
static void verify_one(struct cluster *c, const struct candidate *k)
{
	char owner[CLUSTER_NODE_MAX];
	struct err e = {0};
	int deleted = 0;
	enum err_code rc = cluster_locate_ex(c, k->id, owner, &deleted, &e);
	if (deleted) {
		log_warn("cluster", "'%s' was deleted from the cluster while our heartbeats "
			 "failed: deleting the copy here", k->id);
		replica_forget(c, k->id);
		return;
	}
	if (rc == ERR_NOT_FOUND)
		return;                  /* never placed: nobody else can hold it */
	if (rc) {
		static const char key;     /* one rate limit for this line */
		log_limited(&key, LOG_WARN, "cluster", "placement of '%s' not read (%s): "
			    "writes stay refused until every actor here is confirmed", k->id, e.msg);
		__atomic_store_n(&c->verify_failed, 1, __ATOMIC_RELEASE);
		return;                  /* tried again at the next round */
	}
	/* what we hold now: a read older than our own claim (a lagging replica)
	 * does not replace it */
	if (strcmp(owner, c->node) == 0 || !cluster_lookup(c, k->id, owner) ||
	    strcmp(owner, c->node) == 0)
		return;
	log_warn("cluster", "'%s' was taken over by node '%s' while our heartbeats failed: "
		 "killing the copy here", k->id, owner);
	fence_stop(c, k->id);
}

/* The live actors of one page of the index, to verify. */
#define VERIFY_PAGE 500

struct verify_page {
	struct candidate v[VERIFY_PAGE];
	size_t n;
};

static int verify_collect(void *user, const struct db_run *r)
{
	struct verify_page *pg = user;
	if (supervisor_status_live(r->status) && pg->n < VERIFY_PAGE) {
		memset(&pg->v[pg->n], 0, sizeof(pg->v[0]));
		snprintf(pg->v[pg->n++].id, sizeof(pg->v[0].id), "%s", r->id);
	}
	return 0;
}

/* Reads the placement of every live actor here from the bucket (not the
 * watch, which may lag) and kills those another node holds now; then writes
 * are acknowledged again. The reads of a page of the index run at once on
 * the failover threads (one after the other, a node with 10,000 actors kept
 * refusing writes for the ~10,000 round trips to NATS). */
static void replica_verify(struct cluster *c)
{
	if (!__atomic_load_n(&c->suspect, __ATOMIC_ACQUIRE) ||
	    !__atomic_load_n(&c->beat_ok_since_ms, __ATOMIC_ACQUIRE))
		return;
	struct verify_page *pg = malloc(sizeof(*pg));
	if (!pg)
		return;
	int64_t t0 = cluster_mono_ms();
	size_t read = 0;
	__atomic_store_n(&c->verify_failed, 0, __ATOMIC_RELEASE);
	char *cursor = NULL;
	struct err e = {0};
	do {
		struct db_run_filter f = {.limit = VERIFY_PAGE, .cursor = cursor};
		char *next = NULL;
		pg->n = 0;
		enum err_code rc = db_run_list(supervisor_db(c->sup), &f, verify_collect, pg,
					       &next, &e);
		free(cursor);
		cursor = NULL;
		if (rc) {
			log_warn("cluster", "the index of the actors here not read (%s): writes "
				 "stay refused until every actor here is confirmed", e.msg);
			__atomic_store_n(&c->verify_failed, 1, __ATOMIC_RELEASE);
		} else {
			run_round(c, pg->v, pg->n, verify_one);
			read += pg->n;
		}
		if (__atomic_load_n(&c->verify_failed, __ATOMIC_ACQUIRE))
			free(next);
		else
			cursor = next;
	} while (cursor);
	free(pg);
	if (__atomic_load_n(&c->verify_failed, __ATOMIC_ACQUIRE))
		return;
	__atomic_store_n(&c->suspect, 0, __ATOMIC_RELEASE);
	log_info("cluster", "heartbeats succeed again and every actor here is still placed "
		 "here (or was stopped; %zu placements read in %lld ms): writes are "
		 "acknowledged again", read, (long long)(cluster_mono_ms() - t0));
}

/* ---- publishing again after a failure ---- */

struct resync_ctx {
	struct cluster *c;
	int64_t since;
	uint64_t runs, events;
};

static int resync_run(void *user, const struct db_run *r)
{
	struct resync_ctx *x = user;
	char owner[CLUSTER_NODE_MAX];
	int live = supervisor_status_live(r->status);
	if ((!live && r->updated_at < x->since) || strcmp(r->status, "deleted") == 0 ||
	    cluster_is_deleting(x->c, r->id) ||
	    (cluster_lookup(x->c, r->id, owner) && strcmp(owner, x->c->node) != 0))
		return 0;
	for (uint64_t seq = 1; seq <= r->head_seq; seq++) {
		struct chain_event ev = {0};
		int64_t ts = 0;
		struct err e = {0};
		if (supervisor_read_event(x->c->sup, r->id, seq, &ev, &ts, &e))
			break;
		struct supervisor_event sev = {
			.actor_id = r->id, .seq = ev.seq, .hash = ev.hash,
			.parent_hash = ev.parent_hash, .event_type = ev.event_type,
			.data = ev.data, .data_len = ev.data_len, .timestamp = ts,
		};
		on_publish(x->c, &sev);
		chain_event_release(&ev);
		x->events++;
	}
	x->runs++;
	return 0;
}

/* Publishes again every event of the runs written since the first failure
 * (the stream keeps one copy of each: message ids, and rebuild_dedup). */
static void replica_resync(struct cluster *c)
{
	int64_t since = __atomic_load_n(&c->resync_since_ms, __ATOMIC_ACQUIRE);
	if (!since || !bus_connected(c->bus) ||
	    !__atomic_load_n(&c->beat_ok_since_ms, __ATOMIC_ACQUIRE))
		return;
	__atomic_store_n(&c->resync_since_ms, 0, __ATOMIC_RELEASE);
	uint64_t upto = bus_stream_published(c->bus);
	struct resync_ctx x = {.c = c, .since = since};
	char *cursor = NULL;
	struct err e = {0};
	do {
		struct db_run_filter f = {.limit = 500, .cursor = cursor};
		char *next = NULL;
		enum err_code rc = db_run_list(supervisor_db(c->sup), &f, resync_run, &x, &next, &e);
		free(cursor);
		cursor = rc ? NULL : next;
	} while (cursor);
	if (bus_stream_wait_after(c->bus, upto, 10000, &e)) {
		log_warn("cluster", "publishing again after a failure did not finish: %s", e.msg);
		mark_unreplicated(c);
		return;
	}
	bus_stream_forgive(c->bus, upto);
	log_info("cluster", "published %llu events of %llu runs again after a replication "
		 "failure", (unsigned long long)x.events, (unsigned long long)x.runs);
}

/* The blobs a rebuilt chain names, fetched from the stream after it. */
struct refs {
	char (*v)[64 + 1 + 65];      /* "<store>/<sha256>" */
	size_t n, cap;
	struct blob_labels labels;   /* an actor's own store labels, set after the fetch */
};

static void note_ref(void *user, const char *store_id, const char *sha256)
{
	struct refs *r = user;
	char key[64 + 1 + 65];
	snprintf(key, sizeof(key), "%s/%s", store_id, sha256);
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->v[i], key) == 0)
			return;
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		void *v = realloc(r->v, cap * sizeof(*r->v));
		if (!v)
			return;
		r->v = v;
		r->cap = cap;
	}
	memcpy(r->v[r->n++], key, sizeof(key));
}

/* A state blob ("store://theater-state/...") is history unless recovery
 * reads it: noted apart (note_state_ref, for the event state_event finds). */
static void note_ref_but_state(void *user, const char *store_id, const char *sha256)
{
	if (strcmp(store_id, "theater-state") != 0)
		note_ref(user, store_id, sha256);
}

static void note_state_ref(void *user, const char *store_id, const char *sha256)
{
	if (strcmp(store_id, "theater-state") == 0)
		note_ref(user, store_id, sha256);
}

/* Every blob the chain names, from the stream into our content store. One
 * that is missing is only fatal when recovery needs it (durable.c then says
 * so): an old message's body may never be read again. */
static void fetch_blobs(struct cluster *c, const char *id, struct refs *r)
{
	for (size_t i = 0; i < r->n; i++) {
		char *slash = strchr(r->v[i], '/');
		*slash = '\0';
		struct err e = {0};
		if (blob_fetch(c, r->v[i], slash + 1, &e))
			log_warn("cluster", "blob %s of '%s' not fetched from the stream: %s",
				 slash + 1, id, e.msg);
	}
}

/* ---- rebuilding a chain from the stream ---- */

/* One stream message of the actor: a chain event as some node published it.
 * The same event may be there twice (a republish after a failed
 * acknowledgement, or a new owner's republish of the chain it rebuilt), and
 * after a split brain two copies' different events share a seq. */
struct rebuild_ev {
	uint64_t seq;
	size_t pos;                   /* its place among the actor's messages */
	char hash[65], parent[65];
	char node[CLUSTER_NODE_MAX];  /* who published it; "" in older envelopes */
	uint64_t rev;                 /* the placement revision it ran under; 0: not said */
	uint8_t *msg;                 /* the whole stream message */
	size_t len;
};

struct rebuild {
	struct rebuild_ev *ev;        /* every message, in stream order until chosen */
	size_t n, cap;
	const uint8_t **msg;          /* by seq - 1: the chosen chain (borrowed from ev) */
	size_t *len;
	uint64_t max;                 /* the chosen chain's length */
	struct err err;
	int failed;
};

static const char ZERO_HASH[65] =
	"0000000000000000000000000000000000000000000000000000000000000000";

static int hex64(const char *s)
{
	return s && strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

static int rebuild_collect(void *user, const uint8_t *data, size_t len)
{
	struct rebuild *rb = user;
	const uint8_t *body = NULL;
	size_t blen = 0;
	json_t *head = cluster_unwrap(data, len, &body, &blen);
	uint64_t seq = (uint64_t)json_integer_value(json_object_get(head, "seq"));
	const char *hash = json_string_value(json_object_get(head, "hash"));
	const char *parent = json_string_value(json_object_get(head, "parent"));
	const char *node = json_string_value(json_object_get(head, "node"));
	if (!head || seq == 0 || seq > ((uint64_t)1 << 32) || !hex64(hash) || !hex64(parent)) {
		json_decref(head);
		err_set(&rb->err, ERR_CORRUPT, "a stream message is not a chain event");
		rb->failed = 1;
		return 1;
	}
	if (rb->n == rb->cap) {
		size_t cap = rb->cap ? rb->cap * 2 : 64;
		struct rebuild_ev *v = realloc(rb->ev, cap * sizeof(*v));
		if (!v)
			goto nomem;
		rb->ev = v;
		rb->cap = cap;
	}
	struct rebuild_ev *e = &rb->ev[rb->n];
	if (!(e->msg = malloc(len + 1)))
		goto nomem;
	memcpy(e->msg, data, len);
	e->len = len;
	e->seq = seq;
	e->pos = rb->n++;
	memcpy(e->hash, hash, 65);
	memcpy(e->parent, parent, 65);
	snprintf(e->node, sizeof(e->node), "%s", node ? node : "");
	json_int_t rev = json_integer_value(json_object_get(head, "rev"));
	e->rev = rev > 0 ? (uint64_t)rev : 0;
	json_decref(head);
	return 0;
nomem:
	json_decref(head);
	err_set(&rb->err, ERR_NOMEM, "out of memory");
	rb->failed = 1;
	return 1;
}

static int by_seq_hash_pos(const void *a, const void *b)
{
	const struct rebuild_ev *x = a, *y = b;
	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	int h = strcmp(x->hash, y->hash);
	if (h)
		return h;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Sorted by seq and hash; each event once, as it first came: the first
 * publisher of an event is the copy that made it (a republish by a node that
 * rebuilt the chain comes later and must not pass for its author). */
static void rebuild_dedup(struct rebuild *rb)
{
	qsort(rb->ev, rb->n, sizeof(*rb->ev), by_seq_hash_pos);
	size_t w = 0;
	for (size_t i = 0; i < rb->n; i++) {
		if (w && rb->ev[w - 1].seq == rb->ev[i].seq &&
		    strcmp(rb->ev[w - 1].hash, rb->ev[i].hash) == 0) {
			free(rb->ev[i].msg);
			continue;
		}
		rb->ev[w++] = rb->ev[i];
	}
	rb->n = w;
}

/* The event to follow `parent` among the candidates at one seq [i, end).
 *
 * Which copy's chain is the actor's: a node's copy only ever extends its own
 * chain, so a child of `parent` published by another node than its author was
 * made by a copy that rebuilt the chain from the stream after `parent` was
 * stored, which means that node claimed the actor after parent's author held
 * it: the newer copy. The author's own child is the older copy going on until
 * it heard of the claim (fenced, never acknowledged: see docs/cluster.md,
 * Guarantees). So a child by another node wins over the author's. Two claims
 * that both rebuilt at the same event (the first claimer's events reached the
 * stream after the second claimed it) are both "another node's": the copy
 * that ran under the later claim, the higher placement revision ("rev"),
 * wins, as it is the one whose acknowledgements the fence let through. Among
 * equals (envelopes that name no node or no revision) the one that came later
 * in the stream, as before.
 *
 * Why not the placement: the tip could be "the last event of the node our
 * claim took the actor from", but that node may have published nothing (it
 * died right after its own claim), and the watch that hands us a placement
 * carries no "from"; the chain's own links need neither. */
static long rebuild_pick(const struct rebuild *rb, size_t i, size_t end, const char *parent,
			 const char *author)
{
	long best = -1;
	int best_new = 0;
	for (size_t k = i; k < end; k++) {
		const struct rebuild_ev *e = &rb->ev[k];
		if (strcmp(e->parent, parent) != 0)
			continue;
		int is_new = strcmp(e->node, author) != 0;
		const struct rebuild_ev *b = best < 0 ? NULL : &rb->ev[best];
		int better = !b || (e->rev && b->rev && e->rev != b->rev ? e->rev > b->rev
				    : is_new != best_new ? is_new > best_new
				    : e->pos > b->pos);
		if (better) {
			best = (long)k;
			best_new = is_new;
		}
	}
	return best;
}

/* Every event but the first names a parent the stream holds: otherwise an
 * event is missing, and the chosen chain could end before an acknowledged one. */
static enum err_code rebuild_linked(const struct rebuild *rb, const char *id, struct err *err)
{
	size_t prev = 0, prev_end = 0, cur = 0;   /* [prev, prev_end): the seq before */
	for (size_t i = 0; i < rb->n; i++) {
		const struct rebuild_ev *e = &rb->ev[i];
		if (i && rb->ev[i - 1].seq != e->seq) {
			int next = rb->ev[i - 1].seq + 1 == e->seq;
			prev = next ? cur : i;
			prev_end = i;
			cur = i;
		}
		int found = e->seq == 1 && strcmp(e->parent, ZERO_HASH) == 0;
		for (size_t k = prev; !found && k < prev_end; k++)
			found = strcmp(rb->ev[k].hash, e->parent) == 0;
		if (!found)
			return err_set(err, ERR_CORRUPT, "the stream lacks an event of '%s' before "
				       "event %llu (published by '%s'), which names a parent it "
				       "does not hold", id, (unsigned long long)e->seq,
				       *e->node ? e->node : "?");
	}
	return ERR_OK;
}

/* The events of the copy that lost, in the log: how many, and the first few
 * (seq, node, hash), so the split brain they come from can be traced. */
static void log_left_out(const struct rebuild *rb, const unsigned char *kept, const char *id)
{
	char list[512] = "";
	size_t used = 0, shown = 0, left = 0;
	for (size_t i = 0; i < rb->n; i++) {
		if (kept[i])
			continue;
		left++;
		if (shown == 8 || used >= sizeof(list))
			continue;
		int w = snprintf(list + used, sizeof(list) - used, "%s#%llu by '%s' (%.12s)",
				 shown ? ", " : "", (unsigned long long)rb->ev[i].seq,
				 *rb->ev[i].node ? rb->ev[i].node : "?", rb->ev[i].hash);
		if (w > 0)
			used += (size_t)w;
		if (used >= sizeof(list))
			used = sizeof(list) - 1;   /* cut, still terminated */
		shown++;
	}
	log_warn("cluster", "rebuilding '%s': %zu events in the stream are of another copy that "
		 "ran it at the same time (a split brain) and are left out: %s%s; the chain kept "
		 "has %llu events", id, left, list, left > shown ? ", ..." : "",
		 (unsigned long long)rb->max);
}

/* Chooses the chain to rebuild: from the first event, the child rebuild_pick
 * prefers, until the last event with a child in the stream. The events of
 * other copies are left out and named in the log. */
static enum err_code rebuild_choose(struct rebuild *rb, const char *id, struct err *err)
{
	rebuild_dedup(rb);
	enum err_code rc = rebuild_linked(rb, id, err);
	if (rc)
		return rc;
	uint64_t last = rb->n ? rb->ev[rb->n - 1].seq : 0;
	rb->msg = calloc(last + 1, sizeof(*rb->msg));
	rb->len = calloc(last + 1, sizeof(*rb->len));
	unsigned char *kept = calloc(rb->n + 1, 1);
	if (!rb->msg || !rb->len || !kept) {
		free(kept);
		return err_set(err, ERR_NOMEM, "out of memory");
	}
	const char *parent = ZERO_HASH, *author = "";
	size_t i = 0;
	for (uint64_t seq = 1; i < rb->n && rb->ev[i].seq == seq; seq++) {
		size_t end = i;
		while (end < rb->n && rb->ev[end].seq == seq)
			end++;
		long k = rebuild_pick(rb, i, end, parent, author);
		if (k < 0)
			break;
		kept[k] = 1;
		rb->msg[seq - 1] = rb->ev[k].msg;
		rb->len[seq - 1] = rb->ev[k].len;
		rb->max = seq;
		parent = rb->ev[k].hash;
		author = rb->ev[k].node;
		i = end;
	}
	if (rb->n > rb->max)
		log_left_out(rb, kept, id);
	free(kept);
	return ERR_OK;
}

/* A `spawned` event's package digest ("" when it has none). */
static void spawned_package(const uint8_t *data, size_t len, char package[65])
{
	struct err e = {0};
	json_t *d = json_parse((const char *)data, len, 64, &e);
	const char *sha = json_string_value(json_object_get(json_object_get(d, "package"),
							    "sha256"));
	snprintf(package, 65, "%s", sha ? sha : "");
	json_decref(d);
}

/* Appends event seq to chain, checking the hash; notes the package. */
static enum err_code rebuild_append(struct chain *chain, uint64_t seq, const uint8_t *data,
				    size_t len, char package[65], struct refs *refs,
				    struct err *err)
{
	const uint8_t *body = NULL;
	size_t blen = 0;
	json_t *head = cluster_unwrap(data, len, &body, &blen);
	const char *type = json_string_value(json_object_get(head, "type"));
	const char *hash = json_string_value(json_object_get(head, "hash"));
	enum err_code rc = ERR_OK;
	struct chain_event ev = {0};
	char got[65];
	if (!type || !hash)
		rc = err_set(err, ERR_CORRUPT, "event %llu in the stream has no type or hash",
			     (unsigned long long)seq);
	else if (!(rc = chain_append_nosync(chain, type, body, blen, &ev, err)) &&
		 (hex_encode(ev.hash, 32, got), strcmp(got, hash) != 0))
		rc = err_set(err, ERR_CORRUPT, "event %llu hashes to %s here, %s in the stream",
			     (unsigned long long)seq, got, hash);
	chain_event_release(&ev);
	if (!rc) {
		blob_each_ref(body, blen, note_ref_but_state, refs);
		blob_each_actor_ref(type, body, blen, note_ref, refs, &refs->labels);
	}
	if (!rc && strcmp(type, "spawned") == 0)
		spawned_package(body, blen, package);
	json_decref(head);
	return rc;
}

/* Event seq's type and data (a new reference; NULL when it is not JSON). */
static json_t *event_data(const struct rebuild *rb, uint64_t seq, char type[64])
{
	const uint8_t *body = NULL;
	size_t blen = 0;
	json_t *head = cluster_unwrap(rb->msg[seq - 1], rb->len[seq - 1], &body, &blen);
	const char *t = json_string_value(json_object_get(head, "type"));
	snprintf(type, 64, "%s", t ? t : "");
	struct err e = {0};
	json_t *d = head ? json_parse((const char *)body, blen, 64, &e) : NULL;
	json_decref(head);
	return d;
}

/* The event that holds the state event seq stands for: itself when it holds
 * one (a state_ref, or a `wasm` event's inline state), else the one its
 * state_seq names, followed as recovery and replay follow it. 0: not found. */
static uint64_t state_holder(const struct rebuild *rb, uint64_t seq)
{
	for (int hops = 0; seq >= 1 && seq <= rb->max && hops < 64; hops++) {
		char type[64];
		json_t *d = event_data(rb, seq, type);
		int holds = json_is_string(json_object_get(d, "state_ref")) ||
			    (strcmp(type, "wasm") == 0 && json_object_get(d, "state"));
		json_int_t st = json_integer_value(json_object_get(d, "state_seq"));
		json_decref(d);
		if (holds)
			return seq;
		if (st <= 0 || (uint64_t)st >= seq)
			return 0;
		seq = (uint64_t)st;
	}
	return 0;
}

/* The events whose large state a takeover fetches, into keep (rb->max + 1
 * flags): the state recovery resumes from (durable.c, find_marks: the newest
 * `wasm` event, or event naming a state_seq such as `recovered`), and each
 * state a `recovered` or `restarted` event resumed from (replay reads them).
 * 0 when one of them is not found (then every state is fetched). */
static int states_needed(const struct rebuild *rb, unsigned char *keep)
{
	int newest = 1;
	for (uint64_t seq = rb->max; seq > 0; seq--) {
		char type[64];
		const uint8_t *body = NULL;
		size_t blen = 0;
		json_t *head = cluster_unwrap(rb->msg[seq - 1], rb->len[seq - 1], &body, &blen);
		int marks = head && memmem(body, blen, "\"state_seq\"", 11);
		const char *t = json_string_value(json_object_get(head, "type"));
		int is_wasm = t && strcmp(t, "wasm") == 0;
		json_decref(head);
		if (!marks && !(newest && is_wasm))
			continue;
		json_t *d = event_data(rb, seq, type);
		json_int_t st = json_integer_value(json_object_get(d, "state_seq"));
		json_decref(d);
		uint64_t at = 0;
		if (newest && (is_wasm || st > 0)) {
			newest = 0;
			if (!(at = state_holder(rb, seq)))
				return 0;
			keep[at] = 1;
		}
		if ((strcmp(type, "recovered") == 0 || strcmp(type, "restarted") == 0) && st > 0) {
			if (!(at = state_holder(rb, (uint64_t)st)))
				return 0;
			keep[at] = 1;
		}
	}
	return !newest;
}

/* State blobs: those states_needed names; every one when it cannot tell.
 * Older states are history (left in the stream). */
static void note_states(const struct rebuild *rb, struct refs *refs)
{
	unsigned char *keep = calloc(rb->max + 1, 1);
	int some = keep && states_needed(rb, keep);
	for (uint64_t seq = 1; seq <= rb->max; seq++) {
		if (some && !keep[seq])
			continue;
		const uint8_t *body = NULL;
		size_t blen = 0;
		json_t *head = cluster_unwrap(rb->msg[seq - 1], rb->len[seq - 1], &body, &blen);
		if (head)
			blob_each_ref(body, blen, note_state_ref, refs);
		json_decref(head);
	}
	free(keep);
}

/* A chain file of ours for this id is an older copy (the actor ran here, moved
 * away, and comes back): it is kept aside, never overwritten. */
static void set_aside(const char *dir, const char *id)
{
	char *from = NULL, *to = NULL;
	if (asprintf(&from, "%s/%s.chain", dir, id) > 0 &&
	    asprintf(&to, "%s/%s.chain.moved-%lld", dir, id, (long long)cluster_unix_ms()) > 0 &&
	    access(from, F_OK) == 0 && rename(from, to) == 0)
		log_warn("cluster", "an older copy of the chain of '%s' is kept as '%s'", id, to);
	free(from);
	free(to);
}

/* Every message of id's chain subject into rb (rebuild_collect). */
static enum err_code rebuild_read(struct cluster *c, const char *id, struct rebuild *rb,
				  struct err *err)
{
	char subject[96];
	chain_subject(id, subject, sizeof(subject));
	enum err_code rc = bus_stream_read(c->bus, CHAIN_STREAM, subject, 5000, rebuild_collect,
					   rb, err);
	if (!rc && rb->failed) {
		*err = rb->err;
		rc = rb->err.code ? rb->err.code : ERR_CORRUPT;
	}
	return rc;
}

static void rebuild_free(struct rebuild *rb)
{
	for (size_t i = 0; i < rb->n; i++)
		free(rb->ev[i].msg);
	free(rb->ev);
	free(rb->msg);
	free(rb->len);
	memset(rb, 0, sizeof(*rb));
}

static enum err_code rebuild_chain(struct cluster *c, const char *id, uint64_t *events_out,
				   struct err *err)
{
	const char *dir = supervisor_chains_dir(c->sup);
	struct rebuild rb = {0};
	struct refs refs = {0};
	char package[65] = "";
	enum err_code rc = rebuild_read(c, id, &rb, err);
	if (!rc && rb.n == 0)
		rc = err_set(err, ERR_NOT_FOUND, "the stream holds no event of '%s'", id);
	if (!rc)
		rc = rebuild_choose(&rb, id, err);
	struct chain *chain = NULL;
	struct chain_open_report rep = {0};
	if (!rc)
		rc = chain_open(dir, id, &chain, &rep, err);
	for (uint64_t i = 0; !rc && i < rb.max; i++)
		rc = rebuild_append(chain, i + 1, rb.msg[i], rb.len[i], package, &refs, err);
	if (!rc)
		rc = chain_sync(chain, err);
	if (!rc)
		note_states(&rb, &refs);
	chain_close(chain);
	*events_out = rb.max;
	rebuild_free(&rb);
	if (!rc && *package)
		rc = blob_fetch(c, DURABLE_PACKAGES_STORE, package, err);
	if (!rc)
		fetch_blobs(c, id, &refs);
	if (!rc)
		blob_apply_labels(c, id, &refs.labels);
	free(refs.labels.v);
	free(refs.v);
	/* The index's run row comes from the chain's own lifecycle events (name,
	 * creation, parent, package). A meta file would override them: one an
	 * earlier version left when it took this actor over named the takeover as
	 * the creation time. */
	if (!rc)
		chain_remove_meta(dir, id);
	return rc;
}

/* ---- failover ---- */

static unsigned id_hash(const char *id)
{
	unsigned h = 5381;
	for (; *id; id++)
		h = h * 33 + (unsigned char)*id;
	return h;
}

static int by_name(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

static void adopt(struct cluster *c, const char *id, const char *from, int64_t t0);

/* The bucket itself, not our watch's copy, says the node is silent: its last
 * beat (by its own clock) is older than the lapse it names, or gone. */
static int silent(struct cluster *c, const char *node)
{
	uint8_t *data = NULL;
	size_t len = 0;
	struct err e = {0};
	enum err_code rc = bus_kv_get(c->nodes_kv, node, &data, &len, NULL, &e);
	if (rc == ERR_NOT_FOUND)
		return 1;
	if (rc) {                        /* cannot tell: not now */
		static const char fmt[] = "cannot read the heartbeat of node '%s' (no takeover "
					  "from it until it can be read): %s";
		log_limited(fmt, LOG_WARN, "cluster", fmt, node, e.msg);
		return 0;
	}
	json_t *v = json_parse((const char *)data, len, 8, &e);
	int64_t t = (int64_t)json_integer_value(json_object_get(v, "time"));
	int64_t lapse = cluster_beat_lapse(v);
	json_decref(v);
	free(data);
	int64_t age = cluster_unix_ms() - t;
	if (age < lapse) {
		static const char fmt[] = "node '%s' looks down here, but its last heartbeat in "
					  "the bucket is %lld ms old: no takeover from it yet";
		log_limited(fmt, LOG_WARN, "cluster", fmt, node, (long long)age);
	}
	return age >= lapse;
}

/* How long the bucket's word that a node is silent stands for the takeovers of a
 * round (each read it, one round trip per actor, from one key). */
#define SILENT_FRESH_MS 500

/* silent(), asked of the bucket at most every SILENT_FRESH_MS per node. */
static int silent_lately(struct cluster *c, const char *node)
{
	int64_t now = cluster_mono_ms();
	pthread_mutex_lock(&c->lock);
	struct node_row *r = cluster_node_row_locked(c, node);
	int fresh = r && r->silent_at_ms && now - r->silent_at_ms < SILENT_FRESH_MS;
	pthread_mutex_unlock(&c->lock);
	if (fresh)
		return 1;
	if (!silent(c, node))
		return 0;
	pthread_mutex_lock(&c->lock);
	if ((r = cluster_node_row_locked(c, node)))   /* rows are never removed */
		r->silent_at_ms = now;
	pthread_mutex_unlock(&c->lock);
	return 1;
}

static void take_over(struct cluster *c, const struct candidate *k)
{
	int64_t t0 = cluster_mono_ms();
	if (!silent_lately(c, k->from))
		return;
	/* The candidate came from the watch, which reads one replica of the
	 * bucket: the trials showed its revisions 6 apart from the leader's after
	 * a NATS server came back (every claim at the watch's revision refused,
	 * for ever). Claim at the revision the bucket's leader gives, when it
	 * still names the dead node. */
	struct candidate at = *k;
	{
		uint8_t *data = NULL;
		size_t len = 0;
		char owner[CLUSTER_NODE_MAX] = "";
		struct err re = {0};
		enum err_code grc = bus_kv_get(c->place_kv, k->id, &data, &len, &at.rev, &re);
		enum place_kind kind = grc ? PLACE_BAD : cluster_place_parse(data, len, owner, NULL);
		int named = kind == PLACE_NODE;
		free(data);
		if (kind == PLACE_DELETED) {
			cluster_place_drop(c, k->id);   /* deleted: never claimed */
			return;
		}
		if (grc == ERR_NOT_FOUND)
			return;
		if (grc) {
			log_warn("cluster", "cannot read the placement of '%s' to claim it: %s",
				 k->id, re.msg);
			return;
		}
		if (named)
			cluster_place_set(c, k->id, owner, at.rev);
		if (!named || strcmp(owner, k->from) != 0)
			return;          /* claimed already, or never the dead node's */
		if (at.rev != k->rev)
			log_warn("cluster", "the placement watch gave '%s' revision %llu, the bucket "
				 "gives %llu: claiming at %llu", k->id, (unsigned long long)k->rev,
				 (unsigned long long)at.rev, (unsigned long long)at.rev);
	}
	k = &at;
	char value[256];
	snprintf(value, sizeof(value), "{\"node\":\"%s\",\"from\":\"%s\",\"at\":%lld}", c->node,
		 k->from, (long long)cluster_unix_ms());
	uint64_t rev = 0;
	struct err e = {0};
	enum err_code rc = bus_kv_update(c->place_kv, k->id, value, strlen(value), k->rev, &rev,
					 &e);
	if (rc) {
		if (rc != ERR_CONFLICT) {
			log_warn("cluster", "cannot claim '%s' from '%s': %s", k->id, k->from, e.msg);
			return;
		}
		/* Another survivor won, or our copy's revision is older than the
		 * bucket's (a watch that lagged): read the bucket, so the next tick
		 * claims at the right revision if it still names the dead node. */
		char owner[CLUSTER_NODE_MAX] = "";
		struct err le = {0};
		/* Seen in trials after a NATS server came back: the watch and a
		 * read both give revision R naming the dead node, yet the stream's
		 * last sequence for the key is N > R, so every claim at R is refused
		 * for ever. Read revision N itself: when it names the dead node
		 * too, the next tick claims at N (still a compare-and-set: one
		 * survivor wins). */
		const char *w = strstr(e.msg, "wrong last sequence: ");
		unsigned long long last = w ? strtoull(w + 21, NULL, 10) : 0;
		if (last > k->rev) {
			uint8_t *data = NULL;
			size_t len = 0;
			char holder[CLUSTER_NODE_MAX] = "";
			enum err_code grc = bus_kv_get_revision(c->place_kv, k->id, last, &data,
								&len, &le);
			if (!grc && cluster_place_node_of(data, len, holder))
				cluster_place_set(c, k->id, holder, last);
			free(data);
			log_info("cluster", "claim of '%s' from '%s' at revision %llu refused: the "
				 "last revision is %llu, which places it on '%s'", k->id, k->from,
				 (unsigned long long)k->rev, last, grc ? le.msg : holder);
			return;
		}
		/* The refusal names no newer revision. Read the key: when it still
		 * names the dead node at our revision, the key's own check refused a
		 * revision its read confirms (seen in trials after a NATS server came
		 * back: refused every second for minutes). Claim once more checked
		 * against the whole bucket stream (still one winner). */
		uint8_t *data = NULL;
		size_t len = 0;
		uint64_t now = 0;
		enum err_code grc = bus_kv_get(c->place_kv, k->id, &data, &len, &now, &le);
		if (grc) {
			log_warn("cluster", "claim of '%s' from '%s' at revision %llu refused (%s), "
				 "and its placement cannot be read: %s", k->id, k->from,
				 (unsigned long long)k->rev, e.msg, le.msg);
			return;
		}
		int named = cluster_place_node_of(data, len, owner);
		free(data);
		if (named)
			cluster_place_set(c, k->id, owner, now);
		if (!named || now != k->rev || strcmp(owner, k->from) != 0) {
			log_info("cluster", "claim of '%s' from '%s' at revision %llu refused (%s): "
				 "the bucket places it on '%s' at revision %llu", k->id, k->from,
				 (unsigned long long)k->rev, e.msg, named ? owner : "?",
				 (unsigned long long)now);
			return;
		}
		log_warn("cluster", "claim of '%s' from '%s' at revision %llu refused (%s), yet "
			 "the bucket still places it there at that revision: claiming against the "
			 "bucket's last sequence", k->id, k->from, (unsigned long long)k->rev, e.msg);
		struct err se = {0};
		rc = bus_kv_update_by_stream(c->place_kv, k->id, value, strlen(value), k->rev,
					     &rev, &se);
		if (rc) {
			log_warn("cluster", "claim of '%s' from '%s' at revision %llu against the "
				 "bucket's last sequence refused too: %s", k->id, k->from,
				 (unsigned long long)k->rev, se.msg);
			return;
		}
		log_info("cluster", "claim of '%s' from '%s' won against the bucket's last "
			 "sequence (revision %llu)", k->id, k->from, (unsigned long long)rev);
	}
	cluster_place_set(c, k->id, c->node, rev);
	set_aside(supervisor_chains_dir(c->sup), k->id);
	adopt(c, k->id, k->from, t0);
}

/* Our copy of the bucket still places id here and no delete of it is under way. */
static int still_placed_here(struct cluster *c, const char *id)
{
	char node[CLUSTER_NODE_MAX];
	return cluster_lookup(c, id, node) && strcmp(node, c->node) == 0 &&
	       !cluster_is_deleting(c, id);
}

/* The chain file a rebuild wrote here, when it is not run. */
static void drop_chain_file(struct cluster *c, const char *id)
{
	char *path = NULL;
	if (asprintf(&path, "%s/%s.chain", supervisor_chains_dir(c->sup), id) > 0)
		unlink(path);
	free(path);
}

/* Rebuilds and runs an actor placed here whose chain we lack (a claim just
 * won, or one that failed earlier: the stream was unavailable). A partial
 * chain is removed, so the next tick tries again. */
static void adopt(struct cluster *c, const char *id, const char *from, int64_t t0)
{
	uint64_t events = 0;
	struct err e = {0};
	enum err_code rc = rebuild_chain(c, id, &events, &e);
	if (rc) {
		drop_chain_file(c, id);
		__atomic_add_fetch(&c->stat_rebuild_failures, 1, __ATOMIC_RELAXED);
		/* tried again every second: the first failure of each actor in
		 * full, the rest at most one line per 10 s (they are counted in
		 * theater_cluster_rebuild_failures_total) */
		static const char fmt[] = "actor '%s' (from node '%s') is placed here but its "
					  "chain still cannot be rebuilt (%u tries): %s";
		unsigned fails = cluster_place_rebuild_failed(c, id, 1);
		if (fails <= 1)
			log_error("cluster", "actor '%s' (from node '%s') is placed here but its chain "
				  "cannot be rebuilt yet: %s; retrying every second", id, from, e.msg);
		else
			log_limited(fmt, LOG_ERROR, "cluster", fmt, id, from, fails, e.msg);
		return;
	}
	if (!still_placed_here(c, id)) {   /* deleted (or moved) during the rebuild */
		drop_chain_file(c, id);
		log_info("cluster", "'%s' was deleted or moved while its chain was rebuilt here: "
			 "not run", id);
		return;
	}
	if ((rc = supervisor_adopt(c->sup, id, &e))) {
		log_error("cluster", "took over '%s' from node '%s' but cannot run it: %s", id,
			  from, e.msg);
		return;
	}
	if (!still_placed_here(c, id)) {   /* a delete or move came between look and run */
		replica_fence(c, id, NULL);    /* the bucket's leader decides what goes */
		return;
	}
	unsigned fails = cluster_place_rebuild_failed(c, id, 0);
	__atomic_add_fetch(&c->stat_takeovers, 1, __ATOMIC_RELAXED);
	log_info("cluster", "took over '%s' from node '%s': %llu events from the stream, "
		 "running again in %lld ms%s", id, from, (unsigned long long)events,
		 (long long)(cluster_mono_ms() - t0), fails ? " (after failed rebuilds)" : "");
}

/* Placed here, no chain file here: a takeover whose rebuild failed. Asked
 * between rounds (no rebuild runs), and once a placement's chain file was
 * seen it is not looked for again at that revision (a node with 100,000
 * actors looked for 100,000 files every second, under the lock). */
static size_t unadopted(struct cluster *c, struct candidate *v, size_t cap)
{
	size_t n = 0;
	const char *dir = supervisor_chains_dir(c->sup);
	pthread_mutex_lock(&c->lock);
	for (size_t b = 0; b < PLACE_BUCKETS && n < cap; b++)
		for (struct place *p = c->places[b]; p && n < cap; p = p->next) {
			if (p->chain_here || strcmp(p->node, c->node) != 0)
				continue;
			char path[4200];
			snprintf(path, sizeof(path), "%s/%s.chain", dir, p->id);
			if (access(path, F_OK) == 0) {
				p->chain_here = 1;
				continue;
			}
			memcpy(v[n].id, p->id, 37);
			snprintf(v[n].from, CLUSTER_NODE_MAX, "%s", "?");
			v[n++].rev = p->rev;
		}
	pthread_mutex_unlock(&c->lock);
	return n;
}

/* Dead nodes: known, beat at least once, silent for longer than the lapse each
 * names in its beats. late: silent for four of its lapses (its actors' preferred
 * survivors had three lapses to claim them). */
static size_t dead_nodes(struct cluster *c, char (*dead)[CLUSTER_NODE_MAX], int *late,
			 size_t max)
{
	size_t n = 0;
	int64_t now = cluster_mono_ms();
	int64_t ok_since = __atomic_load_n(&c->beat_ok_since_ms, __ATOMIC_ACQUIRE);
	if (!ok_since)
		return 0;                /* we cannot tell who is dead */
	for (size_t i = 0; i < c->nnodes && n < max; i++) {
		struct node_row *r = &c->nodes[i];
		if (strcmp(r->name, c->node) == 0 || !r->time_ms)
			continue;
		int64_t seen = r->seen_ms > ok_since ? r->seen_ms : ok_since;
		int64_t since = now - seen;
		if (since < (int64_t)r->lapse_ms)
			continue;
		if (llabs(r->down_noted_ms - r->seen_ms) > 1000) {
			/* newly down: our copy of the placement may lack what the
			 * watch missed while NATS elected leaders (actors placed on
			 * it just before it died): read it all again */
			r->down_noted_ms = r->seen_ms;
			log_info("cluster", "node '%s' is down (no heartbeat for %lld ms): reading "
				 "the placement again to take its actors over", r->name,
				 (long long)since);
			bus_watch_renew(c->place_watch);
		}
		snprintf(dead[n], CLUSTER_NODE_MAX, "%s", r->name);
		late[n++] = since >= 4 * (int64_t)r->lapse_ms;
	}
	return n;
}

/* An actor placed here whose chain we lack (unadopted): adopted when the
 * bucket itself confirms the placement our copy (the watch) has. */
static void adopt_unadopted(struct cluster *c, const struct candidate *k)
{
	char owner[CLUSTER_NODE_MAX];
	struct err le = {0};
	if (cluster_locate(c, k->id, owner, &le) || strcmp(owner, c->node) != 0)
		return;
	adopt(c, k->id, k->from, cluster_mono_ms());
}

int replica_failover_tick(struct cluster *c)
{
	replica_verify(c);
	replica_resync(c);
	char dead[MAX_NODES][CLUSTER_NODE_MAX];
	int late[MAX_NODES];
	char up[MAX_NODES][CLUSTER_NODE_MAX];
	size_t nup = cluster_nodes_up(c, up, MAX_NODES);
	qsort(up, nup, sizeof(up[0]), by_name);
	size_t cap = 256, n = 0;
	struct candidate *v = malloc(cap * sizeof(*v));
	if (!v || !c->place_ready)
		goto done;
	pthread_mutex_lock(&c->lock);
	size_t ndead = dead_nodes(c, dead, late, MAX_NODES);
	for (size_t b = 0; ndead && b < PLACE_BUCKETS && n < cap; b++)
		for (struct place *p = c->places[b]; p && n < cap; p = p->next)
			for (size_t d = 0; d < ndead; d++) {
				if (strcmp(p->node, dead[d]) != 0)
					continue;
				const char *pref = up[id_hash(p->id) % (nup ? nup : 1)];
				if (strcmp(pref, c->node) != 0 && !late[d])
					continue;   /* its preferred survivor goes first */
				v[n++] = (struct candidate){.rev = p->rev};
				memcpy(v[n - 1].id, p->id, 37);
				snprintf(v[n - 1].from, CLUSTER_NODE_MAX, "%s", p->node);
			}
	pthread_mutex_unlock(&c->lock);
	run_round(c, v, n, take_over);
	int full = n == cap;
	n = unadopted(c, v, 16);
	run_round(c, v, n, adopt_unadopted);
	full |= n == 16;
	free(v);
	return full;
done:
	free(v);
	return 0;
}

/* ---- fencing at join ---- */

static void fenced(void *user, enum err_code rc, const struct err *err)
{
	char *id = user;
	if (rc && rc != ERR_CONFLICT)
		log_warn("cluster", "cannot stop '%s' (moved to another node): %s", id,
			 err ? err->msg : "?");
	free(id);
}

static void forget_now(struct cluster *c, const char *id);

/* A job about one actor, on the cluster's threads. */
struct id_job {
	struct cluster *c;
	char id[37];
};

static struct id_job *id_job_new(struct cluster *c, const char *id)
{
	struct id_job *j = calloc(1, sizeof(*j));
	if (j) {
		j->c = c;
		snprintf(j->id, sizeof(j->id), "%s", id);
	}
	return j;
}

/* Submits fn(job) for the actor; 0, or -1 when it could not be queued. */
static int id_job_submit(struct cluster *c, const char *id, void (*fn)(void *arg))
{
	struct id_job *j = id_job_new(c, id);
	if (!j)
		return -1;
	if (cluster_submit(c, fn, j)) {
		free(j);
		return -1;
	}
	return 0;
}

/* ---- healing the stream from an old copy ----
 *
 * NATS can lose acknowledged messages (docs/cluster.md, Failure modes: a
 * leader elected while behind), and then the node an actor moved to cannot
 * rebuild it: it retries every second and the actor answers 503. When the node
 * it moved from comes back, its own chain still holds those events. It
 * publishes the ones the stream lacks again, only when that cannot fork the
 * actor: every event the stream holds of it is this copy's (same seq, same
 * hash), none is past this copy's end, and the stream lacks one before its own
 * last event or holds none at all, which are exactly the cases where the new
 * owner's rebuild fails (a gap, or "no event"), so it never ran the actor. A
 * stream that lacks only this copy's tail is left alone and logged: the new
 * owner may already run the actor from the stream's end. */

struct heal_job {
	struct cluster *c;
	char id[37];
	uint64_t head;                /* this copy's last event before it was stopped */
	int tries;                    /* reads of the stream that failed so far */
};

/* A heal whose reading of the stream failed (a leader being elected, NATS
 * slow) tries again every second for this many tries: given up, the events
 * the stream lost would stay lost although this node holds them. */
#define HEAL_TRIES 30

/* Whether this node's event seq of id (at most its copy's last) has the hash
 * (hex): 1 or 0; -1 (logged: the heal gives up) when it cannot be read. */
static int ours_at(struct cluster *c, const char *id, uint64_t seq, const char *hash)
{
	struct chain_event ev = {0};
	int64_t ts = 0;
	struct err e = {0};
	if (supervisor_read_event(c->sup, id, seq, &ev, &ts, &e)) {
		log_warn("cluster", "cannot compare '%s' with the stream: this node's event %llu "
			 "of it cannot be read (%s): nothing published again", id,
			 (unsigned long long)seq, e.msg);
		return -1;
	}
	char mine[65];
	hex_encode(ev.hash, 32, mine);
	chain_event_release(&ev);
	return strcmp(mine, hash) == 0;
}

/* The comparison; returns how many events to publish again (0: nothing to do,
 * or not safe) and fills missing[seq] for them. *ours: every event the stream
 * holds of it is this copy's and none is past its end. */
static uint64_t heal_plan(struct cluster *c, const struct heal_job *h, const struct rebuild *rb,
			  unsigned char *missing, int *ours)
{
	uint64_t last = 0, n = 0;
	*ours = 0;
	for (size_t i = 0; i < rb->n; i++) {
		const struct rebuild_ev *e = &rb->ev[i];
		if (e->seq > h->head) {
			log_info("cluster", "the stream holds event %llu of '%s', past this node's "
				 "copy (%llu): nothing published again", (unsigned long long)e->seq,
				 h->id, (unsigned long long)h->head);
			return 0;
		}
		int mine = ours_at(c, h->id, e->seq, e->hash);
		if (mine < 0)
			return 0;
		if (!mine) {
			log_info("cluster", "event %llu of '%s' in the stream is another copy's: "
				 "nothing published again", (unsigned long long)e->seq, h->id);
			return 0;
		}
		missing[e->seq] = 2;          /* held */
		if (e->seq > last)
			last = e->seq;
	}
	*ours = 1;
	uint64_t first_gap = 0;
	for (uint64_t seq = 1; seq <= h->head; seq++)
		if (missing[seq] != 2) {
			missing[seq] = 1;
			n++;
			if (!first_gap)
				first_gap = seq;
		} else {
			missing[seq] = 0;
		}
	if (n && last && first_gap > last) {
		log_warn("cluster", "events %llu to %llu of '%s' are in this node's chain but not in "
			 "the stream, which ends at event %llu: the node it moved to may already "
			 "run it from there, so they are not published again",
			 (unsigned long long)first_gap, (unsigned long long)h->head, h->id,
			 (unsigned long long)last);
		memset(missing, 0, h->head + 1);   /* none of them: blobs only */
		return 0;
	}
	return n;
}

/* One look at the stream's last event of the actor before reading them all: the
 * usual return (the new owner rebuilt and runs the actor, and wrote an event of
 * its own past this copy's last, or at its seq: each node's recovery records
 * one) needs no more. 1: read the whole chain; -1 (err): the stream could not
 * be read, try again later. */
static int heal_worth_reading(struct cluster *c, const struct heal_job *h, struct err *err)
{
	uint8_t *data = NULL;
	size_t len = 0;
	char subject[96];
	chain_subject(h->id, subject, sizeof(subject));
	if (__atomic_load_n(&c->test_heal_read_fails, __ATOMIC_RELAXED) > 0 &&
	    __atomic_sub_fetch(&c->test_heal_read_fails, 1, __ATOMIC_RELAXED) >= 0) {
		err_set(err, ERR_UNAVAILABLE, "THEATER_TEST_HEAL_READ_FAILS");
		return -1;
	}
	int got = bus_stream_last(c->bus, CHAIN_STREAM, subject, &data, &len, err);
	if (got <= 0) {
		free(data);
		return got == 0 ? 1 : -1;   /* none at all: lost; unreadable: not now */
	}
	const uint8_t *body = NULL;
	size_t blen = 0;
	json_t *head = cluster_unwrap(data, len, &body, &blen);
	uint64_t seq = (uint64_t)json_integer_value(json_object_get(head, "seq"));
	const char *hash = json_string_value(json_object_get(head, "hash"));
	/* the stream ends inside our chain */
	int mine = seq && seq <= h->head && hash ? ours_at(c, h->id, seq, hash) : 0;
	int worth = mine == 1;
	if (!worth && mine >= 0)
		log_info("cluster", "the stream's last event of '%s' is event %llu of another copy "
			 "(this node's ends at %llu): nothing published again", h->id,
			 (unsigned long long)seq, (unsigned long long)h->head);
	json_decref(head);
	free(data);
	return worth;
}

/* Blobs: a blob the chain names (a package, a large state or body, an actor's
 * own store) that the stream lost makes the new owner's rebuild fail too.
 * Blobs are named by their digest, so publishing one again cannot fork
 * anything: every one the stream lacks and the content store here has is. */
struct heal_blobs {
	struct cluster *c;
	const char *id;
	int64_t again;
	uint64_t n;
};

static void heal_blob(void *user, const char *store_id, const char *sha256)
{
	struct heal_blobs *hb = user;
	struct err e = {0};
	int got = blob_publish_missing(hb->c, store_id, sha256, hb->again, &e);
	if (got < 0)
		log_warn("cluster", "blob %s/%s of '%s' is not in the stream and cannot be "
			 "published again from here: %s", store_id, sha256, hb->id, e.msg);
	else
		hb->n += (uint64_t)got;
}

static void heal_blobs(struct cluster *c, const struct heal_job *h, struct heal_blobs *hb)
{
	for (uint64_t seq = 1; seq <= h->head; seq++) {
		struct chain_event ev = {0};
		int64_t ts = 0;
		struct err e = {0};
		if (supervisor_read_event(c->sup, h->id, seq, &ev, &ts, &e))
			break;
		blob_each_ref(ev.data, ev.data_len, heal_blob, hb);
		blob_each_actor_ref(ev.event_type, ev.data, ev.data_len, heal_blob, hb, NULL);
		if (strcmp(ev.event_type, "spawned") == 0) {
			char package[65];
			spawned_package(ev.data, ev.data_len, package);
			if (sha256_hex_valid(package))
				heal_blob(hb, DURABLE_PACKAGES_STORE, package);
		}
		chain_event_release(&ev);
	}
}

static void job_heal(void *arg)
{
	struct heal_job *h = arg;
	struct cluster *c = h->c;
	struct rebuild rb = {0};
	unsigned char *missing = NULL;
	struct err e = {0};
	if (cluster_is_deleting(c, h->id) || h->head == 0 || h->head > ((uint64_t)1 << 32))
		goto done;
	int worth = heal_worth_reading(c, h, &e);
	if (worth < 0 || (worth && rebuild_read(c, h->id, &rb, &e))) {
		rebuild_free(&rb);
		if (++h->tries < HEAL_TRIES && !cluster_leaving(c)) {
			if (h->tries == 1)
				log_warn("cluster", "cannot compare '%s' with the stream (%s): trying "
					 "again every second", h->id, e.msg);
			if (cluster_submit_after(c, 1000, job_heal, h) == ERR_OK)
				return;
		}
		log_error("cluster", "cannot compare '%s' with the stream after %d tries (%s): "
			  "events the stream lost of it, if any, are not published again", h->id,
			  h->tries, e.msg);
		goto done;
	}
	if (!worth)
		goto done;
	if (!(missing = calloc(h->head + 1, 1)))
		goto done;
	int ours = 0;
	uint64_t n = heal_plan(c, h, &rb, missing, &ours);
	uint64_t upto = bus_stream_published(c->bus), done_n = 0;
	int64_t again = cluster_unix_ms();
	struct heal_blobs hb = {c, h->id, again, 0};
	if (ours)
		heal_blobs(c, h, &hb);
	if (!n && !hb.n)
		goto done;
	for (uint64_t seq = 1; n && seq <= h->head; seq++) {
		if (!missing[seq])
			continue;
		struct chain_event ev = {0};
		int64_t ts = 0;
		if (supervisor_read_event(c->sup, h->id, seq, &ev, &ts, &e))
			break;
		struct supervisor_event sev = {
			.actor_id = h->id, .seq = ev.seq, .hash = ev.hash,
			.parent_hash = ev.parent_hash, .event_type = ev.event_type,
			.data = ev.data, .data_len = ev.data_len, .timestamp = ts,
		};
		publish_event(c, &sev, 0, again);
		chain_event_release(&ev);
		done_n++;
	}
	if (bus_stream_wait_after(c->bus, upto, 10000, &e)) {
		log_error("cluster", "publishing %llu events and %llu blobs of '%s' again did not "
			  "finish: %s", (unsigned long long)done_n, (unsigned long long)hb.n, h->id,
			  e.msg);
		goto done;
	}
	__atomic_add_fetch(&c->stat_healed, done_n + hb.n, __ATOMIC_RELAXED);
	log_warn("cluster", "the stream had lost %llu of the %llu events of '%s' that this "
		 "node's chain holds, and %llu blobs they name (it moved away while this node "
		 "was down): published them again, so the node it is placed on can rebuild it",
		 (unsigned long long)done_n, (unsigned long long)h->head, h->id,
		 (unsigned long long)hb.n);
done:
	rebuild_free(&rb);
	free(missing);
	free(h);
}

/* Before the copy here of an actor that moved is stopped: its last event. */
static void heal_later(struct cluster *c, const char *id, uint64_t head)
{
	struct heal_job *h = calloc(1, sizeof(*h));
	if (!h)
		return;
	h->c = c;
	h->head = head;
	snprintf(h->id, sizeof(h->id), "%s", id);
	if (cluster_submit(c, job_heal, h))
		free(h);
}

/* Reads the actor's placement from the bucket's leader and kills the copy here
 * when it moved, forgets it when it was deleted. check: the watch said "here",
 * quiet when the bucket agrees. -1 when the bucket could not be read (after
 * 10 s of tries). */
static int fence_check(struct cluster *c, const char *id, int check)
{
	struct db_run r = {0};
	struct err e = {0};
	char owner[CLUSTER_NODE_MAX] = "";
	int deleted = 0;
	/* the bucket itself (its leader) decides, not the watch that asked */
	enum err_code rc = ERR_UNAVAILABLE;
	for (int tries = 0; tries < 20; tries++) {
		if (tries)
			cluster_sleep_ms(500);
		memset(&e, 0, sizeof(e));
		if ((rc = cluster_locate_ex(c, id, owner, &deleted, &e)) != ERR_UNAVAILABLE &&
		    rc != ERR_TIMEOUT)
			break;
	}
	if (deleted) {
		forget_now(c, id);
		return 0;
	}
	if (rc) {
		log_warn("cluster", "cannot read the placement of '%s' to fence it: %s", id,
			 e.msg);
		return -1;
	}
	if (strcmp(owner, c->node) == 0) {
		if (!check)
			log_warn("cluster", "the bucket still places '%s' here: the watch was wrong, "
				 "the copy here keeps running", id);
		return 0;
	}
	if (supervisor_get(c->sup, id, &r, &e) == ERR_OK &&
	    (strcmp(r.status, "running") == 0 || strcmp(r.status, "starting") == 0)) {
		log_warn("cluster", "'%s' was taken over by node '%s': killing the copy here",
			 id, owner);
		heal_later(c, id, r.head_seq);
		fence_stop(c, id);
	}
	db_run_release(&r);
	return 0;
}

static void job_fence(void *arg)
{
	struct id_job *j = arg;
	fence_check(j->c, j->id, 0);
	free(j);
}

void replica_fence(struct cluster *c, const char *actor_id, const char *owner)
{
	(void)owner;
	id_job_submit(c, actor_id, job_fence);
}

/* ---- deleting ---- */

/* Purges the chain subject; a publish of the old copy still in flight when
 * the purge ran can land after it, so the stream is asked again (a few
 * times). 0 when the subject is empty. */
static int purge_chain(struct cluster *c, const char *id, struct err *err)
{
	char subject[96];
	chain_subject(id, subject, sizeof(subject));
	for (int tries = 0; tries < 3; tries++) {
		if (tries)
			cluster_sleep_ms(1000);
		if (bus_stream_purge_subject(c->bus, CHAIN_STREAM, subject, err))
			return -1;
		int has = bus_stream_has(c->bus, CHAIN_STREAM, subject, err);
		if (has <= 0)
			return has;
	}
	err_set(err, ERR_CONFLICT, "events of '%s' keep coming into the stream", id);
	return -1;
}

static void job_purge(void *arg)
{
	struct id_job *j = arg;
	struct err e = {0};
	if (purge_chain(j->c, j->id, &e))
		log_warn("cluster", "the chain of deleted actor '%s' is not purged from the "
			 "stream (%s): purged again when its tombstone is removed", j->id, e.msg);
	else
		log_info("cluster", "deleted actor '%s': its chain is purged from the stream",
			 j->id);
	cluster_deleting_remove(j->c, j->id);
	free(j);
}

void replica_purge_later(struct cluster *c, const char *actor_id)
{
	if (id_job_submit(c, actor_id, job_purge)) {
		log_warn("cluster", "the chain of deleted actor '%s' is not purged from the stream "
			 "now: purged when its tombstone is removed", actor_id);
		cluster_deleting_remove(c, actor_id);
	}
}

static void forgotten(void *user, enum err_code rc, const struct err *err)
{
	struct id_job *j = user;
	if (rc && rc != ERR_NOT_FOUND)
		log_warn("cluster", "cannot delete the copy here of '%s' (deleted from the "
			 "cluster): %s", j->id, err ? err->msg : "?");
	else if (!rc)
		log_info("cluster", "'%s' was deleted from the cluster: the copy here is deleted "
			 "too", j->id);
	replica_purge_later(j->c, j->id);
	free(j);
}

/* On a pool thread: the bucket's leader confirms the tombstone, then the copy
 * here is deleted (killed first), its events never published. */
static void forget_now(struct cluster *c, const char *id)
{
	char owner[CLUSTER_NODE_MAX];
	struct err e = {0};
	int deleted = 0;
	enum err_code rc = cluster_locate_ex(c, id, owner, &deleted, &e);
	if (!deleted) {
		if (rc != ERR_NOT_FOUND)
			log_warn("cluster", "a tombstone of '%s' was seen, but the bucket does not "
				 "confirm it (%s): the copy here stays", id,
				 rc ? e.msg : "it places it");
		return;
	}
	if (cluster_is_deleting(c, id))
		return;                  /* being deleted already */
	struct id_job *j = id_job_new(c, id);
	if (!j)
		return;
	cluster_deleting_add(c, id);
	supervisor_delete(c->sup, id, 1, forgotten, j);
}

static void job_forget(void *arg)
{
	struct id_job *j = arg;
	forget_now(j->c, j->id);
	free(j);
}

void replica_forget(struct cluster *c, const char *actor_id)
{
	id_job_submit(c, actor_id, job_forget);
}

static void job_sweep(void *arg)
{
	struct id_job *j = arg;
	struct err e = {0};
	if (purge_chain(j->c, j->id, &e))
		log_warn("cluster", "the tombstone of '%s' stays: its chain cannot be purged from "
			 "the stream: %s", j->id, e.msg);
	else if (bus_kv_forget(j->c->place_kv, j->id, &e))
		log_warn("cluster", "the tombstone of '%s' is not removed: %s", j->id, e.msg);
	else
		log_info("cluster", "the tombstone of deleted actor '%s' is removed (older than "
			 "%lld s)", j->id, (long long)(j->c->tombstone_age_ms / 1000));
	free(j);
}

void replica_sweep_later(struct cluster *c, const char *actor_id)
{
	id_job_submit(c, actor_id, job_sweep);
}

static void stopped_unplaced(void *user, enum err_code rc, const struct err *err)
{
	struct id_job *j = user;
	if (rc && rc != ERR_CONFLICT)
		log_warn("cluster", "cannot stop '%s': %s", j->id, err ? err->msg : "?");
	cluster_deleting_remove(j->c, j->id);
	free(j);
}

/* A run here that the bucket does not know (no placement) and that changed
 * last longer ago than a tombstone lives: when the stream holds no event of
 * it either, it may be an actor deleted while this node was away whose
 * tombstone was removed since. It is stopped, not placed and run (a restart
 * asked through the API runs it). 1 when so. */
static int tombstone_expired(struct cluster *c, const struct db_run *r)
{
	if (cluster_unix_ms() - r->updated_at < c->tombstone_age_ms)
		return 0;
	uint8_t *data = NULL;
	size_t len = 0;
	struct err e = {0};
	enum err_code rc = bus_kv_get(c->place_kv, r->id, &data, &len, NULL, &e);
	free(data);
	if (rc != ERR_NOT_FOUND)
		return 0;                /* placed (or a tombstone): cluster_place decides */
	char subject[96];
	chain_subject(r->id, subject, sizeof(subject));
	if (bus_stream_has(c->bus, CHAIN_STREAM, subject, &e) != 0)
		return 0;
	log_warn("cluster", "'%s' last changed here %lld s ago and the cluster knows nothing "
		 "of it (no placement, no event in the stream): it may have been deleted while "
		 "this node was away, so it is stopped, not run", r->id,
		 (long long)((cluster_unix_ms() - r->updated_at) / 1000));
	struct id_job *j = id_job_new(c, r->id);
	if (!j)
		return 1;
	cluster_deleting_add(c, r->id);   /* its `killed` event stays here */
	supervisor_stop(c->sup, r->id, 1, stopped_unplaced, j);
	return 1;
}

/* The runs the watch places here, confirmed with the leader by one job. */
struct fence_list {
	struct cluster *c;
	char (*id)[37];
	size_t n, cap;
};

static void job_fence_list(void *arg)
{
	struct fence_list *l = arg;
	for (size_t i = 0; i < l->n; i++) {
		if (cluster_stopping(l->c))
			break;
		if (fence_check(l->c, l->id[i], 1)) {
			/* 10 s of failed reads: the rest would wait as long each */
			log_warn("cluster", "the placement bucket cannot be read: %zu runs here are "
				 "not confirmed with it (writes to them are, one by one)",
				 l->n - i - 1);
			break;
		}
	}
	free(l->id);
	free(l);
}

static void fence_list_add(struct fence_list *l, const char *id)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		char (*v)[37] = realloc(l->id, cap * sizeof(*v));
		if (!v)
			return;      /* out of memory: the fence on acknowledgement still holds */
		l->id = v;
		l->cap = cap;
	}
	snprintf(l->id[l->n++], 37, "%s", id);
}

static int fence_one(void *user, const struct db_run *r)
{
	struct fence_list *l = user;
	struct cluster *c = l->c;
	char owner[CLUSTER_NODE_MAX];
	if (strcmp(r->status, "running") != 0 && strcmp(r->status, "starting") != 0)
		return 0;
	int known = cluster_lookup(c, r->id, owner) && c->test_stale_watch != WATCH_BLIND;
	if (!known) {
		struct err e = {0};
		if (tombstone_expired(c, r))
			return 0;
		enum err_code rc = cluster_place(c, r->id, &e);  /* ran here, never placed: ours */
		if (rc == ERR_NOT_FOUND) {
			log_warn("cluster", "'%s' was deleted from the cluster while this node was "
				 "away: deleting the copy recovered here", r->id);
			replica_forget(c, r->id);
		} else if (rc == ERR_CONFLICT) {
			/* our watch lacks the key (it reads one replica, which may be
			 * behind its leader: a NATS server that came back empty), but
			 * the bucket has it: the fence asks the leader, and kills the
			 * copy when it runs elsewhere (the watch will not: it never
			 * placed it here) */
			log_warn("cluster", "cannot place '%s' (%s): checking with the bucket whether "
				 "the copy recovered here moved", r->id, e.msg);
			replica_fence(c, r->id, "");
		} else if (rc) {
			log_warn("cluster", "cannot place '%s': %s", r->id, e.msg);
		}
		return 0;
	}
	if (c->test_stale_watch == WATCH_ALL_HERE)
		snprintf(owner, sizeof(owner), "%s", c->node);
	if (strcmp(owner, c->node) == 0) {
		/* The watch reads one replica of the bucket, which may be behind its
		 * leader (a NATS server that came back with this node): the leader
		 * decides, in one job on the cluster's threads, so neither the start
		 * nor forwarded requests wait one read per run. Writes to the copy
		 * are fenced meanwhile (on_confirm). */
		fence_list_add(l, r->id);
		return 0;
	}
	/* our copy of the placement comes from the watch: the bucket itself
	 * decides (a replica the watch reads may disagree with its leader) */
	struct err le = {0};
	if (cluster_locate(c, r->id, owner, &le)) {
		log_warn("cluster", "cannot read the placement of '%s' (its copy here is killed "
			 "when the watch says it moved): %s", r->id, le.msg);
		replica_fence(c, r->id, owner);
		return 0;
	}
	if (strcmp(owner, c->node) == 0)
		return 0;
	/* its local chain's end, against the new owner's "events from the
	 * stream": what this node synced but never acknowledged may differ */
	log_warn("cluster", "'%s' moved to node '%s' while this node was away: killing the copy "
		 "recovered here (its chain here ends at event %llu)", r->id, owner,
		 (unsigned long long)r->head_seq);
	heal_later(c, r->id, r->head_seq);
	fence_stop(c, r->id);
	return 0;
}

static void fence_moved(struct cluster *c)
{
	char *cursor = NULL;
	struct err e = {0};
	struct fence_list *l = calloc(1, sizeof(*l));
	if (!l) {
		log_error("cluster", "cannot fence the runs recovered here: out of memory");
		return;
	}
	l->c = c;
	do {
		struct db_run_filter f = {.limit = 500, .cursor = cursor};
		char *next = NULL;
		enum err_code rc = db_run_list(supervisor_db(c->sup), &f, fence_one, l, &next, &e);
		free(cursor);
		cursor = rc ? NULL : next;
		if (rc)
			log_error("cluster", "cannot list the runs to fence: %s", e.msg);
	} while (cursor);
	if (!l->n || cluster_submit(c, job_fence_list, l)) {
		free(l->id);
		free(l);
	}
}

/* ---- start and stop ---- */

enum err_code replica_start(struct cluster *c, struct err *err)
{
	enum err_code rc = bus_stream_ensure(c->bus, CHAIN_STREAM, "theater.stream.>", c->replicas, err);
	if (rc)
		return rc;
	pthread_mutex_lock(&c->lock);
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	while (!c->place_ready &&
	       pthread_cond_timedwait(&c->wake, &c->lock, &until) == 0)
		;
	int ready = c->place_ready;
	pthread_mutex_unlock(&c->lock);
	if (!ready)
		return err_set(err, ERR_UNAVAILABLE, "the placement bucket did not load in 10 s");
	fence_moved(c);
	struct supervisor_replica r = {.publish = on_publish, .wait = on_wait,
				       .confirm = on_confirm, .user = c};
	supervisor_set_replica(c->sup, &r);
	return ERR_OK;
}

void replica_stop(struct cluster *c)
{
	supervisor_set_replica(c->sup, NULL);
}
