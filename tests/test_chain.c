/* test_chain.c - the hash chain file: hash rule, byte-exact records, binary
 * data, torn tails, damage, reopen, concurrency, group commit, meta file. */
#include "tests/support/testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/chain.h"
#include "src/util/crypto.h"

#define LOG_TYPE "theater:simple/runtime/log"
/* docs/chain-format.md: the same digests, checked there with printf | sha256sum. */
#define VEC1_HASH "f0245c73b4d8944fe6b17efeefbd77ba61b78076c5ca7c20496f71306f2b6a30"
#define VEC2_HASH "32c571fa68f4408fb230b3327cf18a5e281765bc9067496a7c0317e7bc2a0884"
#define ZERO_HEX "0000000000000000000000000000000000000000000000000000000000000000"
#define ACTOR "5f0c2a8e-3b9d-4c1e-9a7f-2d6b8e4c1a90"

static const uint8_t zero_hash[CHAIN_HASH_LEN];

struct fixture {
	char *dir;
	char *path;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	f->dir = tu_mkdtemp("theater-chain");
	f->path = tu_fmt("%s/%s.chain", f->dir, ACTOR);
	*state = f;
	return f->dir ? 0 : -1;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	tu_rmtree(f->dir);
	free(f->dir);
	free(f->path);
	free(f);
	return 0;
}

static struct chain *open_ok(struct fixture *f, struct chain_open_report *rep)
{
	struct chain *c = NULL;
	struct err e = {0};
	assert_int_equal(chain_open(f->dir, ACTOR, &c, rep, &e), ERR_OK);
	assert_non_null(c);
	return c;
}

static void append_ok(struct chain *c, const char *type, const void *data, size_t len,
		      struct chain_event *ev)
{
	struct err e = {0};
	assert_int_equal(chain_append(c, type, data, len, ev, &e), ERR_OK);
}

static void hex_of(const uint8_t h[CHAIN_HASH_LEN], char out[65])
{
	hex_encode(h, CHAIN_HASH_LEN, out);
}

