/* chain.c - one actor's hash chain file; see chain.h and docs/chain-format.md.
 *
 * Invariants, under c->mu:
 *   - offsets[i] is the file offset of event i+1; the good file ends at c->end;
 *   - c->head is the hash of event c->length (zeros when empty);
 *   - c->synced <= c->end is a record boundary known to be on disk.
 * A record is built in memory and written with one pwrite at c->end while the
 * mutex is held, so records never interleave and a crash tears at most the last
 * one. fdatasync runs without the mutex (group commit): one "leader" syncs
 * everything written so far while later appenders keep writing, then wakes
 * every waiter whose record is covered.
 *
 * The scanner (open, verify, offline scan) must tell a torn tail (safe to cut)
 * from damage (must not be "repaired"). A tail counts as torn only when it is a
 * prefix of a well-formed record whose parent is the current head, possibly
 * followed by zero bytes, with no later record referring to it; a record whose
 * length field was corrupted is recognised and reported as damage.
 *
 * Descriptors are lent by the cache in chain_fds.c (issue 16): every use of the
 * file pins one with chain_fd_get / chain_fd_put, so a process with 100,000
 * chains keeps only a bounded number open.
 *
 * A chain opened from a checkpoint (chain_open_from: the index's head, written
 * by this server after the event was hashed and synced) scans only the records
 * past it; the offsets of the events before it are read from the file headers
 * when first needed (offsets_load), and chain_verify still checks every hash.
 */
#include "src/chain.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "src/chain_int.h"
#include "src/util/crypto.h"
#include "src/util/json.h"
#include "src/util/log.h"

#define HEX_LEN (2 * CHAIN_HASH_LEN)
/* "EVENT " hash\n parent\n type\n len\n \n */
#define HDR_MAX (6 + 2 * (HEX_LEN + 1) + CHAIN_MAX_TYPE + 1 + 20 + 1 + 1)
#define READ_CHUNK (64 * 1024)
#define META_MAX (64 * 1024)
#define REC_HASH_AT 6
#define REC_PARENT_AT (REC_HASH_AT + HEX_LEN + 1)

/* ---- hashing ---------------------------------------------------------- */

static void put_be(uint8_t *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--) {
		p[i] = (uint8_t)(v & 0xff);
		v >>= 8;
	}
}

static enum err_code hash_event(const uint8_t parent[CHAIN_HASH_LEN], const char *type,
				size_t type_len, const void *data, size_t len,
				uint8_t out[CHAIN_HASH_LEN])
{
	struct sha256_ctx ctx;
	uint8_t b4[4], b8[8];
	if (sha256_begin(&ctx) != ERR_OK)
		return ERR_NOMEM;
	put_be(b4, type_len, 4);
	put_be(b8, len, 8);
	sha256_update(&ctx, parent, CHAIN_HASH_LEN);
	sha256_update(&ctx, b4, 4);
	sha256_update(&ctx, type, type_len);
	sha256_update(&ctx, b8, 8);
	sha256_update(&ctx, data, len);
	sha256_end(&ctx, out);
	return ERR_OK;
}

void chain_hash(const uint8_t parent[CHAIN_HASH_LEN], const char *type, size_t type_len,
		const void *data, size_t len, uint8_t out[CHAIN_HASH_LEN])
{
	if (hash_event(parent, type, type_len, data, len, out) != ERR_OK)
		memset(out, 0, CHAIN_HASH_LEN);
}

/* ---- small helpers ---------------------------------------------------- */

void chain_event_release(struct chain_event *ev)
{
	if (!ev)
		return;
	free(ev->event_type);
	free(ev->data);
	memset(ev, 0, sizeof(*ev));
}

static int id_char(int ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '_' || ch == '-' || ch == '.';
}

int chain_id_valid(const char *id)
{
	size_t i;
	if (!id || id[0] == '.' || id[0] == '\0')
		return 0;
	for (i = 0; id[i]; i++)
		if (i >= 64 || !id_char((unsigned char)id[i]))
			return 0;
	return 1;
}

