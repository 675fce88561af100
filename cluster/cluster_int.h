/* cluster_int.h - private to cluster/: the cluster object shared by cluster.c
 * (membership, placement, forwarding) and replica.c (the chain stream,
 * failover, fencing). */
#ifndef THEATER_CLUSTER_CLUSTER_INT_H
#define THEATER_CLUSTER_CLUSTER_INT_H

#include <pthread.h>

#include "cluster/bus.h"
#include "cluster/cluster.h"
#include "supervisor/pool.h"

#define NODES_BUCKET "theater_nodes"
#define PLACEMENT_BUCKET "theater_placement"
#define MAX_NODES 64
#define PLACE_BUCKETS 4096
#define FORWARD_MAX_BYTES ((size_t)64 << 20)
#define BLOB_SEEN 1024

struct node_row {
	char name[CLUSTER_NODE_MAX];
	char url[256];
	uint64_t load;
	int64_t time_ms;              /* the node's own clock, unix ms */
	int64_t seen_ms;              /* our monotonic clock when its beat arrived */
	int64_t down_noted_ms;        /* replica.c: seen_ms when we last noted it down */
	uint64_t placed;              /* children sent there since its last beat (mail.c) */
	unsigned lapse_ms;            /* the node's own lapse, from its beat */
	int64_t silent_at_ms;         /* replica.c: when the bucket last said it is silent */
};

/* The lapse a heartbeat names ("lapse", the node's --cluster-lapse-ms), or
 * LAPSE_DEFAULT_MS for a beat that names none (a node of an older version). */
#define LAPSE_DEFAULT_MS 4000u
unsigned cluster_beat_lapse(const json_t *beat);

/* c->lock held: the row of node `name`, or NULL. */
struct node_row *cluster_node_row_locked(struct cluster *c, const char *name);

/* THEATER_TEST_STALE_WATCH (fault injection for tests): what the join fence takes
 * its watch to say of the runs it recovered. */
enum stale_watch { WATCH_TRUE = 0, WATCH_ALL_HERE = 1, WATCH_BLIND = 2 };

struct place {
	struct place *next;
	char id[37];
	char node[CLUSTER_NODE_MAX];
	uint64_t rev;
	unsigned rebuild_fails;       /* failed rebuilds here since the last success */
	int chain_here;               /* replica.c: placed here and its chain file seen
				       * here at this revision (no need to look again) */
};

/* An actor this node is deleting (its tombstone written, its local copy not
 * yet gone, its chain subject not yet purged): its events are not published. */
struct deleting {
	struct deleting *next;
	char id[37];
};

/* How long a tombstone (the placement of a deleted actor) stays in the bucket
 * before a node that reads it removes it (docs/cluster.md, "Deleting"). */
#define TOMBSTONE_AGE_MS ((int64_t)7 * 24 * 3600 * 1000)