static off_t file_size(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

static void test_hash_vector(void **state)
{
	(void)state;
	uint8_t h1[CHAIN_HASH_LEN], h2[CHAIN_HASH_LEN];
	char hex[65];
	const char *d1 = "{\"message\":\"hello\"}", *d2 = "{\"message\":\"world\"}";
	chain_hash(zero_hash, LOG_TYPE, strlen(LOG_TYPE), d1, strlen(d1), h1);
	hex_of(h1, hex);
	assert_string_equal(hex, VEC1_HASH);
	chain_hash(h1, LOG_TYPE, strlen(LOG_TYPE), d2, strlen(d2), h2);
	hex_of(h2, hex);
	assert_string_equal(hex, VEC2_HASH);
	/* The type/data boundary is part of the hash: moving one byte changes it. */
	chain_hash(zero_hash, "ab", 2, "c", 1, h1);
	chain_hash(zero_hash, "a", 1, "bc", 2, h2);
	assert_memory_not_equal(h1, h2, CHAIN_HASH_LEN);
}

static void test_file_bytes(void **state)
{
	struct fixture *f = *state;
	struct chain_event ev1, ev2;
	struct chain *c = open_ok(f, NULL);
	append_ok(c, LOG_TYPE, "{\"message\":\"hello\"}", 19, &ev1);
	append_ok(c, LOG_TYPE, "{\"message\":\"world\"}", 19, &ev2);
	const char *rec1 = "EVENT " VEC1_HASH "\n" ZERO_HEX "\n" LOG_TYPE "\n19\n\n"
			   "{\"message\":\"hello\"}\n\n";
	const char *rec2 = "EVENT " VEC2_HASH "\n" VEC1_HASH "\n" LOG_TYPE "\n19\n\n"
			   "{\"message\":\"world\"}\n\n";
	char *expect = tu_fmt("%s%s", rec1, rec2);
	size_t len = 0;
	char *got = tu_read_file(f->path, &len);
	assert_int_equal(len, 376);   /* as stated in docs/chain-format.md */
	assert_int_equal(len, strlen(expect));
	assert_memory_equal(got, expect, len);
	assert_int_equal(ev1.seq, 1);
	assert_int_equal(ev1.offset, 0);
	assert_memory_equal(ev1.parent_hash, zero_hash, CHAIN_HASH_LEN);
	assert_int_equal(ev2.seq, 2);
	assert_int_equal(ev2.offset, strlen(rec1));
	assert_memory_equal(ev2.parent_hash, ev1.hash, CHAIN_HASH_LEN);
	assert_int_equal(chain_length(c), 2);
	uint8_t head[CHAIN_HASH_LEN];
	chain_head(c, head);
	assert_memory_equal(head, ev2.hash, CHAIN_HASH_LEN);
	chain_close(c);
	free(got);
	free(expect);
}

static const uint8_t binary_data[] = "line1\n\nEVENT " ZERO_HEX "\n\0\0\xff\xfe tail\n";

static void test_binary_roundtrip(void **state)
{
	struct fixture *f = *state;
	struct chain_event ev = {0};
	struct err e = {0};
	struct chain *c = open_ok(f, NULL);
	append_ok(c, "wasm", binary_data, sizeof(binary_data), NULL);
	append_ok(c, "empty", "", 0, NULL);
	append_ok(c, "wasm", "\n", 1, NULL);
	chain_close(c);
	c = open_ok(f, NULL);
	assert_int_equal(chain_length(c), 3);
	assert_int_equal(chain_read(c, 1, &ev, &e), ERR_OK);
	assert_string_equal(ev.event_type, "wasm");
	assert_int_equal(ev.data_len, sizeof(binary_data));
	assert_memory_equal(ev.data, binary_data, sizeof(binary_data));
	assert_int_equal(ev.data[ev.data_len], '\0');
	chain_event_release(&ev);
	assert_int_equal(chain_read(c, 2, &ev, &e), ERR_OK);
	assert_int_equal(ev.data_len, 0);
	assert_string_equal(ev.event_type, "empty");
	chain_event_release(&ev);
	assert_int_equal(chain_read(c, 3, &ev, &e), ERR_OK);
	assert_int_equal(ev.data_len, 1);
	assert_int_equal(ev.data[0], '\n');
	chain_event_release(&ev);
	assert_int_equal(chain_read(c, 4, &ev, &e), ERR_NOT_FOUND);
	assert_int_equal(chain_read(c, 0, &ev, &e), ERR_NOT_FOUND);
	struct chain_verify_result vr;
	assert_int_equal(chain_verify(c, &vr, &e), ERR_OK);
	assert_true(vr.valid);
	assert_int_equal(vr.length, 3);
	chain_close(c);
}

/* Writes three events; returns the file bytes and the last record's offset. */
static char *three_events(struct fixture *f, size_t *len_out, uint64_t *last_off,
			  uint8_t head2[CHAIN_HASH_LEN])
{
	struct chain_event ev;
	struct chain *c = open_ok(f, NULL);
	append_ok(c, "started", "{}", 2, NULL);
	append_ok(c, "wasm", "abc", 3, &ev);
	memcpy(head2, ev.hash, CHAIN_HASH_LEN);
	append_ok(c, LOG_TYPE, "x\n\ny\n", 5, &ev);
	*last_off = ev.offset;
	chain_close(c);
	return tu_read_file(f->path, len_out);
}

static void check_torn_open(struct fixture *f, uint64_t last_off, size_t cut,
			    const uint8_t head2[CHAIN_HASH_LEN])
{
	struct chain_open_report rep;
	struct chain_event ev;
	struct chain *c = open_ok(f, &rep);
	assert_int_equal(rep.length, 2);
	assert_false(rep.damaged);
	assert_int_equal(rep.truncated_tail, cut > last_off);
	assert_int_equal(file_size(f->path), (off_t)last_off);
	uint8_t head[CHAIN_HASH_LEN];
	chain_head(c, head);
	assert_memory_equal(head, head2, CHAIN_HASH_LEN);
	append_ok(c, "again", "z", 1, &ev);
	assert_int_equal(ev.seq, 3);
	assert_memory_equal(ev.parent_hash, head2, CHAIN_HASH_LEN);
	chain_close(c);
}

static void test_torn_tail_every_cut(void **state)
{
	struct fixture *f = *state;
	size_t len;
	uint64_t last_off;
	uint8_t head2[CHAIN_HASH_LEN];
	char *orig = three_events(f, &len, &last_off, head2);
	assert_non_null(orig);
	for (size_t cut = last_off; cut < len; cut++) {
		assert_int_equal(tu_write_file(f->path, orig, cut), 0);
		check_torn_open(f, last_off, cut, head2);
	}
	/* A crash after the size grew but before the data landed: zero fill. */
	for (size_t cut = last_off; cut < len; cut += 7) {
		char *zeroed = malloc(len);
		memcpy(zeroed, orig, len);
		memset(zeroed + cut, 0, len - cut);
		assert_int_equal(tu_write_file(f->path, zeroed, len), 0);
		check_torn_open(f, last_off, len, head2);
		free(zeroed);
	}
	free(orig);
}

static void test_torn_report_counts(void **state)
{
	struct fixture *f = *state;
	size_t len;
	uint64_t last_off;
	uint8_t head2[CHAIN_HASH_LEN];
	struct chain_open_report rep;
	char *orig = three_events(f, &len, &last_off, head2);
	assert_int_equal(tu_write_file(f->path, orig, len - 3), 0);
	struct chain_verify_result vr;
	struct err e = {0};
	assert_int_equal(chain_verify_file(f->path, &vr, &e), ERR_OK);
	assert_false(vr.valid);
	assert_int_equal(vr.length, 2);
	assert_non_null(strstr(vr.detail, "incomplete"));
	struct chain *c = open_ok(f, &rep);
	assert_true(rep.truncated_tail);
	assert_int_equal(rep.truncated_bytes, len - 3 - last_off);
	chain_close(c);
	assert_int_equal(chain_verify_file(f->path, &vr, &e), ERR_OK);
	assert_true(vr.valid);
	free(orig);
}

/* Five events; returns the file and each record's offset (offs[0..5]). */
static char *five_events(struct fixture *f, size_t *len_out, uint64_t offs[6])
{
	struct chain_event ev;
	struct chain *c = open_ok(f, NULL);
	for (int i = 0; i < 5; i++) {
		char data[64];
		int n = snprintf(data, sizeof(data), "{\"i\":%d,\"pad\":\"0123456789\"}", i);
		append_ok(c, "wasm", data, (size_t)n, &ev);
		offs[i] = ev.offset;
	}
	chain_close(c);
	char *bytes = tu_read_file(f->path, len_out);
	offs[5] = *len_out;
	return bytes;
}

struct damage_case {
	const char *what;
	int record;           /* 0-based record to damage */
	int kind;             /* 0 flip data byte, 1 flip hash hex, 2 flip parent, 3 length */
	const char *len_text; /* kind 3: replacement for the length line's digits */
};

/* Returns a damaged copy of bytes (its length in *len_out). */
static char *damage(const char *bytes, size_t len, const uint64_t offs[6],
		    const struct damage_case *dc, size_t *len_out)
{
	char *out = malloc(len + 16);
	memcpy(out, bytes, len);
	*len_out = len;
	char *rec = out + offs[dc->record];
	char *data = strstr(rec, "\n\n") + 2;
	if (dc->kind == 0) {
		data[3] ^= 0x01;
	} else if (dc->kind == 1) {
		rec[10] = rec[10] == 'a' ? 'b' : 'a';
	} else if (dc->kind == 2) {
		rec[6 + 65 + 5] = rec[6 + 65 + 5] == 'a' ? 'b' : 'a';
	} else {
		char *digits = data - 2;
		while (digits[-1] != '\n')
			digits--;
		size_t old = (size_t)(data - 2 - digits), nl = strlen(dc->len_text);
		size_t tail = len - (size_t)(data - 2 - out);
		memmove(digits + nl, data - 2, tail);
		memcpy(digits, dc->len_text, nl);
		*len_out = len - old + nl;
	}
	return out;
}

static void check_damaged(struct fixture *f, const char *bytes, size_t len, uint64_t bad_seq)
{
	struct chain_open_report rep;
	struct chain_event ev;
	struct err e = {0};
	struct chain *c = open_ok(f, &rep);
	assert_true(rep.damaged);
	assert_false(rep.truncated_tail);
	assert_int_equal(rep.first_bad_seq, bad_seq);
	assert_int_equal(rep.length, bad_seq - 1);
	assert_true(chain_damaged(c));
	size_t now_len;
	char *now = tu_read_file(f->path, &now_len);   /* not repaired */
	assert_int_equal(now_len, len);
	assert_memory_equal(now, bytes, len);
	free(now);
	for (uint64_t s = 1; s < bad_seq; s++) {
		assert_int_equal(chain_read(c, s, &ev, &e), ERR_OK);
		chain_event_release(&ev);
	}
	assert_int_equal(chain_read(c, bad_seq, &ev, &e), ERR_NOT_FOUND);
	assert_int_equal(chain_append(c, "wasm", "x", 1, NULL, &e), ERR_CORRUPT);
	struct chain_verify_result vr;
	assert_int_equal(chain_verify(c, &vr, &e), ERR_OK);
	assert_false(vr.valid);
	assert_int_equal(vr.first_bad_seq, bad_seq);
	chain_close(c);
	assert_int_equal(chain_verify_file(f->path, &vr, &e), ERR_OK);
	assert_false(vr.valid);
	assert_int_equal(vr.first_bad_seq, bad_seq);
	assert_int_equal(file_size(f->path), (off_t)len);
}

static void test_damage_not_repaired(void **state)
{
	static const struct damage_case cases[] = {
		{"bit flip in data", 1, 0, NULL},
		{"hash line", 2, 1, NULL},
		{"parent line", 3, 2, NULL},
		{"length smaller", 1, 3, "25"},
		{"length larger, inside the file", 1, 3, "99"},
		{"length larger, past the end", 3, 3, "999"},
		{"last record's length larger", 4, 3, "27"},
		{"last record's length much larger", 4, 3, "500"},
		{"bit flip in the last record", 4, 0, NULL},
		{"hash line of the last record", 4, 1, NULL},
	};
	struct fixture *f = *state;
	uint64_t offs[6];
	size_t len;
	char *orig = five_events(f, &len, offs);
	/* Every record is {"i":N,"pad":"0123456789"} = 26 bytes of data. */
	assert_non_null(strstr(orig, "\n26\n\n"));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t blen;
		char *bytes = damage(orig, len, offs, &cases[i], &blen);
		assert_int_equal(tu_write_file(f->path, bytes, blen), 0);
		print_message("case: %s\n", cases[i].what);
		check_damaged(f, bytes, blen, (uint64_t)cases[i].record + 1);
		free(bytes);
	}
	free(orig);
}

