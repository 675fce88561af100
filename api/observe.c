/* observe.c - what an operator sees of the server: the access log, lifecycle
 * log lines, and the server-wide counters behind GET /metrics (Prometheus text
 * format 0.0.4).
 *
 * Counters are fed lock-free (relaxed atomics, src/util/histo) by the request
 * path (observe_request, every answer the api gives) and by one subscription
 * to the supervisor's lifecycle stream (spawns, failures by reason, restarts).
 * Labels are bounded: routes are the table's templates, status is a class
 * (2xx...), failure reasons are the first OBSERVE_REASONS seen (then "other").
 * No label names an actor. */
#include "api/api_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"
#include "src/db.h"
#include "src/util/buf.h"
#include "src/util/log.h"

static const char *const statuses[] = {"starting", "running", "stopping", "stopped", "failed",
				       "killed"};
#define NSTATUSES (sizeof(statuses) / sizeof(statuses[0]))

void observe_request(struct api_call *c, int status, size_t bytes)
{
	struct observe *o = &c->api->obs;
	int64_t us = histo_now_us() - c->t0_us;
	int cls = status >= 100 && status < 600 ? status / 100 - 1 : 4;
	int route = c->route >= 0 && c->route < OBSERVE_ROUTES ? c->route : OBSERVE_ROUTES;
	histo_observe(&o->http[route][cls], us);
	if (!log_enabled(LOG_INFO))
		return;
	char st[8], dur[32], sz[24];
	snprintf(st, sizeof(st), "%d", status);
	snprintf(dur, sizeof(dur), "%.3f", (double)us / 1000.0);
	snprintf(sz, sizeof(sz), "%zu", bytes);
	const char *kv[] = {"method", http_request_method(c->req),
			    "route", c->route_pattern ? c->route_pattern : "(none)",
			    "path", http_request_path(c->req), "status", st, "duration_ms", dur,
			    "bytes", sz, "peer", http_request_peer(c->req), NULL};
	log_fields(LOG_INFO, "http", "request", kv);
}

/* The slot of a failure reason: an existing one, a new one, or "other". */
static size_t reason_slot(struct observe *o, const char *reason)
{
	size_t i;
	for (i = 0; i < OBSERVE_REASONS && o->reasons[i][0]; i++)
		if (strcmp(o->reasons[i], reason) == 0)
			return i;
	if (i < OBSERVE_REASONS && strlen(reason) < sizeof(o->reasons[i]) &&
	    strspn(reason, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-") ==
	    strlen(reason)) {   /* a label value that needs no escaping */
		strcpy(o->reasons[i], reason);
		return i;
	}
	return OBSERVE_REASONS;
}

/* Lifecycle stream: runs on the recording thread with the subscription's lock
 * held, so it only counts and logs. */
static void on_lifecycle(void *user, const struct supervisor_event *ev)
{
	struct observe *o = user;
	json_t *d = json_loadb((const char *)ev->data, ev->data_len, 0, NULL);
	const char *reason = json_string_value(json_object_get(d, "reason"));
	const char *detail = json_string_value(json_object_get(d, "detail"));
	const char *type = ev->event_type;
	enum log_level level = LOG_INFO;
	if (strcmp(type, "spawned") == 0) {
		__atomic_fetch_add(&o->spawns, 1, __ATOMIC_RELAXED);
	} else if (strcmp(type, "restarted") == 0) {
		__atomic_fetch_add(&o->restarts, 1, __ATOMIC_RELAXED);
	} else if (strcmp(type, "failed") == 0) {
		/* The label is the reason's kind: "invalid_package" of
		 * "invalid_package: package is not a webassembly binary". */
		char kind[48];
		snprintf(kind, sizeof(kind), "%.*s", (int)strcspn(reason ? reason : "unknown", ": "),
			 reason ? reason : "unknown");
		pthread_mutex_lock(&o->lock);
		size_t slot = reason_slot(o, kind);
		o->failures[slot]++;
		pthread_mutex_unlock(&o->lock);
		level = LOG_WARN;
	}
	char seq[24];
	snprintf(seq, sizeof(seq), "%" PRIu64, ev->seq);
	const char *kv[16] = {"actor", ev->actor_id, "event", type, "seq", seq};
	size_t n = 6;
	if (ev->status) {
		kv[n++] = "status";
		kv[n++] = ev->status;
	}
	if (reason) {
		kv[n++] = "reason";
		kv[n++] = reason;
	}
	if (detail) {
		kv[n++] = "detail";
		kv[n++] = detail;
	}
	kv[n] = NULL;
	log_fields(level, "actor", type, kv);
	json_decref(d);
}

enum err_code observe_start(struct api *api, struct err *err)
{
	pthread_mutex_init(&api->obs.lock, NULL);
	api->obs.lock_ready = 1;
	if (!api->cfg.sup)
		return ERR_OK;
	uint64_t head;
	return supervisor_subscribe(api->cfg.sup, NULL, on_lifecycle, &api->obs, &head,
				    &api->obs.sub, err);
}

void observe_stop(struct api *api)
{
	if (api->obs.sub)
		supervisor_unsubscribe(api->cfg.sup, api->obs.sub);
	api->obs.sub = NULL;
}

void observe_release(struct api *api)
{
	observe_stop(api);
	if (api->obs.lock_ready)
		pthread_mutex_destroy(&api->obs.lock);
	api->obs.lock_ready = 0;
}

/* ---- GET /metrics ---- */

static void family(struct buf *b, const char *name, const char *type, const char *help)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void histogram(struct buf *b, const char *name, const char *labels, const struct histo *h)
{
	uint64_t cum[HISTO_BUCKETS + 1], sum_us;
	histo_read(h, cum, &sum_us);
	const char *sep = *labels ? "," : "";
	for (int i = 0; i < HISTO_BUCKETS; i++)
		buf_printf(b, "%s_bucket{%s%sle=\"%g\"} %" PRIu64 "\n", name, labels, sep,
			   histo_bounds_s[i], cum[i]);
	buf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, labels, sep,
		   cum[HISTO_BUCKETS]);
	if (*labels) {
		buf_printf(b, "%s_sum{%s} %.6f\n", name, labels, (double)sum_us / 1e6);
		buf_printf(b, "%s_count{%s} %" PRIu64 "\n", name, labels, cum[HISTO_BUCKETS]);
	} else {
		buf_printf(b, "%s_sum %.6f\n", name, (double)sum_us / 1e6);
		buf_printf(b, "%s_count %" PRIu64 "\n", name, cum[HISTO_BUCKETS]);
	}
}

