/* loopback.c - connections to this node's own API over loopback, for the event
 * streams other nodes relay (relay.c replays each stream request against its
 * own API, so the stream is the local one, byte for byte). Forwarded calls
 * that are not streams go through the cluster's fetcher instead (cluster.c,
 * job_serve), which waits for their answers without a thread each. */
#include "cluster/cluster_int.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int loopback_connect(const char *url)
{
	char host[300], port[16] = "80", hp[300];
	const char *p = strstr(url, "://");
	p = p ? p + 3 : url;
	size_t hl = strcspn(p, "/");
	snprintf(hp, sizeof(hp), "%.*s", (int)(hl < 299 ? hl : 299), p);
	if (hp[0] == '[') {
		char *end = strchr(hp, ']');
		if (!end)
			return -1;
		*end = '\0';
		snprintf(host, sizeof(host), "%s", hp + 1);
		if (end[1] == ':')
			snprintf(port, sizeof(port), "%.15s", end + 2);
	} else {
		char *colon = strrchr(hp, ':');
		if (colon) {
			*colon = '\0';
			snprintf(port, sizeof(port), "%.15s", colon + 1);
		}
		snprintf(host, sizeof(host), "%s", hp);
	}
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
	if (getaddrinfo(host, port, &hints, &ai) != 0)
		return -1;
	int fd = -1;
	for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(ai);
	/* a request's head and body go in two sends: without this, Nagle holds
	 * the body until the head's delayed ACK (40 ms a forwarded call) */
	int one = 1;
	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}
