/* cluster.c - membership, placement and forwarding of a theater node in a NATS
 * cluster (see cluster.h and docs/cluster.md).
 *
 * Membership: a heartbeat thread puts this node's {url, load, time} into the
 * `theater_nodes` bucket every heartbeat_ms; a watch on that bucket keeps a
 * table of every node and when its last beat arrived (local monotonic time,
 * so clocks need not agree). A node is up while its last beat is younger than
 * its lapse, which each node names in its beats (--cluster-lapse-ms): every
 * node judges a node by that node's own lapse, the one it suspects itself by.
 * The heartbeat thread does nothing slow: failover (takeovers and their
 * rebuilds, the checks after our own beats failed) has a thread of its own.
 *
 * Placement: `theater_placement` maps actor id -> {node}. A watch keeps a
 * copy in memory for cluster_lookup; cluster_locate asks the bucket itself
 * when the copy has not caught up yet. Writes are compare-and-set (create, or
 * update at the revision read), the only way ownership ever changes. A
 * deleted actor's value is a tombstone ({"deleted": true}), never a plain key
 * delete (which would read as "never placed"): nothing is written after it,
 * and the memory copy drops the actor.
 *
 * Forwarding: a request for another node travels as one NATS request on
 * `theater.node.<node>.http`: a JSON line {m, p, h, t} then the body; the
 * answer is a JSON line {s, h} then the body. The serving node replays it
 * against its own API over loopback with its own token and the header
 * X-Theater-Forwarded (so it is never forwarded again), which keeps one code
 * path for every route: the same statuses, headers and bodies as locally. */
#include "cluster/cluster_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cluster/bus.h"
#include "src/fetch.h"
#include "src/util/crypto.h"
#include "src/util/deadline.h"
#include "src/util/log.h"
#include "supervisor/pool.h"

int64_t cluster_mono_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

void cluster_sleep_ms(int64_t ms)
{
	struct timespec nap = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&nap, NULL);
}

int64_t cluster_unix_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

const char *cluster_node(const struct cluster *c)
{
	return c->node;
}

/* ---- nodes ---- */

struct node_row *cluster_node_row_locked(struct cluster *c, const char *name)
{
	for (size_t i = 0; i < c->nnodes; i++)
		if (strcmp(c->nodes[i].name, name) == 0)
			return &c->nodes[i];
	return NULL;
}

unsigned cluster_beat_lapse(const json_t *beat)
{
	json_int_t ms = json_integer_value(json_object_get(beat, "lapse"));
	return ms >= 1000 && ms <= 3600000 ? (unsigned)ms : LAPSE_DEFAULT_MS;
}

static void on_node(void *user, const char *key, const uint8_t *data, size_t len, uint64_t rev,
		    int deleted)
{
	(void)rev;
	struct cluster *c = user;
	if (!key)
		return;
	struct err e = {0};
	json_t *v = deleted ? NULL : json_parse((const char *)data, len, 8, &e);
	pthread_mutex_lock(&c->lock);
	struct node_row *n = cluster_node_row_locked(c, key);
	if (!n && c->nnodes < MAX_NODES && strlen(key) < CLUSTER_NODE_MAX) {
		n = &c->nodes[c->nnodes++];
		memset(n, 0, sizeof(*n));
		snprintf(n->name, sizeof(n->name), "%s", key);
	}
	if (n && v) {
		const char *url = json_string_value(json_object_get(v, "url"));
		snprintf(n->url, sizeof(n->url), "%s", url ? url : "");
		n->load = (uint64_t)json_integer_value(json_object_get(v, "load"));
		n->time_ms = (int64_t)json_integer_value(json_object_get(v, "time"));
		n->lapse_ms = cluster_beat_lapse(v);
		n->placed = 0;           /* its load counts them now */
		/* A beat older than the lapse (replayed by the watch at start) does
		 * not make a dead node look alive. */
		int64_t age = cluster_unix_ms() - n->time_ms;
		n->seen_ms = cluster_mono_ms() - (age > 0 ? age : 0);
	} else if (n) {
		n->seen_ms = 0;
	}
	pthread_mutex_unlock(&c->lock);
	json_decref(v);
}

static int node_up_locked(struct cluster *c, const struct node_row *n)
{
	if (strcmp(n->name, c->node) == 0)
		return 1;
	return n->seen_ms && cluster_mono_ms() - n->seen_ms < (int64_t)n->lapse_ms;
}

int cluster_node_url(struct cluster *c, const char *node, char *buf, size_t size)
{
	pthread_mutex_lock(&c->lock);
	struct node_row *n = cluster_node_row_locked(c, node);
	int ok = n && n->url[0];
	if (ok)
		snprintf(buf, size, "%s", n->url);
	pthread_mutex_unlock(&c->lock);
	return ok;
}

int cluster_node_up(struct cluster *c, const char *node)
{
	pthread_mutex_lock(&c->lock);
	struct node_row *n = cluster_node_row_locked(c, node);
	int up = n && node_up_locked(c, n);
	pthread_mutex_unlock(&c->lock);
	return up || strcmp(node, c->node) == 0;
}

size_t cluster_nodes_up(struct cluster *c, char (*names)[CLUSTER_NODE_MAX], size_t max)
{
	size_t k = 0;
	if (max)
		snprintf(names[k++], CLUSTER_NODE_MAX, "%s", c->node);
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->nnodes && k < max; i++)
		if (strcmp(c->nodes[i].name, c->node) != 0 && node_up_locked(c, &c->nodes[i]))
			snprintf(names[k++], CLUSTER_NODE_MAX, "%s", c->nodes[i].name);
	pthread_mutex_unlock(&c->lock);
	return k;
}

int cluster_leaving(struct cluster *c)
{
	return __atomic_load_n(&c->leaving, __ATOMIC_ACQUIRE) || cluster_stopping(c);
}

int cluster_stopping(struct cluster *c)
{
	pthread_mutex_lock(&c->lock);
	int stop = c->stopping;
	pthread_mutex_unlock(&c->lock);
	return stop;
}

size_t cluster_nodes_down(struct cluster *c)
{
	size_t k = 0;
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->nnodes; i++)
		k += strcmp(c->nodes[i].name, c->node) != 0 && !node_up_locked(c, &c->nodes[i]);
	pthread_mutex_unlock(&c->lock);
	return k;
}

int cluster_moves_pending(struct cluster *c)
{
	int pending = 0;
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->nnodes && !pending; i++) {
		const struct node_row *n = &c->nodes[i];
		if (node_up_locked(c, n))
			continue;
		for (size_t b = 0; b < PLACE_BUCKETS && !pending; b++)
			for (const struct place *p = c->places[b]; p && !pending; p = p->next)
				pending = strcmp(p->node, n->name) == 0;
	}
	pthread_mutex_unlock(&c->lock);
	return pending;
}

void cluster_least_loaded(struct cluster *c, char node_out[CLUSTER_NODE_MAX])
{
	uint64_t best = supervisor_live_count(c->sup);
	struct node_row *pick = NULL;
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->nnodes; i++) {
		struct node_row *n = &c->nodes[i];
		if (strcmp(n->name, c->node) != 0 && node_up_locked(c, n) &&
		    n->load + n->placed < best) {
			best = n->load + n->placed;
			pick = n;
		}
	}
	if (pick)
		pick->placed++;
	snprintf(node_out, CLUSTER_NODE_MAX, "%s", pick ? pick->name : c->node);
	pthread_mutex_unlock(&c->lock);
}