static char *join_path(const char *dir, const char *name, const char *suffix)
{
	size_t n = strlen(dir) + strlen(name) + strlen(suffix) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/%s%s", dir, name, suffix);
	return p;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

static int pwrite_all(int fd, const void *data, size_t len, uint64_t off)
{
	const uint8_t *p = data;
	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -1 : (errno = EIO, -1);
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* Reads exactly len bytes or fails (-1, errno; EIO for a short file). */
static int pread_all(int fd, void *data, size_t len, uint64_t off)
{
	uint8_t *p = data;
	while (len > 0) {
		ssize_t n = pread(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -1 : (errno = EIO, -1);
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int offsets_push(uint64_t **offsets, size_t *cap, uint64_t length, uint64_t off)
{
	if (length == *cap) {
		size_t ncap = *cap ? *cap * 2 : 8;   /* 100,000 chains: small at first */
		uint64_t *p = realloc(*offsets, ncap * sizeof(*p));
		if (!p)
			return -1;
		*offsets = p;
		*cap = ncap;
	}
	(*offsets)[length] = off;
	return 0;
}

/* ---- record header parsing -------------------------------------------- */

enum hdr_status { HDR_OK, HDR_SHORT, HDR_BAD };

struct hdr {
	uint8_t hash[CHAIN_HASH_LEN], parent[CHAIN_HASH_LEN];
	char hash_hex[HEX_LEN + 1];
	char type[CHAIN_MAX_TYPE + 1];
	size_t type_len;
	uint64_t data_len;
	size_t size;              /* header bytes, blank line included */
	int parent_done;          /* parent line was read completely */
	size_t bad_at;            /* where HDR_BAD was found */
	const char *why;
};

struct cursor {
	const uint8_t *p;
	size_t n, i;
};

static enum hdr_status hdr_bad(struct hdr *h, const struct cursor *c, const char *why)
{
	h->bad_at = c->i;
	h->why = why;
	return HDR_BAD;
}

static enum hdr_status expect_byte(struct cursor *c, struct hdr *h, int ch, const char *why)
{
	if (c->i == c->n)
		return HDR_SHORT;
	if (c->p[c->i] != ch)
		return hdr_bad(h, c, why);
	c->i++;
	return HDR_OK;
}

static enum hdr_status parse_hex_line(struct cursor *c, struct hdr *h, char hex[HEX_LEN + 1],
				      uint8_t out[CHAIN_HASH_LEN])
{
	for (int k = 0; k < HEX_LEN; k++) {
		if (c->i == c->n)
			return HDR_SHORT;
		int ch = c->p[c->i];
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
			return hdr_bad(h, c, "bad hash line");
		hex[k] = (char)ch;
		c->i++;
	}
	hex[HEX_LEN] = '\0';
	hex_decode(hex, out, CHAIN_HASH_LEN);
	return expect_byte(c, h, '\n', "hash line too long");
}

static enum hdr_status parse_type_line(struct cursor *c, struct hdr *h)
{
	h->type_len = 0;
	while (c->i < c->n && c->p[c->i] != '\n') {
		if (c->p[c->i] < 0x20)
			return hdr_bad(h, c, "control character in event type");
		if (h->type_len == CHAIN_MAX_TYPE)
			return hdr_bad(h, c, "event type too long");
		h->type[h->type_len++] = (char)c->p[c->i++];
	}
	h->type[h->type_len] = '\0';
	if (c->i == c->n)
		return HDR_SHORT;
	if (h->type_len == 0)
		return hdr_bad(h, c, "empty event type");
	c->i++;
	return HDR_OK;
}

static enum hdr_status parse_len_line(struct cursor *c, struct hdr *h)
{
	size_t digits = 0;
	h->data_len = 0;
	while (c->i < c->n && c->p[c->i] >= '0' && c->p[c->i] <= '9') {
		if (digits == 1 && h->data_len == 0)
			return hdr_bad(h, c, "leading zero in data length");
		h->data_len = h->data_len * 10 + (uint64_t)(c->p[c->i] - '0');
		if (h->data_len > CHAIN_MAX_DATA)
			return hdr_bad(h, c, "data length over the limit");
		digits++;
		c->i++;
	}
	if (c->i == c->n)
		return HDR_SHORT;
	if (digits == 0)
		return hdr_bad(h, c, "bad data length");
	return expect_byte(c, h, '\n', "bad data length");
}

static enum hdr_status parse_header(const uint8_t *p, size_t n, struct hdr *h)
{
	static const char magic[] = "EVENT ";
	struct cursor c = {p, n, 0};
	enum hdr_status st;
	h->type_len = 0;
	h->data_len = 0;
	h->size = 0;
	h->parent_done = 0;
	h->bad_at = 0;
	h->why = NULL;
	for (int k = 0; k < 6; k++)
		if ((st = expect_byte(&c, h, magic[k], "not an EVENT record")) != HDR_OK)
			return st;
	if ((st = parse_hex_line(&c, h, h->hash_hex, h->hash)) != HDR_OK)
		return st;
	char parent_hex[HEX_LEN + 1];
	if ((st = parse_hex_line(&c, h, parent_hex, h->parent)) != HDR_OK)
		return st;
	h->parent_done = 1;
	if ((st = parse_type_line(&c, h)) != HDR_OK || (st = parse_len_line(&c, h)) != HDR_OK)
		return st;
	if ((st = expect_byte(&c, h, '\n', "missing blank line after header")) != HDR_OK)
		return st;
	h->size = c.i;
	return HDR_OK;
}

/* ---- buffered reader over a file region [0, end) ------------------------ */

struct reader {
	int fd;
	uint64_t end;
	uint8_t *buf;
	size_t cap;
	uint64_t win_off;
	size_t win_len;
};

/* Points *p at the bytes [off, off+n) clipped to end; *avail gets their count.
 * The pointer is valid until the next call. */
static enum err_code rd_peek(struct reader *r, uint64_t off, size_t n, const uint8_t **p,
			     size_t *avail)
{
	if (off >= r->end)
		n = 0;
	else if (n > r->end - off)
		n = (size_t)(r->end - off);
	*avail = n;
	*p = r->buf;
	if (n == 0)
		return ERR_OK;
	if (off >= r->win_off && off - r->win_off + n <= r->win_len) {
		*p = r->buf + (off - r->win_off);
		return ERR_OK;
	}
	size_t want = n > READ_CHUNK ? n : READ_CHUNK;
	if (off + want > r->end)
		want = (size_t)(r->end - off);
	if (want > r->cap) {
		uint8_t *nb = realloc(r->buf, want);
		if (!nb)
			return ERR_NOMEM;
		r->buf = nb;
		r->cap = want;
	}
	r->win_len = 0;
	if (pread_all(r->fd, r->buf, want, off) != 0)
		return ERR_IO;
	r->win_off = off;
	r->win_len = want;
	*p = r->buf;
	return ERR_OK;
}

/* ---- scanner ---------------------------------------------------------- */

enum scan_outcome { SCAN_CLEAN, SCAN_TORN, SCAN_DAMAGED };

struct scan {
	struct reader rd;
	uint64_t off, length;
	uint8_t head[CHAIN_HASH_LEN];
	int collect;              /* fill offsets */
	uint64_t *offsets;
	size_t offsets_cap;
	chain_scan_cb cb;
	void *user;
	enum scan_outcome outcome;
	char detail[256];
};

static enum err_code scan_torn(struct scan *s)
{
	s->outcome = SCAN_TORN;
	snprintf(s->detail, sizeof(s->detail),
		 "incomplete record at offset %llu (%llu bytes) after seq %llu",
		 (unsigned long long)s->off, (unsigned long long)(s->rd.end - s->off),
		 (unsigned long long)s->length);
	return ERR_OK;
}

static enum err_code scan_damaged(struct scan *s, const char *why)
{
	s->outcome = SCAN_DAMAGED;
	snprintf(s->detail, sizeof(s->detail), "seq %llu at offset %llu: %s",
		 (unsigned long long)(s->length + 1), (unsigned long long)s->off, why);
	return ERR_OK;
}

/* Sets *yes when every byte of [from, end) is zero. */
static enum err_code scan_all_zero(struct scan *s, uint64_t from, int *yes)
{
	*yes = 1;
	while (from < s->rd.end) {
		const uint8_t *p;
		size_t n;
		enum err_code rc = rd_peek(&s->rd, from, READ_CHUNK, &p, &n);
		if (rc)
			return rc;
		for (size_t i = 0; i < n; i++)
			if (p[i]) {
				*yes = 0;
				return ERR_OK;
			}
		from += n;
	}
	return ERR_OK;
}

/* Sets *yes when the text needle occurs in [from, end): a later record names
 * this record's hash as its parent. */
static enum err_code scan_contains(struct scan *s, uint64_t from, const char *needle, int *yes)
{
	size_t nl = strlen(needle);
	*yes = 0;
	while (from < s->rd.end && s->rd.end - from >= nl) {
		const uint8_t *p;
		size_t n;
		enum err_code rc = rd_peek(&s->rd, from, READ_CHUNK, &p, &n);
		if (rc)
			return rc;
		if (memmem(p, n, needle, nl)) {
			*yes = 1;
			return ERR_OK;
		}
		if (from + n >= s->rd.end)
			break;
		from += n - (nl - 1);
	}
	return ERR_OK;
}

/* The record's declared extent runs past EOF. A torn write, unless the bytes up
 * to EOF form the complete record with a smaller length (the length field was
 * corrupted) or a later record follows it. */
static enum err_code scan_incomplete(struct scan *s, const struct hdr *h)
{
	uint64_t avail = s->rd.end - s->off - h->size;
	const uint8_t *p;
	size_t n;
	int later = 0;
	enum err_code rc = scan_contains(s, s->off + h->size, h->hash_hex, &later);
	if (rc || later)
		return rc ? rc : scan_damaged(s, "data length does not match the record");
	if (avail >= 2) {
		if ((rc = rd_peek(&s->rd, s->off + h->size, (size_t)avail, &p, &n)))
			return rc;
		uint8_t hash[CHAIN_HASH_LEN];
		if (p[n - 2] == '\n' && p[n - 1] == '\n' &&
		    hash_event(h->parent, h->type, h->type_len, p, n - 2, hash) == ERR_OK &&
		    memcmp(hash, h->hash, CHAIN_HASH_LEN) == 0)
			return scan_damaged(s, "data length does not match the record");
	}
	return scan_torn(s);
}

/* A record whose extent fits but which fails. Torn only when the file ends in
 * zero fill (a crash after the size grew) and nothing refers to it. */
static enum err_code scan_bad_record(struct scan *s, const struct hdr *h, const char *why)
{
	const uint8_t *p;
	size_t n;
	int later = 0;
	enum err_code rc = rd_peek(&s->rd, s->rd.end - 1, 1, &p, &n);
	if (rc)
		return rc;
	if (p[0] != 0)
		return scan_damaged(s, why);
	if ((rc = scan_contains(s, s->off + h->size, h->hash_hex, &later)))
		return rc;
	return later ? scan_damaged(s, why) : scan_torn(s);
}

static enum err_code scan_accept(struct scan *s, const struct hdr *h, const uint8_t *data,
				 uint64_t total)
{
	if (s->collect && offsets_push(&s->offsets, &s->offsets_cap, s->length, s->off))
		return ERR_NOMEM;
	if (s->cb) {
		struct chain_event ev = {.seq = s->length + 1, .event_type = (char *)h->type,
					 .data = (uint8_t *)data, .data_len = (size_t)h->data_len,
					 .offset = s->off};
		memcpy(ev.hash, h->hash, CHAIN_HASH_LEN);
		memcpy(ev.parent_hash, h->parent, CHAIN_HASH_LEN);
		enum err_code rc = s->cb(s->user, &ev);
		if (rc)
			return rc;
	}
	s->length++;
	memcpy(s->head, h->hash, CHAIN_HASH_LEN);
	s->off += total;
	return ERR_OK;
}

static enum err_code scan_header_problem(struct scan *s, const uint8_t *p, enum hdr_status st,
					 const struct hdr *h)
{
	if (h->parent_done && memcmp(h->parent, s->head, CHAIN_HASH_LEN) != 0)
		return scan_damaged(s, "parent hash does not match the previous event");
	if (st == HDR_SHORT)
		return scan_torn(s);
	if (p[h->bad_at] == 0) {
		int zero = 0;
		enum err_code rc = scan_all_zero(s, s->off + h->bad_at, &zero);
		if (rc || zero)
			return rc ? rc : scan_torn(s);
	}
	return scan_damaged(s, h->why);
}

/* Checks the record at s->off; sets *stop when the scan ends there. */
static enum err_code scan_record(struct scan *s, struct hdr *h, int *stop)
{
	const uint8_t *p;
	size_t n;
	enum err_code rc = rd_peek(&s->rd, s->off, HDR_MAX, &p, &n);
	if (rc)
		return rc;
	enum hdr_status st = parse_header(p, n, h);
	*stop = 1;
	if (st != HDR_OK || memcmp(h->parent, s->head, CHAIN_HASH_LEN) != 0)
		return scan_header_problem(s, p, st, h);
	uint64_t total = h->size + h->data_len + 2;
	if (total > s->rd.end - s->off)
		return scan_incomplete(s, h);
	if ((rc = rd_peek(&s->rd, s->off + h->size, (size_t)h->data_len + 2, &p, &n)))
		return rc;
	uint8_t hash[CHAIN_HASH_LEN];
	if (hash_event(h->parent, h->type, h->type_len, p, (size_t)h->data_len, hash))
		return ERR_NOMEM;
	if (p[h->data_len] != '\n' || p[h->data_len + 1] != '\n')
		return scan_bad_record(s, h, "missing record terminator");
	if (memcmp(hash, h->hash, CHAIN_HASH_LEN) != 0)
		return scan_bad_record(s, h, "hash mismatch");
	*stop = 0;
	return scan_accept(s, h, p, total);
}

static enum err_code scan_run(struct scan *s, struct err *err)
{
	struct hdr *h = malloc(sizeof(*h));
	enum err_code rc = ERR_OK;
	int stop = 0;
	if (!h)
		return err_set(err, ERR_NOMEM, "out of memory scanning a chain");
	s->outcome = SCAN_CLEAN;
	while (!stop && s->off < s->rd.end)
		if ((rc = scan_record(s, h, &stop)) != ERR_OK)
			break;
	free(h);
	if (rc == ERR_NOMEM)
		return err_set(err, rc, "out of memory scanning a chain");
	if (rc == ERR_IO)
		return err_errno(err, rc, errno, "cannot read chain at offset %llu",
				 (unsigned long long)s->off);
	return rc;
}

static void scan_release(struct scan *s)
{
	free(s->rd.buf);
	free(s->offsets);
}

static void scan_result(const struct scan *s, struct chain_verify_result *out)
{
	memset(out, 0, sizeof(*out));
	out->valid = s->outcome == SCAN_CLEAN;
	out->length = s->length;
	memcpy(out->head, s->head, CHAIN_HASH_LEN);
	out->first_bad_seq = out->valid ? 0 : s->length + 1;
	snprintf(out->detail, sizeof(out->detail), "%s", s->detail);
}

/* ---- open / close ------------------------------------------------------ */

static enum err_code open_file(const char *dir, const char *path, int create, int *fd_out,
			       struct err *err)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && create) {
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd >= 0 && fsync_dir(dir) != 0) {
			close(fd);
			return err_errno(err, ERR_IO, errno, "cannot sync directory '%s'", dir);
		}
		if (fd < 0 && errno == EEXIST)
			fd = open(path, O_RDWR | O_CLOEXEC);
	}
	if (fd < 0)
		return err_errno(err, errno == ENOENT ? ERR_NOT_FOUND : ERR_IO, errno,
				 "cannot open chain '%s'", path);
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		close(fd);
		return e == EWOULDBLOCK ? err_set(err, ERR_CONFLICT, "chain '%s' is already open", path)
					: err_errno(err, ERR_IO, e, "cannot lock chain '%s'", path);
	}
	*fd_out = fd;
	return ERR_OK;
}

/* Reads the checkpoint's record back: it must still be there, whole, with the
 * checkpoint's hash. Sets *end_out to the offset right after it. */
static int checkpoint_holds(struct scan *s, const struct chain_checkpoint *cp, uint64_t *end_out)
{
	const uint8_t *p;
	size_t n;
	int ok = 0;
	uint8_t hash[CHAIN_HASH_LEN];
	struct hdr *h = malloc(sizeof(*h));
	if (!h || cp->offset >= s->rd.end || rd_peek(&s->rd, cp->offset, HDR_MAX, &p, &n) ||
	    parse_header(p, n, h) != HDR_OK || memcmp(h->hash, cp->hash, CHAIN_HASH_LEN) != 0)
		goto out;
	uint64_t total = h->size + h->data_len + 2;
	if (total > s->rd.end - cp->offset ||
	    rd_peek(&s->rd, cp->offset + h->size, (size_t)h->data_len + 2, &p, &n) ||
	    p[h->data_len] != '\n' || p[h->data_len + 1] != '\n' ||
	    hash_event(h->parent, h->type, h->type_len, p, (size_t)h->data_len, hash) ||
	    memcmp(hash, h->hash, CHAIN_HASH_LEN) != 0)
		goto out;
	*end_out = cp->offset + total;
	ok = 1;
out:
	free(h);
	return ok;
}

/* Starts the scan after a checkpoint that still holds: events 1..cp->seq are
 * trusted, their offsets (but the last) left to offsets_load. 0 when it does
 * not hold (the caller scans the whole file), -1 out of memory. */
static int scan_from_checkpoint(struct scan *s, const struct chain_checkpoint *cp,
				uint64_t *base_end)
{
	if (!cp || cp->seq == 0 || cp->seq > SIZE_MAX / sizeof(uint64_t) - 16 ||
	    !checkpoint_holds(s, cp, base_end))
		return 0;
	s->offsets_cap = (size_t)cp->seq + 8;
	if (!(s->offsets = calloc(s->offsets_cap, sizeof(*s->offsets))))
		return -1;
	s->offsets[cp->seq - 1] = cp->offset;
	s->length = cp->seq;
	s->off = *base_end;
	memcpy(s->head, cp->hash, CHAIN_HASH_LEN);
	return 1;
}

/* Scans the file (from the checkpoint when it holds, else whole), cuts a torn
 * tail (unless that would cut below `acked` events: then it is damage), and
 * moves the results into c. */
static enum err_code open_scan(struct chain *c, int fd, uint64_t acked,
			       const struct chain_checkpoint *cp, struct chain_open_report *rep,
			       struct err *err)
{
	struct stat st;
	struct scan s = {.rd = {.fd = fd}, .collect = 1};
	enum err_code rc = ERR_OK;
	uint64_t base_end = 0;
	if (fstat(fd, &st) != 0)
		return err_errno(err, ERR_IO, errno, "cannot stat chain '%s'", c->path);
	s.rd.end = (uint64_t)st.st_size;
	int from_cp = scan_from_checkpoint(&s, cp, &base_end);
	if (from_cp < 0) {
		rc = err_set(err, ERR_NOMEM, "out of memory opening chain '%s'", c->path);
		goto fail;
	}
	if (cp && cp->seq && !from_cp)
		log_info("chain", "chain '%s': the index's checkpoint at seq %llu does not match "
			 "the file; scanning it whole", c->path, (unsigned long long)cp->seq);
	if ((rc = scan_run(&s, err)) != ERR_OK)
		goto fail;
	if (s.outcome != SCAN_DAMAGED && s.length < acked) {
		/* Acknowledged events are missing: a cut or a hole, not a torn write. */
		char why[sizeof(s.detail) + 128];
		snprintf(why, sizeof(why), "%s%shas %llu good events but %llu were acknowledged",
			 s.detail, s.detail[0] ? "; the file " : "the file ",
			 (unsigned long long)s.length, (unsigned long long)acked);
		memcpy(s.detail, why, sizeof(s.detail) - 1);
		s.detail[sizeof(s.detail) - 1] = 0;
		s.outcome = SCAN_DAMAGED;
	}
	if (s.outcome == SCAN_TORN) {
		if (ftruncate(fd, (off_t)s.off) != 0) {
			rc = err_errno(err, ERR_IO, errno, "cannot truncate chain '%s'", c->path);
			goto fail;
		}
		rep->truncated_tail = 1;
		rep->truncated_bytes = s.rd.end - s.off;
		log_warn("chain", "chain '%s': cut torn tail: %s", c->path, s.detail);
	} else if (s.outcome == SCAN_DAMAGED) {
		c->damaged = 1;
		rep->damaged = 1;
		rep->first_bad_seq = s.length + 1;
		log_error("chain", "chain '%s' is damaged, opened read-only: %s", c->path, s.detail);
	}
	snprintf(rep->detail, sizeof(rep->detail), "%s", s.detail);
	rep->length = c->length = s.length;
	c->end = c->synced = s.off;
	memcpy(c->head, s.head, CHAIN_HASH_LEN);
	c->offsets = s.offsets;
	c->offsets_cap = s.offsets_cap;
	c->loaded_from = from_cp ? cp->seq - 1 : 0;
	c->base_end = from_cp ? cp->offset : 0;
	s.offsets = NULL;
fail:
	scan_release(&s);
	return rc;
}

/* With c->mu held: the offsets of the events before the checkpoint, from their
 * record headers (their hashes were checked when they were written; chain_read
 * checks each again). */
static enum err_code offsets_load(struct chain *c, struct err *err)
{
	if (!c->loaded_from)
		return ERR_OK;
	int fd = -1;
	enum err_code rc = chain_fd_get(c, &fd, err);
	if (rc)
		return rc;
	struct reader rd = {.fd = fd, .end = c->base_end};
	struct hdr *h = malloc(sizeof(*h));
	uint64_t off = 0, i;
	for (i = 0; h && i < c->loaded_from; i++) {
		const uint8_t *p;
		size_t n;
		c->offsets[i] = off;
		if ((rc = rd_peek(&rd, off, HDR_MAX, &p, &n)) != ERR_OK)
			break;
		if (parse_header(p, n, h) != HDR_OK)
			break;
		off += h->size + h->data_len + 2;
	}
	chain_fd_put(c);
	free(rd.buf);
	free(h);
	if (!h)
		return err_set(err, ERR_NOMEM, "out of memory reading chain '%s'", c->path);
	if (rc == ERR_IO)
		return err_errno(err, rc, errno, "cannot read chain '%s'", c->path);
	if (rc)
		return err_set(err, rc, "out of memory reading chain '%s'", c->path);
	if (i < c->loaded_from || off != c->offsets[c->loaded_from])
		return err_set(err, ERR_CORRUPT, "chain '%s': the records before seq %llu changed "
			       "on disk", c->path, (unsigned long long)(c->loaded_from + 1));
	c->loaded_from = 0;
	return ERR_OK;
}

static struct chain *chain_alloc(const char *dir, const char *actor_id)
{
	struct chain *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->fd = -1;
	c->path = join_path(dir, actor_id, ".chain");
	if (!c->path) {
		free(c);
		return NULL;
	}
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	return c;
}

static void chain_free(struct chain *c)
{
	int fd = chain_fd_release(c);
	if (fd >= 0)
		close(fd);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c->offsets);
	free(c->path);
	free(c);
}