static void test_garbage_in_middle(void **state)
{
	struct fixture *f = *state;
	uint64_t offs[6];
	size_t len;
	char *bytes = five_events(f, &len, offs);
	memcpy(bytes + offs[2], "GARBAGE", 7);
	assert_int_equal(tu_write_file(f->path, bytes, len), 0);
	check_damaged(f, bytes, len, 3);
	/* Zero bytes in the middle are damage, not a torn tail. */
	memset(bytes + offs[2], 0, 40);
	assert_int_equal(tu_write_file(f->path, bytes, len), 0);
	check_damaged(f, bytes, len, 3);
	free(bytes);
}

static void test_reopen_continues(void **state)
{
	struct fixture *f = *state;
	struct chain_event ev;
	struct chain_open_report rep;
	struct chain *c = open_ok(f, &rep);
	assert_int_equal(rep.length, 0);
	uint8_t head[CHAIN_HASH_LEN];
	chain_head(c, head);
	assert_memory_equal(head, zero_hash, CHAIN_HASH_LEN);
	for (int i = 0; i < 3; i++)
		append_ok(c, "wasm", "a", 1, &ev);
	chain_close(c);
	c = open_ok(f, &rep);
	assert_int_equal(rep.length, 3);
	assert_false(rep.truncated_tail);
	assert_false(rep.damaged);
	chain_head(c, head);
	assert_memory_equal(head, ev.hash, CHAIN_HASH_LEN);
	struct chain_event ev4;
	append_ok(c, "wasm", "b", 1, &ev4);
	assert_int_equal(ev4.seq, 4);
	assert_memory_equal(ev4.parent_hash, ev.hash, CHAIN_HASH_LEN);
	struct chain_verify_result vr;
	struct err e = {0};
	assert_int_equal(chain_verify(c, &vr, &e), ERR_OK);
	assert_true(vr.valid);
	assert_int_equal(vr.length, 4);
	assert_memory_equal(vr.head, ev4.hash, CHAIN_HASH_LEN);
	chain_close(c);
}