static json_t *time_json(int64_t ms)
{
	if (ms <= 0)
		return json_null();
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&s, &tm);
	char buf[80];
	snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
	return json_string(buf);
}

json_t *cluster_json(struct cluster *c)
{
	json_t *nodes = json_array();
	int64_t now = cluster_mono_ms();
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->nnodes; i++) {
		struct node_row *n = &c->nodes[i];
		json_t *o = json_object();
		json_object_set_new(o, "node", json_string(n->name));
		json_object_set_new(o, "url", json_string(n->url));
		json_object_set_new(o, "status", json_string(node_up_locked(c, n) ? "up" : "down"));
		json_object_set_new(o, "load", json_integer((json_int_t)n->load));
		json_object_set_new(o, "lapse_ms", json_integer((json_int_t)(
			strcmp(n->name, c->node) == 0 ? c->lapse_ms : n->lapse_ms)));
		json_object_set_new(o, "heartbeat_at", time_json(n->time_ms));
		json_object_set_new(o, "heartbeat_age_ms",
				    n->seen_ms ? json_integer(now - n->seen_ms) : json_null());
		json_object_set_new(o, "self", json_boolean(strcmp(n->name, c->node) == 0));
		json_array_append_new(nodes, o);
	}
	pthread_mutex_unlock(&c->lock);
	char server[256];
	bus_server(c->bus, server, sizeof(server));
	struct cluster_stats st;
	cluster_stats(c, &st);
	return json_pack("{s:b, s:s, s:o, s:I, s:{s:b, s:s, s:i}, s:s?, s:{s:I, s:I, s:I, s:I, "
			 "s:I, s:i}}", "enabled", 1, "node", c->node, "nodes", nodes, "placements",
			 (json_int_t)st.placements, "nats", "connected", st.nats_connected, "server",
			 server, "replicas", (int)c->replicas, "writes_refused", st.writes_refused,
			 "stats",
			 "takeovers", (json_int_t)st.takeovers, "rebuild_failures",
			 (json_int_t)st.rebuild_failures, "unreplicated", (json_int_t)st.unreplicated,
			 "fenced", (json_int_t)st.fenced, "healed", (json_int_t)st.healed,
			 "relayed_streams", (int)st.relayed_streams);
}

void cluster_stats(struct cluster *c, struct cluster_stats *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->nnodes; i++) {
		if (node_up_locked(c, &c->nodes[i]))
			out->nodes_up++;
		else
			out->nodes_down++;
	}
	out->placements = c->nplaces;
	pthread_mutex_unlock(&c->lock);
	out->nats_connected = bus_connected(c->bus) != 0;
	out->writes_refused = cluster_unwritable(c);
	out->takeovers = __atomic_load_n(&c->stat_takeovers, __ATOMIC_RELAXED);
	out->rebuild_failures = __atomic_load_n(&c->stat_rebuild_failures, __ATOMIC_RELAXED);
	out->unreplicated = __atomic_load_n(&c->stat_unreplicated, __ATOMIC_RELAXED);
	out->fenced = __atomic_load_n(&c->stat_fenced, __ATOMIC_RELAXED);
	out->healed = __atomic_load_n(&c->stat_healed, __ATOMIC_RELAXED);
	int relays = __atomic_load_n(&c->relays_out, __ATOMIC_RELAXED);
	out->relayed_streams = relays > 0 ? (unsigned)relays : 0;
}

static void beat_once(struct cluster *c)
{
	uint64_t load = supervisor_live_count(c->sup);
	json_t *v = json_pack("{s:s, s:I, s:I, s:I}", "url", c->advertise_url, "load",
			      (json_int_t)load, "time", (json_int_t)cluster_unix_ms(), "lapse",
			      (json_int_t)c->lapse_ms);
	char *text = v ? json_compact(v) : NULL;
	json_decref(v);
	struct err e = {0};
	int ok;
	if (c->test_beat_fail_file && access(c->test_beat_fail_file, F_OK) == 0)
		ok = !err_set(&e, ERR_UNAVAILABLE, "THEATER_TEST_BEAT_FAIL_FILE exists");
	else
		ok = text && bus_kv_put(c->nodes_kv, c->node, text, strlen(text), NULL, &e) == ERR_OK;
	if (!ok)
		log_warn("cluster", "heartbeat not written: %s", text ? e.msg : "out of memory");
	free(text);
	/* While our own beats fail, the others' silence proves nothing: failover
	 * counts lapses only from when ours succeed again (replica.c). */
	int64_t now = cluster_mono_ms();
	pthread_mutex_lock(&c->lock);
	if (!ok) {
		__atomic_store_n(&c->beat_ok_since_ms, 0, __ATOMIC_RELEASE);
		if (!c->beat_failing_since_ms)
			c->beat_failing_since_ms = now;
		/* the others claim our actors once our last beat is a lapse old:
		 * stop acknowledging well before */
		if (now - c->beat_failing_since_ms >= (int64_t)c->lapse_ms / 2 &&
		    !__atomic_exchange_n(&c->suspect, 1, __ATOMIC_ACQ_REL))
			log_warn("cluster", "heartbeats fail for %lld ms: no write is acknowledged "
				 "until the placement of every actor here is read again",
				 (long long)(now - c->beat_failing_since_ms));
	} else {
		c->beat_failing_since_ms = 0;
		if (!__atomic_load_n(&c->beat_ok_since_ms, __ATOMIC_ACQUIRE))
			__atomic_store_n(&c->beat_ok_since_ms, now, __ATOMIC_RELEASE);
		/* writes wait for the check of every actor here: start it now,
		 * not at the failover thread's next round */
		if (__atomic_load_n(&c->suspect, __ATOMIC_ACQUIRE)) {
			c->failover_soon = 1;
			pthread_cond_broadcast(&c->wake);
		}
	}
	pthread_mutex_unlock(&c->lock);
}

/* Threads of a failover round: each takeover waits on NATS most of its time. */
#define FAILOVER_THREADS 8

/* c->lock held: waits a heartbeat period, or until the node stops. */
static void tick_wait_locked(struct cluster *c, unsigned ms, int *early)
{
	struct timespec until = deadline_after_ms(CLOCK_REALTIME, ms);
	while (!c->stopping && !(early && *early) &&
	       pthread_cond_timedwait(&c->wake, &c->lock, &until) == 0)
		;
	if (early)
		*early = 0;
}

/* round, then a heartbeat period (cut short when *early is set, under c->lock,
 * and c->wake broadcast), until the node stops. */
static void every_beat(struct cluster *c, void (*round)(struct cluster *c), int *early)
{
	pthread_mutex_lock(&c->lock);
	while (!c->stopping) {
		pthread_mutex_unlock(&c->lock);
		round(c);
		pthread_mutex_lock(&c->lock);
		tick_wait_locked(c, c->heartbeat_ms, early);
	}
	pthread_mutex_unlock(&c->lock);
}

static void beat_round(struct cluster *c)
{
	beat_once(c);
	relay_tick(c);
}

static void failover_round(struct cluster *c)
{
	if (c->test_tick_pause_ms) {
		pthread_mutex_lock(&c->lock);
		tick_wait_locked(c, (unsigned)c->test_tick_pause_ms, NULL);
		pthread_mutex_unlock(&c->lock);
	}
	if (!__atomic_load_n(&c->leaving, __ATOMIC_ACQUIRE) && replica_failover_tick(c)) {
		pthread_mutex_lock(&c->lock);
		c->failover_soon = 1;    /* a full round: the rest now, not in a second */
		pthread_mutex_unlock(&c->lock);
	}
}

