/* bus.h - the one wrapper around libnats (the NATS C client): a connection to a
 * NATS cluster with JetStream, request/reply, subscriptions, key-value buckets
 * and one replicated stream. Nothing else in theater includes <nats/nats.h>.
 *
 * Only cluster mode (--nats) opens a bus; a single node never touches libnats,
 * so the single-node server stays self-contained at run time.
 *
 * Errors: ERR_UNAVAILABLE when NATS cannot be reached (no connection, no
 * responders, JetStream down), ERR_TIMEOUT, ERR_NOT_FOUND (key or message),
 * ERR_CONFLICT (a compare-and-set lost: the key exists, or its revision moved),
 * ERR_NOMEM. Messages name the subject or key and NATS's own reason (a
 * compare-and-set is known lost by JetStream's error code 10071, not by text).
 * Ownership: buffers handed out are malloc'd and owned by the caller.
 * Threads: every function may be called from any thread. Callbacks run on
 * libnats threads (one per subscription or watch): they must not block long.
 */
#ifndef THEATER_CLUSTER_BUS_H
#define THEATER_CLUSTER_BUS_H

#include <stddef.h>
#include <stdint.h>

#include "src/util/err.h"

struct bus;
struct bus_sub;
struct bus_kv;
struct bus_watch;

/* urls: "nats://h:p[,nats://h:p...]"; name: the connection name the servers
 * show. Retries the first connection for up to connect_ms, then reconnects
 * forever in the background. */
enum err_code bus_open(const char *urls, const char *name, unsigned connect_ms,
		       struct bus **out, struct err *err);
/* The same; `interrupted` (NULL: never), asked between attempts, ends the
 * retries at once when it returns nonzero (a stop asked during start-up). */
enum err_code bus_open_ex(const char *urls, const char *name, unsigned connect_ms,
			  int (*interrupted)(void), struct bus **out, struct err *err);
/* Drops every subscription and closes the connection. Accepts NULL. Every
 * bus_kv, bus_sub and bus_watch must be closed first. */
void bus_close(struct bus *b);
/* 1 while connected to a server. */
int bus_connected(struct bus *b);
/* The URL of the server the bus is connected to, into buf ("" when none). */
void bus_server(struct bus *b, char *buf, size_t size);

/* ---- core NATS ---- */

enum err_code bus_publish(struct bus *b, const char *subject, const void *data, size_t len,
			  struct err *err);
/* Sends a request and waits up to timeout_ms for the reply (malloc'd, owned by
 * the caller; NUL-terminated, the NUL not counted). */
enum err_code bus_request(struct bus *b, const char *subject, const void *data, size_t len,
			  unsigned timeout_ms, uint8_t **reply_out, size_t *reply_len,
			  struct err *err);
/* A request answered without a thread that waits (bus_request_start): fn is
 * called once, with ERR_OK and the reply's bytes (valid during the call), or
 * ERR_UNAVAILABLE (no one serves the subject; the connection closed), or from
 * bus_request_expire. It runs on the thread of the answers' subscription: it
 * must not block (hand longer work to a pool). */
typedef void (*bus_reply_fn)(void *user, enum err_code rc, const struct err *err,
			     const uint8_t *data, size_t len);
/* Publishes the request; *token names it for bus_request_expire. Errors at
 * once (fn is not called). */
enum err_code bus_request_start(struct bus *b, const char *subject, const void *data,
				size_t len, bus_reply_fn fn, void *user, uint64_t *token,
				struct err *err);
/* The request's time is up: fn is called with ERR_TIMEOUT (ERR_UNAVAILABLE when
 * closing) unless it was answered already (then nothing happens). */
void bus_request_expire(struct bus *b, uint64_t token, unsigned waited_ms, int closing);
/* fn(user, reply subject (NULL when none), data, len) for each message on
 * subject; with queue, one member of the queue group gets each message. The
 * reply subject and data are valid during the call only. */
typedef void (*bus_msg_fn)(void *user, const char *reply, const uint8_t *data, size_t len);
enum err_code bus_subscribe(struct bus *b, const char *subject, const char *queue,
			    bus_msg_fn fn, void *user, struct bus_sub **out, struct err *err);
/* After it returns, fn is not running and never runs again. Accepts NULL. */
void bus_unsubscribe(struct bus_sub *s);
/* A fresh inbox subject (for replies and streams), into buf. */
void bus_inbox(struct bus *b, char *buf, size_t size);

/* ---- key-value buckets ---- */

/* Opens bucket, creating it when missing (ttl_ms 0: entries never expire;
 * history: revisions kept per key, 1..64). */
enum err_code bus_kv_open(struct bus *b, const char *bucket, uint32_t ttl_ms,
			  unsigned replicas, unsigned history, struct bus_kv **out,
			  struct err *err);
void bus_kv_close(struct bus_kv *kv);
/* The value (malloc'd, NUL-terminated) and its revision. ERR_NOT_FOUND when the
 * key is missing or deleted. */
enum err_code bus_kv_get(struct bus_kv *kv, const char *key, uint8_t **data_out,
			 size_t *len_out, uint64_t *rev_out, struct err *err);
/* Revision rev of key (what kvStore_Update's "wrong last sequence: N" names).
 * ERR_NOT_FOUND. */
enum err_code bus_kv_get_revision(struct bus_kv *kv, const char *key, uint64_t rev,
				  uint8_t **data_out, size_t *len_out, struct err *err);
enum err_code bus_kv_put(struct bus_kv *kv, const char *key, const void *data, size_t len,
			 uint64_t *rev_out, struct err *err);
