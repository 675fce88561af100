/* ceiling.c - bench-fanout-ceiling: how many ~475-byte frames this machine can
 * move to N loopback TCP subscribers when nothing else runs, the ceiling for
 * bench/fanout (issue 16 goal 4).
 *
 *   bench-fanout-ceiling [SUBSCRIBERS] [SECONDS] [FRAME_BYTES] [BLOCK_BYTES]
 *
 * One process, two threads, like theater-server's sending side and the
 * benchmark's reader on the same machine: SUBSCRIBERS (1000) connections over
 * 127.0.0.1; a sender thread hands each socket, in turn, as many bytes as it
 * takes of a block of BLOCK_BYTES (65536; libmicrohttpd pulls theater-server's
 * streams in about 64 KiB) made of FRAME_BYTES (475) frames, without blocking; a reader thread
 * reads every socket with epoll, as bench-fanout does. No JSON, no HTTP, no
 * locks: only the kernel's loopback send and receive. After SECONDS (3) it prints
 * the frames received per second and the sender's CPU per frame. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int stop;
static long long received;

static double now_s(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *reader(void *arg)
{
	int ep = *(int *)arg;
	struct epoll_event evs[256];
	static char buf[1 << 16];
	while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
		int n = epoll_wait(ep, evs, 256, 100);
		for (int i = 0; i < n; i++) {
			ssize_t r = recv(evs[i].data.fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (r > 0)
				__atomic_add_fetch(&received, r, __ATOMIC_RELAXED);
		}
	}
	return NULL;
}

static long arg(int argc, char **argv, int i, long def)
{
	return argc > i ? atol(argv[i]) : def;
}

int main(int argc, char **argv)
{
	long nsubs = arg(argc, argv, 1, 1000), secs = arg(argc, argv, 2, 3);
	long frame = arg(argc, argv, 3, 475), block = arg(argc, argv, 4, 65536);
	if (nsubs <= 0 || secs <= 0 || frame <= 0 || block < frame) {
		fprintf(stderr, "usage: bench-fanout-ceiling [SUBSCRIBERS] [SECONDS] [FRAME_BYTES] "
			"[BLOCK_BYTES]\n");
		return 64;
	}
	block -= block % frame;        /* whole frames, as a stream's pull gives */
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t alen = sizeof(a);
	if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, 4096) ||
	    getsockname(ls, (struct sockaddr *)&a, &alen)) {
		perror("bench-fanout-ceiling: listen");
		return 1;
	}
	int *out = calloc((size_t)nsubs, sizeof(*out));
	int ep = epoll_create1(EPOLL_CLOEXEC);
	for (long i = 0; i < nsubs; i++) {
		int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof(a))) {
			perror("bench-fanout-ceiling: connect (raise ulimit -n?)");
			return 1;
		}
		out[i] = accept(ls, NULL, NULL);
		if (out[i] < 0) {
			perror("bench-fanout-ceiling: accept");
			return 1;
		}
		int one = 1;
		setsockopt(out[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct epoll_event ev = {.events = EPOLLIN, .data.fd = c};
		epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
	}
	char *buf = malloc((size_t)block);
	for (long i = 0; i < block; i++)
		buf[i] = (i % frame) == frame - 1 ? '\n' : 'x';
	long *off = calloc((size_t)nsubs, sizeof(*off));   /* each socket's place in the block */
	pthread_t rt;
	pthread_create(&rt, NULL, reader, &ep);
	double t0 = now_s(CLOCK_MONOTONIC), c0 = now_s(CLOCK_THREAD_CPUTIME_ID);
	long long sent = 0, calls = 0;
	while (now_s(CLOCK_MONOTONIC) - t0 < (double)secs) {
		for (long i = 0; i < nsubs; i++) {
			ssize_t r = send(out[i], buf + off[i], (size_t)(block - off[i]),
					 MSG_DONTWAIT | MSG_NOSIGNAL);
			calls++;
			if (r > 0) {
				sent += r;
				off[i] = (off[i] + r) % block;
			} else if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
				perror("bench-fanout-ceiling: send");
				return 1;
			}
		}
	}
	double wall = now_s(CLOCK_MONOTONIC) - t0, cpu = now_s(CLOCK_THREAD_CPUTIME_ID) - c0;
	long long got = __atomic_load_n(&received, __ATOMIC_RELAXED);
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	pthread_join(rt, NULL);
	printf("fan-out ceiling: subscribers=%ld frame=%ld B block=%ld B: %.0f frames/s received "
	       "(%.0f MB/s), sender %.2f us CPU per frame, %.1f frames per send call\n",
	       nsubs, frame, block, (double)got / (double)frame / wall,
	       (double)got / wall / 1e6, cpu * 1e6 / ((double)sent / (double)frame),
	       calls ? (double)sent / (double)frame / (double)calls : 0.0);
	return 0;
}