/* The heartbeat has a thread of its own: a failover round (a read per actor
 * here after our beats failed, a rebuild per actor taken over) may take many
 * seconds, and beats waiting behind it made the other nodes count this one
 * down and take its actors too. */
static void *beat_main(void *arg)
{
	pthread_setname_np(pthread_self(), "cluster-beat");
	every_beat(arg, beat_round, NULL);
	return NULL;
}

static void *tick_main(void *arg)
{
	pthread_setname_np(pthread_self(), "cluster-tick");
	struct cluster *c = arg;
	every_beat(c, failover_round, &c->failover_soon);
	return NULL;
}

/* ---- placement ---- */

static unsigned place_hash(const char *id)
{
	unsigned h = 2166136261u;
	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 16777619u;
	return h % PLACE_BUCKETS;
}

static struct place **place_slot(struct cluster *c, const char *id)
{
	struct place **p = &c->places[place_hash(id)];
	while (*p && strcmp((*p)->id, id) != 0)
		p = &(*p)->next;
	return p;
}

/* Records what the bucket says (a watch event, or our own write). Only a newer
 * revision replaces an older one. */
void cluster_place_note(struct cluster *c, const char *id, const char *node, uint64_t rev,
		       int deleted)
{
	if (strlen(id) != 36)
		return;
	pthread_mutex_lock(&c->lock);
	struct place **slot = place_slot(c, id);
	if (deleted) {
		if (*slot && (*slot)->rev <= rev) {
			struct place *gone = *slot;
			*slot = gone->next;
			free(gone);
			c->nplaces--;
		}
	} else if (!*slot) {
		struct place *p = calloc(1, sizeof(*p));
		if (p) {
			memcpy(p->id, id, 37);
			snprintf(p->node, sizeof(p->node), "%s", node);
			p->rev = rev;
			*slot = p;
			c->nplaces++;
		}
	} else if ((*slot)->rev < rev) {
		snprintf((*slot)->node, sizeof((*slot)->node), "%s", node);
		(*slot)->rev = rev;
	}
	pthread_mutex_unlock(&c->lock);
}

/* Counts a failed rebuild of id (failed 1; returns the count so far), or ends
 * the count (failed 0; returns the failures before). */
unsigned cluster_place_rebuild_failed(struct cluster *c, const char *id, int failed)
{
	unsigned n = 0;
	pthread_mutex_lock(&c->lock);
	struct place *p = *place_slot(c, id);
	if (p) {
		n = failed ? ++p->rebuild_fails : p->rebuild_fails;
		if (!failed)
			p->rebuild_fails = 0;
	}
	pthread_mutex_unlock(&c->lock);
	return n;
}

void cluster_place_set(struct cluster *c, const char *id, const char *node, uint64_t rev)
{
	if (strlen(id) != 36)
		return;
	pthread_mutex_lock(&c->lock);
	struct place **slot = place_slot(c, id);
	if (!*slot) {
		struct place *p = calloc(1, sizeof(*p));
		if (p) {
			memcpy(p->id, id, 37);
			*slot = p;
			c->nplaces++;
		}
	}
	if (*slot) {
		if ((*slot)->rev != rev)
			(*slot)->chain_here = 0;
		snprintf((*slot)->node, sizeof((*slot)->node), "%s", node);
		(*slot)->rev = rev;
	}
	pthread_mutex_unlock(&c->lock);
}

/* A tombstone is final, whatever its revision: nothing is written to the key
 * after it (every placement write is a compare-and-set that reads it first). */
void cluster_place_drop(struct cluster *c, const char *id)
{
	pthread_mutex_lock(&c->lock);
	struct place **slot = place_slot(c, id);
	if (*slot) {
		struct place *gone = *slot;
		*slot = gone->next;
		free(gone);
		c->nplaces--;
	}
	pthread_mutex_unlock(&c->lock);
}

enum place_kind cluster_place_parse(const uint8_t *data, size_t len,
				    char node_out[CLUSTER_NODE_MAX], int64_t *at_out)
{
	struct err e = {0};
	json_t *v = json_parse((const char *)data, len, 8, &e);
	const char *node = json_string_value(json_object_get(v, "node"));
	enum place_kind k = PLACE_BAD;
	if (json_is_true(json_object_get(v, "deleted"))) {
		k = PLACE_DELETED;
		const char *by = json_string_value(json_object_get(v, "by"));
		snprintf(node_out, CLUSTER_NODE_MAX, "%s",
			 by && strlen(by) < CLUSTER_NODE_MAX ? by : "");
		if (at_out)
			*at_out = (int64_t)json_integer_value(json_object_get(v, "at"));
	} else if (node && strlen(node) < CLUSTER_NODE_MAX) {
		k = PLACE_NODE;
		snprintf(node_out, CLUSTER_NODE_MAX, "%s", node);
	}
	json_decref(v);
	return k;
}

int cluster_place_node_of(const uint8_t *data, size_t len, char node_out[CLUSTER_NODE_MAX])
{
	return cluster_place_parse(data, len, node_out, NULL) == PLACE_NODE;
}

/* ---- deleting ---- */

void cluster_deleting_add(struct cluster *c, const char *id)
{
	struct deleting *d = calloc(1, sizeof(*d));
	if (!d)
		return;          /* its events may be published: the purge comes after */
	snprintf(d->id, sizeof(d->id), "%s", id);
	pthread_mutex_lock(&c->lock);
	d->next = c->deleting;
	c->deleting = d;
	pthread_mutex_unlock(&c->lock);
}

void cluster_deleting_remove(struct cluster *c, const char *id)
{
	pthread_mutex_lock(&c->lock);
	for (struct deleting **p = &c->deleting; *p; p = &(*p)->next)
		if (strcmp((*p)->id, id) == 0) {
			struct deleting *gone = *p;
			*p = gone->next;
			free(gone);
			break;
		}
	pthread_mutex_unlock(&c->lock);
}

int cluster_is_deleting(struct cluster *c, const char *id)
{
	int found = 0;
	pthread_mutex_lock(&c->lock);
	for (struct deleting *d = c->deleting; d && !found; d = d->next)
		found = strcmp(d->id, id) == 0;
	pthread_mutex_unlock(&c->lock);
	return found;
}

enum err_code cluster_unplace(struct cluster *c, const char *actor_id, struct err *err)
{
	uint8_t *data = NULL;
	size_t len = 0;
	uint64_t rev = 0;
	char node[CLUSTER_NODE_MAX] = "";
	enum err_code rc = bus_kv_get(c->place_kv, actor_id, &data, &len, &rev, err);
	if (rc && rc != ERR_NOT_FOUND) {
		err_prefix(err, "cannot read the placement of '%s' to delete it", actor_id);
		return rc;
	}
	enum place_kind k = rc ? PLACE_BAD : cluster_place_parse(data, len, node, NULL);
	free(data);
	if (!rc && k == PLACE_BAD)
		return err_set(err, ERR_CORRUPT, "placement of '%s' is not {\"node\": ...}",
			       actor_id);
	if (k == PLACE_NODE && strcmp(node, c->node) != 0) {
		replica_fence(c, actor_id, node);
		return err_set(err, ERR_UNAVAILABLE, "actor '%s' was taken over by node '%s'; this "
			       "node's copy is being stopped: send it again", actor_id, node);
	}
	if (c->test_delete_pause_ms)   /* a restart may come between check and tombstone */
		cluster_sleep_ms(c->test_delete_pause_ms);
	if (k != PLACE_DELETED) {
		char value[160];
		snprintf(value, sizeof(value), "{\"deleted\":true,\"by\":\"%s\",\"at\":%lld}",
			 c->node, (long long)cluster_unix_ms());
		rc = bus_kv_replace(c->place_kv, actor_id, value, strlen(value),
				    k == PLACE_NODE ? rev : 0, NULL, err);
		if (rc == ERR_CONFLICT)
			return err_set(err, ERR_UNAVAILABLE, "the placement of '%s' changed while it "
				       "was being deleted (a takeover?): send it again", actor_id);
		if (rc)
			return rc;
	}
	if (c->test_delete_pause_ms)   /* our watch hears of the tombstone first */
		cluster_sleep_ms(c->test_delete_pause_ms);
	/* from here on no event of it is published, and no node runs it */
	cluster_deleting_add(c, actor_id);
	cluster_place_drop(c, actor_id);
	return ERR_OK;
}

