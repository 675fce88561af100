/* db.c - SQLite index of runs and chain events; see db.h.
 *
 * The one module that includes <sqlite3.h>. One connection, one mutex, and a
 * table of statements prepared at open (SQLITE_PREPARE_PERSISTENT) and reset
 * after each use, so no statement outlives the lock with bindings that point at
 * caller memory. updated_at is written as MAX(now, updated_at + 1) so that two
 * changes within one millisecond still yield different ETags.
 *
 * Checkpoints run on a thread of their own, with a second connection: the
 * main connection's WAL hook wakes it once the log holds DB_CHECKPOINT_PAGES, and
 * it copies the log into the database beside the writers, taking the mutex only
 * for a last short pass (checkpoint_run). SQLite's own autocheckpoint would do
 * the whole copy and its syncs inside whichever commit crossed the mark, under
 * the mutex every index user waits on (a spawn that met one took 30-40 ms;
 * docs/benchmarks.md).
 */
#include "src/db.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "src/chain.h"
#include "src/util/buf.h"
#include "src/util/crypto.h"
#include "src/util/json.h"
#include "src/util/log.h"

#define RUN_COLS "id, name, manifest_ref, package_ref, package_sha256, parent_id, status, " \
		 "reason, created_at, started_at, stopped_at, head_seq, head_hash, updated_at, " \
		 "manifest_json"
/* What a SELECT of runs reads: RUN_COLS and the offset of the head event (the
 * checkpoint a chain opens from, chain_open_from), or NULL when not indexed. */
#define RUN_SELECT RUN_COLS ", (SELECT byte_offset FROM events WHERE actor_id = runs.id " \
		   "AND seq = runs.head_seq), NULL, NULL, head_end, head_idle"
#define LIVE_STATUSES "('starting', 'running', 'stopping')"
#define BUSY_TIMEOUT_MS 5000
#define CHECKPOINT_BACKSTOP (4 * DB_CHECKPOINT_PAGES)
#define REBUILD_BATCH 512

enum stmt_id {
	ST_BEGIN, ST_COMMIT, ST_ROLLBACK,
	ST_SAVE, ST_RELEASE, ST_ROLLBACK_TO,
	ST_RUN_INSERT, ST_RUN_GET, ST_RUN_STATUS, ST_RUN_PACKAGE, ST_RUN_HEAD, ST_RUN_IDLE, ST_RUN_DELETE,
	ST_FAIL_LIVE, ST_RUN_COUNT, ST_RUN_EXISTS,
	ST_EVENT_PUT, ST_EVENT_GET, ST_EVENT_MAX, ST_EVENT_DELETE_ALL,
	ST_LIFE_PUT, ST_LIFE_HEAD, ST_LIFE_AFTER,
	ST_IDEM_CLAIM, ST_IDEM_GET, ST_IDEM_FINISH, ST_IDEM_FORGET, ST_IDEM_EXPIRE,
	ST_IDEM_DROP_PENDING,
	ST_SPARE_PUT, ST_SPARE_DROP, ST_SPARE_HAS,
	ST__COUNT
};

static const char *const stmt_sql[ST__COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_SAVE] = "SAVEPOINT inner",
	[ST_RELEASE] = "RELEASE inner",
	[ST_ROLLBACK_TO] = "ROLLBACK TO inner",
	[ST_RUN_INSERT] = "INSERT INTO runs (" RUN_COLS ") VALUES "
			  "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
	[ST_RUN_GET] = "SELECT " RUN_SELECT " FROM runs WHERE id = ?1",
	[ST_RUN_STATUS] = "UPDATE runs SET status = ?2, reason = ?3, "
			  "started_at = CASE WHEN ?4 THEN ?6 ELSE started_at END, "
			  "stopped_at = CASE WHEN ?5 OR (?8 AND stopped_at = 0) THEN ?6 "
			  "WHEN ?2 IN ('starting', 'running') THEN 0 ELSE stopped_at END, "
			  "updated_at = MAX(?7, updated_at + 1) WHERE id = ?1",
	[ST_RUN_PACKAGE] = "UPDATE runs SET package_ref = ?2, package_sha256 = ?3, "
			   "updated_at = MAX(?4, updated_at + 1) WHERE id = ?1",
	[ST_RUN_HEAD] = "UPDATE runs SET head_seq = ?2, head_hash = ?3, "
			"updated_at = MAX(?4, updated_at + 1), head_end = ?5, head_idle = ?6 "
			"WHERE id = ?1",
	[ST_RUN_IDLE] = "UPDATE runs SET head_idle = 1 WHERE id = ?1 AND head_seq = ?2 "
			"AND head_end IS NOT NULL",
	[ST_RUN_DELETE] = "DELETE FROM runs WHERE id = ?1",
	[ST_RUN_COUNT] = "SELECT COUNT(*) FROM runs WHERE status = ?1",
	[ST_RUN_EXISTS] = "SELECT 1 FROM runs WHERE id = ?1",
	[ST_FAIL_LIVE] = "UPDATE runs SET status = 'failed', reason = ?1, stopped_at = ?2, "
			 "updated_at = MAX(?3, updated_at + 1) WHERE status IN " LIVE_STATUSES,
	[ST_EVENT_PUT] = "INSERT OR REPLACE INTO events (actor_id, seq, byte_offset, timestamp_ms, "
			 "event_type) VALUES (?1, ?2, ?3, ?4, ?5)",
	[ST_EVENT_GET] = "SELECT timestamp_ms, byte_offset, event_type FROM events "
			 "WHERE actor_id = ?1 AND seq = ?2",
	[ST_EVENT_MAX] = "SELECT MAX(seq) FROM events WHERE actor_id = ?1",
	[ST_EVENT_DELETE_ALL] = "DELETE FROM events WHERE actor_id = ?1",
	[ST_LIFE_PUT] = "INSERT INTO lifecycle (actor_id, seq, event_type, status, timestamp_ms, "
			"data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[ST_LIFE_HEAD] = "SELECT MAX(id) FROM lifecycle",
	[ST_LIFE_AFTER] = "SELECT id, actor_id, seq, event_type, status, timestamp_ms, data "
			  "FROM lifecycle WHERE id > ?1 ORDER BY id LIMIT ?2",
	[ST_IDEM_CLAIM] = "INSERT OR IGNORE INTO idempotency (key, scope, request_sha, status, "
			  "created_at) VALUES (?1, ?2, ?3, 0, ?4)",
	[ST_IDEM_GET] = "SELECT request_sha, status, content_type, location, body, created_at "
			"FROM idempotency WHERE key = ?1 AND scope = ?2",
	[ST_IDEM_FINISH] = "UPDATE idempotency SET status = ?3, content_type = ?4, location = ?5, "
			   "body = ?6 WHERE key = ?1 AND scope = ?2",
	[ST_IDEM_FORGET] = "DELETE FROM idempotency WHERE key = ?1 AND scope = ?2",
	[ST_IDEM_EXPIRE] = "DELETE FROM idempotency WHERE created_at < ?1",
	[ST_IDEM_DROP_PENDING] = "DELETE FROM idempotency WHERE status = 0",
	[ST_SPARE_PUT] = "INSERT OR IGNORE INTO spares (id) VALUES (?1)",
	[ST_SPARE_DROP] = "DELETE FROM spares WHERE id = ?1",
	[ST_SPARE_HAS] = "SELECT 1 FROM spares WHERE id = ?1",
};

static const char schema_v1[] =
	"CREATE TABLE IF NOT EXISTS runs ("
	" id TEXT PRIMARY KEY NOT NULL,"
	" name TEXT NOT NULL,"
	" manifest_ref TEXT,"
	" package_ref TEXT,"
	" package_sha256 TEXT NOT NULL DEFAULT '',"
	" parent_id TEXT NOT NULL DEFAULT '',"
	" status TEXT NOT NULL,"
	" reason TEXT,"
	" created_at INTEGER NOT NULL,"
	" started_at INTEGER NOT NULL DEFAULT 0,"
	" stopped_at INTEGER NOT NULL DEFAULT 0,"
	" head_seq INTEGER NOT NULL DEFAULT 0,"
	" head_hash TEXT NOT NULL DEFAULT '',"
	" updated_at INTEGER NOT NULL,"
	" manifest_json TEXT);"
	"CREATE INDEX IF NOT EXISTS runs_by_created ON runs (created_at, id);"
	"CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status, created_at, id);"
	"CREATE INDEX IF NOT EXISTS runs_by_parent ON runs (parent_id, created_at, id);"
	"CREATE TABLE IF NOT EXISTS events ("
	" actor_id TEXT NOT NULL,"
	" seq INTEGER NOT NULL,"
	" byte_offset INTEGER NOT NULL,"
	" timestamp_ms INTEGER NOT NULL,"
	" event_type TEXT NOT NULL,"
	" PRIMARY KEY (actor_id, seq)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS lifecycle ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" actor_id TEXT NOT NULL,"
	" seq INTEGER NOT NULL,"
	" event_type TEXT NOT NULL,"
	" status TEXT,"
	" timestamp_ms INTEGER NOT NULL,"
	" data TEXT NOT NULL);"
	"PRAGMA user_version = 1;";

/* v2: outcomes of requests sent with an Idempotency-Key (status 0: in progress). */
static const char schema_v2[] =
	"CREATE TABLE IF NOT EXISTS idempotency ("
	" key TEXT NOT NULL,"
	" scope TEXT NOT NULL,"
	" request_sha TEXT NOT NULL,"
	" status INTEGER NOT NULL,"
	" content_type TEXT,"
	" location TEXT,"
	" body BLOB,"
	" created_at INTEGER NOT NULL,"
	" PRIMARY KEY (key, scope)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS idempotency_by_created ON idempotency (created_at);"
	"PRAGMA user_version = 2;";

/* v3: lists filtered by name use an index too (issue 16). */
static const char schema_v3[] =
	"CREATE INDEX IF NOT EXISTS runs_by_name ON runs (name, created_at, id);"
	"PRAGMA user_version = 3;";

/* v4: where the head event's record ends in the chain file and whether it is
 * marked idle, so a start can leave an idle run's chain unopened when one stat
 * shows the file ends there (docs/durability.md, "Lazy recovery"). NULL: unknown. */
static const char schema_v4[] =
	"ALTER TABLE runs ADD COLUMN head_end INTEGER;"
	"ALTER TABLE runs ADD COLUMN head_idle INTEGER NOT NULL DEFAULT 0;"
	"PRAGMA user_version = 4;";

/* v5: spare chain files (supervisor/spares.c): empty "<id>.chain" files created
 * ahead of need, kept across restarts. A row is written before its file is
 * created, so every spare on disk has one (a start reconciles the rows: ids that
 * became runs are dropped, the others checked with one stat). */