struct cluster {
	char node[CLUSTER_NODE_MAX];
	char *http_url, *token, *advertise_url;
	unsigned heartbeat_ms, lapse_ms, replicas;
	struct supervisor *sup;
	int (*interrupted)(void);    /* cluster_config's, for the start's retries */
	struct bus *bus;
	struct bus_kv *nodes_kv, *place_kv;
	struct bus_watch *nodes_watch, *place_watch;
	struct bus_sub *http_sub;
	struct supervisor_sub *lifecycle;   /* spawned children get placed */
	struct pool *pool;
	struct fetcher *fetcher;      /* forwarded calls to our own API (job_serve) */
	pthread_t beat;               /* writes the heartbeats, and nothing slow */
	int beat_started;
	pthread_t tick;               /* failover: verify, resync, takeovers, adoptions */
	int tick_started;
	int failover_soon;            /* under lock: the failover thread's next round now */
	struct pool *failover_pool;   /* the takeovers and adoptions of a failover round */
	pthread_mutex_t lock;         /* nodes, places, stopping */
	pthread_cond_t wake;
	int stopping;
	struct node_row nodes[MAX_NODES];
	size_t nnodes;
	struct place *places[PLACE_BUCKETS];
	size_t nplaces;               /* entries in places */
	struct deleting *deleting;    /* under lock */
	int64_t tombstone_age_ms;     /* TOMBSTONE_AGE_MS, or THEATER_TEST_TOMBSTONE_AGE_MS */
	/* replica.c */
	int64_t unhealthy_until_ms;   /* writes refused until then (a stream ack failed) */
	int place_ready;              /* the placement watch delivered every key */
	struct bus_sub *mail_sub;     /* mail.c */
	int leaving;                  /* atomic: cluster_stop ran; no takeovers */
	int64_t beat_ok_since_ms;     /* atomic: our heartbeats succeed since then (0:
				       * failing) */
	int64_t beat_failing_since_ms;  /* our heartbeats fail since then (0: they succeed) */
	/* atomic: our heartbeats failed long enough (half a lapse) that the others
	 * may take our actors: no write is acknowledged until every live actor's
	 * placement was read again from the bucket (replica.c) */
	int suspect;
	int verify_failed;            /* atomic: a read of the check above failed */
	struct bus_sub *sse_sub;      /* relay.c: streams we relay to other nodes */
	int relays_out;               /* atomic: how many */
	pthread_mutex_t relay_lock;   /* relays_in, relay_alive_ms */
	struct cluster_stream *relays_in;   /* streams of other nodes we relay to clients */
	int64_t relay_alive_ms;
	/* atomic counters for /metrics (cluster_stats) */
	uint64_t stat_takeovers, stat_rebuild_failures, stat_unreplicated, stat_fenced;
	uint64_t stat_healed;          /* events published again from an old copy (job_heal) */
	pthread_mutex_t blob_lock;    /* blob.c: blob_seen */
	char blob_seen[BLOB_SEEN][96];   /* "<store>/<sha256>" published lately */
	int64_t confirm_blocked_until_ms;  /* atomic: a fence read failed; confirms and
					    * writes refused until then (replica.c) */
	int test_place_lag_ms;        /* THEATER_TEST_PLACEMENT_LAG_MS: on_place hears this
				       * much later of a move or a tombstone of an actor
				       * placed here, and of a claim that places one here
				       * (fault injection) */
	int test_delete_pause_ms;     /* THEATER_TEST_DELETE_PAUSE_MS: a delete waits this
				       * long before and after writing the tombstone
				       * (fault injection) */
	int test_mail_delay_ms;       /* THEATER_TEST_MAIL_DELAY_MS: mail from other nodes
				       * (sends, spawns, queries) is taken up this late */
	int test_tick_pause_ms;       /* THEATER_TEST_FAILOVER_TICK_PAUSE_MS: each failover
				       * round takes this much longer (fault injection:
				       * many takeovers, a slow NATS) */
	char *test_beat_fail_file;    /* THEATER_TEST_BEAT_FAIL_FILE: while it exists, our
				       * heartbeats are not written and count as failed
				       * (fault injection: NATS unreachable from here) */
	int test_heal_read_fails;     /* atomic; THEATER_TEST_HEAL_READ_FAILS: this many of
				       * the heal's reads of the stream fail (fault
				       * injection: a leader being elected) */
	enum stale_watch test_stale_watch;  /* THEATER_TEST_STALE_WATCH: the join fence
					     * takes the watch as placing every run here,
					     * or as knowing none of them ("blind") (fault
					     * injection: a replica behind the bucket's
					     * leader) */
	int64_t resync_since_ms;      /* unix ms of the first unacknowledged publish; 0: none */
};

int64_t cluster_mono_ms(void);
int64_t cluster_unix_ms(void);
/* Sleeps ms milliseconds (the calling thread: a retry's pause, a test's lag). */
void cluster_sleep_ms(int64_t ms);
/* 1 once the node is stopping (its jobs end early). */
int cluster_stopping(struct cluster *c);
/* bus_request_start, ended by bus_request_expire after timeout_ms (a delayed
 * job of the pool; at once when it stops): fn is called once. */
