/* chain.h - one actor's hash chain file (DESIGN.md §3, §4; docs/chain-format.md).
 *
 * A chain is an append-only file <dir>/<actor_id>.chain of EVENT records. Each
 * event's hash covers its parent's hash, so the file is verifiable by anyone.
 * An append returns once the record is on disk (fdatasync); concurrent appenders
 * share one fdatasync (group commit).
 *
 * Ownership: chain_open returns a struct chain the caller frees with chain_close.
 * struct chain_event is caller-owned; chain_read fills it with malloc'd fields
 * that chain_event_release frees (it accepts NULL and zeroed structs).
 *
 * Threads: every function taking a struct chain * may be called from any thread
 * concurrently, except chain_close, which must be the last call (no other call on
 * that chain in flight). One internal mutex guards the offset table and the write
 * position; fdatasync runs outside it. The file is flock()ed while its descriptor
 * is open, and the process remembers every chain it has open, so a second
 * chain_open of the same file (this process, or another while the descriptor is
 * open) fails.
 *
 * Errors: ERR_BAD_ID (actor id not [A-Za-z0-9_.-]{1,64} or leading '.'),
 * ERR_INVALID (event type empty, too long or with control characters),
 * ERR_TOO_LARGE (data over CHAIN_MAX_DATA), ERR_CORRUPT (appending to a damaged
 * chain, or a record that no longer verifies when read), ERR_IO (the OS said no;
 * after a failed write or fdatasync the chain refuses further appends),
 * ERR_CONFLICT (file already open), ERR_NOT_FOUND, ERR_NOMEM.
 */
#ifndef THEATER_CHAIN_H
#define THEATER_CHAIN_H

#include <stddef.h>
#include <stdint.h>

#include "src/util/err.h"
#include "src/util/histo.h"

#define CHAIN_HASH_LEN 32
#define CHAIN_MAX_TYPE 1024               /* bytes of event_type */
#define CHAIN_MAX_DATA (64u * 1024 * 1024) /* bytes of data per event */

struct chain;

struct chain_event {
	uint64_t seq;                     /* 1-based, gap-free */
	uint8_t hash[CHAIN_HASH_LEN], parent_hash[CHAIN_HASH_LEN];
	char *event_type;                 /* malloc'd, NUL-terminated */
	uint8_t *data;                    /* malloc'd, plus a NUL after data_len */
	size_t data_len;
	uint64_t offset;                  /* byte offset of the record in the file */
	uint64_t end;                     /* byte offset right after the record */
};

/* Frees event_type and data and zeroes the struct. Accepts NULL. */
void chain_event_release(struct chain_event *ev);

/* SHA-256 of parent || u32be(type_len) || type || u64be(len) || data.
 * Never fails in practice; on out-of-memory inside OpenSSL, out is all zeros. */
void chain_hash(const uint8_t parent[CHAIN_HASH_LEN], const char *type, size_t type_len,
		const void *data, size_t len, uint8_t out[CHAIN_HASH_LEN]);

/* True if id may name a chain file: [A-Za-z0-9_.-]{1,64}, no leading '.'. */
int chain_id_valid(const char *id);

struct chain_open_report {
	uint64_t length;          /* events readable after open */
	int truncated_tail;       /* a torn last record was cut off */
	uint64_t truncated_bytes;
	int damaged;              /* damage before the tail: chain is read-only */
	uint64_t first_bad_seq;   /* seq of the first record that fails, when damaged */
	char detail[256];         /* what was found, "" when clean */
};

/* Opens (creating when absent; dir must exist) <dir>/<actor_id>.chain for
 * appending. Scans the whole file, builds the offset table and recomputes every
 * hash. A torn last record (a prefix of a record, possibly zero-filled, at EOF) is
 * truncated at the record boundary and logged. Damage before the tail is NOT
 * repaired: the chain opens read-only (ERR_OK, report->damaged = 1), events
 * before first_bad_seq stay readable and appends fail with ERR_CORRUPT.
 * report may be NULL. */
enum err_code chain_open(const char *dir, const char *actor_id, struct chain **out,
			 struct chain_open_report *report, struct err *err);

/* chain_open for a chain that already holds `acked` acknowledged events (the
 * index knows them): the file must exist (ERR_NOT_FOUND otherwise, nothing is
 * created), and a file with fewer good events than that is damage, never a torn
 * tail: it opens read-only and nothing is cut. acked = 0 is chain_open. */