static const char schema_v5[] =
	"CREATE TABLE IF NOT EXISTS spares (id TEXT PRIMARY KEY NOT NULL) WITHOUT ROWID;"
	"PRAGMA user_version = 5;";

/* Filtered lists: one statement per combination of filters (status, name,
 * parent, cursor), so each uses its index; a generic "(?1 IS NULL OR status =
 * ?1)" makes SQLite scan the whole table. Bits of the statement's slot. */
enum { LIST_STATUS = 1, LIST_NAME = 2, LIST_PARENT = 4, LIST_CURSOR = 8, LIST_KINDS = 16 };

struct db {
	pthread_mutex_t mu;
	sqlite3 *conn;
	char *path;
	sqlite3_stmt *stmts[ST__COUNT];
	sqlite3_stmt *lists[LIST_KINDS];   /* prepared on first use, under mu */
	unsigned batch;               /* open db_batch_begin calls, under mu */
	/* the checkpointer (ckpt_mu; ckpt_conn, its thread's own, is set while the
	 * thread runs) */
	pthread_mutex_t ckpt_mu;
	pthread_cond_t ckpt_cond;
	pthread_t ckpt_thread;
	sqlite3 *ckpt_conn;
	int ckpt_due, ckpt_stop;
	uint64_t checkpoints;         /* done by the thread */
	int wal_pages;                /* after the last commit, under mu */
};

/* ---- helpers -------------------------------------------------------------- */

int64_t db_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int db_status_valid(const char *status)
{
	static const char *const ok[] = {"starting", "running", "stopping", "stopped",
					 "failed", "killed", "deleted"};
	for (size_t i = 0; status && i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strcmp(status, ok[i]) == 0)
			return 1;
	return 0;
}

static enum err_code sql_fail(struct db *d, int rc, struct err *err, const char *what)
{
	enum err_code code = ERR_IO;
	if (rc == SQLITE_NOMEM)
		code = ERR_NOMEM;
	else if ((rc & 0xff) == SQLITE_CONSTRAINT)
		code = ERR_CONFLICT;
	return err_set(err, code, "database '%s': %s: %s", d->path, what, sqlite3_errmsg(d->conn));
}

static sqlite3_stmt *stmt(struct db *d, enum stmt_id id)
{
	return d->stmts[id];
}

static void stmt_done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
	sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

/* Steps a statement that returns no rows; resets it. */
static enum err_code exec_stmt(struct db *d, sqlite3_stmt *st, struct err *err, const char *what)
{
	int rc = sqlite3_step(st);
	enum err_code code = rc == SQLITE_DONE ? ERR_OK : sql_fail(d, rc, err, what);
	stmt_done(st);
	return code;
}

/* Inside a batch (db_batch_begin) each transaction is a savepoint of the batch's
 * one transaction, so a failure rolls back only its own writes. */
static enum err_code tx(struct db *d, enum stmt_id which, struct err *err)
{
	if (d->batch && which == ST_ROLLBACK) {
		enum err_code rc = exec_stmt(d, stmt(d, ST_ROLLBACK_TO), err, "rollback to");
		return rc ? rc : exec_stmt(d, stmt(d, ST_RELEASE), err, "release");
	}
	if (d->batch)
		which = which == ST_BEGIN ? ST_SAVE : ST_RELEASE;
	return exec_stmt(d, stmt(d, which), err, stmt_sql[which]);
}

enum err_code db_batch_begin(struct db *d, struct err *err)
{
	enum err_code rc = ERR_OK;
	pthread_mutex_lock(&d->mu);
	if (d->batch == 0)
		rc = exec_stmt(d, stmt(d, ST_BEGIN), err, "beginning a batch");
	d->batch += rc == ERR_OK;
	pthread_mutex_unlock(&d->mu);
	return rc;
}

enum err_code db_batch_end(struct db *d, struct err *err)
{
	enum err_code rc = ERR_OK;
	pthread_mutex_lock(&d->mu);
	if (d->batch == 1) {
		rc = exec_stmt(d, stmt(d, ST_COMMIT), err, "committing a batch");
		if (rc)
			exec_stmt(d, stmt(d, ST_ROLLBACK), NULL, "rolling back a batch");
	}
	if (d->batch)
		d->batch--;
	pthread_mutex_unlock(&d->mu);
	return rc;
}

static enum err_code id_check(const char *id, struct err *err)
{
	if (!id || !*id || strlen(id) > 36)
		return err_set(err, ERR_BAD_ID, "invalid run id");
	return ERR_OK;
}

/* ---- open / close ----------------------------------------------------------- */

static enum err_code db_configure(struct db *d, struct err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_busy_timeout(d->conn, BUSY_TIMEOUT_MS);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(d->conn, "PRAGMA journal_mode = WAL", -1, &st, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW &&
	    sqlite3_stricmp((const char *)sqlite3_column_text(st, 0), "wal") != 0) {
		sqlite3_finalize(st);
		return err_set(err, ERR_IO, "database '%s': cannot switch to WAL mode", d->path);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_OK)
		return sql_fail(d, rc, err, "journal_mode");
	/* The chain files are the durable record; the index is rebuildable. NORMAL
	 * keeps the database consistent after a crash without a sync per commit.
	 * Checkpoints (which do sync) come every DB_CHECKPOINT_PAGES, on the
	 * checkpointer's thread (db_open). */
	/* A page cache of up to 32 MiB (SQLite's default is 2): a start or a stop
	 * touches every run's row and head event; at 100,000 runs the index is tens
	 * of MiB, and each page missing from the cache is a pread (perf). */
	rc = sqlite3_exec(d->conn, "PRAGMA synchronous = NORMAL; PRAGMA cache_size = -32768",
			  NULL, NULL, NULL);
	return rc == SQLITE_OK ? ERR_OK : sql_fail(d, rc, err, "synchronous");
}

static enum err_code db_schema(struct db *d, struct err *err)
{
	sqlite3_stmt *st = NULL;
	int version = -1;
	int rc = sqlite3_prepare_v2(d->conn, "PRAGMA user_version", -1, &st, NULL);
	if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (version < 0)
		return sql_fail(d, rc, err, "user_version");
	if (version > DB_SCHEMA_VERSION)
		return err_set(err, ERR_UNSUPPORTED, "database '%s' has schema version %d, newer than "
			       "this build's %d", d->path, version, DB_SCHEMA_VERSION);
	if (version == DB_SCHEMA_VERSION)
		return ERR_OK;
	/* Version 0 is a new file; later migrations go here, one step per version. */
	char *msg = NULL;
	rc = sqlite3_exec(d->conn, "BEGIN IMMEDIATE;", NULL, NULL, NULL);
	if (rc == SQLITE_OK && version < 1)
		rc = sqlite3_exec(d->conn, schema_v1, NULL, NULL, &msg);
	if (rc == SQLITE_OK && version < 2)
		rc = sqlite3_exec(d->conn, schema_v2, NULL, NULL, &msg);
	if (rc == SQLITE_OK && version < 3)
		rc = sqlite3_exec(d->conn, schema_v3, NULL, NULL, &msg);
	if (rc == SQLITE_OK && version < 4)
		rc = sqlite3_exec(d->conn, schema_v4, NULL, NULL, &msg);
	if (rc == SQLITE_OK && version < 5)
		rc = sqlite3_exec(d->conn, schema_v5, NULL, NULL, &msg);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(d->conn, "COMMIT;", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		enum err_code code = sql_fail(d, rc, err, "creating the schema");
		sqlite3_exec(d->conn, "ROLLBACK;", NULL, NULL, NULL);
		sqlite3_free(msg);
		return code;
	}
	return ERR_OK;
}

static enum err_code db_prepare(struct db *d, struct err *err)
{
	for (int i = 0; i < ST__COUNT; i++) {
		int rc = sqlite3_prepare_v3(d->conn, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
					    &d->stmts[i], NULL);
		if (rc != SQLITE_OK)
			return sql_fail(d, rc, err, "preparing a statement");
	}
	return ERR_OK;
}

/* ---- the checkpointer ------------------------------------------------------ */

/* The main connection's WAL hook (under d->mu, after a commit): wakes the
 * checkpointer once the log is long enough. Should the log reach
 * CHECKPOINT_BACKSTOP all the same (no thread, or one starved of CPU or
 * failing), the commit checkpoints itself, as SQLite's autocheckpoint would. */
