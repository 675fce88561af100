/* db.h - the SQLite index of runs and chain events (THEATER_HOME/theater.db).
 *
 * The chain files are the durable record; this database is an index that can be
 * rebuilt from them (db_rebuild_from_chains), which is why it runs in WAL mode
 * with synchronous=NORMAL. The schema version lives in PRAGMA user_version;
 * db_open creates or migrates it and refuses a newer one (ERR_UNSUPPORTED).
 *
 * Ownership: db_open returns a handle freed by db_close. struct db_run is
 * caller-owned; its strings are owned by the struct when filled by db_run_get
 * or passed to a db_run_list callback (db_run_release frees them; the list
 * releases what it passes after the callback returns). Inputs are borrowed.
 *
 * Threads: every function may be called from any thread. One connection is
 * guarded by one mutex; statements are prepared once and cached. Callbacks of
 * db_run_list run after the mutex is released, so they may call db_* again.
 *
 * Errors: ERR_NOT_FOUND, ERR_CONFLICT (run id exists), ERR_INVALID (bad status,
 * cursor or argument), ERR_BAD_ID (empty or oversize run id), ERR_IO (SQLite
 * failed; the message carries sqlite3_errmsg), ERR_NOMEM, ERR_UNSUPPORTED.
 */
#ifndef THEATER_DB_H
#define THEATER_DB_H

#include <stddef.h>
#include <stdint.h>

#include "src/util/err.h"

#define DB_SCHEMA_VERSION 5
#define DB_LIST_DEFAULT 50
#define DB_LIST_MAX 1000

struct db;

/* A batch: from db_batch_begin to db_batch_end, every write of any thread is one
 * transaction (each function's own transaction a savepoint inside it), so
 * thousands of runs indexed at once (start-up recovery, shutdown, the flusher's
 * group commits) cost one commit. Batches nest; keep them short, since other
 * threads' writes wait for the end to be committed. */
enum err_code db_batch_begin(struct db *d, struct err *err);
enum err_code db_batch_end(struct db *d, struct err *err);

/* Opens (creating) the database file at path. */
enum err_code db_open(const char *path, struct db **out, struct err *err);
void db_close(struct db *d);   /* accepts NULL */

struct db_run {
	char id[37];
	char *name;
	char *manifest_ref;
	char *package_ref;
	char package_sha256[65];
	char parent_id[37];          /* "" when none */
	char *status;                /* starting running stopping stopped failed killed deleted */
	char *reason;                /* may be NULL */
	int64_t created_at, started_at, stopped_at;   /* unix ms; 0 when not yet */
	uint64_t head_seq;
	char head_hash[65];          /* "" when no events */
	int64_t updated_at;          /* unix ms; strictly increases on every change */
	char *manifest_json;         /* compact JSON as given, may be NULL */
	int damaged;                 /* not stored: the supervisor found its chain damaged */
	char head_type[96];          /* not stored: the head event's type when the supervisor
				      * appended it in this process ("" when unknown); lists
				      * read it from the index (db_run_filter.head_event) */
	int64_t head_time;           /* the head event's time with head_type (0: unknown) */
	uint64_t head_offset;        /* read only: where event head_seq's record starts in the
				      * chain file (its checkpoint), DB_NO_OFFSET when the
				      * index has no row for it */
	uint64_t head_end;           /* read only: where that record ends (the chain file's
				      * size when nothing followed), DB_NO_OFFSET unknown */
	int head_idle;               /* read only: the run was idle at its head: the head
				      * event is marked "idle", or a clean stop found it idle
				      * there (db_run_mark_idle) */
};
#define DB_NO_OFFSET UINT64_MAX

/* Frees the strings and zeroes the struct. Accepts NULL. */
void db_run_release(struct db_run *r);

/* True for the statuses above ("deleted" is the supervisor's tombstone). */
int db_status_valid(const char *status);
/* Current wall-clock time in unix ms. */
int64_t db_now_ms(void);

/* Inserts a new run. id must be non-empty; status must be valid; NULL name is
 * stored as ""; created_at 0 means now. updated_at is always set to now.
 * ERR_CONFLICT when the id exists. */
enum err_code db_run_insert(struct db *d, const struct db_run *r, struct err *err);
/* Fills out (release it with db_run_release). ERR_NOT_FOUND. */
enum err_code db_run_get(struct db *d, const char *id, struct db_run *out, struct err *err);

/* Sets status and reason (NULL clears it). When ts != 0: "running" sets
 * started_at = ts; "stopped", "failed" and "killed" set stopped_at = ts;
 * "deleted" sets stopped_at only when it is still 0.
 * ERR_INVALID for an unknown status, ERR_NOT_FOUND for an unknown run. */
enum err_code db_run_set_status(struct db *d, const char *id, const char *status,
				const char *reason, int64_t ts, struct err *err);
enum err_code db_run_set_package(struct db *d, const char *id, const char *package_ref,
				 const char *sha256_hex, struct err *err);
/* hash_hex may be NULL or "" for seq 0. */
enum err_code db_run_set_head(struct db *d, const char *id, uint64_t seq, const char *hash_hex,
			      struct err *err);