/* Runs with status (deleted runs are not listed), counted from the index. */
static enum err_code count_status(struct api *api, const char *status, uint64_t *out,
				  struct err *err)
{
	return db_run_count(supervisor_db(api->cfg.sup), status, out, err);
}

static enum err_code actors_by_status(struct api *api, struct buf *b, struct err *err)
{
	family(b, "theater_actors", "gauge", "Actor runs by status (deleted runs excluded).");
	for (size_t i = 0; i < NSTATUSES; i++) {
		uint64_t n;
		if (count_status(api, statuses[i], &n, err))
			return err->code;
		buf_printf(b, "theater_actors{status=\"%s\"} %" PRIu64 "\n", statuses[i], n);
	}
	return ERR_OK;
}

static void lifecycle_counters(struct observe *o, struct buf *b)
{
	family(b, "theater_actor_spawns_total", "counter", "Actor runs spawned since the server started.");
	buf_printf(b, "theater_actor_spawns_total %" PRIu64 "\n",
		   __atomic_load_n(&o->spawns, __ATOMIC_RELAXED));
	family(b, "theater_actor_restarts_total", "counter", "Actor restarts since the server started.");
	buf_printf(b, "theater_actor_restarts_total %" PRIu64 "\n",
		   __atomic_load_n(&o->restarts, __ATOMIC_RELAXED));
	family(b, "theater_actor_failures_total", "counter",
	       "Actor runs that failed since the server started, by reason.");
	pthread_mutex_lock(&o->lock);
	for (size_t i = 0; i < OBSERVE_REASONS && o->reasons[i][0]; i++)
		buf_printf(b, "theater_actor_failures_total{reason=\"%s\"} %" PRIu64 "\n",
			   o->reasons[i], o->failures[i]);
	if (o->failures[OBSERVE_REASONS])
		buf_printf(b, "theater_actor_failures_total{reason=\"other\"} %" PRIu64 "\n",
			   o->failures[OBSERVE_REASONS]);
	pthread_mutex_unlock(&o->lock);
}

static void http_histograms(struct api *api, struct buf *b)
{
	static const char *const classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
	const struct api_route_info *routes;
	size_t n = api_routes(&routes);
	family(b, "theater_http_request_duration_seconds", "histogram",
	       "HTTP requests by route template and status class, from arrival to answer.");
	for (size_t r = 0; r <= OBSERVE_ROUTES; r++) {
		if (r < OBSERVE_ROUTES && r >= n)
			continue;
		for (int k = 0; k < 5; k++) {
			const struct histo *h = &api->obs.http[r][k];
			uint64_t cum[HISTO_BUCKETS + 1], sum;
			histo_read(h, cum, &sum);
			if (cum[HISTO_BUCKETS] == 0)
				continue;
			char labels[200];
			snprintf(labels, sizeof(labels), "method=\"%s\",route=\"%s\",code=\"%s\"",
				 r < n ? routes[r].method : "", r < n ? routes[r].pattern : "(none)",
				 classes[k]);
			histogram(b, "theater_http_request_duration_seconds", labels, h);
		}
	}
}