void cluster_deleted(struct cluster *c, const char *actor_id, enum err_code local_rc)
{
	if (local_rc && local_rc != ERR_NOT_FOUND) {
		/* the tombstone stands: the copy here goes all the same */
		log_warn("cluster", "'%s' is deleted in the cluster but its local delete failed: "
			 "deleting the copy here again", actor_id);
		cluster_deleting_remove(c, actor_id);
		replica_forget(c, actor_id);
		return;
	}
	replica_purge_later(c, actor_id);
}

/* THEATER_TEST_PLACEMENT_LAG_MS (tests only): the watch hears this late of a
 * change that concerns this node's own actors, as a watch that lags does. It
 * sleeps on the watch's thread, so every later change waits too. */
/* THEATER_TEST_PLACEMENT_LAG_MS: changes heard late. Not the bucket's first
 * load at start: what it holds then is no change (a new home told of an actor
 * an earlier test left placed on its node name would wait the lag for each). */
static int place_lagging(struct cluster *c)
{
	if (!c->test_place_lag_ms)
		return 0;
	pthread_mutex_lock(&c->lock);
	int ready = c->place_ready;
	pthread_mutex_unlock(&c->lock);
	return ready;
}

static void place_lag(struct cluster *c)
{
	cluster_sleep_ms(c->test_place_lag_ms);
}

/* Placed here by another node's write (a claim): no run of it here, and our
 * copy of the bucket does not place it here yet. Only asked with the lag on.
 * A claim of our own whose watch event beats our noting it looks the same and
 * is heard late too (the lag is a fault injection: that is a lagging watch). */
static int placed_here_by_other(struct cluster *c, const char *key, const char *node)
{
	char now[CLUSTER_NODE_MAX];
	struct db_run r;
	struct err e = {0};
	if (strcmp(node, c->node) != 0 ||
	    (cluster_lookup(c, key, now) && strcmp(now, c->node) == 0))
		return 0;
	if (supervisor_get(c->sup, key, &r, &e) == ERR_OK) {
		db_run_release(&r);
		return 0;             /* our own spawn: the run is here */
	}
	return 1;
}

/* A tombstone from the watch: our copy forgets the actor, a copy of it here
 * that is not being deleted already is (the bucket decides, replica_forget
 * reads it), and an old tombstone is swept. */
static void place_tombstone(struct cluster *c, const char *key, int64_t at, int ours)
{
	char node[CLUSTER_NODE_MAX];
	int known = cluster_lookup(c, key, node);
	if (known && strcmp(node, c->node) == 0 && !ours && place_lagging(c) &&
	    !cluster_is_deleting(c, key)) {
		place_lag(c);         /* a delete of ours, heard late */
		known = cluster_lookup(c, key, node);
	}
	cluster_place_drop(c, key);
	/* A tombstone this node wrote: the delete that wrote it deletes the copy
	 * (it may not have marked it deleting yet: a second delete here would
	 * race it and answer its request 404). */
	if (known && strcmp(node, c->node) == 0 && !ours && !cluster_is_deleting(c, key))
		replica_forget(c, key);
	if (cluster_unix_ms() - at >= c->tombstone_age_ms)
		replica_sweep_later(c, key);
}

static void on_place(void *user, const char *key, const uint8_t *data, size_t len,
		     uint64_t rev, int deleted)
{
	struct cluster *c = user;
	char node[CLUSTER_NODE_MAX] = "";
	if (!key) {
		pthread_mutex_lock(&c->lock);
		c->place_ready = 1;
		pthread_cond_broadcast(&c->wake);
		pthread_mutex_unlock(&c->lock);
		return;
	}
	int64_t at = 0;
	enum place_kind kind = deleted ? PLACE_BAD : cluster_place_parse(data, len, node, &at);
	if (kind == PLACE_DELETED) {
		place_tombstone(c, key, at, strcmp(node, c->node) == 0);   /* node: "by" */
		return;
	}
	if (!deleted && kind != PLACE_NODE)
		return;
	/* Ours until now, and this revision is newer than the one that made it
	 * ours: moved. A watch that lags (made again after a NATS server died)
	 * may still deliver the revision before our own claim: that is old news,
	 * and fencing on it would kill the rightful copy. */
	pthread_mutex_lock(&c->lock);
	struct place *p = *place_slot(c, key);
	int ours = p && strcmp(p->node, c->node) == 0 && rev > p->rev;
	uint64_t ours_at = p ? p->rev : 0;
	pthread_mutex_unlock(&c->lock);
	if (ours && !deleted && strcmp(node, c->node) != 0) {
		if (place_lagging(c))
			place_lag(c);    /* a move of ours, heard late */
		/* The watch reads one replica of the bucket, and the trials showed
		 * replicas that disagree with the leader after a NATS server came
		 * back (other revision numbers, even a refused claim stored): it
		 * only says where to look. Whether the copy here is killed is the
		 * leader's to say (replica_fence reads the bucket itself); our copy
		 * of the placement keeps "ours" until then. */
		log_warn("cluster", "the placement watch says '%s' moved to node '%s' at revision "
			 "%llu (ours at revision %llu): asking the bucket", key, node,
			 (unsigned long long)rev, (unsigned long long)ours_at);
		replica_fence(c, key, node);
		return;
	}
	if (!deleted && place_lagging(c) && placed_here_by_other(c, key, node))
		place_lag(c);            /* a move here, heard late */
	cluster_place_note(c, key, node, rev, deleted);
}

int cluster_lookup_rev(struct cluster *c, const char *actor_id, char node_out[CLUSTER_NODE_MAX],
		       uint64_t *rev_out)
{
	pthread_mutex_lock(&c->lock);
	struct place *p = *place_slot(c, actor_id);
	if (p)
		snprintf(node_out, CLUSTER_NODE_MAX, "%s", p->node);
	if (rev_out)
		*rev_out = p ? p->rev : 0;
	pthread_mutex_unlock(&c->lock);
	return p != NULL;
}

int cluster_lookup(struct cluster *c, const char *actor_id, char node_out[CLUSTER_NODE_MAX])
{
	return cluster_lookup_rev(c, actor_id, node_out, NULL);
}

