/* ceiling.c - bench-commit-ceiling: the least an HTTP server must do to make
 * every acknowledged message durable, with the best group commit we know, as
 * the ceiling for bench/commit (issue 16 goal 3).
 *
 *   bench-commit-ceiling DIR [PORT] [spawn [SPARES]]
 *
 * A bare libmicrohttpd server, one thread per connection (so a connection may
 * block while its message is synced, and nothing is handed to another thread).
 * Every POST's body is appended to one file in DIR as a record (length, body,
 * SHA-256 of the previous record's hash and the body: the least a hash chain
 * costs), then the connection waits until the record is durable: the first
 * waiter with no sync running becomes the leader, takes the file's written
 * length, runs fdatasync and wakes every waiter it covered; the others wait for
 * the next sync (leader/follower group commit). Then 202. No JSON, no actor, no
 * index: whatever theater-server reaches is compared with this. A GET of any
 * path answers {"length": records}, the head that bench-fanout reads.
 *
 * With `spawn`, the ceiling of a durable spawn (bench/spawn) instead: every POST
 * takes its own file, one of SPARES (20,000) made empty before the server listens (as
 * theater-server's spare chain files are), writes three records of the sizes a
 * spawn's first events have (440, 316 and 177 bytes, hashed as above), syncs that
 * file alone (no two spawns share a file, so nothing is shared) and answers 201.
 * No instance, no index.
 *
 * PORT 0 (the default) picks a free port. Prints "listening on 127.0.0.1:<port>"
 * once ready and runs until SIGINT or SIGTERM, then prints the records and syncs
 * it did. Listens on 127.0.0.1 only.
 *
 * This benchmark program, not a project module, is why it uses libmicrohttpd
 * (bench/common/bare_mhd.h) and <openssl/evp.h> itself: the point is to measure
 * without our layers. */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "bench/common/bare_mhd.h"

#define MAX_BODY (64 * 1024)
#define SPARES_DEFAULT 20000

static int spawn_mode;
static const char *dir;
static unsigned spares = SPARES_DEFAULT;
static unsigned spawned;          /* atomic: spare files taken */

static const char BODY[] = "{\"status\":\"accepted\"}\n";
static const char SPAWNED[] = "{\"status\":\"running\"}\n";

static struct {
	pthread_mutex_t lock;          /* the file's tail and the sync state */
	pthread_cond_t synced_cond;
	int fd;
	uint64_t written;              /* bytes appended */
	uint64_t durable;              /* bytes made durable by a finished sync */
	int syncing;
	unsigned char prev[32];        /* hash of the last record */
	uint64_t records, syncs;
} g = {.lock = PTHREAD_MUTEX_INITIALIZER, .synced_cond = PTHREAD_COND_INITIALIZER};

struct body {
	size_t len;
	char data[MAX_BODY];
};

/* Appends one record; returns the file length that makes it durable, 0 on error. */
static uint64_t append(const char *data, size_t len)
{
	unsigned char rec[8 + MAX_BODY + 32];
	uint64_t n = len;
	memcpy(rec, &n, 8);
	memcpy(rec + 8, data, len);
	pthread_mutex_lock(&g.lock);
	unsigned int hl = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL) ||
	    !EVP_DigestUpdate(md, g.prev, sizeof(g.prev)) || !EVP_DigestUpdate(md, data, len) ||
	    !EVP_DigestFinal_ex(md, g.prev, &hl)) {
		EVP_MD_CTX_free(md);
		pthread_mutex_unlock(&g.lock);
		return 0;
	}
	EVP_MD_CTX_free(md);
	memcpy(rec + 8 + len, g.prev, 32);
	size_t total = 8 + len + 32;
	uint64_t end = 0;
	if (write(g.fd, rec, total) == (ssize_t)total) {
		g.written += total;
		g.records++;
		end = g.written;
	}
	pthread_mutex_unlock(&g.lock);
	return end;
}

/* Waits until the file is durable up to `upto`, leading a sync when none runs. */
static int wait_durable(uint64_t upto)
{
	int ok = 1;
	pthread_mutex_lock(&g.lock);
	while (g.durable < upto) {
		if (g.syncing) {
			pthread_cond_wait(&g.synced_cond, &g.lock);
			continue;
		}
		g.syncing = 1;
		uint64_t target = g.written;
		pthread_mutex_unlock(&g.lock);
		int rc = fdatasync(g.fd);
		pthread_mutex_lock(&g.lock);
		g.syncing = 0;
		g.syncs++;
		if (rc == 0)
			g.durable = target;
		else
			ok = 0;
		pthread_cond_broadcast(&g.synced_cond);
		if (!ok)
			break;
	}
	pthread_mutex_unlock(&g.lock);
	return ok;
}