static int wal_hook(void *arg, sqlite3 *conn, const char *name, int pages)
{
	struct db *d = arg;
	d->wal_pages = pages;
	if (pages >= CHECKPOINT_BACKSTOP) {
		sqlite3_wal_checkpoint_v2(conn, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		return SQLITE_OK;
	}
	if (pages < DB_CHECKPOINT_PAGES || !d->ckpt_conn)
		return SQLITE_OK;
	pthread_mutex_lock(&d->ckpt_mu);
	if (!d->ckpt_due) {
		d->ckpt_due = 1;
		pthread_cond_signal(&d->ckpt_cond);
	}
	pthread_mutex_unlock(&d->ckpt_mu);
	return SQLITE_OK;
}

/* One PASSIVE checkpoint on the thread's connection: true when it ran. */
static bool checkpoint_pass(struct db *d)
{
	int log = 0;
	int rc = sqlite3_wal_checkpoint_v2(d->ckpt_conn, NULL, SQLITE_CHECKPOINT_PASSIVE, &log,
					   NULL);
	if (rc != SQLITE_OK) {
		if (rc != SQLITE_BUSY) /* once a window: every commit asks again */
			log_limited(d, LOG_WARN, "db", "checkpoint of '%s' failed: %s", d->path,
				    sqlite3_errmsg(d->ckpt_conn));
		return false;
	}
	return log >= 0;   /* -1: not in WAL mode, nothing was copied */
}

/* A checkpoint in two parts. The copy runs beside the writers (PASSIVE: it
 * waits for no one, and they write on); then, holding the mutex every index
 * user takes, a last pass copies what they wrote meanwhile. Only then has the
 * whole log been copied with no transaction started since, and the next commit
 * starts the log again from its beginning: passes beside steady writers alone
 * never reach the log's end, and the log would grow without bound. */
static void checkpoint_run(struct db *d)
{
	checkpoint_pass(d);
	pthread_mutex_lock(&d->mu);
	bool ok = checkpoint_pass(d);
	pthread_mutex_unlock(&d->mu);
	pthread_mutex_lock(&d->ckpt_mu);
	d->checkpoints += ok;
	/* the commits during the first pass asked again; the last pass did it */
	if (ok)
		d->ckpt_due = 0;
	pthread_mutex_unlock(&d->ckpt_mu);
}

static void *checkpointer_main(void *arg)
{
	pthread_setname_np(pthread_self(), "db-checkpoint");
	struct db *d = arg;
	pthread_mutex_lock(&d->ckpt_mu);
	for (;;) {
		while (!d->ckpt_due && !d->ckpt_stop)
			pthread_cond_wait(&d->ckpt_cond, &d->ckpt_mu);
		if (d->ckpt_stop)
			break;
		d->ckpt_due = 0;
		pthread_mutex_unlock(&d->ckpt_mu);
		checkpoint_run(d);
		pthread_mutex_lock(&d->ckpt_mu);
	}
	pthread_mutex_unlock(&d->ckpt_mu);
	return NULL;
}

/* Starts the checkpointer (d->ckpt_conn set while it runs) and the WAL hook,
 * which replaces SQLite's autocheckpoint; without the thread the hook's
 * backstop is the only checkpoint. */
static void checkpointer_start(struct db *d)
{
	int src = sqlite3_open_v2(d->path, &d->ckpt_conn, SQLITE_OPEN_READWRITE |
				  SQLITE_OPEN_NOMUTEX, NULL);
	if (src == SQLITE_OK)
		src = sqlite3_busy_timeout(d->ckpt_conn, BUSY_TIMEOUT_MS);
	/* A connection learns that the database is in WAL mode from its first read;
	 * until then a checkpoint on it sees no log and copies nothing. */
	if (src == SQLITE_OK)
		src = sqlite3_exec(d->ckpt_conn, "PRAGMA schema_version", NULL, NULL, NULL);
	if (src != SQLITE_OK || pthread_create(&d->ckpt_thread, NULL, checkpointer_main, d) != 0) {
		log_warn("db", "no checkpoint thread for '%s' (%s): commits checkpoint themselves",
			 d->path, d->ckpt_conn ? sqlite3_errmsg(d->ckpt_conn) : "out of memory");
		sqlite3_close(d->ckpt_conn);
		d->ckpt_conn = NULL;
	}
	sqlite3_wal_hook(d->conn, wal_hook, d);
}

static void checkpointer_stop(struct db *d)
{
	if (!d->ckpt_conn)
		return;
	pthread_mutex_lock(&d->ckpt_mu);
	d->ckpt_stop = 1;
	pthread_cond_signal(&d->ckpt_cond);
	pthread_mutex_unlock(&d->ckpt_mu);
	pthread_join(d->ckpt_thread, NULL);
	sqlite3_wal_hook(d->conn, NULL, NULL);
	if (sqlite3_close(d->ckpt_conn) != SQLITE_OK)
		log_error("db", "cannot close the checkpoint connection of '%s'", d->path);
	d->ckpt_conn = NULL;
}

int db_wal_pages(struct db *d)
{
	if (!d)
		return 0;
	pthread_mutex_lock(&d->mu);
	int n = d->wal_pages;
	pthread_mutex_unlock(&d->mu);
	return n;
}

uint64_t db_checkpoints(struct db *d)
{
	if (!d)
		return 0;
	pthread_mutex_lock(&d->ckpt_mu);
	uint64_t n = d->checkpoints;
	pthread_mutex_unlock(&d->ckpt_mu);
	return n;
}

enum err_code db_open(const char *path, struct db **out, struct err *err)
{
	enum err_code rc;
	struct db *d = calloc(1, sizeof(*d));
	*out = NULL;
	if (!d || !(d->path = strdup(path))) {
		free(d);
		return err_set(err, ERR_NOMEM, "out of memory opening database '%s'", path);
	}
	pthread_mutex_init(&d->mu, NULL);
	pthread_mutex_init(&d->ckpt_mu, NULL);
	pthread_cond_init(&d->ckpt_cond, NULL);
	int src = sqlite3_open_v2(path, &d->conn, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				  SQLITE_OPEN_NOMUTEX, NULL);
	if (src != SQLITE_OK) {
		rc = d->conn ? sql_fail(d, src, err, "cannot open")
			     : err_set(err, ERR_NOMEM, "out of memory opening database '%s'", path);
		goto fail;
	}
	if ((rc = db_configure(d, err)) || (rc = db_schema(d, err)) || (rc = db_prepare(d, err)))
		goto fail;
	checkpointer_start(d);
	*out = d;
	return ERR_OK;
fail:
	db_close(d);
	return rc;
}

void db_close(struct db *d)
{
	if (!d)
		return;
	checkpointer_stop(d);
	for (int i = 0; i < ST__COUNT; i++)
		sqlite3_finalize(d->stmts[i]);
	for (int i = 0; i < LIST_KINDS; i++)
		sqlite3_finalize(d->lists[i]);
	if (sqlite3_close(d->conn) != SQLITE_OK)
		log_error("db", "cannot close database '%s': %s", d->path, sqlite3_errmsg(d->conn));
	pthread_mutex_destroy(&d->mu);
	pthread_mutex_destroy(&d->ckpt_mu);
	pthread_cond_destroy(&d->ckpt_cond);
	free(d->path);
	free(d);
}

/* ---- runs ----------------------------------------------------------------- */

void db_run_release(struct db_run *r)
{
	if (!r)
		return;
	free(r->name);
	free(r->manifest_ref);
	free(r->package_ref);
	free(r->status);
	free(r->reason);
	free(r->manifest_json);
	memset(r, 0, sizeof(*r));
}

static int col_dup(sqlite3_stmt *st, int i, char **out)
{
	*out = NULL;
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return 0;
	const unsigned char *t = sqlite3_column_text(st, i);
	if (!t)
		return -1;
	*out = strdup((const char *)t);
	return *out ? 0 : -1;
}

static void col_copy(sqlite3_stmt *st, int i, char *out, size_t size)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	snprintf(out, size, "%s", t ? (const char *)t : "");
}

/* Fills r from the current row (columns in RUN_SELECT order). */
static enum err_code run_from_row(sqlite3_stmt *st, struct db_run *r, struct err *err)
{
	memset(r, 0, sizeof(*r));
	col_copy(st, 0, r->id, sizeof(r->id));
	col_copy(st, 4, r->package_sha256, sizeof(r->package_sha256));
	col_copy(st, 5, r->parent_id, sizeof(r->parent_id));
	col_copy(st, 12, r->head_hash, sizeof(r->head_hash));
	r->created_at = sqlite3_column_int64(st, 8);
	r->started_at = sqlite3_column_int64(st, 9);
	r->stopped_at = sqlite3_column_int64(st, 10);
	r->head_seq = (uint64_t)sqlite3_column_int64(st, 11);
	r->updated_at = sqlite3_column_int64(st, 13);
	r->head_offset = sqlite3_column_type(st, 15) == SQLITE_INTEGER
				 ? (uint64_t)sqlite3_column_int64(st, 15) : DB_NO_OFFSET;
	r->head_end = sqlite3_column_type(st, 18) == SQLITE_INTEGER
			      ? (uint64_t)sqlite3_column_int64(st, 18) : DB_NO_OFFSET;
	r->head_idle = sqlite3_column_int(st, 19) != 0;
	if (col_dup(st, 1, &r->name) || col_dup(st, 2, &r->manifest_ref) ||
	    col_dup(st, 3, &r->package_ref) || col_dup(st, 6, &r->status) ||
	    col_dup(st, 7, &r->reason) || col_dup(st, 14, &r->manifest_json)) {
		db_run_release(r);
		return err_set(err, ERR_NOMEM, "out of memory reading a run");
	}
	return ERR_OK;
}

static enum err_code run_check(const struct db_run *r, struct err *err)
{
	enum err_code rc = id_check(r->id, err);
	if (rc)
		return rc;
	if (!db_status_valid(r->status))
		return err_set(err, ERR_INVALID, "invalid run status '%s'", r->status ? r->status : "");
	if (r->parent_id[0] && strnlen(r->parent_id, sizeof(r->parent_id)) >= sizeof(r->parent_id))
		return err_set(err, ERR_BAD_ID, "invalid parent id");
	return ERR_OK;
}

enum err_code db_run_insert(struct db *d, const struct db_run *r, struct err *err)
{
	enum err_code rc = run_check(r, err);
	if (rc)
		return rc;
	int64_t now = db_now_ms();
	pthread_mutex_lock(&d->mu);
	sqlite3_stmt *st = stmt(d, ST_RUN_INSERT);
	bind_text(st, 1, r->id);
	bind_text(st, 2, r->name ? r->name : "");
	bind_text(st, 3, r->manifest_ref);
	bind_text(st, 4, r->package_ref);
	bind_text(st, 5, r->package_sha256);
	bind_text(st, 6, r->parent_id);
	bind_text(st, 7, r->status);
	bind_text(st, 8, r->reason);
	sqlite3_bind_int64(st, 9, r->created_at ? r->created_at : now);
	sqlite3_bind_int64(st, 10, r->started_at);
	sqlite3_bind_int64(st, 11, r->stopped_at);
	sqlite3_bind_int64(st, 12, (sqlite3_int64)r->head_seq);
	bind_text(st, 13, r->head_hash);
	sqlite3_bind_int64(st, 14, now);
	bind_text(st, 15, r->manifest_json);
	rc = exec_stmt(d, st, err, "inserting a run");
	pthread_mutex_unlock(&d->mu);
	if (rc == ERR_CONFLICT)
		err_set(err, rc, "run '%s' already exists", r->id);
	return rc;
}

enum err_code db_run_get(struct db *d, const char *id, struct db_run *out, struct err *err)
{
	enum err_code rc = id_check(id, err);
	if (rc)
		return rc;
	pthread_mutex_lock(&d->mu);
	sqlite3_stmt *st = stmt(d, ST_RUN_GET);
	bind_text(st, 1, id);
	int src = sqlite3_step(st);
	if (src == SQLITE_ROW)
		rc = run_from_row(st, out, err);
	else if (src == SQLITE_DONE)
		rc = err_set(err, ERR_NOT_FOUND, "no run '%s'", id);
	else
		rc = sql_fail(d, src, err, "reading a run");
	stmt_done(st);
	pthread_mutex_unlock(&d->mu);
	return rc;
}

/* Runs an UPDATE of one run (already bound) and maps "no row" to ERR_NOT_FOUND. */
static enum err_code update_run(struct db *d, sqlite3_stmt *st, const char *id, struct err *err)
{
	enum err_code rc = exec_stmt(d, st, err, "updating a run");
	if (rc == ERR_OK && sqlite3_changes(d->conn) == 0)
		rc = err_set(err, ERR_NOT_FOUND, "no run '%s'", id);
	return rc;
}