enum err_code chain_open_known(const char *dir, const char *actor_id, uint64_t acked,
			       struct chain **out, struct chain_open_report *report,
			       struct err *err);

/* A point up to which a chain is known good: events 1..seq were hashed when this
 * server wrote them (or verified by an earlier open), event seq's record starts
 * at byte `offset` and has hash `hash`. The index keeps one per run (its head). */
struct chain_checkpoint {
	uint64_t seq;
	uint64_t offset;
	uint8_t hash[CHAIN_HASH_LEN];
};

/* chain_open_known that trusts the events up to a checkpoint (incremental
 * verification, so start-up does not grow with chain sizes): reads the
 * checkpoint's record back (it must be whole and have the checkpoint's hash),
 * then scans and verifies only the records after it. When the record does not
 * match, the whole file is scanned as chain_open_known does. cp NULL or seq 0:
 * chain_open_known. chain_verify still checks every event. */
enum err_code chain_open_from(const char *dir, const char *actor_id, uint64_t acked,
			      const struct chain_checkpoint *cp, struct chain **out,
			      struct chain_open_report *report, struct err *err);

/* A chain the index vouches for, without opening its file (start-up at scale,
 * issue 16): one stat() must show the file ends at `end`, where the record of
 * event cp->seq (starting at cp->offset, with hash cp->hash) ends. Nothing is
 * read: the file is opened, locked and registered on first use (a read, an
 * append), which fails with ERR_CORRUPT when its size changed meanwhile.
 * ERR_CONFLICT when the file does not end at `end` (the index lags the chain,
 * or a torn write: open it with chain_open_from instead), ERR_NOT_FOUND when
 * it is missing. dirfd, when >= 0, is dir opened (O_DIRECTORY): the stat then
 * resolves one name, not the whole path (a start stats 100,000 of them). */
enum err_code chain_open_trusted(const char *dir, int dirfd, const char *actor_id,
				 const struct chain_checkpoint *cp, uint64_t end,
				 struct chain **out, struct err *err);

/* Syncs what was written, closes and frees. Accepts NULL. */
void chain_close(struct chain *c);

/* Appends one event and returns when it is durable (fdatasync'd). Concurrent
 * appenders share one fdatasync: the first waiter syncs everything written so
 * far, the others return when their record is covered. Fills seq, hash,
 * parent_hash, offset and data_len of out (event_type and data are set to NULL);
 * out may be NULL. */
enum err_code chain_append(struct chain *c, const char *event_type, const void *data,
			   size_t len, struct chain_event *out, struct err *err);

/* Same, without waiting for the sync; chain_sync makes everything so far durable. */
enum err_code chain_append_nosync(struct chain *c, const char *event_type, const void *data,
				  size_t len, struct chain_event *out, struct err *err);
enum err_code chain_sync(struct chain *c, struct err *err);

/* Batch durability for many chains at once (group commit across actors,
 * recovery, shutdown): note chain_written (the bytes written so far) of each
 * chain, call chain_syncfs (one syncfs() of the file system holding dir), then
 * chain_mark_synced(c, written) tells each chain those bytes are on disk. */
enum err_code chain_syncfs(const char *dir, struct err *err);
/* Makes the first `upto` bytes written durable (a no-op when they already are). */
enum err_code chain_sync_upto(struct chain *c, uint64_t upto, struct err *err);
uint64_t chain_written(struct chain *c);
void chain_mark_synced(struct chain *c, uint64_t upto);
/* Bytes written and not yet known durable (0 for a damaged chain: never synced). */
uint64_t chain_unsynced(struct chain *c);

uint64_t chain_length(struct chain *c);
/* Events known to be durable (a prefix of chain_length). */
uint64_t chain_synced_length(struct chain *c);
void chain_head(struct chain *c, uint8_t hash_out[CHAIN_HASH_LEN]); /* zeros when empty */
int chain_damaged(struct chain *c);
const char *chain_path(struct chain *c);  /* borrowed, valid until chain_close */

/* Number of fdatasync calls made by this chain's appends and syncs since open. */
uint64_t chain_sync_count(struct chain *c);
/* Latency of every chain fdatasync of this process (for /metrics). Any thread. */
void chain_fsync_histo(struct histo *out);
/* For tests and benchmarks: sleep usec before each fdatasync (a slow disk). */
void chain_set_sync_delay(struct chain *c, unsigned usec);