/* The chain files' descriptor cache (issue 16). */
static void chain_fd_gauges(struct buf *b)
{
	struct chain_fd_stats st;
	chain_fd_stats(&st);
	family(b, "theater_chain_fds_open", "gauge", "Chain files open now.");
	buf_printf(b, "theater_chain_fds_open %u\n", st.open);
	family(b, "theater_chain_fds_cap", "gauge",
	       "Chain files kept open at most (--max-open-chains); others reopen on use.");
	buf_printf(b, "theater_chain_fds_cap %u\n", st.cap);
	family(b, "theater_chain_fd_evictions_total", "counter",
	       "Chain files closed to stay under the cap.");
	buf_printf(b, "theater_chain_fd_evictions_total %" PRIu64 "\n", st.evictions);
	family(b, "theater_chain_fd_reopens_total", "counter", "Chain files opened again on use.");
	buf_printf(b, "theater_chain_fd_reopens_total %" PRIu64 "\n", st.reopens);
}

static void other_gauges(struct api *api, struct buf *b)
{
	size_t clients = 0;
	pthread_mutex_lock(&api->streams_lock);
	clients = sse_count(api);
	pthread_mutex_unlock(&api->streams_lock);
	family(b, "theater_sse_clients", "gauge", "Open server-sent event streams.");
	buf_printf(b, "theater_sse_clients %zu\n", clients);
	struct resolver_stats st = {0};
	if (api->cfg.resolver)
		resolver_stats_get(api->cfg.resolver, &st);
	family(b, "theater_package_cache_hits_total", "counter",
	       "static_package spawns served from the package cache.");
	buf_printf(b, "theater_package_cache_hits_total %" PRIu64 "\n", st.hits);
	family(b, "theater_package_cache_misses_total", "counter",
	       "static_package spawns that had to fetch their package.");
	buf_printf(b, "theater_package_cache_misses_total %" PRIu64 "\n", st.misses);
	family(b, "theater_package_cache_bytes", "gauge", "Bytes held by the package cache.");
	buf_printf(b, "theater_package_cache_bytes %zu\n", st.bytes);
	if (api->cfg.sup) {
		uint64_t parked, total;
		supervisor_parked_calls(api->cfg.sup, &parked, &total);
		family(b, "theater_parked_calls", "gauge",
		       "Actor calls parked in a waiting host call (their workers free).");
		buf_printf(b, "theater_parked_calls %" PRIu64 "\n", parked);
		family(b, "theater_parks_total", "counter",
		       "Times an actor call parked in a waiting host call.");
		buf_printf(b, "theater_parks_total %" PRIu64 "\n", total);
		family(b, "theater_actors_loaded", "gauge",
		       "Actors with an instance in memory (idle live ones recovered lazily have none).");
		buf_printf(b, "theater_actors_loaded %" PRIu64 "\n",
			   supervisor_loaded_count(api->cfg.sup));
		family(b, "theater_actor_releases_total", "counter",
		       "Idle actor instances released since the server started (--idle-release-ms).");
		buf_printf(b, "theater_actor_releases_total %" PRIu64 "\n",
			   supervisor_released_count(api->cfg.sup));
		uint64_t spare_ready, spare_made;
		supervisor_spare_chains(api->cfg.sup, &spare_ready, &spare_made);
		family(b, "theater_spare_chains", "gauge",
		       "Empty chain files ready for spawns (--spare-chains).");
		buf_printf(b, "theater_spare_chains %" PRIu64 "\n", spare_ready);
		family(b, "theater_spare_chains_created_total", "counter",
		       "Spare chain files created since the server started.");
		buf_printf(b, "theater_spare_chains_created_total %" PRIu64 "\n", spare_made);
		family(b, "theater_recovery_pending", "gauge",
		       "Live actors with work left at the last stop not recovered yet (start-up "
		       "recovers them in the background).");
		buf_printf(b, "theater_recovery_pending %" PRIu64 "\n",
			   supervisor_recovery_pending(api->cfg.sup));
		struct db *db = supervisor_db(api->cfg.sup);
		family(b, "theater_index_checkpoints_total", "counter",
		       "Checkpoints of the index's write-ahead log, each done beside the writers "
		       "by the index's own thread.");
		buf_printf(b, "theater_index_checkpoints_total %" PRIu64 "\n", db_checkpoints(db));
		family(b, "theater_index_wal_pages", "gauge",
		       "Pages in the index's write-ahead log after its last commit.");
		buf_printf(b, "theater_index_wal_pages %d\n", db_wal_pages(db));
		struct headroom *room = supervisor_headroom(api->cfg.sup);
		if (room) {
			struct headroom_stats hs;
			headroom_stats(room, &hs);
			if (hs.disk_free != UINT64_MAX) {
				family(b, "theater_disk_free_bytes", "gauge",
				       "Bytes free on the file system of the server's home (spawns "
				       "are refused below --min-free-disk).");
				buf_printf(b, "theater_disk_free_bytes %" PRIu64 "\n", hs.disk_free);
			}
			family(b, "theater_work_refused_total", "counter",
			       "Spawns and uploads refused for want of descriptors, memory or disk "
			       "(503 resource_exhausted).");
			buf_printf(b, "theater_work_refused_total %" PRIu64 "\n", hs.refusals);
		}
	}
	struct histo fs;
	chain_fsync_histo(&fs);
	family(b, "theater_chain_fsync_duration_seconds", "histogram",
	       "Latency of each chain fdatasync (one per group commit).");
	histogram(b, "theater_chain_fsync_duration_seconds", "", &fs);
	chain_fd_gauges(b);
}