/* Binds and runs the status update (d->mu held). */
static enum err_code set_status_locked(struct db *d, const char *id, const char *status,
				       const char *reason, int64_t ts, struct err *err)
{
	int starts = ts != 0 && strcmp(status, "running") == 0;
	int stops = ts != 0 && (strcmp(status, "stopped") == 0 || strcmp(status, "failed") == 0 ||
				strcmp(status, "killed") == 0);
	sqlite3_stmt *st = stmt(d, ST_RUN_STATUS);
	bind_text(st, 1, id);
	bind_text(st, 2, status);
	bind_text(st, 3, reason);
	sqlite3_bind_int(st, 4, starts);
	sqlite3_bind_int(st, 5, stops);
	sqlite3_bind_int64(st, 6, ts);
	sqlite3_bind_int64(st, 7, db_now_ms());
	sqlite3_bind_int(st, 8, ts != 0 && strcmp(status, "deleted") == 0);
	return update_run(d, st, id, err);
}

enum err_code db_run_set_status(struct db *d, const char *id, const char *status,
				const char *reason, int64_t ts, struct err *err)
{
	enum err_code rc = id_check(id, err);
	if (rc)
		return rc;
	if (!db_status_valid(status))
		return err_set(err, ERR_INVALID, "invalid run status '%s'", status ? status : "");
	pthread_mutex_lock(&d->mu);
	rc = set_status_locked(d, id, status, reason, ts, err);
	pthread_mutex_unlock(&d->mu);
	return rc;
}

enum err_code db_run_set_package(struct db *d, const char *id, const char *package_ref,
				 const char *sha256_hex, struct err *err)
{
	enum err_code rc = id_check(id, err);
	if (rc)
		return rc;
	if (sha256_hex && *sha256_hex && !sha256_hex_valid(sha256_hex))
		return err_set(err, ERR_INVALID, "invalid package sha256");
	pthread_mutex_lock(&d->mu);
	sqlite3_stmt *st = stmt(d, ST_RUN_PACKAGE);
	bind_text(st, 1, id);
	bind_text(st, 2, package_ref);
	bind_text(st, 3, sha256_hex ? sha256_hex : "");
	sqlite3_bind_int64(st, 4, db_now_ms());
	rc = update_run(d, st, id, err);
	pthread_mutex_unlock(&d->mu);
	return rc;
}

/* Binds and runs the head update (d->mu held); end DB_NO_OFFSET: unknown. */
static enum err_code set_head_locked(struct db *d, const char *id, uint64_t seq,
				     const char *hash_hex, uint64_t end, int idle,
				     struct err *err)
{
	sqlite3_stmt *st = stmt(d, ST_RUN_HEAD);
	bind_text(st, 1, id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)seq);
	bind_text(st, 3, hash_hex ? hash_hex : "");
	sqlite3_bind_int64(st, 4, db_now_ms());
	if (end == DB_NO_OFFSET || end == 0 || end > INT64_MAX)
		sqlite3_bind_null(st, 5);
	else
		sqlite3_bind_int64(st, 5, (sqlite3_int64)end);
	sqlite3_bind_int(st, 6, idle ? 1 : 0);
	return update_run(d, st, id, err);
}

enum err_code db_run_set_head(struct db *d, const char *id, uint64_t seq, const char *hash_hex,
			      struct err *err)
{
	enum err_code rc = id_check(id, err);
	if (rc)
		return rc;
	if (hash_hex && *hash_hex && !sha256_hex_valid(hash_hex))
		return err_set(err, ERR_INVALID, "invalid head hash");
	pthread_mutex_lock(&d->mu);
	rc = set_head_locked(d, id, seq, hash_hex, DB_NO_OFFSET, 0, err);
	pthread_mutex_unlock(&d->mu);
	return rc;
}

enum err_code db_run_mark_idle(struct db *d, const char *id, uint64_t head_seq,
			       int *marked_out, struct err *err)
{
	*marked_out = 0;
	enum err_code rc = id_check(id, err);
	if (rc)
		return rc;
	pthread_mutex_lock(&d->mu);
	sqlite3_stmt *st = stmt(d, ST_RUN_IDLE);
	bind_text(st, 1, id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)head_seq);
	rc = exec_stmt(d, st, err, "marking a run idle");
	if (rc == ERR_OK)
		*marked_out = sqlite3_changes(d->conn) != 0;
	pthread_mutex_unlock(&d->mu);
	return rc;
}

static enum err_code delete_locked(struct db *d, const char *id, struct err *err)
{
	enum err_code rc = tx(d, ST_BEGIN, err);
	if (rc)
		return rc;
	sqlite3_stmt *st = stmt(d, ST_EVENT_DELETE_ALL);
	bind_text(st, 1, id);
	if ((rc = exec_stmt(d, st, err, "deleting events")) == ERR_OK) {
		st = stmt(d, ST_RUN_DELETE);
		bind_text(st, 1, id);
		rc = exec_stmt(d, st, err, "deleting a run");
	}
	int found = rc == ERR_OK && sqlite3_changes(d->conn) > 0;
	if (rc == ERR_OK)
		rc = tx(d, ST_COMMIT, err);
	if (rc != ERR_OK) {
		tx(d, ST_ROLLBACK, NULL);
		return rc;
	}
	return found ? ERR_OK : err_set(err, ERR_NOT_FOUND, "no run '%s'", id);
}

enum err_code db_run_delete(struct db *d, const char *id, struct err *err)
{
	enum err_code rc = id_check(id, err);
	if (rc)
		return rc;
	pthread_mutex_lock(&d->mu);
	rc = delete_locked(d, id, err);
	pthread_mutex_unlock(&d->mu);
	return rc;
}

/* ---- listing ------------------------------------------------------------ */

static enum err_code cursor_parse(const char *cursor, int64_t *created_out, char id_out[37],
				  struct err *err)
{
	const char *colon = strchr(cursor, ':');
	char *end = NULL;
	if (!colon || colon == cursor || cursor[0] == '-' || cursor[0] == '+')
		goto bad;
	errno = 0;
	long long v = strtoll(cursor, &end, 10);
	size_t idlen = strlen(colon + 1);
	if (errno || end != colon || idlen == 0 || idlen > 36 || strchr(colon + 1, ':'))
		goto bad;
	*created_out = v;
	memcpy(id_out, colon + 1, idlen + 1);
	return ERR_OK;
bad:
	return err_set(err, ERR_INVALID, "malformed list cursor");
}

static char *cursor_make(const struct db_run *r)
{
	char *s = NULL;
	if (asprintf(&s, "%" PRId64 ":%s", r->created_at, r->id) < 0)
		return NULL;
	return s;
}

struct run_page {
	struct db_run *runs;
	size_t n;
	int more;
};

static void page_release(struct run_page *p)
{
	for (size_t i = 0; i < p->n; i++)
		db_run_release(&p->runs[i]);
	free(p->runs);
}

static unsigned list_kind(const struct db_run_filter *f, int has_cursor)
{
	return (f->status ? LIST_STATUS : 0) | (f->name ? LIST_NAME : 0) |
	       (f->parent ? LIST_PARENT : 0) | (has_cursor ? LIST_CURSOR : 0);
}

/* The SQL of one kind of list: only the conditions it filters on. */
static void list_sql(unsigned kind, char *out, size_t size)
{
	/* The head event's row joined in: its offset (as RUN_SELECT) and, for the
	 * list's last_event, its type and time: one statement per page. */
	snprintf(out, size, "SELECT " RUN_COLS ", e.byte_offset, e.event_type, e.timestamp_ms, "
		 "head_end, head_idle "
		 "FROM runs LEFT JOIN events e ON e.actor_id = runs.id AND e.seq = runs.head_seq "
		 "WHERE 1%s%s%s%s "
		 "ORDER BY created_at, id LIMIT ?6",
		 kind & LIST_STATUS ? " AND status = ?1" : "",
		 kind & LIST_NAME ? " AND name = ?2" : "",
		 kind & LIST_PARENT ? " AND parent_id = ?3" : "",
		 kind & LIST_CURSOR ? " AND (created_at, id) > (?4, ?5)" : "");
}

/* With d->mu held: the statement of one kind of list, prepared once. */
static enum err_code list_stmt(struct db *d, unsigned kind, sqlite3_stmt **out,
			       struct err *err)
{
	char sql[1024];
	if (!d->lists[kind]) {
		list_sql(kind, sql, sizeof(sql));
		int rc = sqlite3_prepare_v3(d->conn, sql, -1, SQLITE_PREPARE_PERSISTENT,
					    &d->lists[kind], NULL);
		if (rc != SQLITE_OK)
			return sql_fail(d, rc, err, "preparing a list");
	}
	*out = d->lists[kind];
	return ERR_OK;
}

static void bind_filter(sqlite3_stmt *st, const struct db_run_filter *f, int has_cursor,
			int64_t cur_created, const char *cur_id, unsigned limit)
{
	if (f->status)
		bind_text(st, 1, f->status);
	if (f->name)
		bind_text(st, 2, f->name);
	if (f->parent)
		bind_text(st, 3, f->parent);
	if (has_cursor) {
		sqlite3_bind_int64(st, 4, cur_created);
		bind_text(st, 5, cur_id);
	}
	sqlite3_bind_int64(st, 6, (sqlite3_int64)limit + 1);
}

/* Reads up to limit runs (and whether there are more) under the lock. */
static enum err_code page_fetch(struct db *d, const struct db_run_filter *f, unsigned limit,
				struct run_page *p, struct err *err)
{
	int64_t cur_created = 0;
	char cur_id[37] = "";
	int has_cursor = f->cursor && *f->cursor;
	enum err_code rc = ERR_OK;
	if (has_cursor && (rc = cursor_parse(f->cursor, &cur_created, cur_id, err)))
		return rc;
	if (!(p->runs = calloc(limit, sizeof(*p->runs))))
		return err_set(err, ERR_NOMEM, "out of memory listing runs");
	pthread_mutex_lock(&d->mu);
	sqlite3_stmt *st = NULL;
	if ((rc = list_stmt(d, list_kind(f, has_cursor), &st, err)) != ERR_OK) {
		pthread_mutex_unlock(&d->mu);
		return rc;
	}
	bind_filter(st, f, has_cursor, cur_created, cur_id, limit);
	int src;
	while ((src = sqlite3_step(st)) == SQLITE_ROW) {
		if (p->n == limit) {
			p->more = 1;
			break;
		}
		if ((rc = run_from_row(st, &p->runs[p->n], err)))
			break;
		if (f->head_event && sqlite3_column_type(st, 16) == SQLITE_TEXT &&
		    (size_t)sqlite3_column_bytes(st, 16) < sizeof(p->runs[p->n].head_type)) {
			col_copy(st, 16, p->runs[p->n].head_type, sizeof(p->runs[p->n].head_type));
			p->runs[p->n].head_time = sqlite3_column_int64(st, 17);
		}
		p->n++;
	}
	if (rc == ERR_OK && src != SQLITE_ROW && src != SQLITE_DONE)
		rc = sql_fail(d, src, err, "listing runs");
	stmt_done(st);
	pthread_mutex_unlock(&d->mu);
	return rc;
}