#define THREADS 8
#define PER_THREAD 50

struct worker {
	struct chain *c;
	int id, count;
	uint64_t seqs[PER_THREAD];
	int failed;
};

static void *append_worker(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < w->count; i++) {
		char data[64];
		struct chain_event ev;
		int n = snprintf(data, sizeof(data), "{\"thread\":%d,\"i\":%d}", w->id, i);
		if (chain_append(w->c, "wasm", data, (size_t)n, &ev, NULL) != ERR_OK)
			w->failed = 1;
		w->seqs[i] = ev.seq;
	}
	return NULL;
}

static void run_workers(struct chain *c, struct worker *ws, int count)
{
	pthread_t th[THREADS];
	for (int t = 0; t < THREADS; t++) {
		ws[t] = (struct worker){.c = c, .id = t, .count = count};
		assert_int_equal(pthread_create(&th[t], NULL, append_worker, &ws[t]), 0);
	}
	for (int t = 0; t < THREADS; t++) {
		pthread_join(th[t], NULL);
		assert_false(ws[t].failed);
	}
}

static void test_concurrent_appenders(void **state)
{
	struct fixture *f = *state;
	static struct worker ws[THREADS];
	struct chain *c = open_ok(f, NULL);
	run_workers(c, ws, PER_THREAD);
	assert_int_equal(chain_length(c), THREADS * PER_THREAD);
	assert_int_equal(chain_synced_length(c), THREADS * PER_THREAD);
	char seen[THREADS * PER_THREAD + 1] = {0};
	for (int t = 0; t < THREADS; t++)
		for (int i = 0; i < PER_THREAD; i++) {
			uint64_t s = ws[t].seqs[i];
			assert_in_range(s, 1, THREADS * PER_THREAD);
			assert_false(seen[s]);
			seen[s] = 1;
			if (i > 0)
				assert_true(s > ws[t].seqs[i - 1]);
			struct chain_event ev;
			char want[64];
			snprintf(want, sizeof(want), "{\"thread\":%d,\"i\":%d}", t, i);
			assert_int_equal(chain_read(c, s, &ev, NULL), ERR_OK);
			assert_string_equal((char *)ev.data, want);
			chain_event_release(&ev);
		}
	chain_close(c);
	struct chain_verify_result vr;
	assert_int_equal(chain_verify_file(f->path, &vr, NULL), ERR_OK);
	assert_true(vr.valid);
	assert_int_equal(vr.length, THREADS * PER_THREAD);
}