enum err_code chain_open(const char *dir, const char *actor_id, struct chain **out,
			 struct chain_open_report *report, struct err *err)
{
	return chain_open_from(dir, actor_id, 0, NULL, out, report, err);
}

enum err_code chain_open_known(const char *dir, const char *actor_id, uint64_t acked,
			       struct chain **out, struct chain_open_report *report,
			       struct err *err)
{
	return chain_open_from(dir, actor_id, acked, NULL, out, report, err);
}

enum err_code chain_open_from(const char *dir, const char *actor_id, uint64_t acked,
			      const struct chain_checkpoint *cp, struct chain **out,
			      struct chain_open_report *report, struct err *err)
{
	struct chain_open_report dummy;
	struct chain *c = NULL;
	enum err_code rc;
	int fd = -1;
	*out = NULL;
	if (!report)
		report = &dummy;
	memset(report, 0, sizeof(*report));
	if (!chain_id_valid(actor_id))
		return err_set(err, ERR_BAD_ID, "invalid actor id for a chain");
	if (!(c = chain_alloc(dir, actor_id)))
		return err_set(err, ERR_NOMEM, "out of memory opening a chain");
	if ((rc = open_file(dir, c->path, acked == 0, &fd, err)) != ERR_OK)
		goto fail;
	if ((rc = chain_fd_install(c, fd, err)) != ERR_OK) {
		close(fd);
		goto fail;
	}
	rc = open_scan(c, fd, acked, cp, report, err);
	/* Only a cut needs a sync here; bytes left by a process that died are made
	 * durable by the first synced append (fdatasync covers the whole file). */
	if (!rc && !c->damaged && report->truncated_tail && fdatasync(fd) != 0)
		rc = err_errno(err, ERR_IO, errno, "cannot sync chain '%s'", c->path);
	chain_fd_put(c);
	if (rc)
		goto fail;
	*out = c;
	return ERR_OK;
fail:
	chain_free(c);
	return rc;
}