enum err_code db_run_list(struct db *d, const struct db_run_filter *f,
			  int (*cb)(void *user, const struct db_run *r), void *user,
			  char **next_cursor_out, struct err *err)
{
	static const struct db_run_filter none = {0};
	struct run_page p = {0};
	size_t i;
	*next_cursor_out = NULL;
	if (!f)
		f = &none;
	unsigned limit = f->limit == 0 ? DB_LIST_DEFAULT : f->limit;
	if (limit > DB_LIST_MAX)
		limit = DB_LIST_MAX;
	enum err_code rc = page_fetch(d, f, limit, &p, err);
	if (rc)
		goto fail;
	for (i = 0; i < p.n; i++)
		if (cb && cb(user, &p.runs[i]) != 0)
			break;
	/* After an early stop, resume right after the last run passed. */
	int more = p.n > 0 && (i < p.n ? i + 1 < p.n || p.more : p.more);
	size_t last = i < p.n ? i : p.n - 1;
	if (more && !(*next_cursor_out = cursor_make(&p.runs[last])))
		rc = err_set(err, ERR_NOMEM, "out of memory listing runs");
fail:
	page_release(&p);
	return rc;
}

enum err_code db_run_list_plan(struct db *d, const struct db_run_filter *f, char **plan_out,
			       struct err *err)
{
	char sql[1100] = "EXPLAIN QUERY PLAN ";
	size_t at = strlen(sql);
	list_sql(list_kind(f, f->cursor && *f->cursor), sql + at, sizeof(sql) - at);
	struct buf b;
	buf_init(&b, 1 << 16);
	*plan_out = NULL;
	pthread_mutex_lock(&d->mu);
	sqlite3_stmt *st = NULL;
	int src = sqlite3_prepare_v2(d->conn, sql, -1, &st, NULL);
	enum err_code rc = src == SQLITE_OK ? ERR_OK : sql_fail(d, src, err, "explaining a list");
	while (rc == ERR_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *detail = sqlite3_column_text(st, 3);
		if (buf_printf(&b, "%s\n", detail ? (const char *)detail : "") != ERR_OK)
			rc = err_set(err, ERR_NOMEM, "out of memory explaining a list");
	}
	if (rc == ERR_OK && src != SQLITE_DONE)
		rc = sql_fail(d, src, err, "explaining a list");
	sqlite3_finalize(st);
	pthread_mutex_unlock(&d->mu);
	if (rc == ERR_OK && !(*plan_out = buf_steal(&b, NULL)))
		rc = err_set(err, ERR_NOMEM, "out of memory explaining a list");
	buf_release(&b);
	return rc;
}

enum err_code db_run_count(struct db *d, const char *status, uint64_t *count_out,
			   struct err *err)
{
	if (!db_status_valid(status))
		return err_set(err, ERR_INVALID, "invalid run status '%s'", status ? status : "");
	pthread_mutex_lock(&d->mu);
	sqlite3_stmt *st = stmt(d, ST_RUN_COUNT);
	bind_text(st, 1, status);
	int src = sqlite3_step(st);
	enum err_code rc = ERR_OK;
	if (src == SQLITE_ROW)
		*count_out = (uint64_t)sqlite3_column_int64(st, 0);
	else
		rc = sql_fail(d, src, err, "counting runs");
	stmt_done(st);
	pthread_mutex_unlock(&d->mu);
	return rc;
}

enum err_code db_runs_fail_live(struct db *d, const char *reason, int64_t now,
				unsigned *count_out, struct err *err)
{
	pthread_mutex_lock(&d->mu);
	sqlite3_stmt *st = stmt(d, ST_FAIL_LIVE);
	bind_text(st, 1, reason);
	sqlite3_bind_int64(st, 2, now);
	sqlite3_bind_int64(st, 3, db_now_ms());
	enum err_code rc = exec_stmt(d, st, err, "failing live runs");
	unsigned n = rc == ERR_OK ? (unsigned)sqlite3_changes(d->conn) : 0;
	pthread_mutex_unlock(&d->mu);
	if (count_out)
		*count_out = n;
	return rc;
}

/* ---- events --------------------------------------------------------------- */

static enum err_code events_put_locked(struct db *d, const char *actor_id,
				       const struct db_event_row *rows, size_t n, struct err *err)
{
	sqlite3_stmt *st = stmt(d, ST_EVENT_PUT);
	for (size_t i = 0; i < n; i++) {
		if (!rows[i].event_type || rows[i].seq == 0 || rows[i].seq > INT64_MAX)
			return err_set(err, ERR_INVALID, "event row %zu is invalid", i);
		bind_text(st, 1, actor_id);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)rows[i].seq);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)rows[i].offset);
		sqlite3_bind_int64(st, 4, rows[i].timestamp);
		bind_text(st, 5, rows[i].event_type);
		enum err_code rc = exec_stmt(d, st, err, "indexing an event");
		if (rc)
			return rc;
	}
	return ERR_OK;
}

enum err_code db_events_index(struct db *d, const char *actor_id, const struct db_event_row *rows,
			      size_t n, struct err *err)
{
	enum err_code rc = id_check(actor_id, err);
	if (rc || n == 0)
		return rc;
	pthread_mutex_lock(&d->mu);
	if ((rc = tx(d, ST_BEGIN, err)) == ERR_OK) {
		rc = events_put_locked(d, actor_id, rows, n, err);
		if (rc == ERR_OK)
			rc = tx(d, ST_COMMIT, err);
		if (rc != ERR_OK)
			tx(d, ST_ROLLBACK, NULL);
	}
	pthread_mutex_unlock(&d->mu);
	return rc;
}

enum err_code db_record_events(struct db *d, const char *actor_id,
			       const struct db_event_row *rows, size_t n, uint64_t head_seq,
			       const char *head_hash, const char *status, const char *reason,
			       int64_t ts, struct err *err)
{
	enum err_code rc = id_check(actor_id, err);
	if (rc)
		return rc;
	if (head_hash && *head_hash && !sha256_hex_valid(head_hash))
		return err_set(err, ERR_INVALID, "invalid head hash");
	if (status && !db_status_valid(status))
		return err_set(err, ERR_INVALID, "invalid run status '%s'", status);
	pthread_mutex_lock(&d->mu);
	if ((rc = tx(d, ST_BEGIN, err)) == ERR_OK) {
		rc = events_put_locked(d, actor_id, rows, n, err);
		/* The head's end and idle mark come with its own row (the last one). */
		const struct db_event_row *h = n && rows[n - 1].seq == head_seq ? &rows[n - 1]
										: NULL;
		if (rc == ERR_OK)
			rc = set_head_locked(d, actor_id, head_seq, head_hash,
					     h ? h->end : DB_NO_OFFSET, h && h->idle, err);
		if (rc == ERR_OK && status)
			rc = set_status_locked(d, actor_id, status, reason, ts, err);
		if (rc == ERR_OK)
			rc = tx(d, ST_COMMIT, err);
		if (rc != ERR_OK)
			tx(d, ST_ROLLBACK, NULL);
	}
	pthread_mutex_unlock(&d->mu);
	return rc;
}

/* One row of the events index: what the caller asks for (NULL: not wanted). */
static enum err_code event_row(struct db *d, const char *actor_id, uint64_t seq,
			       int64_t *timestamp_out, uint64_t *offset_out, char *type_out,
			       size_t type_cap, struct err *err)
{
	enum err_code rc = id_check(actor_id, err);
	if (rc)
		return rc;
	pthread_mutex_lock(&d->mu);
	sqlite3_stmt *st = stmt(d, ST_EVENT_GET);
	bind_text(st, 1, actor_id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)seq);
	int src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		if (timestamp_out)
			*timestamp_out = sqlite3_column_int64(st, 0);
		if (offset_out)
			*offset_out = (uint64_t)sqlite3_column_int64(st, 1);
		if (type_out) {
			const unsigned char *t = sqlite3_column_text(st, 2);
			snprintf(type_out, type_cap, "%s", t ? (const char *)t : "");
		}
	} else if (src == SQLITE_DONE) {
		rc = err_set(err, ERR_NOT_FOUND, "run '%s' has no indexed event %" PRIu64, actor_id,
			     seq);
	} else {
		rc = sql_fail(d, src, err, "reading an event");
	}
	stmt_done(st);
	pthread_mutex_unlock(&d->mu);
	return rc;
}

enum err_code db_event_get(struct db *d, const char *actor_id, uint64_t seq,
			   int64_t *timestamp_out, uint64_t *offset_out, struct err *err)
{
	return event_row(d, actor_id, seq, timestamp_out, offset_out, NULL, 0, err);
}

enum err_code db_event_type(struct db *d, const char *actor_id, uint64_t seq,
			    int64_t *timestamp_out, char *type_out, size_t type_cap, struct err *err)
{
	return event_row(d, actor_id, seq, timestamp_out, NULL, type_out, type_cap, err);
}

uint64_t db_events_max_seq(struct db *d, const char *actor_id)
{
	uint64_t seq = 0;
	if (id_check(actor_id, NULL))
		return 0;
	pthread_mutex_lock(&d->mu);
	sqlite3_stmt *st = stmt(d, ST_EVENT_MAX);
	bind_text(st, 1, actor_id);
	if (sqlite3_step(st) == SQLITE_ROW)
		seq = (uint64_t)sqlite3_column_int64(st, 0);
	stmt_done(st);
	pthread_mutex_unlock(&d->mu);
	return seq;
}


/* ---- lifecycle log ------------------------------------------------------- */

enum err_code db_lifecycle_append(struct db *d, const char *actor_id, uint64_t seq,
				  const char *event_type, const char *status, int64_t timestamp,
				  const char *data_json, uint64_t *id_out, struct err *err)
{
	enum err_code rc = id_check(actor_id, err);
	if (rc)
		return rc;
	if (!event_type || !*event_type || seq > INT64_MAX)
		return err_set(err, ERR_INVALID, "invalid lifecycle event");
	pthread_mutex_lock(&d->mu);
	sqlite3_stmt *st = stmt(d, ST_LIFE_PUT);
	bind_text(st, 1, actor_id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)seq);
	bind_text(st, 3, event_type);
	bind_text(st, 4, status);
	sqlite3_bind_int64(st, 5, timestamp);
	bind_text(st, 6, data_json ? data_json : "");
	rc = exec_stmt(d, st, err, "appending a lifecycle event");
	if (rc == ERR_OK && id_out)
		*id_out = (uint64_t)sqlite3_last_insert_rowid(d->conn);
	pthread_mutex_unlock(&d->mu);
	return rc;
}

