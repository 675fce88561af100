/* bench_fanout.c - bench-fanout: what subscribers to a chain cost the writer.
 *
 *   bench-fanout BASE_URL ACTOR_ID SUBSCRIBERS MESSAGES CLIENTS [SERVER_PID]
 *
 * Opens SUBSCRIBERS server-sent-event streams of the actor's chain (raw sockets,
 * read by one epoll thread), waits until every one is live (`ready`), then sends
 * MESSAGES REST messages with CLIENTS keep-alive clients (each recorded and synced
 * before its 202) and reports the writer's rate, the server's CPU per message
 * (from /proc/SERVER_PID/stat, when given), and when every subscriber had every
 * chain frame of the run: frames delivered per second. */

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- subscribers ---- */

struct sub {
	int fd;
	char line[16];            /* the start of the body line being read */
	size_t nline;
	int skip;                 /* the line is no "event:" line: skip to its end */
	long frames;              /* "event: chain" lines */
	int ready;
	/* undoing HTTP/1.1 chunked framing, which may split a frame anywhere */
	int body;                 /* the headers are over */
	char hdr[4];              /* the last header bytes, to find the blank line */
	int in_size;              /* reading a chunk-size line (else data or its CRLF) */
	unsigned long left;       /* chunk data bytes still to come */
	int crlf;                 /* CRLF bytes after the data still to skip */
	unsigned long size;
};

static struct sub *subs;
static int nsubs;
static long total_frames, nready;   /* atomics */
static int stop_reader;
static double reader_cpu_s;          /* the reader thread's CPU, set when it ends */

/* Counts the "event: chain" lines of body bytes, in place, and notes an
 * "event: ready" line. The reader shares the server's cores, so it stays cheap:
 * no copy, and a line that does not start "event: " is skipped with memchr. */
static long scan_body(struct sub *s, const char *p, size_t n, int *ready)
{
	static const char ev[] = "event: ";
	const char *end = p + n;
	long c = 0;
	while (p < end) {
		if (s->skip) {
			const char *q = memchr(p, '\n', (size_t)(end - p));
			if (!q)
				break;
			p = q;
			s->skip = 0;
		}
		char ch = *p++;
		if (ch == '\n') {
			if (s->nline == 12 && !memcmp(s->line, "event: chain", 12))
				c++;
			else if (s->nline == 12 && !memcmp(s->line, "event: ready", 12))
				*ready = 1;
			s->nline = 0;
		} else if (s->nline == 12 || (s->nline < 7 && ch != ev[s->nline])) {
			s->skip = 1;
			s->nline = 0;
		} else {
			s->line[s->nline++] = ch;
		}
	}
	return c;
}

/* Undoes the chunked framing of buf (headers first) and counts the body's frames
 * as scan_body does, without copying the body. */
static long dechunk(struct sub *s, const char *buf, size_t len, int *ready)
{
	long frames = 0;
	for (size_t i = 0; i < len; i++) {
		char c = buf[i];
		if (!s->body) {
			memmove(s->hdr, s->hdr + 1, 3);
			s->hdr[3] = c;
			if (!memcmp(s->hdr, "\r\n\r\n", 4)) {
				s->body = 1;
				s->in_size = 1;
				s->size = 0;
			}
		} else if (s->crlf) {
			s->crlf--;
			if (!s->crlf)
				s->in_size = 1, s->size = 0;
		} else if (s->left) {
			size_t k = len - i < s->left ? len - i : s->left;  /* data: at once */
			frames += scan_body(s, buf + i, k, ready);
			i += k - 1;
			s->left -= k;
			if (!s->left)
				s->crlf = 2;
		} else if (s->in_size) {
			if (c == '\n') {
				s->in_size = 0;
				s->left = s->size;
			} else if (c >= '0' && c <= '9') {
				s->size = s->size * 16 + (unsigned long)(c - '0');
			} else if ((c | 32) >= 'a' && (c | 32) <= 'f') {
				s->size = s->size * 16 + (unsigned long)((c | 32) - 'a' + 10);
			}
		}
	}
	return frames;
}

