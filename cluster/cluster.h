/* cluster.h - theater nodes acting as one over NATS JetStream (issue 15).
 *
 * A node started with --nats joins the cluster: it announces itself with a
 * heartbeat in the `theater_nodes` key-value bucket (key: node name, value:
 * {url, load, time}; entries expire when the node stops beating), records the
 * placement of each actor it runs in the `theater_placement` bucket (key: actor
 * id, value: {node}; written with compare-and-set, so two nodes never both own
 * an actor), and serves HTTP requests forwarded by other nodes on the subject
 * `theater.node.<name>.http` (request/reply) by replaying them against its own
 * API over loopback, so a forwarded call gets exactly the local status, headers
 * and body. See docs/cluster.md.
 *
 * Ownership: the cluster borrows the supervisor; strings in the config are copied.
 * Threads: every function may be called from any thread. cluster_call blocks
 * (a NATS round trip); run it on the cluster's own pool (cluster_submit), never
 * on an HTTP thread or an actor worker; cluster_call_start does not block.
 */
#ifndef THEATER_CLUSTER_CLUSTER_H
#define THEATER_CLUSTER_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "src/util/err.h"
#include "src/util/json.h"
#include "supervisor/supervisor.h"

#define CLUSTER_NODE_MAX 65          /* a node name and its NUL */

struct cluster_config {
	const char *urls;            /* --nats */
	const char *node;            /* --node */
	const char *http_url;        /* this node's API over loopback, "http://127.0.0.1:8080" */
	const char *advertise_url;   /* how clients reach it (GET /cluster); NULL: http_url */
	const char *token;           /* its bearer token, or NULL */
	unsigned replicas;           /* of the buckets and the stream [3] */
	unsigned heartbeat_ms;       /* [1000] */
	unsigned lapse_ms;           /* the others count this node down after this long
				      * without a beat (named in its beats) [4000] */
	unsigned threads;            /* forwarding threads [16] */
	struct supervisor *sup;
	/* asked between start-up retries (NULL: never): nonzero ends the start at
	 * once, failed (a stop was asked meanwhile) */
	int (*interrupted)(void);
};

struct cluster;

/* Connects (retrying for up to 10 s), opens the buckets, serves forwarded
 * requests, starts the heartbeat and the watches. ERR_UNAVAILABLE when NATS or
 * JetStream cannot be reached. */
enum err_code cluster_start(const struct cluster_config *cfg, struct cluster **out,
			    struct err *err);
/* Stops the heartbeat, the watches, the forwarding service and cross-node
 * mail. Accepts NULL. Call before supervisor_shutdown (forwarded requests
 * would find it gone). */
void cluster_stop(struct cluster *c);
/* Stops replication (the supervisor must be shut down by then) and frees. */
void cluster_free(struct cluster *c);

const char *cluster_node(const struct cluster *c);

/* ---- placement ---- */

/* Where an actor runs, from the watched placement bucket (memory only, cheap):
 * 1 and its node in node_out when it is known, 0 when not (yet) known here. */
int cluster_lookup(struct cluster *c, const char *actor_id, char node_out[CLUSTER_NODE_MAX]);
/* The same, with the revision of the placement key our copy holds (0 when not
 * known): a later claim always has a higher one. */
int cluster_lookup_rev(struct cluster *c, const char *actor_id, char node_out[CLUSTER_NODE_MAX],
		       uint64_t *rev_out);
/* The same from the bucket itself (a NATS round trip). ERR_NOT_FOUND. */
enum err_code cluster_locate(struct cluster *c, const char *actor_id,
			     char node_out[CLUSTER_NODE_MAX], struct err *err);
/* Records that this node runs actor_id (compare-and-set: ERR_CONFLICT when
 * another node holds it). Blocks for one NATS round trip. */
enum err_code cluster_place(struct cluster *c, const char *actor_id, struct err *err);

/* Deletes actor_id from the cluster: its placement becomes a tombstone (a
 * compare-and-set of the key at the revision that names this node, the key's
 * older revisions rolled up), so no node claims, places, runs or acknowledges
 * it again. Call before the local delete, then cluster_deleted after it.
 * ERR_OK also when it was deleted already; ERR_UNAVAILABLE when another node
 * holds it now (send the delete again) or the bucket cannot be read or
 * written. Blocks one or two NATS round trips. */
enum err_code cluster_unplace(struct cluster *c, const char *actor_id, struct err *err);
/* After the local delete (done or failed): the actor's chain subject is purged
 * from the stream in the background. */
void cluster_deleted(struct cluster *c, const char *actor_id, enum err_code local_rc);

/* Why this node must refuse writes now (NATS unreachable, its heartbeats
 * failed and its actors' placement is being read again, or the stream did not
 * acknowledge lately: it refuses what it cannot replicate); NULL when it may
 * write. A static string. */
const char *cluster_unwritable(struct cluster *c);

/* ---- nodes ---- */

/* {"enabled": true, "node": me, "nodes": [{node, url, status, load, heartbeat_at,
 * heartbeat_age_ms, self}], "placements", "nats": {connected, server, replicas},
 * "writes_refused": why or null, "stats": {takeovers, rebuild_failures,
 * unreplicated, fenced, healed, relayed_streams}}: a new reference. */