enum err_code cluster_locate_ex(struct cluster *c, const char *actor_id,
				char node_out[CLUSTER_NODE_MAX], int *deleted_out,
				struct err *err)
{
	uint8_t *data = NULL;
	size_t len = 0;
	uint64_t rev = 0;
	if (deleted_out)
		*deleted_out = 0;
	enum err_code rc = bus_kv_get(c->place_kv, actor_id, &data, &len, &rev, err);
	if (rc)
		return rc;
	switch (cluster_place_parse(data, len, node_out, NULL)) {
	case PLACE_NODE:
		cluster_place_set(c, actor_id, node_out, rev);
		break;
	case PLACE_DELETED:
		cluster_place_drop(c, actor_id);
		if (deleted_out)
			*deleted_out = 1;
		rc = err_set(err, ERR_NOT_FOUND, "actor '%s' not found (it was deleted)", actor_id);
		break;
	default:
		rc = err_set(err, ERR_CORRUPT, "placement of '%s' is not {\"node\": ...}", actor_id);
	}
	free(data);
	return rc;
}

enum err_code cluster_locate(struct cluster *c, const char *actor_id,
			     char node_out[CLUSTER_NODE_MAX], struct err *err)
{
	return cluster_locate_ex(c, actor_id, node_out, NULL, err);
}

enum err_code cluster_place(struct cluster *c, const char *actor_id, struct err *err)
{
	char value[160];
	snprintf(value, sizeof(value), "{\"node\":\"%s\",\"at\":%lld}", c->node,
		 (long long)cluster_unix_ms());
	uint64_t rev = 0;
	enum err_code rc = bus_kv_create(c->place_kv, actor_id, value, strlen(value), &rev, err);
	if (rc == ERR_OK) {
		cluster_place_set(c, actor_id, c->node, rev);
		return ERR_OK;     /* its package goes to the stream with `spawned` */
	}
	if (rc != ERR_CONFLICT)
		return rc;
	char owner[CLUSTER_NODE_MAX] = "";
	struct err e2 = {0};
	int deleted = 0;
	rc = cluster_locate_ex(c, actor_id, owner, &deleted, &e2);
	if (deleted)
		return err_set(err, ERR_NOT_FOUND, "actor '%s' was deleted from the cluster",
			       actor_id);
	if (rc == ERR_OK && strcmp(owner, c->node) == 0)
		return ERR_OK;     /* placed here already (the API and the lifecycle hook) */
	return err_set(err, ERR_CONFLICT, "actor '%s' is placed on node '%s'", actor_id,
		       *owner ? owner : "?");
}

/* Actors an actor spawns (children) are placed from the lifecycle stream. */
struct place_job {
	struct cluster *c;
	char id[37];
};

static void job_place(void *arg)
{
	struct place_job *j = arg;
	struct err e = {0};
	if (cluster_place(j->c, j->id, &e))
		log_warn("cluster", "placement of '%s' not recorded: %s", j->id, e.msg);
	free(j);
}

static void on_lifecycle(void *user, const struct supervisor_event *ev)
{
	struct cluster *c = user;
	if (strcmp(ev->event_type, "spawned") != 0)
		return;
	char node[CLUSTER_NODE_MAX];
	if (cluster_lookup(c, ev->actor_id, node))
		return;
	struct place_job *j = calloc(1, sizeof(*j));
	if (!j)
		return;
	j->c = c;
	snprintf(j->id, sizeof(j->id), "%s", ev->actor_id);
	if (cluster_submit(c, job_place, j))
		free(j);
}

/* ---- forwarding ---- */

void cluster_reply_release(struct cluster_reply *r)
{
	if (!r)
		return;
	json_decref(r->headers);
	free(r->body);
	memset(r, 0, sizeof(*r));
}

/* JSON line + '\n' + body, malloc'd. */
char *cluster_envelope(json_t *head, const uint8_t *body, size_t len, size_t *out_len)
{
	char *line = json_compact(head);
	if (!line)
		return NULL;
	size_t n = strlen(line);
	char *buf = malloc(n + 1 + len + 1);
	if (buf) {
		memcpy(buf, line, n);
		buf[n] = '\n';
		if (len)
			memcpy(buf + n + 1, body, len);
		buf[n + 1 + len] = '\0';
		*out_len = n + 1 + len;
	}
	free(line);
	return buf;
}

/* Splits an envelope into its JSON head (new reference) and body (borrowed). */
json_t *cluster_unwrap(const uint8_t *data, size_t len, const uint8_t **body, size_t *body_len)
{
	const uint8_t *nl = memchr(data, '\n', len);
	if (!nl)
		return NULL;
	struct err e = {0};
	json_t *head = json_parse((const char *)data, (size_t)(nl - data), 16, &e);
	*body = nl + 1;
	*body_len = len - (size_t)(nl + 1 - data);
	return head;
}

/* The request envelope of req (malloc'd, *n bytes; NULL on OOM) and its timeout. */
static char *call_envelope(struct cluster *c, const struct cluster_http *req, size_t *n,
			   unsigned *timeout_out)
{
	json_t *h = json_object();
	for (const char *const *p = req->headers; p && p[0] && p[1]; p += 2)
		json_object_set_new(h, p[0], json_string(p[1]));
	unsigned timeout = req->timeout_ms ? req->timeout_ms : 60000;
	json_t *head = json_pack("{s:s, s:s, s:o, s:i, s:s}", "m", req->method, "p", req->target,
				 "h", h, "t", (int)timeout, "from", c->node);
	char *msg = head ? cluster_envelope(head, req->body, req->len, n) : NULL;
	json_decref(head);
	*timeout_out = timeout;
	return msg;
}

/* The owner's answer (or the request's failure) into out. */
static enum err_code call_answer(const char *node, enum err_code rc, const uint8_t *reply,
				 size_t rlen, struct cluster_reply *out, struct err *err)
{
	memset(out, 0, sizeof(*out));
	if (rc) {
		if (rc == ERR_UNAVAILABLE || rc == ERR_TIMEOUT) {
			char why[ERR_MSG_MAX];
			snprintf(why, sizeof(why), "%s", err->msg);
			err_set(err, rc, "node '%s' did not answer (%.300s)", node, why);
		}
		return rc;
	}
	const uint8_t *body = NULL;
	size_t blen = 0;
	json_t *rh = cluster_unwrap(reply, rlen, &body, &blen);
	int status = (int)json_integer_value(json_object_get(rh, "s"));
	if (!rh || status < 100 || status > 599) {
		json_decref(rh);
		return err_set(err, ERR_UNAVAILABLE, "node '%s' answered something that is not a "
			       "forwarded response", node);
	}
	out->status = status;
	out->headers = json_incref(json_object_get(rh, "h"));
	if (!out->headers)
		out->headers = json_object();
	out->body = malloc(blen + 1);
	json_decref(rh);
	if (!out->body) {
		cluster_reply_release(out);
		return err_set(err, ERR_NOMEM, "out of memory");
	}
	memcpy(out->body, body, blen);
	out->body[blen] = '\0';
	out->len = blen;
	return ERR_OK;
}

static void http_subject(const char *node, char subject[128])
{
	snprintf(subject, 128, "theater.node.%s.http", node);
}

enum err_code cluster_call(struct cluster *c, const char *node, const struct cluster_http *req,
			   struct cluster_reply *out, struct err *err)
{
	memset(out, 0, sizeof(*out));
	size_t n = 0;
	unsigned timeout;
	char *msg = call_envelope(c, req, &n, &timeout);
	if (!msg)
		return err_set(err, ERR_NOMEM, "out of memory");
	char subject[128];
	http_subject(node, subject);
	uint8_t *reply = NULL;
	size_t rlen = 0;
	enum err_code rc = bus_request(c->bus, subject, msg, n, timeout + 2000, &reply, &rlen, err);
	free(msg);
	rc = call_answer(node, rc, reply, rlen, out, err);
	free(reply);
	return rc;
}