static void *reader(void *arg)
{
	int ep = *(int *)arg;
	struct epoll_event evs[256];
	static char buf[1 << 18];
	while (!__atomic_load_n(&stop_reader, __ATOMIC_ACQUIRE)) {
		int n = epoll_wait(ep, evs, 256, 100);
		for (int i = 0; i < n; i++) {
			struct sub *s = evs[i].data.ptr;
			ssize_t r = recv(s->fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (r <= 0) {
				if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
					epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
					fprintf(stderr, "bench-fanout: a stream ended early\n");
				}
				continue;
			}
			int ready = 0;
			long c = dechunk(s, buf, (size_t)r, &ready);
			s->frames += c;
			__atomic_add_fetch(&total_frames, c, __ATOMIC_RELAXED);
			if (ready && !s->ready) {
				s->ready = 1;
				__atomic_add_fetch(&nready, 1, __ATOMIC_RELAXED);
			}
		}
	}
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	reader_cpu_s = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	return NULL;
}

static int open_stream(const char *host, int port, const char *id, uint64_t after)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	inet_pton(AF_INET, host, &a.sin_addr);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		perror("bench-fanout: connect");
		exit(1);
	}
	char req[512];
	int n = snprintf(req, sizeof(req), "GET /actors/%s/chain?after=%llu HTTP/1.1\r\n"
			 "Host: %s\r\nAccept: text/event-stream\r\n\r\n", id,
			 (unsigned long long)after, host);
	if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
		perror("bench-fanout: send");
		exit(1);
	}
	return fd;
}

/* ---- HTTP with curl ---- */

struct body {
	char data[65536];
	size_t len;
};

static size_t on_data(char *p, size_t size, size_t n, void *user)
{
	struct body *b = user;
	size_t k = size * n;
	size_t room = sizeof(b->data) - 1 - b->len;
	memcpy(b->data + b->len, p, k < room ? k : room);
	b->len += k < room ? k : room;
	b->data[b->len] = 0;
	return k;
}

static long request(CURL *h, const char *method, const char *url, const char *body,
		    struct body *out)
{
	out->len = 0;
	out->data[0] = 0;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	if (!body)
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
	if (curl_easy_perform(h) != CURLE_OK)
		return -1;
	long st = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
	return st;
}

static long long head_of(const char *base, const char *id)
{
	CURL *h = curl_easy_init();
	struct body *b = malloc(sizeof(*b));
	char url[512];
	snprintf(url, sizeof(url), "%s/actors/%s", base, id);
	long long v = -1;
	long st = request(h, "GET", url, NULL, b);
	if (st != 200)
		fprintf(stderr, "bench-fanout: GET %s: %ld %s\n", url, st, b->data);
	if (st == 200) {
		const char *p = strstr(b->data, "\"length\":");
		if (p)
			v = atoll(p + 9);
	}
	free(b);
	curl_easy_cleanup(h);
	return v;
}

struct sender {
	const char *url;
	int n, failures;
};

static void *send_loop(void *arg)
{
	struct sender *s = arg;
	CURL *h = curl_easy_init();
	struct body *b = malloc(sizeof(*b));
	for (int i = 0; i < s->n; i++)
		if (request(h, "POST", s->url, "1", b) != 202)
			s->failures++;
	free(b);
	curl_easy_cleanup(h);
	return NULL;
}

static double cpu_s(int pid)
{
	if (pid <= 0)
		return 0;
	char path[64], line[4096];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f || !fgets(line, sizeof(line), f)) {
		if (f)
			fclose(f);
		return 0;
	}
	fclose(f);
	char *p = strrchr(line, ')');
	unsigned long ut = 0, st = 0;
	/* fields after ')': state(3) ... utime(14) stime(15) */
	sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st);
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