json_t *cluster_json(struct cluster *c);
/* What GET /metrics shows of the cluster (api/observe.c). */
struct cluster_stats {
	unsigned nodes_up, nodes_down;
	int nats_connected;
	const char *writes_refused;   /* why (cluster_unwritable: a static string), or NULL */
	uint64_t placements;          /* keys in our copy of the placement bucket */
	uint64_t takeovers;           /* actors rebuilt and run here from the stream */
	uint64_t rebuild_failures;    /* rebuilds that failed (each is tried again) */
	uint64_t unreplicated;        /* times an event or blob was not replicated */
	uint64_t fenced;              /* copies here stopped because the actor moved */
	uint64_t healed;              /* events and blobs the stream had lost, published again */
	unsigned relayed_streams;     /* our streams relayed to other nodes now */
};
void cluster_stats(struct cluster *c, struct cluster_stats *out);
/* The advertised url of node (from its heartbeat) into buf: 1, or 0 when
 * unknown. */
int cluster_node_url(struct cluster *c, const char *node, char *buf, size_t size);
/* 1 when node is known and its heartbeat is fresh. */
int cluster_node_up(struct cluster *c, const char *node);
/* The names of the nodes that are up (this one included), at most max. */
size_t cluster_nodes_up(struct cluster *c, char (*names)[CLUSTER_NODE_MAX], size_t max);
/* How many other nodes are known and not up (their heartbeat lapsed). */
size_t cluster_nodes_down(struct cluster *c);
/* 1 when our copy of the placement bucket places an actor on a node that is not
 * up: a failover has yet to move it (its children are missing from answers). */
int cluster_moves_pending(struct cluster *c);

/* ---- forwarding ---- */

/* An HTTP request for another node's API. headers: name, value, ..., NULL. */
struct cluster_http {
	const char *method;
	const char *target;          /* path and query, as sent: "/actors/x/state?a=b" */
	const char *const *headers;
	const uint8_t *body;
	size_t len;
	unsigned timeout_ms;
};
/* Its answer. headers: a JSON object of the response headers worth passing on
 * (Content-Type, Location, ETag, ...). Release with cluster_reply_release. */
struct cluster_reply {
	int status;
	json_t *headers;
	uint8_t *body;
	size_t len;
};
void cluster_reply_release(struct cluster_reply *r);
/* Sends req to node over NATS and waits for its answer. ERR_UNAVAILABLE (the
 * node does not answer: down, or NATS is), ERR_TIMEOUT. Blocks. */
enum err_code cluster_call(struct cluster *c, const char *node, const struct cluster_http *req,
			   struct cluster_reply *out, struct err *err);
/* cluster_call without a thread that waits: done is called once, with the
 * answer (r: its fields may be taken, set to NULL; released after done) or
 * the error, on a NATS thread or the cluster's pool; it must not block.
 * Errors at once (done is not called). */
typedef void (*cluster_call_fn)(void *user, enum err_code rc, const struct err *err,
				struct cluster_reply *r);
enum err_code cluster_call_start(struct cluster *c, const char *node,
				 const struct cluster_http *req, cluster_call_fn done,
				 void *user, struct err *err);
/* ---- event streams of another node (relay.c) ---- */

/* A server-sent event stream of another node, relayed over NATS: the bytes of
 * that node's own answer to a GET with Accept: text/event-stream. */
struct cluster_stream;
/* Called on a libnats thread, in order; nonzero: stop (the stream ends). */
typedef int (*cluster_stream_data_fn)(void *user, const uint8_t *data, size_t len);
/* Called once when the stream ended (the owner ended it, went silent, or a
 * message was lost): the client should resume with Last-Event-ID. */
typedef void (*cluster_stream_end_fn)(void *user);
/* Asks node for the stream req->target (GET; req->headers passed on). The
 * head of the answer goes to head_out: when it is a stream (status 200,
 * text/event-stream), *out is set; then call cluster_stream_attach, and
 * cluster_stream_close when done. Otherwise *out stays NULL and head_out is
 * the whole answer (a 404, ...). head_out->status 0: the node relays too many
 * streams (send the client there). ERR_UNAVAILABLE, ERR_TIMEOUT. Blocks. */
enum err_code cluster_stream_open(struct cluster *c, const char *node,
				  const struct cluster_http *req, struct cluster_reply *head_out,
				  struct cluster_stream **out, struct err *err);
/* Bytes that came before are delivered at once (on this thread). */
void cluster_stream_attach(struct cluster_stream *s, cluster_stream_data_fn on_data,
			   cluster_stream_end_fn on_end, void *user);
/* Stops the relay (the owner is told); no callback runs after it returns.
 * Do not call it from a callback. Accepts NULL. */
void cluster_stream_close(struct cluster_stream *s);

/* Runs fn(arg) on the cluster's own threads (where cluster_call may block).
 * ERR_UNAVAILABLE once stopping. */
enum err_code cluster_submit(struct cluster *c, void (*fn)(void *arg), void *arg);
/* The same, delay_ms from now. */
enum err_code cluster_submit_after(struct cluster *c, uint32_t delay_ms, void (*fn)(void *arg),
				   void *arg);

#endif