uint64_t db_lifecycle_head(struct db *d)
{
	uint64_t id = 0;
	pthread_mutex_lock(&d->mu);
	sqlite3_stmt *st = stmt(d, ST_LIFE_HEAD);
	if (sqlite3_step(st) == SQLITE_ROW)
		id = (uint64_t)sqlite3_column_int64(st, 0);
	stmt_done(st);
	pthread_mutex_unlock(&d->mu);
	return id;
}

struct life_page {
	struct db_lifecycle_row *rows;
	size_t n;
};

static void life_page_release(struct life_page *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free((char *)p->rows[i].actor_id);
		free((char *)p->rows[i].event_type);
		free((char *)p->rows[i].status);
		free((char *)p->rows[i].data);
	}
	free(p->rows);
}

static int life_from_row(sqlite3_stmt *st, struct db_lifecycle_row *r)
{
	char *actor = NULL, *type = NULL, *status = NULL, *data = NULL;
	r->id = (uint64_t)sqlite3_column_int64(st, 0);
	r->seq = (uint64_t)sqlite3_column_int64(st, 2);
	r->timestamp = sqlite3_column_int64(st, 5);
	int bad = col_dup(st, 1, &actor) || col_dup(st, 3, &type) || col_dup(st, 4, &status) ||
		  col_dup(st, 6, &data) || !actor || !type || !data;
	r->actor_id = actor;
	r->event_type = type;
	r->status = status;
	r->data = data;
	return bad ? -1 : 0;
}

static enum err_code life_fetch(struct db *d, uint64_t after, unsigned limit,
				struct life_page *p, struct err *err)
{
	enum err_code rc = ERR_OK;
	int src;
	if (!(p->rows = calloc(limit, sizeof(*p->rows))))
		return err_set(err, ERR_NOMEM, "out of memory reading the lifecycle log");
	pthread_mutex_lock(&d->mu);
	sqlite3_stmt *st = stmt(d, ST_LIFE_AFTER);
	sqlite3_bind_int64(st, 1, after > INT64_MAX ? INT64_MAX : (sqlite3_int64)after);
	sqlite3_bind_int64(st, 2, limit);
	while ((src = sqlite3_step(st)) == SQLITE_ROW && p->n < limit) {
		if (life_from_row(st, &p->rows[p->n++]) != 0) {
			rc = err_set(err, ERR_NOMEM, "out of memory reading the lifecycle log");
			break;
		}
	}
	if (rc == ERR_OK && src != SQLITE_ROW && src != SQLITE_DONE)
		rc = sql_fail(d, src, err, "reading the lifecycle log");
	stmt_done(st);
	pthread_mutex_unlock(&d->mu);
	return rc;
}

enum err_code db_lifecycle_after(struct db *d, uint64_t after, unsigned limit,
				 int (*cb)(void *user, const struct db_lifecycle_row *r), void *user,
				 struct err *err)
{
	struct life_page p = {0};
	if (limit == 0)
		limit = DB_LIST_DEFAULT;
	if (limit > DB_LIST_MAX)
		limit = DB_LIST_MAX;
	enum err_code rc = life_fetch(d, after, limit, &p, err);
	for (size_t i = 0; rc == ERR_OK && cb && i < p.n; i++)
		if (cb(user, &p.rows[i]) != 0)
			break;
	life_page_release(&p);
	return rc;
}

/* ---- rebuild from chain files -------------------------------------------- */

/* What a run's lifecycle events say about it: the chain alone holds everything
 * the index needs (docs/durability.md). */
struct life_state {
	char status[16];
	char *reason;
	char *package_ref, *manifest_json;
	char *name, *manifest_ref;     /* from `spawned` (meta.json is no longer written) */
	char package_sha256[65], parent_id[37];
	int64_t created_at, started_at, stopped_at;
};

static void life_state_release(struct life_state *l)
{
	free(l->reason);
	free(l->package_ref);
	free(l->manifest_json);
	free(l->name);
	free(l->manifest_ref);
	memset(l, 0, sizeof(*l));
}

static const struct {
	const char *type, *status;
} LIFE_TYPES[] = {
	{"spawned", "starting"}, {"started", "running"}, {"restarted", "starting"},
	{"recovered", "running"}, {"suspended", "running"}, {"stopped", "stopped"},
	{"failed", "failed"}, {"killed", "killed"}, {"deleted", "deleted"},
};

/* The status after a lifecycle event, or NULL for other events. */
static const char *life_status(const char *type)
{
	for (size_t i = 0; i < sizeof(LIFE_TYPES) / sizeof(LIFE_TYPES[0]); i++)
		if (strcmp(type, LIFE_TYPES[i].type) == 0)
			return LIFE_TYPES[i].status;
	return NULL;
}

static void set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = v ? strdup(v) : NULL;
}

/* The static name of a status that LIFE_TYPES produces. */
static const char *life_status_name(const char *status)
{
	for (size_t i = 0; i < sizeof(LIFE_TYPES) / sizeof(LIFE_TYPES[0]); i++)
		if (strcmp(status, LIFE_TYPES[i].status) == 0)
			return LIFE_TYPES[i].status;
	return NULL;
}

/* Applies one lifecycle event (data: its JSON object) to l. */
static void life_apply(struct life_state *l, const char *type, const char *status,
		       const json_t *data, int64_t ts)
{
	snprintf(l->status, sizeof(l->status), "%s", status);
	if (!l->created_at)
		l->created_at = ts;
	if (strcmp(type, "spawned") == 0) {
		/* the run's own creation (before its package was resolved); older
		 * chains: the event's time */
		const json_t *created = json_object_get(data, "created_at");
		if (json_is_integer(created) && json_integer_value(created) > 0)
			l->created_at = json_integer_value(created);
		const json_t *pkg = json_object_get(data, "package");
		set_str(&l->package_ref, json_string_value(json_object_get(pkg, "reference")));
		const char *sha = json_string_value(json_object_get(pkg, "sha256"));
		snprintf(l->package_sha256, sizeof(l->package_sha256), "%s", sha ? sha : "");
		const char *parent = json_string_value(json_object_get(data, "parent_id"));
		snprintf(l->parent_id, sizeof(l->parent_id), "%s", parent ? parent : "");
		char *m = json_object_get(data, "manifest")
				  ? json_compact(json_object_get(data, "manifest")) : NULL;
		free(l->manifest_json);
		l->manifest_json = m;
		set_str(&l->name, json_string_value(json_object_get(json_object_get(data, "manifest"),
								    "name")));
		set_str(&l->manifest_ref, json_string_value(json_object_get(data, "manifest_ref")));
	}
	if (strcmp(status, "running") == 0 && strcmp(type, "started") == 0)
		l->started_at = ts;
	int ended = strcmp(status, "starting") && strcmp(status, "running");
	if (!ended) {             /* live (again, after a restart): not stopped */
		set_str(&l->reason, NULL);
		l->stopped_at = 0;
		return;
	}
	if (strcmp(status, "deleted") != 0)
		l->stopped_at = ts;
	const char *r = json_string_value(json_object_get(data, "reason"));
	const char *d = json_string_value(json_object_get(data, "detail"));
	char *text = NULL;
	if (r && d && strcmp(type, "failed") == 0 && asprintf(&text, "%s: %s", r, d) < 0)
		text = NULL;
	if (strcmp(status, "deleted") != 0 || !l->reason)
		set_str(&l->reason, text ? text : r);
	free(text);
}

struct rebuild {
	struct db *d;
	const char *actor_id;
	int64_t mtime_ms;
	struct db_event_row rows[REBUILD_BATCH];
	char *types[REBUILD_BATCH];
	size_t n;
	uint64_t events;
	struct err *err;
	struct life_state life;
	int64_t last_ts;
	/* lifecycle rows, appended to the log once the run row exists */
	struct life_row {
		uint64_t seq;
		char *type, *data;
		char status[16];
		int64_t ts;
	} *lrows;
	size_t nl, capl;
};

/* The event data as a JSON object when it looks like one (else NULL). */
static json_t *event_object(const struct chain_event *ev)
{
	size_t i = 0;
	while (i < ev->data_len && (ev->data[i] == ' ' || ev->data[i] == '\n' ||
				    ev->data[i] == '\t' || ev->data[i] == '\r'))
		i++;
	if (i == ev->data_len || ev->data[i] != '{')
		return NULL;
	json_t *o = json_parse((const char *)ev->data, ev->data_len, JSON_MAX_DEPTH_DEFAULT, NULL);
	if (o && !json_is_object(o)) {
		json_decref(o);
		o = NULL;
	}
	return o;
}

static enum err_code rebuild_flush(struct rebuild *rb)
{
	enum err_code rc = db_events_index(rb->d, rb->actor_id, rb->rows, rb->n, rb->err);
	for (size_t i = 0; i < rb->n; i++)
		free(rb->types[i]);
	rb->events += rc == ERR_OK ? rb->n : 0;
	rb->n = 0;
	return rc;
}

static enum err_code keep_life_row(struct rebuild *rb, const struct chain_event *ev,
				   const char *status, int64_t ts)
{
	if (rb->nl == rb->capl) {
		size_t cap = rb->capl ? rb->capl * 2 : 16;
		struct life_row *v = realloc(rb->lrows, cap * sizeof(*v));
		if (!v)
			return err_set(rb->err, ERR_NOMEM, "out of memory rebuilding the index");
		rb->lrows = v;
		rb->capl = cap;
	}
	struct life_row *r = &rb->lrows[rb->nl];
	memset(r, 0, sizeof(*r));
	r->seq = ev->seq;
	r->ts = ts;
	snprintf(r->status, sizeof(r->status), "%s", status);
	r->type = strdup(ev->event_type);
	r->data = strndup((const char *)ev->data, ev->data_len);
	if (!r->type || !r->data) {
		free(r->type);
		free(r->data);
		return err_set(rb->err, ERR_NOMEM, "out of memory rebuilding the index");
	}
	rb->nl++;
	return ERR_OK;
}