/* ---- the same without a thread that waits ---- */

struct call_wait {
	char node[CLUSTER_NODE_MAX];
	cluster_call_fn done;
	void *user;
};

struct call_expiry {
	struct cluster *c;
	uint64_t token;
	unsigned ms;
};

static void call_answered(void *user, enum err_code rc, const struct err *err,
			  const uint8_t *data, size_t len)
{
	struct call_wait *w = user;
	struct err e = {0};
	if (err)
		e = *err;
	struct cluster_reply r;
	rc = call_answer(w->node, rc, data, len, &r, &e);
	w->done(w->user, rc, rc ? &e : NULL, &r);
	cluster_reply_release(&r);
	free(w);
}

static void job_call_expire(void *arg)
{
	struct call_expiry *x = arg;
	bus_request_expire(x->c->bus, x->token, x->ms, cluster_leaving(x->c));
	free(x);
}

enum err_code cluster_request_start(struct cluster *c, const char *subject, const void *msg,
				    size_t n, unsigned timeout_ms, bus_reply_fn fn, void *user,
				    struct err *err)
{
	struct call_expiry *x = calloc(1, sizeof(*x));
	if (!x)
		return err_set(err, ERR_NOMEM, "out of memory");
	uint64_t token = 0;
	enum err_code rc = bus_request_start(c->bus, subject, msg, n, fn, user, &token, err);
	if (rc) {
		free(x);
		return rc;
	}
	*x = (struct call_expiry){.c = c, .token = token, .ms = timeout_ms};
	if (cluster_submit_after(c, timeout_ms, job_call_expire, x))
		job_call_expire(x);        /* stopping: ends it now */
	return ERR_OK;
}

enum err_code cluster_call_start(struct cluster *c, const char *node,
				 const struct cluster_http *req, cluster_call_fn done,
				 void *user, struct err *err)
{
	size_t n = 0;
	unsigned timeout;
	char *msg = call_envelope(c, req, &n, &timeout);
	struct call_wait *w = msg ? calloc(1, sizeof(*w)) : NULL;
	if (!w) {
		free(msg);
		return err_set(err, ERR_NOMEM, "out of memory");
	}
	snprintf(w->node, sizeof(w->node), "%s", node);
	w->done = done;
	w->user = user;
	char subject[128];
	http_subject(node, subject);
	enum err_code rc = cluster_request_start(c, subject, msg, n, timeout + 2000, call_answered,
						 w, err);
	free(msg);
	if (rc)
		free(w);
	return rc;
}

enum err_code cluster_submit(struct cluster *c, void (*fn)(void *arg), void *arg)
{
	pthread_mutex_lock(&c->lock);
	enum err_code rc = c->pool ? pool_submit(c->pool, fn, arg) : ERR_UNAVAILABLE;
	pthread_mutex_unlock(&c->lock);
	return rc;
}

enum err_code cluster_submit_after(struct cluster *c, uint32_t delay_ms, void (*fn)(void *arg),
				   void *arg)
{
	pthread_mutex_lock(&c->lock);
	enum err_code rc = c->pool ? pool_submit_after(c->pool, delay_ms, fn, arg)
				   : ERR_UNAVAILABLE;
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* The response headers a forwarded answer carries back. */
static const char *const passed_headers[] = {
	"Content-Type", "Location", "ETag", "Cache-Control", "Allow", "Retry-After",
	"Idempotent-Replayed", "WWW-Authenticate", "Content-Disposition", NULL,
};

void cluster_keep_headers(const char *raw, json_t *out)
{
	const char *line = raw;
	while (line && *line) {
		const char *end = strstr(line, "\r\n");
		size_t n = end ? (size_t)(end - line) : strlen(line);
		const char *colon = memchr(line, ':', n);
		if (colon) {
			for (const char *const *h = passed_headers; *h; h++) {
				size_t hn = strlen(*h);
				if ((size_t)(colon - line) != hn || strncasecmp(line, *h, hn) != 0)
					continue;
				const char *v = colon + 1;
				while (v < line + n && *v == ' ')
					v++;
				char val[1024];
				snprintf(val, sizeof(val), "%.*s", (int)(line + n - v), v);
				json_object_set_new(out, *h, json_string(val));
			}
		}
		line = end ? end + 2 : NULL;
	}
}

struct serve_job {
	struct cluster *c;
	char *reply;
	uint8_t *data;
	size_t len;
};

static void answer(struct cluster *c, const char *reply, int status, json_t *headers,
		   const uint8_t *body, size_t len)
{
	json_t *head = json_pack("{s:i, s:o}", "s", status, "h", headers ? headers : json_object());
	size_t n = 0;
	char *msg = head ? cluster_envelope(head, body, len, &n) : NULL;
	json_decref(head);
	struct err e = {0};
	if (!msg || bus_publish(c->bus, reply, msg, n, &e))
		log_warn("cluster", "cannot answer a forwarded request: %s",
			 msg ? e.msg : "out of memory");
	free(msg);
}

/* A 503 problem+json answer to a forwarded request; retry: with Retry-After. */
static void answer_unavailable(struct cluster *c, const char *reply, const char *detail,
			       int retry)
{
	json_t *pj = json_pack("{s:s, s:s, s:i, s:s, s:s}", "type", "about:blank", "title",
			       "Unavailable", "status", 503, "code", "unavailable", "detail",
			       detail);
	char *text = pj ? json_compact(pj) : NULL;
	json_decref(pj);
	json_t *h = json_pack("{s:s}", "Content-Type", "application/problem+json");
	if (retry)
		json_object_set_new(h, "Retry-After", json_string("1"));
	answer(c, reply, 503, h, (const uint8_t *)(text ? text : "{}"), strlen(text ? text : "{}"));
	free(text);
}

int cluster_serve_unknown(struct cluster *c, const char *reply, const char *target)
{
	char id[37], node[CLUSTER_NODE_MAX], detail[300];
	if (strncmp(target, "/actors/", 8) != 0 || strcspn(target + 8, "/?") != 36)
		return 0;
	memcpy(id, target + 8, 36);
	id[36] = '\0';
	if (!uuid_valid(id) || (cluster_lookup(c, id, node) && strcmp(node, c->node) == 0))
		return 0;                /* placed here: the API answers (503 until rebuilt) */
	struct db_run r;
	struct err e = {0};
	if (supervisor_get(c->sup, id, &r, &e) == ERR_OK) {
		db_run_release(&r);
		return 0;                /* a run here: the API answers */
	}
	memset(&e, 0, sizeof(e));
	enum err_code rc = cluster_locate(c, id, node, &e);
	if (rc && rc != ERR_NOT_FOUND) {
		snprintf(detail, sizeof(detail), "cannot read the placement of actor '%s': %.200s",
			 id, e.msg);
		answer_unavailable(c, reply, detail, 0);
		return 1;
	}
	if (rc || strcmp(node, c->node) == 0)
		return 0;
	snprintf(detail, sizeof(detail), "actor '%s' runs on node '%s', and the node that "
		 "forwarded this request has not heard of it yet: retry", id, node);
	answer_unavailable(c, reply, detail, 1);
	return 1;
}

static void serve_job_free(struct serve_job *j)
{
	free(j->reply);
	free(j->data);
	free(j);
}

/* Forwarded calls go to our own API only (and never through a proxy). */
static int loopback_only(void *user, const struct sockaddr *addr, size_t addr_len, char *why,
			 size_t why_size)
{
	(void)user;
	(void)addr_len;
	if (addr->sa_family == AF_INET &&
	    (ntohl(((const struct sockaddr_in *)addr)->sin_addr.s_addr) >> 24) == 127)
		return 0;
	if (addr->sa_family == AF_INET6 &&
	    IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)addr)->sin6_addr))
		return 0;
	snprintf(why, why_size, "not this node's own API");
	return 1;
}