/* Marks the run idle at its head (head_idle) if the index's head is still
 * head_seq with a known end, for a clean stop that leaves an idle actor's chain
 * as it is: the next start then leaves it lazy and its chain unopened, as after
 * an idle `suspended` event. *marked_out: 1 when marked, 0 when the index's head
 * is elsewhere (the caller records the suspension in the chain instead). The
 * caller syncs the chain before the transaction holding this commits. */
enum err_code db_run_mark_idle(struct db *d, const char *id, uint64_t head_seq,
			       int *marked_out, struct err *err);
/* Removes the run row and its event rows. ERR_NOT_FOUND when there was no run
 * (event rows are removed anyway). */
enum err_code db_run_delete(struct db *d, const char *id, struct err *err);

struct db_run_filter {
	const char *status, *name, *parent;   /* exact matches; NULL = any; parent "" = top level */
	unsigned limit;                       /* 0 -> DB_LIST_DEFAULT; capped at DB_LIST_MAX */
	const char *cursor;                   /* NULL or "" = from the start */
	int head_event;                       /* also read each run's head event type and
					       * time (head_type, head_time) from the index */
};
/* Pages in (created_at, id) order and calls cb per run (the run is released
 * after cb returns). A nonzero return from cb stops the listing early; the
 * cursor then points after the last run passed. *next_cursor_out is malloc'd
 * or NULL when there is nothing more. The cursor is opaque text
 * ("<created_at>:<id>"); a malformed one -> ERR_INVALID. */
enum err_code db_run_list(struct db *d, const struct db_run_filter *f,
			  int (*cb)(void *user, const struct db_run *r), void *user,
			  char **next_cursor_out, struct err *err);

/* The query plan SQLite uses for the list f asks for (EXPLAIN QUERY PLAN, one
 * line per step; *plan_out malloc'd): for tests that lists use their indexes. */
enum err_code db_run_list_plan(struct db *d, const struct db_run_filter *f, char **plan_out,
			       struct err *err);

/* Runs with this status (from the status index, without reading them). */
enum err_code db_run_count(struct db *d, const char *status, uint64_t *count_out,
			   struct err *err);

/* Marks every run in starting/running/stopping as failed with reason and
 * stopped_at = now; *count_out (may be NULL) gets how many. */
enum err_code db_runs_fail_live(struct db *d, const char *reason, int64_t now,
				unsigned *count_out, struct err *err);

struct db_event_row {
	uint64_t seq;
	uint64_t offset;
	int64_t timestamp;            /* unix ms */
	const char *event_type;
	/* Kept for the head only (db_record_events' last row): where the record
	 * ends (0: unknown) and whether its data is marked "idle": true. */
	uint64_t end;
	int idle;
};
/* Inserts rows in ONE transaction (INSERT OR REPLACE on (actor_id, seq)). */
enum err_code db_events_index(struct db *d, const char *actor_id, const struct db_event_row *rows,
			      size_t n, struct err *err);
/* In ONE transaction: index rows (may be 0), move the run's head to head_seq /
 * head_hash, and, when status is not NULL, set the status as db_run_set_status
 * does. Used for every durable batch of events, so each costs one commit. */
enum err_code db_record_events(struct db *d, const char *actor_id,
			       const struct db_event_row *rows, size_t n, uint64_t head_seq,
			       const char *head_hash, const char *status, const char *reason,
			       int64_t ts, struct err *err);
/* Timestamp and offset of one event (either output may be NULL); ERR_NOT_FOUND. */
enum err_code db_event_get(struct db *d, const char *actor_id, uint64_t seq,
			   int64_t *timestamp_out, uint64_t *offset_out, struct err *err);
/* Timestamp and type of one indexed event (type_out gets at most type_cap - 1
 * characters); ERR_NOT_FOUND. */
enum err_code db_event_type(struct db *d, const char *actor_id, uint64_t seq,
			    int64_t *timestamp_out, char *type_out, size_t type_cap, struct err *err);
/* Highest indexed seq of an actor, 0 when none (or on error). */
uint64_t db_events_max_seq(struct db *d, const char *actor_id);

/* Indexes the events of a known run's chain after seq `from` (events the index
 * lacks after a crash between a chain sync and its commit), with their lifecycle
 * rows, head, and the status they imply; *status_out is that status (static) or
 * NULL when they hold no lifecycle event. */
struct chain;
enum err_code db_catch_up(struct db *d, const char *actor_id, struct chain *c, uint64_t from,
			  const char **status_out, struct err *err);

/* ---- idempotency keys (docs/durability.md) ----
 * One row per (key, scope): the request's SHA-256 and, once done, the response
 * that answered it. Rows older than the window are forgotten. */
struct db_idem {
	int claimed;                  /* 1: the key is new and now ours (in progress) */
	char request_sha[65];
	int status;                   /* 0: still in progress; else the HTTP status */
	char *content_type, *location;
	uint8_t *body;                /* NUL after body_len */
	size_t body_len;
	int64_t created_at;
};
void db_idem_release(struct db_idem *x);
/* Forgets keys older than window_ms, then claims (key, scope) or reads its row. */
enum err_code db_idem_claim(struct db *d, const char *key, const char *scope,
			    const char *request_sha, int64_t now, int64_t window_ms,
			    struct db_idem *out, struct err *err);