enum err_code chain_open_trusted(const char *dir, int dirfd, const char *actor_id,
				 const struct chain_checkpoint *cp, uint64_t end,
				 struct chain **out, struct err *err)
{
	*out = NULL;
	if (!chain_id_valid(actor_id))
		return err_set(err, ERR_BAD_ID, "invalid actor id for a chain");
	if (!cp || !cp->seq || cp->offset >= end || cp->seq > SIZE_MAX / sizeof(uint64_t) - 16)
		return err_set(err, ERR_INVALID, "no checkpoint to trust for chain '%s'", actor_id);
	struct chain *c = chain_alloc(dir, actor_id);
	if (!c)
		return err_set(err, ERR_NOMEM, "out of memory opening a chain");
	struct stat st;
	enum err_code rc = ERR_OK;
	char name[64 + sizeof(".chain")];   /* chain_id_valid: at most 64 bytes */
	snprintf(name, sizeof(name), "%s.chain", actor_id);
	if ((dirfd >= 0 ? fstatat(dirfd, name, &st, 0) : stat(c->path, &st)) != 0) {
		rc = err_errno(err, errno == ENOENT ? ERR_NOT_FOUND : ERR_IO, errno,
			       "cannot stat chain '%s'", c->path);
		goto fail;
	}
	if ((uint64_t)st.st_size != end) {
		rc = err_set(err, ERR_CONFLICT, "chain '%s' has %llu bytes, the index says %llu",
			     c->path, (unsigned long long)st.st_size, (unsigned long long)end);
		goto fail;
	}
	c->offsets_cap = (size_t)cp->seq + 8;
	if (!(c->offsets = calloc(c->offsets_cap, sizeof(*c->offsets)))) {
		rc = err_set(err, ERR_NOMEM, "out of memory opening chain '%s'", c->path);
		goto fail;
	}
	c->offsets[cp->seq - 1] = cp->offset;
	c->length = cp->seq;
	c->end = c->synced = end;
	c->trusted_size = end;
	memcpy(c->head, cp->hash, CHAIN_HASH_LEN);
	c->loaded_from = cp->seq - 1;
	c->base_end = cp->offset;
	*out = c;
	return ERR_OK;
fail:
	chain_free(c);
	return rc;
}