static void test_group_commit_batches(void **state)
{
	struct fixture *f = *state;
	static struct worker ws[THREADS];
	struct err e = {0};
	struct chain *c = open_ok(f, NULL);
	/* A slow disk (5 ms per sync) makes the waiters pile up behind the leader. */
	chain_set_sync_delay(c, 5000);
	uint64_t before = chain_sync_count(c);
	run_workers(c, ws, 25);
	uint64_t syncs = chain_sync_count(c) - before, appends = THREADS * 25;
	print_message("group commit: %llu appends, %llu fdatasyncs\n",
		      (unsigned long long)appends, (unsigned long long)syncs);
	assert_true(syncs >= 1);
	assert_true(syncs * 2 <= appends);
	/* Explicit batching: many appends, one sync. */
	chain_set_sync_delay(c, 0);
	before = chain_sync_count(c);
	for (int i = 0; i < 100; i++)
		assert_int_equal(chain_append_nosync(c, "wasm", "n", 1, NULL, &e), ERR_OK);
	assert_int_equal(chain_sync_count(c), before);
	assert_int_equal(chain_synced_length(c), appends);
	uint64_t unsynced = chain_unsynced(c);   /* the flusher's test before a syncfs */
	assert_true(unsynced > 100 && unsynced < chain_written(c));
	assert_int_equal(chain_sync(c, &e), ERR_OK);
	assert_int_equal(chain_sync_count(c), before + 1);
	assert_int_equal(chain_synced_length(c), appends + 100);
	assert_int_equal(chain_unsynced(c), 0);
	assert_int_equal(chain_sync(c, &e), ERR_OK);   /* nothing new: no sync */
	assert_int_equal(chain_sync_count(c), before + 1);
	chain_close(c);
}

static void test_meta_file(void **state)
{
	struct fixture *f = *state;
	struct err e = {0};
	assert_int_equal(chain_write_meta(f->dir, ACTOR, "chat-bot", "store://pkgs/latest",
					  1700000000, &e), ERR_OK);
	char *path = tu_fmt("%s/%s.meta.json", f->dir, ACTOR);
	char *text = tu_read_file(path, NULL);
	assert_string_equal(text, "{\n  \"actor_id\": \"" ACTOR "\",\n  \"actor_name\": \"chat-bot\",\n"
			    "  \"manifest_path\": \"store://pkgs/latest\",\n"
			    "  \"started_at\": 1700000000\n}\n");
	struct chain_meta m;
	assert_int_equal(chain_read_meta(f->dir, ACTOR, &m, &e), ERR_OK);
	assert_string_equal(m.actor_id, ACTOR);
	assert_string_equal(m.actor_name, "chat-bot");
	assert_string_equal(m.manifest_path, "store://pkgs/latest");
	assert_int_equal(m.started_at_s, 1700000000);
	chain_meta_release(&m);
	/* Rewrite replaces atomically and leaves no temp file behind. */
	assert_int_equal(chain_write_meta(f->dir, ACTOR, "renamed", NULL, 5, &e), ERR_OK);
	assert_int_equal(chain_read_meta(f->dir, ACTOR, &m, &e), ERR_OK);
	assert_string_equal(m.actor_name, "renamed");
	assert_null(m.manifest_path);
	chain_meta_release(&m);
	char *ls = tu_fmt("ls -A '%s' | grep -c . | grep -qx 1", f->dir);
	assert_int_equal(system(ls), 0);
	assert_int_equal(chain_write_meta(f->dir, "../evil", "x", NULL, 0, &e), ERR_BAD_ID);
	assert_int_equal(chain_read_meta(f->dir, "nobody", &m, &e), ERR_NOT_FOUND);
	free(ls);
	free(text);
	free(path);
}