static enum err_code rebuild_event(void *user, const struct chain_event *ev)
{
	struct rebuild *rb = user;
	const char *status = life_status(ev->event_type);
	json_t *o = NULL;
	int64_t ts = rb->last_ts ? rb->last_ts : rb->mtime_ms;
	/* Only lifecycle events are parsed: calls carry no timestamp of their own and
	 * take the one of the lifecycle event before them. */
	if (status && (o = event_object(ev))) {
		json_t *t = json_object_get(o, "timestamp");
		if (json_is_integer(t))
			ts = rb->last_ts = (int64_t)json_integer_value(t);
	}
	if (status) {
		life_apply(&rb->life, ev->event_type, status, o, ts);
		if (keep_life_row(rb, ev, status, ts)) {
			json_decref(o);
			return rb->err->code;
		}
	}
	json_decref(o);
	char *type = strdup(ev->event_type);
	if (!type)
		return err_set(rb->err, ERR_NOMEM, "out of memory rebuilding the index");
	rb->types[rb->n] = type;
	rb->rows[rb->n] = (struct db_event_row){.seq = ev->seq, .offset = ev->offset,
						 .timestamp = ts, .event_type = type};
	if (++rb->n == REBUILD_BATCH)
		return rebuild_flush(rb);
	return ERR_OK;
}

static void rebuild_free(struct rebuild *rb)
{
	if (!rb)
		return;
	for (size_t i = 0; i < rb->n; i++)
		free(rb->types[i]);
	for (size_t i = 0; i < rb->nl; i++) {
		free(rb->lrows[i].type);
		free(rb->lrows[i].data);
	}
	free(rb->lrows);
	life_state_release(&rb->life);
	free(rb);
}

/* The lifecycle rows the scan kept, into the global log. */
static enum err_code append_life_rows(struct db *d, const char *id, const struct rebuild *rb,
				      struct err *err)
{
	enum err_code rc = ERR_OK;
	for (size_t i = 0; rc == ERR_OK && i < rb->nl; i++)
		rc = db_lifecycle_append(d, id, rb->lrows[i].seq, rb->lrows[i].type,
					 rb->lrows[i].status, rb->lrows[i].ts, rb->lrows[i].data,
					 NULL, err);
	return rc;
}

/* The run row of a chain the index does not know, from its own events (and the
 * meta file for what the events do not say). A chain without lifecycle events
 * is a run that was never known to be live: failed, reason "recovered". */
static enum err_code rebuild_run_row(struct db *d, const char *dir, const char *id,
				     const struct rebuild *rb, struct err *err)
{
	struct chain_meta m = {0};
	struct db_run r = {0};
	struct err merr = {0};
	const struct life_state *l = &rb->life;
	enum err_code rc = chain_read_meta(dir, id, &m, &merr);
	if (rc != ERR_OK && rc != ERR_NOT_FOUND)
		log_warn("db", "ignoring meta file of '%s': %s", id, merr.msg);
	snprintf(r.id, sizeof(r.id), "%s", id);
	r.name = m.actor_name ? m.actor_name : l->name ? l->name : (char *)id;
	r.manifest_ref = m.manifest_path ? m.manifest_path : l->manifest_ref;
	r.status = l->status[0] ? (char *)l->status : "failed";
	r.reason = l->status[0] ? l->reason : "recovered";
	r.package_ref = l->package_ref;
	memcpy(r.package_sha256, l->package_sha256, sizeof(r.package_sha256));
	memcpy(r.parent_id, l->parent_id, sizeof(r.parent_id));
	r.manifest_json = l->manifest_json;
	r.created_at = m.started_at_s ? m.started_at_s * 1000 : l->created_at ? l->created_at
										: rb->mtime_ms;
	r.started_at = l->started_at ? l->started_at : m.started_at_s * 1000;
	r.stopped_at = l->status[0] ? l->stopped_at : rb->mtime_ms;
	rc = db_run_insert(d, &r, err);
	if (rc == ERR_OK && r.package_ref && sha256_hex_valid(r.package_sha256))
		rc = db_run_set_package(d, id, r.package_ref, r.package_sha256, err);
	if (rc == ERR_OK && strcmp(r.status, "starting") != 0)
		rc = db_run_set_status(d, id, r.status, r.reason, r.stopped_at ? r.stopped_at
									      : db_now_ms(), err);
	if (rc == ERR_OK)
		rc = append_life_rows(d, id, rb, err);
	chain_meta_release(&m);
	return rc == ERR_CONFLICT ? ERR_OK : rc;   /* created meanwhile: fine */
}

/* Indexes one chain file the index does not know. Unreadable files are logged
 * and skipped (*skipped). Known runs are left to the supervisor, which opens
 * their chains anyway and indexes what the index lacks (db_catch_up). */
/* ERR_OK when the index has a run id, ERR_NOT_FOUND when not (without reading
 * the row: start-up asks this for every chain file, 100,000 of them). */
static enum err_code run_known(struct db *d, const char *id, struct err *err)
{
	pthread_mutex_lock(&d->mu);
	sqlite3_stmt *st = stmt(d, ST_RUN_EXISTS);
	bind_text(st, 1, id);
	int src = sqlite3_step(st);
	enum err_code rc = src == SQLITE_ROW ? ERR_OK
			   : src == SQLITE_DONE ? ERR_NOT_FOUND : sql_fail(d, src, err, "finding a run");
	stmt_done(st);
	pthread_mutex_unlock(&d->mu);
	return rc;
}

/* 1 when the spares table has id. */
static int spare_known(struct db *d, const char *id)
{
	pthread_mutex_lock(&d->mu);
	sqlite3_stmt *st = stmt(d, ST_SPARE_HAS);
	bind_text(st, 1, id);
	int has = sqlite3_step(st) == SQLITE_ROW;
	stmt_done(st);
	pthread_mutex_unlock(&d->mu);
	return has;
}

/* 1 when <id>.meta.json exists (written by the spawns of older versions). */
static int has_meta(const char *dir, const char *id)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/%s.meta.json", dir, id);
	return access(path, F_OK) == 0;
}

/* sweep: an empty chain file that is neither a run nor a spare is removed (see
 * db_rebuild_from_chains_sweep); *skipped is then 2. */