void chain_close(struct chain *c)
{
	if (!c)
		return;
	int fd = chain_fd_release(c);
	if (!c->damaged && !c->broken_errno && c->synced < c->end) {
		/* The cache may have closed the descriptor: any one syncs the file. */
		int sfd = fd >= 0 ? fd : open(c->path, O_RDONLY | O_CLOEXEC);
		if (sfd < 0 || fdatasync(sfd) != 0)
			log_error("chain", "cannot sync chain '%s' on close: %s", c->path,
				  strerror(errno));
		if (sfd >= 0 && sfd != fd)
			close(sfd);
	}
	if (fd >= 0)
		close(fd);
	chain_free(c);
}

/* ---- append ------------------------------------------------------------ */

/* A record with its hash and parent lines left blank, built outside the lock. */
struct record {
	char *bytes;
	size_t len;
	const char *type;
	size_t type_len;
	const void *data;
	size_t data_len;
};

static enum err_code record_build(struct record *r, const char *type, const void *data,
				  size_t len, struct err *err)
{
	size_t tlen = type ? strnlen(type, CHAIN_MAX_TYPE + 1) : 0;
	if (tlen == 0 || tlen > CHAIN_MAX_TYPE)
		return err_set(err, ERR_INVALID, "event type must have 1 to %d bytes", CHAIN_MAX_TYPE);
	for (size_t i = 0; i < tlen; i++)
		if ((unsigned char)type[i] < 0x20)
			return err_set(err, ERR_INVALID, "event type '%.64s' has a control character",
				       type);
	if (len > CHAIN_MAX_DATA)
		return err_set(err, ERR_TOO_LARGE, "event data of %zu bytes is over the limit of %u",
			       len, CHAIN_MAX_DATA);
	if (len && !data)
		return err_set(err, ERR_INVALID, "event data is NULL");
	char lenline[24];
	int ln = snprintf(lenline, sizeof(lenline), "%zu\n\n", len);
	r->len = REC_PARENT_AT + HEX_LEN + 1 + tlen + 1 + (size_t)ln + len + 2;
	if (!(r->bytes = malloc(r->len)))
		return err_set(err, ERR_NOMEM, "out of memory building an event");
	char *p = r->bytes;
	memcpy(p, "EVENT ", 6);
	p[REC_HASH_AT + HEX_LEN] = '\n';
	p[REC_PARENT_AT + HEX_LEN] = '\n';
	p += REC_PARENT_AT + HEX_LEN + 1;
	memcpy(p, type, tlen);
	p[tlen] = '\n';
	p += tlen + 1;
	memcpy(p, lenline, (size_t)ln);
	if (len)
		memcpy(p + ln, data, len);
	memcpy(p + ln + len, "\n\n", 2);
	r->type = type;
	r->type_len = tlen;
	r->data = data;
	r->data_len = len;
	return ERR_OK;
}

/* With c->mu held: an fdatasync the descriptor cache made before closing this
 * chain's descriptor failed; the chain then refuses appends, as after its own. */
static void evict_error_check(struct chain *c)
{
	int e = __atomic_load_n(&c->evict_errno, __ATOMIC_ACQUIRE);
	if (e && !c->broken_errno)
		c->broken_errno = e;
}

/* With c->mu held: tells the descriptor cache whether closing c needs a sync. */
static void note_synced(struct chain *c)
{
	__atomic_store_n(&c->unsynced, c->synced < c->end, __ATOMIC_RELEASE);
}

static enum err_code append_check(struct chain *c, struct err *err)
{
	evict_error_check(c);
	if (c->damaged)
		return err_set(err, ERR_CORRUPT, "chain '%s' is damaged and read-only", c->path);
	if (c->broken_errno)
		return err_errno(err, ERR_IO, c->broken_errno, "chain '%s' refuses appends after a "
				 "failed write", c->path);
	if (offsets_push(&c->offsets, &c->offsets_cap, c->length, c->end))
		return err_set(err, ERR_NOMEM, "out of memory growing chain '%s'", c->path);
	return ERR_OK;
}