enum err_code cluster_request_start(struct cluster *c, const char *subject, const void *msg,
				    size_t n, unsigned timeout_ms, bus_reply_fn fn, void *user,
				    struct err *err);
/* 1 from cluster_stop on (the pool runs its delayed jobs at once then): jobs
 * that try again later end instead. */
int cluster_leaving(struct cluster *c);
/* place_node_of and place_note (cluster.c): a placement value's node; the
 * memory copy of the bucket. */
int cluster_place_node_of(const uint8_t *data, size_t len, char node_out[CLUSTER_NODE_MAX]);
/* What a placement value says: an actor placed on a node (node_out), a
 * tombstone (the actor was deleted; node_out: the node that deleted it, "" if
 * none is named; at_out: when, unix ms), or neither. */
enum place_kind { PLACE_BAD, PLACE_NODE, PLACE_DELETED };
enum place_kind cluster_place_parse(const uint8_t *data, size_t len,
				    char node_out[CLUSTER_NODE_MAX], int64_t *at_out);
/* cluster_locate, telling a tombstone (*deleted_out = 1, ERR_NOT_FOUND) from a
 * key never written (0, ERR_NOT_FOUND). A tombstone drops our copy. */
enum err_code cluster_locate_ex(struct cluster *c, const char *actor_id,
				char node_out[CLUSTER_NODE_MAX], int *deleted_out,
				struct err *err);
/* Our memory copy forgets actor_id (it was deleted). */
void cluster_place_drop(struct cluster *c, const char *actor_id);
/* The set of actors being deleted here (struct deleting). */
void cluster_deleting_add(struct cluster *c, const char *actor_id);
void cluster_deleting_remove(struct cluster *c, const char *actor_id);
int cluster_is_deleting(struct cluster *c, const char *actor_id);
void cluster_place_note(struct cluster *c, const char *id, const char *node, uint64_t rev,
			int deleted);
/* What a read of the bucket itself (its stream's leader) or our own write's
 * acknowledgement says: replaces our copy whatever its revision. The watch may
 * number entries differently (it reads one replica, and the trials showed
 * replicas whose sequences disagree with the leader's), so its revisions and
 * the leader's are not compared. */
void cluster_place_set(struct cluster *c, const char *id, const char *node, uint64_t rev);
/* Counts a failed rebuild of a placed actor (failed 1: the count so far), or
 * ends the count (failed 0: the failures before). 0 for an unknown key. */
unsigned cluster_place_rebuild_failed(struct cluster *c, const char *id, int failed);
/* A JSON line, '\n', then the body (malloc'd); and back (head: a new
 * reference, body: borrowed). */
char *cluster_envelope(json_t *head, const uint8_t *body, size_t len, size_t *out_len);
json_t *cluster_unwrap(const uint8_t *data, size_t len, const uint8_t **body, size_t *body_len);
/* replica.c: the stream, the replication hooks, failover and fencing. */
enum err_code replica_start(struct cluster *c, struct err *err);
void replica_stop(struct cluster *c);
/* Failover thread (tick_main), every beat: take over the actors of nodes whose
 * beat lapsed. Nonzero when a round was full (more candidates wait): the next
 * round then runs at once. */
int replica_failover_tick(struct cluster *c);
/* The node up with the fewest live actors (its last beat's load plus the
 * children sent there since), this one on a tie; counts one more for it. */
void cluster_least_loaded(struct cluster *c, char node_out[CLUSTER_NODE_MAX]);
/* mail.c: actor mail to and from other nodes (the supervisor's remote hooks). */
enum err_code mail_start(struct cluster *c, struct err *err);
void mail_stop(struct cluster *c);
/* blob.c: content-store blobs named by events, in the stream. Publishes the
 * blob (in chunks; wait: each acknowledged, else asynchronously, covered by
 * the next bus_stream_wait). Skips a blob published lately. */