static enum err_code rebuild_chain(struct db *d, const char *dir, const char *id, int sweep,
				   uint64_t *events, int *skipped, struct err *err)
{
	struct chain_verify_result vr;
	struct err serr = {0};
	struct stat st;
	enum err_code rc = run_known(d, id, err);
	if (rc == ERR_OK) {
		*skipped = 1;
		return ERR_OK;
	}
	if (rc != ERR_NOT_FOUND)
		return rc;
	rc = ERR_NOMEM;
	char *path = NULL;
	struct rebuild *rb = calloc(1, sizeof(*rb));
	if (!rb || asprintf(&path, "%s/%s.chain", dir, id) < 0) {
		path = NULL;
		err_set(err, rc, "out of memory rebuilding the index");
		goto fail;
	}
	int have = stat(path, &st) == 0;
	if (have && st.st_size == 0 && !has_meta(dir, id)) {
		/* No run and no event: a spare (supervisor/spares.c), or the file of a
		 * spawn that has written nothing yet (never answered with this id when
		 * the process died: an answered spawn has its run row). Not an actor.
		 * (An older version's spawn wrote <id>.meta.json first: that one is.) */
		*skipped = 1;
		rc = ERR_OK;
		if (sweep && !spare_known(d, id) && unlink(path) == 0)
			*skipped = 2;    /* counted, and logged once, by rebuild_dir */
		goto fail;
	}
	rb->d = d;
	rb->actor_id = id;
	rb->err = err;
	rb->mtime_ms = have ? (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000
			    : db_now_ms();
	rc = chain_scan_file(path, rebuild_event, rb, &vr, &serr);
	if (rc == ERR_OK && rb->n)
		rc = rebuild_flush(rb);
	if (rc != ERR_OK && serr.code != ERR_OK) {  /* the file, not the database, failed */
		log_warn("db", "skipping chain '%s': %s", path, serr.msg);
		*skipped = 1;
		rc = ERR_OK;
		goto fail;
	}
	if (rc == ERR_OK && !vr.valid)
		log_warn("db", "chain '%s' indexed up to seq %" PRIu64 ": %s", path, vr.length,
			 vr.detail);
	if (rc == ERR_OK)
		rc = rebuild_run_row(d, dir, id, rb, err);
	char head[SHA256_HEX_LEN + 1] = "";
	if (vr.length)
		hex_encode(vr.head, SHA256_LEN, head);
	if (rc == ERR_OK)
		rc = db_run_set_head(d, id, vr.length, head, err);
	*events += rb->events;
fail:
	rebuild_free(rb);
	free(path);
	return rc;
}

enum err_code db_catch_up(struct db *d, const char *actor_id, struct chain *c, uint64_t from,
			  const char **status_out, struct err *err)
{
	*status_out = NULL;
	uint64_t len = chain_length(c);
	if (len <= from)
		return ERR_OK;
	struct rebuild *rb = calloc(1, sizeof(*rb));
	if (!rb)
		return err_set(err, ERR_NOMEM, "out of memory indexing '%s'", actor_id);
	rb->d = d;
	rb->actor_id = actor_id;
	rb->err = err;
	rb->mtime_ms = db_now_ms();
	enum err_code rc = ERR_OK;
	for (uint64_t seq = from + 1; rc == ERR_OK && seq <= len; seq++) {
		struct chain_event ev = {0};
		if ((rc = chain_read(c, seq, &ev, err)) == ERR_OK)
			rc = rebuild_event(rb, &ev);
		chain_event_release(&ev);
	}
	if (rc == ERR_OK && rb->n)
		rc = rebuild_flush(rb);
	if (rc == ERR_OK)
		rc = append_life_rows(d, actor_id, rb, err);
	uint8_t h[CHAIN_HASH_LEN];
	char head[SHA256_HEX_LEN + 1];
	chain_head(c, h);
	hex_encode(h, SHA256_LEN, head);
	if (rc == ERR_OK && rb->life.status[0] && strcmp(rb->life.status, "starting") != 0)
		rc = db_record_events(d, actor_id, NULL, 0, len, head, rb->life.status,
				      rb->life.reason, rb->life.stopped_at ? rb->life.stopped_at
									   : db_now_ms(), err);
	else if (rc == ERR_OK)
		rc = db_run_set_head(d, actor_id, len, head, err);
	*status_out = rb->life.status[0] ? life_status_name(rb->life.status) : NULL;
	rebuild_free(rb);
	return rc;
}

/* The actor id of a "<id>.chain" directory entry, or NULL. */
static char *chain_stem(const char *name)
{
	size_t n = strlen(name);
	if (n <= 6 || strcmp(name + n - 6, ".chain") != 0)
		return NULL;
	char *id = strndup(name, n - 6);
	if (id && (!chain_id_valid(id) || strlen(id) > 36)) {
		log_warn("db", "ignoring chain file '%s': not a run id", name);
		free(id);
		return NULL;
	}
	return id;
}

/* The ids of every run, sorted (one SQL pass; issue 16: one lookup per chain
 * file cost seconds at 100,000). NULL when they cannot be listed (the caller
 * then asks for each id). */
struct known_ids {
	char (*v)[37];
	size_t n;
};

static int id_cmp(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

/* The ids the one-column SELECT sql gives (d->mu held), into *v / *n (malloc'd;
 * ids over 36 characters skipped). An SQLite result code: SQLITE_DONE when all
 * were read; otherwise *v is freed and NULL. */
static int select_ids(struct db *d, const char *sql, size_t first_cap, char (**v)[37],
		      size_t *n)
{
	*v = NULL;
	*n = 0;
	size_t cap = 0;
	sqlite3_stmt *st = NULL;
	int r = sqlite3_prepare_v2(d->conn, sql, -1, &st, NULL);
	while (r == SQLITE_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(st, 0);
		r = SQLITE_OK;
		if (!id || strlen(id) > 36)
			continue;     /* not a chain file name we would look up */
		if (*n == cap) {
			size_t nc = cap ? cap * 2 : first_cap;
			char (*nv)[37] = realloc(*v, nc * sizeof(*nv));
			if (!nv) {
				r = SQLITE_NOMEM;
				break;
			}
			*v = nv;
			cap = nc;
		}
		memcpy((*v)[(*n)++], id, strlen(id) + 1);
	}
	sqlite3_finalize(st);
	if (r != SQLITE_DONE) {
		free(*v);
		*v = NULL;
		*n = 0;
	}
	return r;
}

static void known_ids_load(struct db *d, struct known_ids *k)
{
	pthread_mutex_lock(&d->mu);
	select_ids(d, "SELECT id FROM runs", 1024, &k->v, &k->n);
	pthread_mutex_unlock(&d->mu);
	if (k->n)                     /* no runs: v is NULL, which qsort may not take */
		qsort(k->v, k->n, sizeof(*k->v), id_cmp);
}

static enum err_code rebuild_dir(struct db *d, const char *chains_dir, int sweep,
				 unsigned *runs_out, uint64_t *events_out, struct err *err)
{
	enum err_code rc = ERR_OK;
	unsigned runs = 0, removed = 0;
	uint64_t events = 0;
	struct dirent *de;
	DIR *dir = opendir(chains_dir);
	if (!dir)
		return err_errno(err, errno == ENOENT ? ERR_NOT_FOUND : ERR_IO, errno,
				 "cannot open chains directory '%s'", chains_dir);
	struct known_ids known;
	known_ids_load(d, &known);
	while (rc == ERR_OK && (errno = 0, de = readdir(dir)) != NULL) {
		char *id = chain_stem(de->d_name);
		int skipped = 0;
		if (!id && sweep && strncmp(de->d_name, ".spare-", 7) == 0) {
			char *old = NULL;      /* a spare of an older version, never used */
			if (asprintf(&old, "%s/%s", chains_dir, de->d_name) > 0)
				unlink(old);
			free(old);
		}
		if (!id)
			continue;
		if (known.v && strlen(id) <= 36 &&
		    bsearch(id, known.v, known.n, sizeof(*known.v), id_cmp)) {
			free(id);     /* indexed already */
			continue;
		}
		rc = rebuild_chain(d, chains_dir, id, sweep, &events, &skipped, err);
		runs += rc == ERR_OK && !skipped;
		removed += skipped == 2;
		free(id);
	}
	if (removed)   /* one line: after a lost index these are the 1,024 spares */
		log_info("db", "removed %u empty chain files of no run and no spare the index "
			 "knows (spares of a lost index, or spawns never answered)", removed);
	if (rc == ERR_OK && errno != 0)
		rc = err_errno(err, ERR_IO, errno, "cannot read chains directory '%s'", chains_dir);
	closedir(dir);
	free(known.v);
	if (runs_out)
		*runs_out = runs;
	if (events_out)
		*events_out = events;
	return rc;
}

enum err_code db_rebuild_from_chains(struct db *d, const char *chains_dir, unsigned *runs_out,
				     uint64_t *events_out, struct err *err)
{
	return rebuild_dir(d, chains_dir, 0, runs_out, events_out, err);
}

enum err_code db_rebuild_from_chains_sweep(struct db *d, const char *chains_dir,
					   unsigned *runs_out, uint64_t *events_out,
					   struct err *err)
{
	return rebuild_dir(d, chains_dir, 1, runs_out, events_out, err);
}

enum err_code db_rebuild_chain(struct db *d, const char *chains_dir, const char *id,
			       uint64_t *events_out, struct err *err)
{
	uint64_t events = 0;
	int skipped = 0;
	enum err_code rc = rebuild_chain(d, chains_dir, id, 0, &events, &skipped, err);
	if (events_out)
		*events_out = events;
	return rc;
}

/* ---- spare chain files ---------------------------------------------------- */

static enum err_code spare_rows(struct db *d, enum stmt_id which, const char (*ids)[37],
				size_t n, struct err *err)
{
	if (!n)
		return ERR_OK;
	pthread_mutex_lock(&d->mu);
	enum err_code rc = tx(d, ST_BEGIN, err);
	for (size_t i = 0; rc == ERR_OK && i < n; i++) {
		sqlite3_stmt *st = stmt(d, which);
		bind_text(st, 1, ids[i]);
		rc = exec_stmt(d, st, err, which == ST_SPARE_PUT ? "adding a spare"
								: "dropping a spare");
	}
	if (rc == ERR_OK)
		rc = tx(d, ST_COMMIT, err);
	if (rc != ERR_OK)
		tx(d, ST_ROLLBACK, NULL);
	pthread_mutex_unlock(&d->mu);
	return rc;
}

enum err_code db_spare_put(struct db *d, const char (*ids)[37], size_t n, struct err *err)
{
	return spare_rows(d, ST_SPARE_PUT, ids, n, err);
}

enum err_code db_spare_drop(struct db *d, const char (*ids)[37], size_t n, struct err *err)
{
	return spare_rows(d, ST_SPARE_DROP, ids, n, err);
}

enum err_code db_spare_list(struct db *d, char (**ids_out)[37], size_t *n_out, struct err *err)
{
	*ids_out = NULL;
	*n_out = 0;
	pthread_mutex_lock(&d->mu);
	int r = sqlite3_exec(d->conn, "DELETE FROM spares WHERE id IN (SELECT id FROM runs)",
			     NULL, NULL, NULL);
	if (r == SQLITE_OK)
		r = select_ids(d, "SELECT id FROM spares", 256, ids_out, n_out);
	enum err_code rc = r == SQLITE_DONE ? ERR_OK : sql_fail(d, r, err, "listing spares");
	pthread_mutex_unlock(&d->mu);
	return rc;
}

/* ---- idempotency keys ---------------------------------------------------- */

void db_idem_release(struct db_idem *x)
{
	if (!x)
		return;
	free(x->content_type);
	free(x->location);
	free(x->body);
	memset(x, 0, sizeof(*x));
}

enum err_code db_idem_claim(struct db *d, const char *key, const char *scope,
			    const char *request_sha, int64_t now, int64_t window_ms,
			    struct db_idem *out, struct err *err)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&d->mu);
	sqlite3_stmt *st = stmt(d, ST_IDEM_EXPIRE);
	sqlite3_bind_int64(st, 1, now - window_ms);
	enum err_code rc = exec_stmt(d, st, err, "expiring idempotency keys");
	if (rc == ERR_OK) {
		st = stmt(d, ST_IDEM_CLAIM);
		bind_text(st, 1, key);
		bind_text(st, 2, scope);
		bind_text(st, 3, request_sha);
		sqlite3_bind_int64(st, 4, now);
		int r = sqlite3_step(st);
		out->claimed = r == SQLITE_DONE && sqlite3_changes(d->conn) == 1;
		rc = r == SQLITE_DONE ? ERR_OK : sql_fail(d, r, err, "claiming an idempotency key");
		stmt_done(st);
	}
	if (rc == ERR_OK && !out->claimed) {
		st = stmt(d, ST_IDEM_GET);
		bind_text(st, 1, key);
		bind_text(st, 2, scope);
		int r = sqlite3_step(st);
		if (r == SQLITE_ROW) {
			const unsigned char *sha = sqlite3_column_text(st, 0);
			snprintf(out->request_sha, sizeof(out->request_sha), "%s",
				 sha ? (const char *)sha : "");
			out->status = sqlite3_column_int(st, 1);
			col_dup(st, 2, &out->content_type);
			col_dup(st, 3, &out->location);
			int n = sqlite3_column_bytes(st, 4);
			const void *b = sqlite3_column_blob(st, 4);
			out->body = malloc((size_t)n + 1);
			if (out->body) {
				if (n)
					memcpy(out->body, b, (size_t)n);
				out->body[n] = 0;
				out->body_len = (size_t)n;
			}
			out->created_at = sqlite3_column_int64(st, 5);
		} else {
			rc = r == SQLITE_DONE ? err_set(err, ERR_CONFLICT, "the key vanished")
					      : sql_fail(d, r, err, "reading an idempotency key");
		}
		stmt_done(st);
	}
	pthread_mutex_unlock(&d->mu);
	return rc;
}

enum err_code db_idem_finish(struct db *d, const char *key, const char *scope, int status,
			     const char *content_type, const char *location, const void *body,
			     size_t len, struct err *err)
{
	pthread_mutex_lock(&d->mu);
	sqlite3_stmt *st = stmt(d, ST_IDEM_FINISH);
	bind_text(st, 1, key);
	bind_text(st, 2, scope);
	sqlite3_bind_int(st, 3, status);
	bind_text(st, 4, content_type);
	bind_text(st, 5, location);
	sqlite3_bind_blob(st, 6, body ? body : "", (int)len, SQLITE_STATIC);
	enum err_code rc = exec_stmt(d, st, err, "storing an idempotent outcome");
	pthread_mutex_unlock(&d->mu);
	return rc;
}

enum err_code db_idem_forget(struct db *d, const char *key, const char *scope, struct err *err)
{
	pthread_mutex_lock(&d->mu);
	sqlite3_stmt *st = stmt(d, key ? ST_IDEM_FORGET : ST_IDEM_DROP_PENDING);
	if (key) {
		bind_text(st, 1, key);
		bind_text(st, 2, scope);
	}
	enum err_code rc = exec_stmt(d, st, err, "forgetting idempotency keys");
	pthread_mutex_unlock(&d->mu);
	return rc;
}