/* Called with c->mu held: hashes against the head, writes at the end. */
static enum err_code append_locked(struct chain *c, struct record *r, struct chain_event *out,
				   struct err *err)
{
	uint8_t hash[CHAIN_HASH_LEN];
	enum err_code rc = append_check(c, err);
	if (rc)
		return rc;
	if (hash_event(c->head, r->type, r->type_len, r->data, r->data_len, hash))
		return err_set(err, ERR_NOMEM, "out of memory hashing an event");
	hex_encode(hash, CHAIN_HASH_LEN, r->bytes + REC_HASH_AT);
	hex_encode(c->head, CHAIN_HASH_LEN, r->bytes + REC_PARENT_AT);
	r->bytes[REC_HASH_AT + HEX_LEN] = '\n';   /* hex_encode wrote NULs */
	r->bytes[REC_PARENT_AT + HEX_LEN] = '\n';
	int fd = -1;
	if ((rc = chain_fd_get(c, &fd, err)) != ERR_OK)
		return rc;
	__atomic_store_n(&c->unsynced, 1, __ATOMIC_RELEASE);   /* before the descriptor is free */
	if (pwrite_all(fd, r->bytes, r->len, c->end) != 0) {
		int e = errno;
		if (ftruncate(fd, (off_t)c->end) != 0)
			c->broken_errno = e;
		chain_fd_put(c);
		return err_errno(err, ERR_IO, e, "cannot write to chain '%s'", c->path);
	}
	chain_fd_put(c);
	if (out) {
		memset(out, 0, sizeof(*out));
		out->seq = c->length + 1;
		memcpy(out->hash, hash, CHAIN_HASH_LEN);
		memcpy(out->parent_hash, c->head, CHAIN_HASH_LEN);
		out->offset = c->end;
		out->end = c->end + r->len;
		out->data_len = r->data_len;
	}
	c->length++;
	memcpy(c->head, hash, CHAIN_HASH_LEN);
	c->end += r->len;
	return ERR_OK;
}

static void sleep_us(unsigned us)
{
	struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

/* Called with c->mu held; returns once [0, target) is on disk. The first waiter
 * becomes the leader and syncs everything written so far without the lock. */
/* Process-wide by nature (one disk, one /metrics), and lock-free counters, so a
 * file-scope object rather than a field of every chain. */
static struct histo fsync_latency;

void chain_fsync_histo(struct histo *out)
{
	uint64_t cum[HISTO_BUCKETS + 1];
	histo_read(&fsync_latency, cum, &out->sum_us);
	for (int i = 0; i <= HISTO_BUCKETS; i++)
		out->counts[i] = cum[i] - (i ? cum[i - 1] : 0);
}

static enum err_code wait_durable(struct chain *c, uint64_t target, struct err *err)
{
	enum err_code rc = ERR_OK;
	evict_error_check(c);
	while (rc == ERR_OK && c->synced < target && !c->broken_errno) {
		if (c->syncing) {
			pthread_cond_wait(&c->cv, &c->mu);
			continue;
		}
		uint64_t upto = c->end;
		unsigned delay = c->sync_delay_us;
		c->syncing = 1;
		pthread_mutex_unlock(&c->mu);
		if (delay)
			sleep_us(delay);
		int fd = -1, sr = 0, e = 0;
		rc = chain_fd_get(c, &fd, err);
		if (rc == ERR_OK) {
			int64_t t0 = histo_now_us();
			sr = fdatasync(fd);
			e = errno;
			histo_observe(&fsync_latency, histo_now_us() - t0);
			chain_fd_put(c);
		}
		pthread_mutex_lock(&c->mu);
		c->syncing = 0;
		if (rc == ERR_OK) {
			c->sync_count++;
			if (sr != 0)
				c->broken_errno = e;
			else if (upto > c->synced)
				c->synced = upto;
		}
		note_synced(c);
		evict_error_check(c);
		pthread_cond_broadcast(&c->cv);
	}
	if (rc)
		return rc;
	if (c->synced < target)
		return err_errno(err, ERR_IO, c->broken_errno, "cannot sync chain '%s'", c->path);
	return ERR_OK;
}

static enum err_code do_append(struct chain *c, const char *type, const void *data, size_t len,
			       struct chain_event *out, int durable, struct err *err)
{
	struct record r = {0};
	enum err_code rc = record_build(&r, type, data, len, err);
	if (rc)
		return rc;
	pthread_mutex_lock(&c->mu);
	rc = append_locked(c, &r, out, err);
	if (rc == ERR_OK && durable)
		rc = wait_durable(c, c->end, err);
	pthread_mutex_unlock(&c->mu);
	free(r.bytes);
	return rc;
}

enum err_code chain_append(struct chain *c, const char *event_type, const void *data,
			   size_t len, struct chain_event *out, struct err *err)
{
	return do_append(c, event_type, data, len, out, 1, err);
}

enum err_code chain_append_nosync(struct chain *c, const char *event_type, const void *data,
				  size_t len, struct chain_event *out, struct err *err)
{
	return do_append(c, event_type, data, len, out, 0, err);
}

enum err_code chain_sync(struct chain *c, struct err *err)
{
	pthread_mutex_lock(&c->mu);
	enum err_code rc = c->damaged ? ERR_OK : wait_durable(c, c->end, err);
	pthread_mutex_unlock(&c->mu);
	return rc;
}

enum err_code chain_sync_upto(struct chain *c, uint64_t upto, struct err *err)
{
	pthread_mutex_lock(&c->mu);
	if (upto > c->end)
		upto = c->end;
	enum err_code rc = c->damaged || c->synced >= upto ? ERR_OK : wait_durable(c, upto, err);
	pthread_mutex_unlock(&c->mu);
	return rc;
}

enum err_code chain_syncfs(const char *dir, struct err *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return err_errno(err, ERR_IO, errno, "cannot open '%s'", dir);
	int rc = syncfs(fd);
	int e = errno;
	close(fd);
	return rc == 0 ? ERR_OK : err_errno(err, ERR_IO, e, "cannot sync the file system of '%s'",
					   dir);
}

uint64_t chain_written(struct chain *c)
{
	pthread_mutex_lock(&c->mu);
	uint64_t end = c->end;
	pthread_mutex_unlock(&c->mu);
	return end;
}

uint64_t chain_unsynced(struct chain *c)
{
	pthread_mutex_lock(&c->mu);
	uint64_t n = c->damaged || c->synced >= c->end ? 0 : c->end - c->synced;
	pthread_mutex_unlock(&c->mu);
	return n;
}

void chain_mark_synced(struct chain *c, uint64_t upto)
{
	pthread_mutex_lock(&c->mu);
	if (!c->damaged && !c->broken_errno && c->synced < upto && upto <= c->end) {
		c->synced = upto;
		note_synced(c);
		pthread_cond_broadcast(&c->cv);
	}
	pthread_mutex_unlock(&c->mu);
}

/* ---- accessors ---------------------------------------------------------- */

uint64_t chain_length(struct chain *c)
{
	pthread_mutex_lock(&c->mu);
	uint64_t n = c->length;
	pthread_mutex_unlock(&c->mu);
	return n;
}

uint64_t chain_synced_length(struct chain *c)
{
	pthread_mutex_lock(&c->mu);
	/* synced is a record boundary: count the records that start before it. */
	uint64_t lo = 0, hi = c->length;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (c->offsets[mid] < c->synced)
			lo = mid + 1;
		else
			hi = mid;
	}
	pthread_mutex_unlock(&c->mu);
	return lo;
}