/* Our API's answer to a forwarded call (on the fetcher's thread), sent back. */
static void served(void *user, enum err_code rc, const struct err *err,
		   struct fetch_response *resp)
{
	struct serve_job *j = user;
	if (rc) {
		answer_unavailable(j->c, j->reply, err ? err->msg : err_code_name(rc), 0);
	} else {
		json_t *rh = json_object();
		cluster_keep_headers(resp->headers, rh);
		answer(j->c, j->reply, (int)resp->status, rh, resp->body, resp->body_len);
	}
	fetch_response_release(resp);
	serve_job_free(j);
}

/* Replays a forwarded request against our own API, over loopback: the fetcher
 * makes the call, so no thread waits for its answer (a request may wait for
 * minutes for an actor's reply). */
static void job_serve(void *arg)
{
	struct serve_job *j = arg;
	struct cluster *c = j->c;
	const uint8_t *body = NULL;
	size_t blen = 0;
	json_t *head = cluster_unwrap(j->data, j->len, &body, &blen);
	const char *method = json_string_value(json_object_get(head, "m"));
	const char *target = json_string_value(json_object_get(head, "p"));
	const char *from = json_string_value(json_object_get(head, "from"));
	json_t *h = json_object_get(head, "h");
	if (!method || !target || target[0] != '/' || !json_is_object(h)) {
		const char *p = "{\"status\":400,\"code\":\"invalid\",\"detail\":\"malformed "
				"forwarded request\"}";
		answer(c, j->reply, 400, json_pack("{s:s}", "Content-Type",
						   "application/problem+json"),
		       (const uint8_t *)p, strlen(p));
		goto done;
	}
	if (cluster_serve_unknown(c, j->reply, target))
		goto done;
	const char *lines[24];
	char store[24][1100];
	size_t nl = 0;
	const char *k;
	json_t *v;
	json_object_foreach(h, k, v) {
		if (nl >= 20 || !json_is_string(v) || strpbrk(k, "\r\n:") ||
		    strpbrk(json_string_value(v), "\r\n"))
			continue;
		snprintf(store[nl], sizeof(store[nl]), "%s: %s", k, json_string_value(v));
		lines[nl] = store[nl];
		nl++;
	}
	snprintf(store[nl], sizeof(store[nl]), "X-Theater-Forwarded: %s", from ? from : "?");
	lines[nl] = store[nl];
	nl++;
	if (c->token) {
		snprintf(store[nl], sizeof(store[nl]), "Authorization: Bearer %s", c->token);
		lines[nl] = store[nl];
		nl++;
	}
	snprintf(store[nl], sizeof(store[nl]), "Expect:");   /* no 100-continue round trip */
	lines[nl] = store[nl];
	nl++;
	long timeout = (long)json_integer_value(json_object_get(head, "t"));
	char url[FETCH_MAX_URL];
	snprintf(url, sizeof(url), "%s%s", c->http_url, target);
	struct fetch_request req = {
		.method = method, .url = url, .headers = lines, .nheaders = nl,
		.body = blen || strcmp(method, "GET") ? body : NULL, .body_len = blen,
		.addr_check = loopback_only, .addr_check_user = NULL,
	};
	struct fetch_limits lim = {.max_bytes = FORWARD_MAX_BYTES,
				   .total_timeout_ms = timeout > 0 ? timeout : 60000,
				   .max_redirects = -1};
	struct err e = {0};
	if (fetch_start(c->fetcher, &req, &lim, served, j, &e) == ERR_OK) {
		json_decref(head);       /* the fetcher copied what it needs; j is served's */
		return;
	}
	answer_unavailable(c, j->reply, e.msg, 0);
done:
	json_decref(head);
	serve_job_free(j);
}

static void on_http(void *user, const char *reply, const uint8_t *data, size_t len)
{
	struct cluster *c = user;
	if (!reply)
		return;
	struct serve_job *j = calloc(1, sizeof(*j));
	if (j) {
		j->c = c;
		j->reply = strdup(reply);
		j->data = malloc(len + 1);
	}
	if (!j || !j->reply || !j->data) {
		if (j) {
			free(j->reply);
			free(j->data);
		}
		free(j);
		return;           /* the caller times out */
	}
	memcpy(j->data, data, len);
	j->data[len] = '\0';
	j->len = len;
	if (cluster_submit(c, job_serve, j)) {
		free(j->reply);
		free(j->data);
		free(j);
	}
}

/* ---- start and stop ---- */

/* JetStream answers "temporarily unavailable" until its servers have elected
 * a leader: retry for up to 20 s in all (by the clock: an attempt can itself
 * wait seconds for an answer, and 40 of them once took 105 s of a start). */
#define OPEN_BUCKETS_MS 20000

static enum err_code open_buckets(struct cluster *c, struct err *err)
{
	enum err_code rc = ERR_OK;
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if (!c->nodes_kv)
			rc = bus_kv_open(c->bus, NODES_BUCKET, c->lapse_ms * 4, c->replicas, 1,
					 &c->nodes_kv, err);
		if (!rc && !c->place_kv)
			rc = bus_kv_open(c->bus, PLACEMENT_BUCKET, 0, c->replicas, 8,
					 &c->place_kv, err);
		if (rc != ERR_UNAVAILABLE && rc != ERR_TIMEOUT)
			return rc;
		clock_gettime(CLOCK_MONOTONIC, &now);
		int64_t spent = (int64_t)(now.tv_sec - t0.tv_sec) * 1000 +
				(now.tv_nsec - t0.tv_nsec) / 1000000;
		if (c->interrupted && c->interrupted())
			return rc;
		if (spent >= OPEN_BUCKETS_MS) {
			err_prefix(err, "JetStream did not answer within %d s (it needs a majority of "
				   "its servers up)", OPEN_BUCKETS_MS / 1000);
			return rc;
		}
		cluster_sleep_ms(500);
	}
}

/* A fault-injection setting of the tests (a positive number, logged), or 0. */
static int test_knob(const char *name, const char *what)
{
	const char *v = getenv(name);
	int n = v ? atoi(v) : 0;
	if (n <= 0)
		return 0;
	log_warn("cluster", "%s=%d: %s (fault injection for tests; never in production)", name,
		 n, what);
	return n;
}