/* Cluster mode only (--nats): membership, replication, takeovers. */
static void cluster_gauges(struct api *api, struct buf *b)
{
	struct cluster *cl = __atomic_load_n(&api->cfg.cluster, __ATOMIC_ACQUIRE);
	if (!cl)
		return;
	struct cluster_stats st;
	cluster_stats(cl, &st);
	family(b, "theater_cluster_nodes", "gauge",
	       "Nodes this node knows from the heartbeat bucket, by status (up: a heartbeat "
	       "within the lapse).");
	buf_printf(b, "theater_cluster_nodes{status=\"up\"} %u\n", st.nodes_up);
	buf_printf(b, "theater_cluster_nodes{status=\"down\"} %u\n", st.nodes_down);
	family(b, "theater_cluster_nats_connected", "gauge",
	       "1 while this node is connected to a NATS server.");
	buf_printf(b, "theater_cluster_nats_connected %d\n", st.nats_connected);
	family(b, "theater_cluster_writes_refused", "gauge",
	       "1 while this node refuses writes (503) it could not replicate: NATS "
	       "unreachable, heartbeats failed, a publish not acknowledged lately, or the "
	       "placement bucket unreadable.");
	buf_printf(b, "theater_cluster_writes_refused %d\n", st.writes_refused != NULL);
	family(b, "theater_cluster_placements", "gauge",
	       "Actors in this node's copy of the placement bucket (every node's).");
	buf_printf(b, "theater_cluster_placements %" PRIu64 "\n", st.placements);
	family(b, "theater_cluster_takeovers_total", "counter",
	       "Actors rebuilt from the replicated stream and run here (failovers and moves).");
	buf_printf(b, "theater_cluster_takeovers_total %" PRIu64 "\n", st.takeovers);
	family(b, "theater_cluster_rebuild_failures_total", "counter",
	       "Rebuilds of an actor placed here that failed (each is tried again every "
	       "second; a steady rise is an actor that cannot run anywhere).");
	buf_printf(b, "theater_cluster_rebuild_failures_total %" PRIu64 "\n", st.rebuild_failures);
	family(b, "theater_cluster_unreplicated_total", "counter",
	       "Times an event or blob could not be replicated (writes are refused for 5 s "
	       "after each).");
	buf_printf(b, "theater_cluster_unreplicated_total %" PRIu64 "\n", st.unreplicated);
	family(b, "theater_cluster_fenced_total", "counter",
	       "Copies here stopped because their actor runs on another node now.");
	buf_printf(b, "theater_cluster_fenced_total %" PRIu64 "\n", st.fenced);
	family(b, "theater_cluster_healed_events_total", "counter",
	       "Events (and blobs they name) the replicated stream had lost that this node "
	       "published again from its own chain of an actor that moved away (so the new "
	       "owner can rebuild it).");
	buf_printf(b, "theater_cluster_healed_events_total %" PRIu64 "\n", st.healed);
	family(b, "theater_cluster_relayed_streams", "gauge",
	       "Event streams of actors here relayed to clients of other nodes now.");
	buf_printf(b, "theater_cluster_relayed_streams %u\n", st.relayed_streams);
}

static void job_metrics(void *arg)
{
	struct api_call *c = arg;
	struct err e = {0};
	struct buf b;
	buf_init(&b, 0);
	if (actors_by_status(c->api, &b, &e)) {
		buf_release(&b);
		api_problem_err(c, &e);
		return;
	}
	lifecycle_counters(&c->api->obs, &b);
	other_gauges(c->api, &b);
	cluster_gauges(c->api, &b);
	http_histograms(c->api, &b);
	size_t len = b.len;
	void *data = buf_steal(&b, &len);
	api_bytes(c, 200, "text/plain; version=0.0.4; charset=utf-8", data, len, NULL);
}

void h_metrics(struct api_call *c)
{
	api_defer(c, job_metrics);
}