int main(int argc, char **argv)
{
	if (argc < 6) {
		fprintf(stderr, "usage: bench-fanout BASE_URL ACTOR_ID SUBSCRIBERS MESSAGES "
			"CLIENTS [SERVER_PID]\n");
		return 64;
	}
	const char *base = argv[1], *id = argv[2];
	nsubs = atoi(argv[3]);
	int n = atoi(argv[4]), k = atoi(argv[5]);
	int pid = argc > 6 ? atoi(argv[6]) : 0;
	char host[64];
	int port;
	if (sscanf(base, "http://%63[^:]:%d", host, &port) != 2 || k <= 0 || n < k) {
		fprintf(stderr, "bench-fanout: bad arguments\n");
		return 64;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	long long head0 = head_of(base, id);
	if (head0 < 0) {
		fprintf(stderr, "bench-fanout: no actor %s at %s\n", id, base);
		return 1;
	}
	int ep = epoll_create1(0);
	subs = calloc((size_t)(nsubs ? nsubs : 1), sizeof(*subs));
	for (int i = 0; i < nsubs; i++) {
		subs[i].fd = open_stream(host, port, id, (uint64_t)head0);
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &subs[i]};
		epoll_ctl(ep, EPOLL_CTL_ADD, subs[i].fd, &ev);
	}
	pthread_t rt;
	pthread_create(&rt, NULL, reader, &ep);
	double t = now_s();
	while (__atomic_load_n(&nready, __ATOMIC_RELAXED) < nsubs && now_s() - t < 60)
		usleep(10000);
	if (nready < nsubs) {
		fprintf(stderr, "bench-fanout: only %ld of %d streams went live\n", nready, nsubs);
		return 1;
	}
	char url[512];
	snprintf(url, sizeof(url), "%s/actors/%s/messages", base, id);
	struct sender *s = calloc((size_t)k, sizeof(*s));
	pthread_t *th = calloc((size_t)k, sizeof(*th));
	int per = n / k, total = per * k, failures = 0;
	double cpu0 = cpu_s(pid), t0 = now_s();
	for (int i = 0; i < k; i++) {
		s[i] = (struct sender){url, per, 0};
		pthread_create(&th[i], NULL, send_loop, &s[i]);
	}
	for (int i = 0; i < k; i++) {
		pthread_join(th[i], NULL);
		failures += s[i].failures;
	}
	double sent_s = now_s() - t0, cpu_sent = cpu_s(pid) - cpu0;
	/* Every frame of the run to every subscriber: the chain grows by the messages
	 * and the calls that handle them; wait until it stops growing and all is in. */
	long long head1 = head_of(base, id), prev = -1;
	double deadline = now_s() + 120;
	while (now_s() < deadline) {
		head1 = head_of(base, id);
		long want = (long)(head1 - head0) * nsubs;
		if (head1 == prev && __atomic_load_n(&total_frames, __ATOMIC_RELAXED) >= want)
			break;
		prev = head1;
		usleep(50000);
	}
	double all_s = now_s() - t0, cpu_all = cpu_s(pid) - cpu0;
	__atomic_store_n(&stop_reader, 1, __ATOMIC_RELEASE);
	pthread_join(rt, NULL);
	long want = (long)(head1 - head0) * nsubs, got = total_frames;
	printf("fan-out: subscribers=%d clients=%d messages=%d writer=%.0f msg/s", nsubs, k,
	       total - failures, (total - failures) / sent_s);
	if (pid > 0)
		printf(" server-cpu=%.1f us/msg (while sending)", cpu_sent * 1e6 / total);
	printf("; chain events=%lld frames delivered=%ld of %ld in %.2f s (%.0f frames/s)",
	       head1 - head0, got, want, all_s, got / all_s);
	if (pid > 0 && nsubs)
		printf(" server-cpu=%.2f us/frame reader-cpu=%.2f us/frame",
		       cpu_all * 1e6 / (got ? got : 1), reader_cpu_s * 1e6 / (got ? got : 1));
	printf(" failures=%d\n", failures);
	if (got < want) {
		long short_subs = 0, least = head1 - head0;
		for (int i = 0; i < nsubs; i++)
			if (subs[i].frames < head1 - head0) {
				short_subs++;
				if (subs[i].frames < least)
					least = subs[i].frames;
			}
		fprintf(stderr, "bench-fanout: %ld subscribers short of %lld frames (the least "
			"got %ld)\n", short_subs, head1 - head0, least);
	}
	if (got > want)   /* a frame twice, or the count is wrong: either is a failure */
		fprintf(stderr, "bench-fanout: %ld frames delivered, more than the %ld sent\n",
			got, want);
	return failures || got != want ? 1 : 0;
}