static void test_bad_input(void **state)
{
	struct fixture *f = *state;
	struct chain *c = NULL, *c2 = NULL;
	struct err e = {0};
	const char *bad_ids[] = {"", "../x", "a/b", "..", ".", ".hidden", "a b", NULL};
	for (int i = 0; bad_ids[i]; i++)
		assert_int_equal(chain_open(f->dir, bad_ids[i], &c, NULL, &e), ERR_BAD_ID);
	c = open_ok(f, NULL);
	assert_int_equal(chain_open(f->dir, ACTOR, &c2, NULL, &e), ERR_CONFLICT);
	assert_null(c2);
	assert_int_equal(chain_append(c, "", "x", 1, NULL, &e), ERR_INVALID);
	assert_int_equal(chain_append(c, "a\nb", "x", 1, NULL, &e), ERR_INVALID);
	assert_int_equal(chain_append(c, NULL, "x", 1, NULL, &e), ERR_INVALID);
	assert_int_equal(chain_append(c, "wasm", NULL, 1, NULL, &e), ERR_INVALID);
	assert_int_equal(chain_append(c, "wasm", "x", (size_t)CHAIN_MAX_DATA + 1, NULL, &e),
			 ERR_TOO_LARGE);
	assert_int_equal(chain_length(c), 0);
	assert_int_equal(file_size(f->path), 0);
	chain_close(c);
	chain_close(NULL);
	assert_int_equal(chain_verify_file("/nonexistent/x.chain", &(struct chain_verify_result){0},
					   &e), ERR_NOT_FOUND);
}

static void test_tamper_while_open(void **state)
{
	struct fixture *f = *state;
	struct chain_event ev;
	struct err e = {0};
	struct chain *c = open_ok(f, NULL);
	append_ok(c, "wasm", "hello world", 11, NULL);
	append_ok(c, "wasm", "second", 6, &ev);
	FILE *fp = fopen(f->path, "r+b");
	fseek(fp, -5, SEEK_END);   /* inside "second\n\n" */
	fputc('X', fp);
	fclose(fp);
	assert_int_equal(chain_read(c, 2, &ev, &e), ERR_CORRUPT);
	assert_int_equal(chain_read(c, 1, &ev, &e), ERR_OK);
	chain_event_release(&ev);
	struct chain_verify_result vr;
	assert_int_equal(chain_verify(c, &vr, &e), ERR_OK);
	assert_false(vr.valid);
	assert_int_equal(vr.first_bad_seq, 2);
	chain_close(c);
}

struct scan_seen {
	uint64_t seqs[8], offsets[8];
	int n, stop_at;
};

static enum err_code scan_cb(void *user, const struct chain_event *ev)
{
	struct scan_seen *s = user;
	if (s->n == s->stop_at)
		return ERR_CONFLICT;
	s->seqs[s->n] = ev->seq;
	s->offsets[s->n] = ev->offset;
	s->n++;
	return strcmp(ev->event_type, "wasm") == 0 && ev->data_len == 26 ? ERR_OK : ERR_INTERNAL;
}

static void test_scan_callback(void **state)
{
	struct fixture *f = *state;
	uint64_t offs[6];
	size_t len;
	char *bytes = five_events(f, &len, offs);
	struct chain_verify_result vr;
	struct scan_seen seen = {.stop_at = -1};
	assert_int_equal(chain_scan_file(f->path, scan_cb, &seen, &vr, NULL), ERR_OK);
	assert_true(vr.valid);
	assert_int_equal(vr.length, 5);
	assert_int_equal(seen.n, 5);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(seen.seqs[i], (uint64_t)i + 1);
		assert_int_equal(seen.offsets[i], offs[i]);
	}
	struct scan_seen early = {.stop_at = 2};
	assert_int_equal(chain_scan_file(f->path, scan_cb, &early, &vr, NULL), ERR_CONFLICT);
	assert_int_equal(early.n, 2);
	free(bytes);
}