enum err_code blob_publish(struct cluster *c, const char *store_id, const char *sha256,
			   int wait, struct err *err);
/* A blob the stream lost, published again asynchronously under message ids of
 * its own (again: a number that makes them new; the stream may remember the
 * first ones): 1 when the stream lacked it, 0 when it has it (or cannot say
 * now), -1 with err when it cannot be published. */
int blob_publish_missing(struct cluster *c, const char *store_id, const char *sha256,
			 int64_t again, struct err *err);
/* Forgets which blobs were published (after a failed publish). */
void blob_forget_all(struct cluster *c);
/* fn for every "store://<store>/hash/<sha256>" of the supervisor's own stores
 * (theater-state, theater-data) in an event's JSON data. */
void blob_each_ref(const uint8_t *data, size_t len,
		   void (*fn)(void *user, const char *store_id, const char *sha256), void *user);
/* An actor's own store (theater:simple/store): fn for the blob of each store
 * or label call that succeeded, named by event (type, data); with labels,
 * each label call is also noted there, in order (blob_apply_labels). */
struct blob_labels {
	char (*v)[64 + 129 + 65];     /* "<store>\0<label>\0<sha256>" */
	size_t n, cap;
};
void blob_each_actor_ref(const char *type, const uint8_t *data, size_t len,
			 void (*fn)(void *user, const char *store_id, const char *sha256),
			 void *user, struct blob_labels *labels);
/* Sets the noted labels in the local content store, in order (after their
 * blobs were fetched), and frees the notes. */
void blob_apply_labels(struct cluster *c, const char *actor_id, struct blob_labels *labels);
/* From the stream into the local content store (nothing when it is there).
 * ERR_NOT_FOUND when the stream lacks it. Blocks. */
enum err_code blob_fetch(struct cluster *c, const char *store_id, const char *sha256,
			 struct err *err);
/* relay.c: event streams relayed over NATS (both ends). */
enum err_code relay_start(struct cluster *c, struct err *err);
void relay_stop(struct cluster *c);
/* Heartbeat thread, every beat: "alive" to owners, ends silent streams. */
void relay_tick(struct cluster *c);
/* The response headers worth passing on, from raw header lines, into out. */
void cluster_keep_headers(const char *raw, json_t *out);
/* loopback.c. */
/* A new connection to base_url ("http://host:port"): the fd, or -1. */
int loopback_connect(const char *base_url);
/* A forwarded request (or relayed stream) for target, "/actors/<id>...", of an
 * actor this node neither runs nor places here: the forwarder read a
 * placement our copy of the bucket has not heard of yet, so the bucket's
 * leader says. Placed here: our copy now says so too, and the API answers 503
 * with Retry-After (a takeover not rebuilt yet); on another node: 503 with
 * Retry-After, answered to reply here (both copies lag: the forwarder's
 * catches up); the bucket unreadable: 503. A key never written or a
 * tombstone: the API's own 404. 1 when answered. Blocks one NATS round trip. */
int cluster_serve_unknown(struct cluster *c, const char *reply, const char *target);
/* Placement watch: actor_id, ours until now, was moved to another node. */
void replica_fence(struct cluster *c, const char *actor_id, const char *owner);
/* A tombstone names actor_id, and a copy of it may be here: it is deleted here
 * (its events never published), then its chain subject purged. */
void replica_forget(struct cluster *c, const char *actor_id);
/* After actor_id's local copy is gone: every publish so far acknowledged, its
 * chain subject purged from the stream, and it leaves the deleting set (on the
 * cluster's pool; a purge that fails is logged and done again by the sweep). */
void replica_purge_later(struct cluster *c, const char *actor_id);
/* A tombstone older than the tombstone age: its chain subject purged again,
 * then its key removed from the bucket (on the cluster's pool). */
void replica_sweep_later(struct cluster *c, const char *actor_id);


#endif