/* ---- descriptors (issue 16) ----
 * A chain holds a file descriptor only while it is used: the process keeps at
 * most chain_fd_cap() chain files open, closes the least recently used ones
 * (after an fdatasync of what was written through them) and reopens them on the
 * next read, append or sync. So descriptors do not grow with the number of
 * chains; the cap defaults to half of RLIMIT_NOFILE minus a reserve (read at
 * first use) and may be set with chain_fd_set_cap (0: that default again).
 * Any thread. */
void chain_fd_set_cap(unsigned cap);
unsigned chain_fd_cap(void);
struct chain_fd_stats {
	unsigned cap, open;       /* descriptors allowed and held now */
	unsigned chains;          /* chains open (with or without a descriptor) */
	uint64_t reopens;         /* descriptors opened again after an eviction */
	uint64_t evictions;       /* descriptors closed to stay under the cap */
	uint64_t evict_syncs;     /* evictions that had to fdatasync first */
};
void chain_fd_stats(struct chain_fd_stats *out);
/* Opens (1) or closes (0) a sync batch: while one is open, a descriptor closed to
 * stay under the cap is not fdatasynced first, because the caller makes every
 * chain durable at once (chain_syncfs, then chain_mark_synced) before it closes
 * the batch: start-up recovery and shutdown write to every chain, and one
 * fdatasync per eviction would cost one disk flush per actor. Batches nest. */
void chain_fd_batch(int open);

/* Reads event seq (1..length) via the offset table, binary-safe, and recomputes
 * its hash (which covers the parent field): ERR_CORRUPT when the record changed
 * on disk since it was written or scanned. ERR_NOT_FOUND for 0 or past the end.
 * out is filled only on success (release it with chain_event_release). */
enum err_code chain_read(struct chain *c, uint64_t seq, struct chain_event *out,
			 struct err *err);

struct chain_verify_result {
	int valid;
	uint64_t length;          /* events that verified */
	uint8_t head[CHAIN_HASH_LEN];
	uint64_t first_bad_seq;   /* 0 when valid */
	char detail[256];
};

/* Re-reads the file from disk (up to what was appended when called) and
 * recomputes every hash and parent link. ERR_OK means the check ran; the
 * verdict is out->valid. */
enum err_code chain_verify(struct chain *c, struct chain_verify_result *out, struct err *err);

/* Offline: verifies a chain file by path without opening it for append and
 * without changing it. A torn tail makes it invalid (detail says so). */
enum err_code chain_verify_file(const char *path, struct chain_verify_result *out,
				struct err *err);

/* Offline scan: calls cb for every event that verifies, in order, then fills out
 * as chain_verify_file does. In the event passed to cb, event_type and data are
 * borrowed for the call only, and data is not NUL-terminated. A nonzero return
 * from cb stops the scan and is returned. */
typedef enum err_code (*chain_scan_cb)(void *user, const struct chain_event *ev);
enum err_code chain_scan_file(const char *path, chain_scan_cb cb, void *user,
			      struct chain_verify_result *out, struct err *err);

/* Writes <dir>/<actor_id>.meta.json atomically (temp + fsync + rename + dir
 * fsync), pretty-printed: actor_id, actor_name, manifest_path, started_at
 * (unix seconds). NULL strings are written as null. Only versions before 2026-12
 * wrote one (the tests make such homes with it). */
enum err_code chain_write_meta(const char *dir, const char *actor_id, const char *actor_name,
			       const char *manifest_path, int64_t started_at_s, struct err *err);
/* Removes <dir>/<actor_id>.meta.json if there is one. */
void chain_remove_meta(const char *dir, const char *actor_id);

struct chain_meta {
	char *actor_id, *actor_name, *manifest_path;  /* malloc'd; NULL when absent */
	int64_t started_at_s;
};
/* Reads <dir>/<actor_id>.meta.json (at most 64 KiB). ERR_NOT_FOUND, ERR_BAD_JSON,
 * ERR_CORRUPT when a field has the wrong type. */
enum err_code chain_read_meta(const char *dir, const char *actor_id, struct chain_meta *out,
			      struct err *err);
void chain_meta_release(struct chain_meta *m);

#endif