/* One spawn: three hashed records into a spare file of its own, synced. */
static int spawn_one(const char *data, size_t len)
{
	static const size_t sizes[3] = {440, 316, 177};
	unsigned i = __atomic_fetch_add(&spawned, 1, __ATOMIC_RELAXED);
	if (i >= spares)
		return 0;
	char path[4096];
	snprintf(path, sizeof(path), "%s/spare-%u", dir, i);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	unsigned char prev[32] = {0}, rec[512];
	unsigned int hl = 0;
	off_t at = 0;
	int ok = 1;
	for (int k = 0; ok && k < 3; k++) {
		memset(rec, ' ', sizes[k]);
		memcpy(rec, data, len < sizes[k] - 32 ? len : sizes[k] - 32);
		ok = EVP_Digest(rec, sizes[k] - 32, prev, &hl, EVP_sha256(), NULL) &&
		     pwrite(fd, rec, sizes[k] - 32, at) == (ssize_t)(sizes[k] - 32) &&
		     pwrite(fd, prev, 32, at + (off_t)sizes[k] - 32) == 32;
		at += (off_t)sizes[k];
	}
	ok = ok && fdatasync(fd) == 0;
	close(fd);
	return ok;
}

/* GET (any path): {"length": records}, which the benchmark's client reads as the
 * chain's head before and after its run. */
static enum MHD_Result answer_length(struct MHD_Connection *c)
{
	char text[64];
	pthread_mutex_lock(&g.lock);
	int n = snprintf(text, sizeof(text), "{\"length\":%llu}\n", (unsigned long long)g.records);
	pthread_mutex_unlock(&g.lock);
	struct MHD_Response *r = MHD_create_response_from_buffer((size_t)n, text,
								 MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	enum MHD_Result rc = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url,
				 const char *method, const char *version, const char *upload,
				 size_t *upload_size, void **ctx)
{
	struct MHD_Response *resp = cls;
	(void)url, (void)version;
	if (strcmp(method, "GET") == 0)
		return answer_length(c);
	if (strcmp(method, "POST") != 0)
		return MHD_NO;
	struct body *b = *ctx;
	if (!b) {
		b = malloc(sizeof(*b));
		if (!b)
			return MHD_NO;
		b->len = 0;
		*ctx = b;
		return MHD_YES;
	}
	if (*upload_size) {
		if (*upload_size > MAX_BODY - b->len)
			return MHD_NO;
		memcpy(b->data + b->len, upload, *upload_size);
		b->len += *upload_size;
		*upload_size = 0;
		return MHD_YES;
	}
	if (spawn_mode) {
		if (!spawn_one(b->data, b->len))
			return MHD_NO;
		struct MHD_Response *r = MHD_create_response_from_buffer(
			strlen(SPAWNED), (void *)SPAWNED, MHD_RESPMEM_PERSISTENT);
		if (!r)
			return MHD_NO;
		enum MHD_Result rc = MHD_queue_response(c, MHD_HTTP_CREATED, r);
		MHD_destroy_response(r);
		return rc;
	}
	uint64_t end = append(b->data, b->len);
	if (!end || !wait_durable(end))
		return MHD_NO;
	return MHD_queue_response(c, MHD_HTTP_ACCEPTED, resp);
}

static void on_done(void *cls, struct MHD_Connection *c, void **ctx,
		    enum MHD_RequestTerminationCode why)
{
	(void)cls, (void)c, (void)why;
	free(*ctx);
	*ctx = NULL;
}

int main(int argc, char **argv)
{
	char *end = NULL;
	unsigned long port = argc >= 3 ? strtoul(argv[2], &end, 10) : 0;
	spawn_mode = argc >= 4 && strcmp(argv[3], "spawn") == 0;
	if (argc == 5)
		spares = (unsigned)strtoul(argv[4], NULL, 10);
	if (argc < 2 || argc > 5 || (end && (*end || port > 65535)) || (argc >= 4 && !spawn_mode) ||
	    !spares) {
		fprintf(stderr, "usage: bench-commit-ceiling DIR [PORT] [spawn [SPARES]]\n");
		return 2;
	}
	dir = argv[1];
	char path[4096];
	for (unsigned i = 0; spawn_mode && i < spares; i++) {
		snprintf(path, sizeof(path), "%s/spare-%u", dir, i);
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0) {
			perror(path);
			return 1;
		}
		close(fd);
	}
	if (spawn_mode) {           /* the spares are on disk before the first spawn */
		int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0 || syncfs(dfd) != 0) {
			perror(dir);
			return 1;
		}
		close(dfd);
	}
	snprintf(path, sizeof(path), "%s/ceiling.log", dir);
	g.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (g.fd < 0) {
		perror(path);
		return 1;
	}
	struct MHD_Response *resp = MHD_create_response_from_buffer(
		strlen(BODY), (void *)BODY, MHD_RESPMEM_PERSISTENT);
	if (!resp || MHD_add_response_header(resp, "Content-Type", "application/json") != MHD_YES)
		return 1;
	struct bare_mhd b = {
		.name = "bench-commit-ceiling", .port = port,
		.flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD,
		.handler = on_access, .cls = resp, .completed = on_done,
	};
	if (bare_mhd_run(&b))
		return 1;
	MHD_destroy_response(resp);
	pthread_mutex_lock(&g.lock);
	if (spawn_mode)
		printf("spawns=%u\n", spawned);
	else
		printf("records=%llu syncs=%llu (%.1f records per sync)\n",
		       (unsigned long long)g.records, (unsigned long long)g.syncs,
		       g.syncs ? (double)g.records / (double)g.syncs : 0.0);
	pthread_mutex_unlock(&g.lock);
	close(g.fd);
	return 0;
}