void chain_head(struct chain *c, uint8_t hash_out[CHAIN_HASH_LEN])
{
	pthread_mutex_lock(&c->mu);
	memcpy(hash_out, c->head, CHAIN_HASH_LEN);
	pthread_mutex_unlock(&c->mu);
}

int chain_damaged(struct chain *c)
{
	pthread_mutex_lock(&c->mu);
	int d = c->damaged;
	pthread_mutex_unlock(&c->mu);
	return d;
}

const char *chain_path(struct chain *c)
{
	return c->path;
}

uint64_t chain_sync_count(struct chain *c)
{
	pthread_mutex_lock(&c->mu);
	uint64_t n = c->sync_count;
	pthread_mutex_unlock(&c->mu);
	return n;
}

void chain_set_sync_delay(struct chain *c, unsigned usec)
{
	pthread_mutex_lock(&c->mu);
	c->sync_delay_us = usec;
	pthread_mutex_unlock(&c->mu);
}

/* ---- read and verify ---------------------------------------------------- */

static enum err_code decode_record(const struct chain *c, uint64_t seq, const uint8_t *p,
				   size_t n, struct hdr *h, struct err *err)
{
	uint8_t hash[CHAIN_HASH_LEN];
	if (parse_header(p, n, h) != HDR_OK || h->size + h->data_len + 2 != n ||
	    p[n - 2] != '\n' || p[n - 1] != '\n')
		return err_set(err, ERR_CORRUPT, "chain '%s': event %llu is malformed on disk",
			       c->path, (unsigned long long)seq);
	if (hash_event(h->parent, h->type, h->type_len, p + h->size, (size_t)h->data_len, hash))
		return err_set(err, ERR_NOMEM, "out of memory hashing an event");
	if (memcmp(hash, h->hash, CHAIN_HASH_LEN) != 0)
		return err_set(err, ERR_CORRUPT, "chain '%s': event %llu fails its hash",
			       c->path, (unsigned long long)seq);
	return ERR_OK;
}

static enum err_code fill_event(const struct hdr *h, const uint8_t *data, uint64_t seq,
				uint64_t off, struct chain_event *out, struct err *err)
{
	char *type = strdup(h->type);
	uint8_t *copy = malloc((size_t)h->data_len + 1);
	if (!type || !copy) {
		free(type);
		free(copy);
		return err_set(err, ERR_NOMEM, "out of memory reading an event");
	}
	memcpy(copy, data, (size_t)h->data_len);
	copy[h->data_len] = '\0';
	memset(out, 0, sizeof(*out));
	out->seq = seq;
	memcpy(out->hash, h->hash, CHAIN_HASH_LEN);
	memcpy(out->parent_hash, h->parent, CHAIN_HASH_LEN);
	out->event_type = type;
	out->data = copy;
	out->data_len = (size_t)h->data_len;
	out->offset = off;
	out->end = off + h->size + h->data_len + 2;
	return ERR_OK;
}

enum err_code chain_read(struct chain *c, uint64_t seq, struct chain_event *out, struct err *err)
{
	uint8_t *buf = NULL;
	struct hdr *h = NULL;
	enum err_code rc;
	pthread_mutex_lock(&c->mu);
	if (seq >= 1 && seq <= c->loaded_from && (rc = offsets_load(c, err)) != ERR_OK) {
		pthread_mutex_unlock(&c->mu);
		return rc;
	}
	uint64_t length = c->length;
	uint64_t off = seq >= 1 && seq <= length ? c->offsets[seq - 1] : 0;
	uint64_t next = seq >= 1 && seq < length ? c->offsets[seq] : c->end;
	pthread_mutex_unlock(&c->mu);
	if (seq == 0 || seq > length)
		return err_set(err, ERR_NOT_FOUND, "chain '%s' has no event %llu", c->path,
			       (unsigned long long)seq);
	size_t n = (size_t)(next - off);
	if (!(buf = malloc(n)) || !(h = malloc(sizeof(*h)))) {
		rc = err_set(err, ERR_NOMEM, "out of memory reading an event");
		goto fail;
	}
	int fd = -1;
	if ((rc = chain_fd_get(c, &fd, err)) != ERR_OK)
		goto fail;
	if (pread_all(fd, buf, n, off) != 0) {
		rc = err_errno(err, ERR_IO, errno, "cannot read chain '%s'", c->path);
		chain_fd_put(c);
		goto fail;
	}
	chain_fd_put(c);
	if ((rc = decode_record(c, seq, buf, n, h, err)) == ERR_OK)
		rc = fill_event(h, buf + h->size, seq, off, out, err);
fail:
	free(h);
	free(buf);
	return rc;
}

enum err_code chain_verify(struct chain *c, struct chain_verify_result *out, struct err *err)
{
	struct scan s = {0};
	struct stat st;
	int fd = -1;
	enum err_code rc = chain_fd_get(c, &fd, err);
	if (rc)
		return rc;
	s.rd.fd = fd;
	pthread_mutex_lock(&c->mu);
	uint64_t length = c->length, end = c->end;
	uint8_t head[CHAIN_HASH_LEN];
	memcpy(head, c->head, CHAIN_HASH_LEN);
	int damaged = c->damaged;
	pthread_mutex_unlock(&c->mu);
	if (fstat(fd, &st) != 0) {
		chain_fd_put(c);
		return err_errno(err, ERR_IO, errno, "cannot stat chain '%s'", c->path);
	}
	/* A damaged chain is checked to its end so the result names the damage. */
	s.rd.end = damaged || (uint64_t)st.st_size < end ? (uint64_t)st.st_size : end;
	rc = scan_run(&s, err);
	chain_fd_put(c);
	if (rc == ERR_OK) {
		scan_result(&s, out);
		if (out->valid && (out->length != length || memcmp(out->head, head, CHAIN_HASH_LEN))) {
			out->valid = 0;
			out->first_bad_seq = out->length + 1;
			snprintf(out->detail, sizeof(out->detail),
				 "file has %llu events, the open chain %llu",
				 (unsigned long long)out->length, (unsigned long long)length);
		}
	}
	scan_release(&s);
	return rc;
}

enum err_code chain_scan_file(const char *path, chain_scan_cb cb, void *user,
			      struct chain_verify_result *out, struct err *err)
{
	struct scan s = {.cb = cb, .user = user};
	struct stat st;
	enum err_code rc;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_errno(err, errno == ENOENT ? ERR_NOT_FOUND : ERR_IO, errno,
				 "cannot open chain '%s'", path);
	if (fstat(fd, &st) != 0) {
		rc = err_errno(err, ERR_IO, errno, "cannot stat chain '%s'", path);
		goto fail;
	}
	s.rd.fd = fd;
	s.rd.end = (uint64_t)st.st_size;
	if ((rc = scan_run(&s, err)) == ERR_OK)
		scan_result(&s, out);
fail:
	scan_release(&s);
	close(fd);
	return rc;
}

enum err_code chain_verify_file(const char *path, struct chain_verify_result *out,
				struct err *err)
{
	return chain_scan_file(path, NULL, NULL, out, err);
}