enum err_code cluster_start(const struct cluster_config *cfg, struct cluster **out,
			    struct err *err)
{
	struct cluster *c = calloc(1, sizeof(*c));
	if (!c)
		return err_set(err, ERR_NOMEM, "out of memory");
	snprintf(c->node, sizeof(c->node), "%s", cfg->node);
	c->http_url = strdup(cfg->http_url);
	c->advertise_url = strdup(cfg->advertise_url ? cfg->advertise_url : cfg->http_url);
	c->token = cfg->token && *cfg->token ? strdup(cfg->token) : NULL;
	c->heartbeat_ms = cfg->heartbeat_ms ? cfg->heartbeat_ms : 1000;
	c->lapse_ms = cfg->lapse_ms ? cfg->lapse_ms : LAPSE_DEFAULT_MS;
	c->replicas = cfg->replicas ? cfg->replicas : 3;
	c->sup = cfg->sup;
	c->interrupted = cfg->interrupted;
	c->test_place_lag_ms = test_knob("THEATER_TEST_PLACEMENT_LAG_MS", "this node hears that "
					 "much later that one of its actors moved or was deleted, "
					 "or that another node placed one here");
	c->test_delete_pause_ms = test_knob("THEATER_TEST_DELETE_PAUSE_MS", "a delete here waits "
					    "that long before writing the tombstone, and again "
					    "between writing it and deleting the copy");
	c->test_mail_delay_ms = test_knob("THEATER_TEST_MAIL_DELAY_MS", "mail from other nodes "
					  "(sends, spawns, queries about children) is taken up "
					  "that much later here");
	c->test_tick_pause_ms = test_knob("THEATER_TEST_FAILOVER_TICK_PAUSE_MS", "each failover "
					  "round here takes that much longer");
	c->test_heal_read_fails = test_knob("THEATER_TEST_HEAL_READ_FAILS", "the first reads of "
					    "the stream by heals here fail");
	const char *beat_fail = getenv("THEATER_TEST_BEAT_FAIL_FILE");
	if (beat_fail && *beat_fail) {
		c->test_beat_fail_file = strdup(beat_fail);
		log_warn("cluster", "THEATER_TEST_BEAT_FAIL_FILE=%s: while that file exists, this "
			 "node's heartbeats are not written and count as failed (fault injection "
			 "for tests; never in production)", beat_fail);
	}
	const char *stale = getenv("THEATER_TEST_STALE_WATCH");
	if (stale && strcmp(stale, "blind") == 0) {
		c->test_stale_watch = WATCH_BLIND;
		log_warn("cluster", "THEATER_TEST_STALE_WATCH=blind: at join this node takes its "
			 "watch as knowing none of the runs it recovered (fault injection for tests; "
			 "never in production)");
	} else if (stale && atoi(stale) > 0) {
		c->test_stale_watch = WATCH_ALL_HERE;
		log_warn("cluster", "THEATER_TEST_STALE_WATCH: at join this node takes its watch as "
			 "placing every run it recovered here (fault injection for tests; never in "
			 "production)");
	}
	c->tombstone_age_ms = TOMBSTONE_AGE_MS;
	const char *age = getenv("THEATER_TEST_TOMBSTONE_AGE_MS");
	if (age && atoll(age) > 0) {
		c->tombstone_age_ms = atoll(age);
		log_warn("cluster", "THEATER_TEST_TOMBSTONE_AGE_MS=%lld: tombstones of deleted "
			 "actors are removed that soon (for tests; never in production)",
			 (long long)c->tombstone_age_ms);
	}
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->blob_lock, NULL);
	pthread_mutex_init(&c->relay_lock, NULL);
	pthread_cond_init(&c->wake, NULL);
	*out = c;
	char name[128], subject[128];
	snprintf(name, sizeof(name), "theater-%s", c->node);
	snprintf(subject, sizeof(subject), "theater.node.%s.http", c->node);
	enum err_code rc;
	if (!c->http_url || !c->advertise_url)
		return err_set(err, ERR_NOMEM, "out of memory");
	if ((rc = fetcher_new(&c->fetcher, err)) ||
	    (rc = pool_new(cfg->threads ? cfg->threads : 16, &c->pool, err)) ||
	    (rc = bus_open_ex(cfg->urls, name, 10000, c->interrupted, &c->bus, err)) ||
	    (rc = open_buckets(c, err)) ||
	    (rc = bus_kv_watch(c->nodes_kv, 3 * c->heartbeat_ms, on_node, c, &c->nodes_watch, err)) ||
	    (rc = bus_kv_watch(c->place_kv, 30000, on_place, c, &c->place_watch, err)) ||
	    (rc = bus_subscribe(c->bus, subject, NULL, on_http, c, &c->http_sub, err)))
		return rc;
	if ((rc = replica_start(c, err)) || (rc = mail_start(c, err)) || (rc = relay_start(c, err)))
		return rc;
	uint64_t head = 0;
	struct supervisor_sub *sub = NULL;
	if ((rc = supervisor_subscribe(c->sup, NULL, on_lifecycle, c, &head, &sub, err)))
		return rc;
	c->lifecycle = sub;
	if (pthread_create(&c->beat, NULL, beat_main, c))
		return err_set(err, ERR_NOMEM, "cannot start the heartbeat thread");
	c->beat_started = 1;
	if ((rc = pool_new(FAILOVER_THREADS, &c->failover_pool, err)))
		return rc;
	if (pthread_create(&c->tick, NULL, tick_main, c))
		return err_set(err, ERR_NOMEM, "cannot start the failover thread");
	c->tick_started = 1;
	log_info("cluster", "node '%s' joined the cluster over %s (replicas %u)", c->node,
		 cfg->urls, c->replicas);
	return ERR_OK;
}

void cluster_stop(struct cluster *c)
{
	if (!c)
		return;
	/* The heartbeat and the watches go on until cluster_free: while the
	 * supervisor shuts down, this node still owns its actors (no survivor
	 * claims them yet) and still sees a claim (fencing). */
	__atomic_store_n(&c->leaving, 1, __ATOMIC_RELEASE);
	mail_stop(c);
	relay_stop(c);
	if (c->lifecycle)
		supervisor_unsubscribe(c->sup, c->lifecycle);
	c->lifecycle = NULL;
	bus_unsubscribe(c->http_sub);
	c->http_sub = NULL;
	pthread_mutex_lock(&c->lock);
	struct pool *pool = c->pool;      /* submits fail from now on; queued jobs run */
	c->pool = NULL;
	pthread_mutex_unlock(&c->lock);
	pool_free(pool);
	/* forwarded calls still running here end (503 to the node that forwarded) */
	fetcher_free(c->fetcher);
	c->fetcher = NULL;
}

void cluster_free(struct cluster *c)
{
	if (!c)
		return;
	cluster_stop(c);
	pthread_mutex_lock(&c->lock);
	c->stopping = 1;
	pthread_cond_broadcast(&c->wake);
	pthread_mutex_unlock(&c->lock);
	if (c->beat_started)
		pthread_join(c->beat, NULL);
	if (c->tick_started)
		pthread_join(c->tick, NULL);
	c->beat_started = c->tick_started = 0;
	pool_free(c->failover_pool);      /* idle: the tick thread waited for its rounds */
	c->failover_pool = NULL;
	bus_watch_stop(c->nodes_watch);
	bus_watch_stop(c->place_watch);
	c->nodes_watch = c->place_watch = NULL;
	/* Replication ran on through the supervisor's shutdown: the calls that
	 * finished in the grace period and the `suspended` events are in the
	 * stream, for the node that takes the actors over. */
	replica_stop(c);
	bus_kv_close(c->nodes_kv);
	bus_kv_close(c->place_kv);
	bus_close(c->bus);
	for (size_t i = 0; i < PLACE_BUCKETS; i++)
		while (c->places[i]) {
			struct place *p = c->places[i];
			c->places[i] = p->next;
			free(p);
		}
	while (c->deleting) {
		struct deleting *d = c->deleting;
		c->deleting = d->next;
		free(d);
	}
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->blob_lock);
	pthread_mutex_destroy(&c->relay_lock);
	pthread_cond_destroy(&c->wake);
	free(c->http_url);
	free(c->advertise_url);
	free(c->token);
	free(c->test_beat_fail_file);
	free(c);
}