/* Issue 16: descriptors are bounded, not a function of how many chains are open.
 * 40 chains under a cap of 8: every append, sync, read and verify works, the
 * process never holds more than the cap, and an evicted chain is still "open"
 * (a second chain_open of it is refused). */
static void test_fd_cap_many_chains(void **state)
{
	struct fixture *f = *state;
	enum { N = 40, CAP = 8 };
	struct chain *c[N];
	struct err e = {0};
	chain_fd_set_cap(CAP);
	for (int i = 0; i < N; i++) {
		char *id = tu_fmt("fd-%02d", i);
		assert_int_equal(chain_open(f->dir, id, &c[i], NULL, &e), ERR_OK);
		free(id);
	}
	struct chain_fd_stats st;
	for (int round = 0; round < 3; round++)
		for (int i = 0; i < N; i++) {
			char *data = tu_fmt("{\"round\":%d,\"chain\":%d}", round, i);
			if (round == 1)
				assert_int_equal(chain_append_nosync(c[i], "wasm", data, strlen(data),
								     NULL, &e), ERR_OK);
			else
				append_ok(c[i], "wasm", data, strlen(data), NULL);
			free(data);
			chain_fd_stats(&st);
			assert_true(st.open <= CAP);
		}
	for (int i = 0; i < N; i++) {
		struct chain_event ev = {0};
		assert_int_equal(chain_read(c[i], 2, &ev, &e), ERR_OK);
		char *want = tu_fmt("{\"round\":1,\"chain\":%d}", i);
		assert_int_equal(ev.data_len, strlen(want));
		assert_memory_equal(ev.data, want, ev.data_len);
		free(want);
		chain_event_release(&ev);
		struct chain_verify_result vr;
		assert_int_equal(chain_verify(c[i], &vr, &e), ERR_OK);
		assert_true(vr.valid);
		assert_int_equal(vr.length, 3);
		assert_int_equal(chain_synced_length(c[i]), 3);
	}
	chain_fd_stats(&st);
	assert_true(st.open <= CAP);
	assert_int_equal(st.cap, CAP);
	assert_true(st.chains >= N);
	assert_true(st.reopens > 0);
	assert_true(st.evictions > 0);
	assert_true(st.evict_syncs > 0);       /* round 1 left unsynced bytes behind */
	/* chain 0 was used longest ago: its descriptor is closed, yet it is open */
	struct chain *again = NULL;
	char *id0 = tu_fmt("fd-%02d", 0);
	assert_int_equal(chain_open(f->dir, id0, &again, NULL, &e), ERR_CONFLICT);
	assert_null(again);
	for (int i = 0; i < N; i++)
		chain_close(c[i]);
	chain_fd_stats(&st);
	assert_int_equal(st.open, 0);
	/* closed: it opens again, whole */
	struct chain_open_report rep;
	assert_int_equal(chain_open(f->dir, id0, &again, &rep, &e), ERR_OK);
	assert_int_equal(rep.length, 3);
	assert_false(rep.damaged);
	chain_close(again);
	free(id0);
	chain_fd_set_cap(0);
}

struct fd_worker {
	struct chain **c;
	int n, id;
};

static void *fd_worker_main(void *arg)
{
	struct fd_worker *w = arg;
	struct err e = {0};
	for (int k = 0; k < 200; k++) {
		struct chain *c = w->c[(k * 7 + w->id) % w->n];
		char data[32];
		int len = snprintf(data, sizeof(data), "w%d-%d", w->id, k);
		if (chain_append(c, "wasm", data, (size_t)len, NULL, &e) != ERR_OK)
			return (void *)1;
		struct chain_event ev = {0};
		if (chain_read(c, chain_length(c), &ev, &e) != ERR_OK)
			return (void *)1;
		chain_event_release(&ev);
	}
	return NULL;
}

/* Many threads on more chains than descriptors: eviction never closes a
 * descriptor in use, and every chain verifies afterwards. */