/* ---- meta file ------------------------------------------------------------ */

static json_t *meta_json(const char *actor_id, const char *actor_name,
			 const char *manifest_path, int64_t started_at_s)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	if (json_object_set_new(o, "actor_id", json_string(actor_id)) ||
	    json_object_set_new(o, "actor_name", actor_name ? json_string(actor_name) : json_null()) ||
	    json_object_set_new(o, "manifest_path",
				manifest_path ? json_string(manifest_path) : json_null()) ||
	    json_object_set_new(o, "started_at", json_integer(started_at_s))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* Writes text to a fresh temp file named by tmpl (mkstemp), syncs it, renames
 * it over path and syncs the directory. */
static enum err_code write_file_atomic(const char *dir, const char *path, char *tmpl,
				       const char *text, struct err *err)
{
	enum err_code rc = ERR_OK;
	int fd = mkstemp(tmpl);
	if (fd < 0)
		return err_errno(err, ERR_IO, errno, "cannot create '%s'", tmpl);
	if (fchmod(fd, 0644) != 0 || pwrite_all(fd, text, strlen(text), 0) != 0 ||
	    fsync(fd) != 0) {
		rc = err_errno(err, ERR_IO, errno, "cannot write '%s'", tmpl);
		close(fd);
		goto fail;
	}
	if (close(fd) != 0) {
		rc = err_errno(err, ERR_IO, errno, "cannot write '%s'", tmpl);
		goto fail;
	}
	if (rename(tmpl, path) != 0) {
		rc = err_errno(err, ERR_IO, errno, "cannot rename '%s' to '%s'", tmpl, path);
		goto fail;
	}
	if (fsync_dir(dir) != 0)
		return err_errno(err, ERR_IO, errno, "cannot sync directory '%s'", dir);
	return ERR_OK;
fail:
	unlink(tmpl);
	return rc;
}

static char *meta_text(const char *actor_id, const char *actor_name, const char *manifest_path,
		       int64_t started_at_s)
{
	json_t *o = meta_json(actor_id, actor_name, manifest_path, started_at_s);
	char *text = o ? json_dumps(o, JSON_INDENT(2)) : NULL;
	json_decref(o);
	if (!text)
		return NULL;
	size_t n = strlen(text);
	char *t = realloc(text, n + 2);
	if (!t) {
		free(text);
		return NULL;
	}
	memcpy(t + n, "\n", 2);
	return t;
}

enum err_code chain_write_meta(const char *dir, const char *actor_id, const char *actor_name,
			       const char *manifest_path, int64_t started_at_s, struct err *err)
{
	enum err_code rc;
	char *path = NULL, *tmpl = NULL, *text = NULL;
	if (!chain_id_valid(actor_id))
		return err_set(err, ERR_BAD_ID, "invalid actor id for a meta file");
	path = join_path(dir, actor_id, ".meta.json");
	size_t n = strlen(dir) + strlen(actor_id) + 24;
	if ((tmpl = malloc(n)))
		snprintf(tmpl, n, "%s/.%s.meta.json.XXXXXX", dir, actor_id);
	text = meta_text(actor_id, actor_name, manifest_path, started_at_s);
	if (!path || !tmpl)
		rc = err_set(err, ERR_NOMEM, "out of memory writing the meta file of '%s'", actor_id);
	else if (!text)
		rc = err_set(err, ERR_INVALID, "cannot encode the meta file of '%s' (bad UTF-8?)",
			     actor_id);
	else
		rc = write_file_atomic(dir, path, tmpl, text, err);
	free(text);
	free(tmpl);
	free(path);
	return rc;
}

void chain_remove_meta(const char *dir, const char *actor_id)
{
	char *path = chain_id_valid(actor_id) ? join_path(dir, actor_id, ".meta.json") : NULL;
	if (path)
		unlink(path);
	free(path);
}

static enum err_code read_small_file(const char *path, size_t max, char **data_out,
				     size_t *len_out, struct err *err)
{
	struct stat st;
	char *data = NULL;
	enum err_code rc = ERR_OK;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return err_errno(err, errno == ENOENT ? ERR_NOT_FOUND : ERR_IO, errno,
				 "cannot open '%s'", path);
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
		rc = err_set(err, ERR_CORRUPT, "'%s' is not a regular file of at most %zu bytes",
			     path, max);
		goto fail;
	}
	if (!(data = malloc((size_t)st.st_size + 1))) {
		rc = err_set(err, ERR_NOMEM, "out of memory reading '%s'", path);
		goto fail;
	}
	if (pread_all(fd, data, (size_t)st.st_size, 0) != 0) {
		rc = err_errno(err, ERR_IO, errno, "cannot read '%s'", path);
		goto fail;
	}
	data[st.st_size] = '\0';
	*data_out = data;
	*len_out = (size_t)st.st_size;
	data = NULL;
fail:
	free(data);
	close(fd);
	return rc;
}

static enum err_code meta_str(json_t *o, const char *key, char **out, struct err *err)
{
	json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v))
		return ERR_OK;
	if (!json_is_string(v))
		return err_set(err, ERR_CORRUPT, "meta field '%s' is not a string", key);
	if (!(*out = strdup(json_string_value(v))))
		return err_set(err, ERR_NOMEM, "out of memory reading meta field '%s'", key);
	return ERR_OK;
}

enum err_code chain_read_meta(const char *dir, const char *actor_id, struct chain_meta *out,
			      struct err *err)
{
	char *path = NULL, *text = NULL;
	size_t len = 0;
	json_t *o = NULL, *t;
	enum err_code rc;
	memset(out, 0, sizeof(*out));
	if (!chain_id_valid(actor_id))
		return err_set(err, ERR_BAD_ID, "invalid actor id for a meta file");
	if (!(path = join_path(dir, actor_id, ".meta.json")))
		return err_set(err, ERR_NOMEM, "out of memory reading a meta file");
	if ((rc = read_small_file(path, META_MAX, &text, &len, err)) != ERR_OK)
		goto fail;
	if (!(o = json_parse(text, len, 8, err)) || !json_is_object(o)) {
		rc = o ? err_set(err, ERR_CORRUPT, "meta file '%s' is not an object", path)
		       : ERR_BAD_JSON;
		goto fail;
	}
	if ((rc = meta_str(o, "actor_id", &out->actor_id, err)) ||
	    (rc = meta_str(o, "actor_name", &out->actor_name, err)) ||
	    (rc = meta_str(o, "manifest_path", &out->manifest_path, err)))
		goto fail;
	t = json_object_get(o, "started_at");
	if (t && !json_is_integer(t)) {
		rc = err_set(err, ERR_CORRUPT, "meta field 'started_at' is not an integer");
		goto fail;
	}
	out->started_at_s = t ? (int64_t)json_integer_value(t) : 0;
fail:
	if (rc)
		chain_meta_release(out);
	json_decref(o);
	free(text);
	free(path);
	return rc;
}

void chain_meta_release(struct chain_meta *m)
{
	if (!m)
		return;
	free(m->actor_id);
	free(m->actor_name);
	free(m->manifest_path);
	memset(m, 0, sizeof(*m));
}