/* Stores the outcome of a claimed key. */
enum err_code db_idem_finish(struct db *d, const char *key, const char *scope, int status,
			     const char *content_type, const char *location, const void *body,
			     size_t len, struct err *err);
/* Forgets one key (an outcome worth retrying), or with key NULL every key still
 * in progress (at start: their requests died with the last process). */
enum err_code db_idem_forget(struct db *d, const char *key, const char *scope, struct err *err);

/* ---- the lifecycle log: one global, ordered stream of lifecycle events ----
 * (added for the supervisor's all-actors stream; ids are 1-based, strictly
 * increasing and never reused, so they serve as SSE ids). */
struct db_lifecycle_row {
	uint64_t id;                  /* global position */
	const char *actor_id;
	uint64_t seq;                 /* the event's seq in the actor's chain, 0 when none */
	const char *event_type;
	const char *status;           /* run status after the event, may be NULL */
	int64_t timestamp;            /* unix ms */
	const char *data;             /* JSON text, never NULL ("" when none given) */
};
/* Appends a row; *id_out (may be NULL) gets its id. */
enum err_code db_lifecycle_append(struct db *d, const char *actor_id, uint64_t seq,
				  const char *event_type, const char *status, int64_t timestamp,
				  const char *data_json, uint64_t *id_out, struct err *err);
/* The highest id, 0 when empty (or on error). */
uint64_t db_lifecycle_head(struct db *d);

/* The index's checkpoint thread runs a checkpoint whenever a commit leaves the
 * write-ahead log at this many pages or more. */
#define DB_CHECKPOINT_PAGES 2048
/* Checkpoints (the write-ahead log copied into the database, and the log then
 * started again from its beginning) done by that thread since db_open. 0 for NULL. */
uint64_t db_checkpoints(struct db *d);
/* Pages in the write-ahead log after the last commit; 0 for NULL. */
int db_wal_pages(struct db *d);
/* Rows with id > after, oldest first, at most limit (0 -> DB_LIST_DEFAULT, capped
 * at DB_LIST_MAX). cb runs without the lock, strings borrowed for the call; a
 * nonzero return stops early. */
enum err_code db_lifecycle_after(struct db *d, uint64_t after, unsigned limit,
				 int (*cb)(void *user, const struct db_lifecycle_row *r), void *user,
				 struct err *err);

/* Rebuilds the index from the chain files <chains_dir>/<id>.chain. For each: makes sure
 * a run row exists (when missing, from <id>.meta.json: name = actor_name (the id
 * when there is no meta file), manifest_ref = manifest_path, created_at and
 * started_at = started_at * 1000, status "failed", reason "recovered",
 * stopped_at = the file's mtime); indexes every event that verifies (offsets
 * from scanning the file; the timestamp from the event data's "timestamp" field
 * when the data is a JSON object with an integer one (unix ms), else the file's
 * mtime); drops index rows past the chain's length; sets head seq/hash. A
 * damaged chain is indexed up to its damage (logged). Runs without a chain file
 * are left alone, and so is the lifecycle log (it is not rebuilt). *runs_out = chain files processed, *events_out = events
 * indexed (either may be NULL). */
enum err_code db_rebuild_from_chains(struct db *d, const char *chains_dir, unsigned *runs_out,
				     uint64_t *events_out, struct err *err);
/* Both: an EMPTY chain file with no run row (and no <id>.meta.json, which older
 * versions' spawns wrote first) is not a run (a spare, or a spawn that has written
 * nothing yet) and is never indexed. The sweep, for start-up only
 * (no spawn running), also removes such a file when the spares table does not
 * hold its id (left by a crash between a spawn taking it and its first event or
 * run row, or by a refill whose row was lost), and an older version's
 * ".spare-*" files. */
enum err_code db_rebuild_from_chains_sweep(struct db *d, const char *chains_dir,
					   unsigned *runs_out, uint64_t *events_out,
					   struct err *err);
/* The same for one chain, <chains_dir>/<id>.chain (nothing when the index has
 * its run already): a chain another node's actor came in by (cluster adoption),
 * without reading the directory (which, per adoption, made a failover of N
 * actors read N directories of N files). */
enum err_code db_rebuild_chain(struct db *d, const char *chains_dir, const char *id,
			       uint64_t *events_out, struct err *err);

/* Spare chain files (supervisor/spares.c): the ids of empty "<id>.chain" files
 * made ahead of need. put and drop are one transaction each (duplicates and
 * missing ids are fine). list first drops the ids that became runs, then returns
 * the others (malloc'd, caller frees; NULL when none). */
enum err_code db_spare_put(struct db *d, const char (*ids)[37], size_t n, struct err *err);
enum err_code db_spare_drop(struct db *d, const char (*ids)[37], size_t n, struct err *err);
enum err_code db_spare_list(struct db *d, char (**ids_out)[37], size_t *n_out, struct err *err);

#endif