static void test_fd_cap_threads(void **state)
{
	struct fixture *f = *state;
	enum { N = 24, T = 4 };
	struct chain *c[N];
	struct err e = {0};
	chain_fd_set_cap(8);
	for (int i = 0; i < N; i++) {
		char *id = tu_fmt("th-%02d", i);
		assert_int_equal(chain_open(f->dir, id, &c[i], NULL, &e), ERR_OK);
		free(id);
	}
	pthread_t th[T];
	struct fd_worker w[T];
	for (int t = 0; t < T; t++) {
		w[t] = (struct fd_worker){c, N, t};
		assert_int_equal(pthread_create(&th[t], NULL, fd_worker_main, &w[t]), 0);
	}
	for (int t = 0; t < T; t++) {
		void *ret = NULL;
		pthread_join(th[t], &ret);
		assert_null(ret);
	}
	uint64_t total = 0;
	for (int i = 0; i < N; i++) {
		struct chain_verify_result vr;
		assert_int_equal(chain_verify(c[i], &vr, &e), ERR_OK);
		assert_true(vr.valid);
		total += vr.length;
		chain_close(c[i]);
	}
	assert_int_equal(total, 200 * T);
	chain_fd_set_cap(0);
}

/* Incremental verification: opened from a checkpoint, only the records after it
 * are scanned; earlier events still read (their offsets load on demand), a
 * change before the checkpoint is found by chain_verify, and a checkpoint the
 * file no longer matches falls back to the whole scan. */
static void test_open_from_checkpoint(void **state)
{
	struct fixture *f = *state;
	uint64_t offs[6];
	size_t len;
	char *bytes = five_events(f, &len, offs);
	struct chain *c = open_ok(f, NULL);
	struct chain_event ev3 = {0};
	struct err e = {0};
	assert_int_equal(chain_read(c, 3, &ev3, &e), ERR_OK);
	chain_close(c);
	struct chain_checkpoint cp = {.seq = 3, .offset = offs[2]};
	memcpy(cp.hash, ev3.hash, CHAIN_HASH_LEN);
	/* a torn record after the checkpoint is still cut */
	char *torn = tu_fmt("%.*sEVENT 12", (int)len, bytes);
	assert_int_equal(tu_write_file(f->path, torn, len + 8), 0);
	struct chain_open_report rep;
	assert_int_equal(chain_open_from(f->dir, ACTOR, 5, &cp, &c, &rep, &e), ERR_OK);
	assert_true(rep.truncated_tail);
	assert_false(rep.damaged);
	assert_int_equal(rep.length, 5);
	assert_int_equal((size_t)file_size(f->path), len);
	for (uint64_t seq = 1; seq <= 5; seq++) {
		struct chain_event ev = {0};
		assert_int_equal(chain_read(c, seq, &ev, &e), ERR_OK);
		assert_int_equal(ev.offset, offs[seq - 1]);
		chain_event_release(&ev);
	}
	append_ok(c, "wasm", "six", 3, NULL);
	assert_int_equal(chain_synced_length(c), 6);
	chain_close(c);
	/* a flipped byte in event 1: not seen by the incremental open, seen by verify */
	char *now = tu_read_file(f->path, &len);
	now[offs[1] - 5] ^= 0x01;            /* a digit in event 1's data */
	assert_int_equal(tu_write_file(f->path, now, len), 0);
	assert_int_equal(chain_open_from(f->dir, ACTOR, 6, &cp, &c, &rep, &e), ERR_OK);
	assert_false(rep.damaged);
	assert_int_equal(rep.length, 6);
	struct chain_verify_result vr;
	assert_int_equal(chain_verify(c, &vr, &e), ERR_OK);
	assert_false(vr.valid);
	assert_int_equal(vr.first_bad_seq, 1);
	struct chain_event ev = {0};
	assert_int_equal(chain_read(c, 1, &ev, &e), ERR_CORRUPT);
	chain_close(c);
	/* a checkpoint the file does not match: the whole scan finds the damage */
	cp.hash[0] ^= 0xff;
	assert_int_equal(chain_open_from(f->dir, ACTOR, 6, &cp, &c, &rep, &e), ERR_OK);
	assert_true(rep.damaged);
	assert_int_equal(rep.first_bad_seq, 1);
	chain_close(c);
	/* a cut before the checkpoint's end: the checkpoint does not hold either */
	cp.hash[0] ^= 0xff;
	assert_int_equal(truncate(f->path, (off_t)offs[2] + 10), 0);
	assert_int_equal(chain_open_from(f->dir, ACTOR, 6, &cp, &c, &rep, &e), ERR_OK);
	assert_true(rep.damaged);
	chain_close(c);
	chain_event_release(&ev3);
	free(now);
	free(torn);
	free(bytes);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_vector),
		cmocka_unit_test_setup_teardown(test_file_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_binary_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail_every_cut, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_report_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damage_not_repaired, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage_in_middle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_continues, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_appenders, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_commit_batches, setup, teardown),
		cmocka_unit_test_setup_teardown(test_meta_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tamper_while_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scan_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fd_cap_many_chains, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fd_cap_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_from_checkpoint, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