/* Compare-and-set: create only when the key has no value (ERR_CONFLICT when it
 * has one); update only when its revision is still `last` (ERR_CONFLICT when
 * another writer moved it). rev_out may be NULL. */
enum err_code bus_kv_create(struct bus_kv *kv, const char *key, const void *data, size_t len,
			    uint64_t *rev_out, struct err *err);
enum err_code bus_kv_update(struct bus_kv *kv, const char *key, const void *data, size_t len,
			    uint64_t last, uint64_t *rev_out, struct err *err);
/* The same compare-and-set checked against the whole stream instead of the
 * key: reads the bucket stream's last sequence L, then the key's last revision
 * (ERR_CONFLICT unless it is `last`, or when a scan of the stream from `last`
 * finds a later message on the key), then writes expecting the stream still
 * ends at L (ERR_CONFLICT when anything was written to the bucket meanwhile).
 * For a key whose own check keeps refusing a revision every read of the key
 * confirms (seen in trials after a NATS server restarted). */
enum err_code bus_kv_update_by_stream(struct bus_kv *kv, const char *key, const void *data,
				      size_t len, uint64_t last, uint64_t *rev_out,
				      struct err *err);
/* bus_kv_update (last 0: bus_kv_create) whose message also replaces every
 * earlier revision of the key (a rollup): the key then holds this one message,
 * whatever the bucket's history. */
enum err_code bus_kv_replace(struct bus_kv *kv, const char *key, const void *data, size_t len,
			     uint64_t last, uint64_t *rev_out, struct err *err);
enum err_code bus_kv_delete(struct bus_kv *kv, const char *key, struct err *err);
/* Removes every message of key from the bucket's stream, leaving no delete
 * marker: the key reads as never written (ERR_OK when it had none). */
enum err_code bus_kv_forget(struct bus_kv *kv, const char *key, struct err *err);
/* fn for every key's current value, then once with key NULL (caught up), then
 * for every change (deleted = 1 for a delete or purge, data empty), on the
 * watch's own thread, in revision order. A watch that fails, or (stall_ms >
 * 0) stays silent that long, is made again: every current value comes again. */
typedef void (*bus_kv_fn)(void *user, const char *key, const uint8_t *data, size_t len,
			  uint64_t rev, int deleted);
enum err_code bus_kv_watch(struct bus_kv *kv, unsigned stall_ms, bus_kv_fn fn, void *user,
			   struct bus_watch **out, struct err *err);
/* Asks the watch thread for a fresh watcher soon: it delivers every current
 * value again (what a watcher that lagged or lost its consumer missed). */
void bus_watch_renew(struct bus_watch *w);
/* After it returns, fn is not running and never runs again. Accepts NULL. */
void bus_watch_stop(struct bus_watch *w);

/* ---- JetStream: one stream ---- */

/* Creates stream `name` over subjects `pattern` (file storage, replicas) when
 * missing. */
enum err_code bus_stream_ensure(struct bus *b, const char *name, const char *pattern,
				unsigned replicas, struct err *err);
/* Publishes into the stream and waits for its acknowledgement (stored on a
 * quorum of the stream's replicas). msg_id de-duplicates retries (may be NULL). */
enum err_code bus_stream_publish(struct bus *b, const char *subject, const void *data,
				 size_t len, const char *msg_id, unsigned timeout_ms,
				 struct err *err);
/* Publishes without waiting; bus_stream_wait then waits until every publish
 * made so far is acknowledged. ERR_UNAVAILABLE when one of them was refused or
 * lost (the whole batch counts as not replicated). */
enum err_code bus_stream_publish_async(struct bus *b, const char *subject, const void *data,
				       size_t len, const char *msg_id, struct err *err);
enum err_code bus_stream_wait(struct bus *b, unsigned timeout_ms, struct err *err);
/* Every wait covering a refused or lost publish fails until that publish is
 * forgiven: bus_stream_forgive(upto) once everything published up to number
 * `upto` (bus_stream_published, read before publishing it all again) is
 * acknowledged again. */
uint64_t bus_stream_published(struct bus *b);
/* bus_stream_wait counting only the failures of publishes numbered above
 * `after` (a republish waits so, before it forgives). */
enum err_code bus_stream_wait_after(struct bus *b, uint64_t after, unsigned timeout_ms,
				    struct err *err);
void bus_stream_forgive(struct bus *b, uint64_t upto);
/* Reads every message of stream `name` on `subject`, oldest first:
 * fn(user, data, len) returns 0 to go on. */
typedef int (*bus_read_fn)(void *user, const uint8_t *data, size_t len);
enum err_code bus_stream_read(struct bus *b, const char *name, const char *subject,
			      unsigned timeout_ms, bus_read_fn fn, void *user, struct err *err);
/* Removes every message of stream `name` on `subject` (JetStream's purge with
 * a subject filter, answered once the stream's replicas applied it). ERR_OK
 * when there were none. */
enum err_code bus_stream_purge_subject(struct bus *b, const char *name, const char *subject,
				       struct err *err);
/* Whether stream `name` holds a message on `subject` (asked of its leader):
 * 1 yes, 0 no, -1 when it could not say (err). */
int bus_stream_has(struct bus *b, const char *name, const char *subject, struct err *err);
/* The last message of stream `name` on `subject` (asked of its leader): 1 and a
 * copy in *data (free it), 0 when there is none, -1 when it could not say. */
int bus_stream_last(struct bus *b, const char *name, const char *subject, uint8_t **data,
		    size_t *len, struct err *err);

#endif
