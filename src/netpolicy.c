/* netpolicy.c - address classes and host allow lists for actor HTTP; see
 * netpolicy.h.
 *
 * Tables over ladders: each family has one table of prefixes, searched in
 * order (the first match wins, so narrower ranges come before the wider ones
 * that contain them). IPv6 forms that embed an IPv4 address are unwrapped
 * first, so ::ffff:127.0.0.1 is exactly as loopback as 127.0.0.1.
 */
#include "src/netpolicy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct v4_range {
	uint32_t net;
	unsigned bits;
	enum netpolicy_class cls;
};

static const struct v4_range v4_ranges[] = {
	{0x00000000u, 8, NETPOLICY_UNSPECIFIED},   /* 0.0.0.0/8 "this network" */
	{0x0A000000u, 8, NETPOLICY_PRIVATE},       /* 10/8 */
	{0x64400000u, 10, NETPOLICY_PRIVATE},      /* 100.64/10 shared (CGNAT) */
	{0x7F000000u, 8, NETPOLICY_LOOPBACK},      /* 127/8 */
	{0xA9FE0000u, 16, NETPOLICY_LINK_LOCAL},   /* 169.254/16 */
	{0xAC100000u, 12, NETPOLICY_PRIVATE},      /* 172.16/12 */
	{0xC0000000u, 24, NETPOLICY_RESERVED},     /* 192.0.0/24 protocol assignments */
	{0xC0000200u, 24, NETPOLICY_RESERVED},     /* 192.0.2/24 TEST-NET-1 */
	{0xC0586300u, 24, NETPOLICY_RESERVED},     /* 192.88.99/24 6to4 relay */
	{0xC0A80000u, 16, NETPOLICY_PRIVATE},      /* 192.168/16 */
	{0xC6120000u, 15, NETPOLICY_RESERVED},     /* 198.18/15 benchmarking */
	{0xC6336400u, 24, NETPOLICY_RESERVED},     /* 198.51.100/24 TEST-NET-2 */
	{0xCB007100u, 24, NETPOLICY_RESERVED},     /* 203.0.113/24 TEST-NET-3 */
	{0xE0000000u, 4, NETPOLICY_MULTICAST},     /* 224/4 */
	{0xF0000000u, 4, NETPOLICY_RESERVED},      /* 240/4, 255.255.255.255 */
};

struct v6_range {
	uint8_t prefix[16];
	unsigned bits;
	enum netpolicy_class cls;
};

/* After ::, ::1 and the IPv4-carrying forms have been handled. */
static const struct v6_range v6_ranges[] = {
	{{0}, 96, NETPOLICY_RESERVED},                                   /* ::/96 compatible */
	{{0x00, 0x64, 0xff, 0x9b, 0x00, 0x01}, 48, NETPOLICY_PRIVATE},   /* local-use NAT64 */
	{{0x01, 0x00}, 64, NETPOLICY_RESERVED},                          /* 100::/64 discard */
	{{0x20, 0x01, 0x0d, 0xb8}, 32, NETPOLICY_RESERVED},              /* documentation */
	{{0x20, 0x01}, 23, NETPOLICY_RESERVED},                          /* protocol assignments */
	{{0x3f, 0xff}, 20, NETPOLICY_RESERVED},                          /* documentation */
	{{0xfc}, 7, NETPOLICY_PRIVATE},                                  /* unique local */
	{{0xfe, 0x80}, 10, NETPOLICY_LINK_LOCAL},                        /* link-local */
	{{0xfe, 0xc0}, 10, NETPOLICY_PRIVATE},                           /* site-local */
	{{0xff}, 8, NETPOLICY_MULTICAST},
	{{0x20}, 3, NETPOLICY_PUBLIC},                                   /* global unicast */
};

static enum netpolicy_class classify_v4(uint32_t a)
{
	for (size_t i = 0; i < sizeof(v4_ranges) / sizeof(v4_ranges[0]); i++) {
		uint32_t mask = 0xFFFFFFFFu << (32 - v4_ranges[i].bits);
		if ((a & mask) == v4_ranges[i].net)
			return v4_ranges[i].cls;
	}
	return NETPOLICY_PUBLIC;
}

static int prefix_match(const uint8_t *a, const uint8_t *prefix, unsigned bits)
{
	unsigned whole = bits / 8, rest = bits % 8;
	if (memcmp(a, prefix, whole) != 0)
		return 0;
	if (rest == 0)
		return 1;
	uint8_t mask = (uint8_t)(0xFF << (8 - rest));
	return (a[whole] & mask) == (prefix[whole] & mask);
}

static uint32_t be32_at(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* 1 and the IPv4 address when a carries one (mapped, SIIT, NAT64, 6to4). */
static int v6_embedded_v4(const uint8_t *a, uint32_t *v4_out)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	static const uint8_t siit[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0};
	static const uint8_t nat64[12] = {0x00, 0x64, 0xff, 0x9b};
	if (memcmp(a, mapped, 12) == 0 || memcmp(a, siit, 12) == 0 || memcmp(a, nat64, 12) == 0) {
		*v4_out = be32_at(a + 12);
		return 1;
	}
	if (a[0] == 0x20 && a[1] == 0x02) {
		*v4_out = be32_at(a + 2);
		return 1;
	}
	return 0;
}

static enum netpolicy_class classify_v6(const uint8_t *a)
{
	static const uint8_t zero[16], one[16] = {[15] = 1};
	uint32_t v4;
	if (memcmp(a, zero, 16) == 0)
		return NETPOLICY_UNSPECIFIED;
	if (memcmp(a, one, 16) == 0)
		return NETPOLICY_LOOPBACK;
	if (v6_embedded_v4(a, &v4))
		return classify_v4(v4);
	for (size_t i = 0; i < sizeof(v6_ranges) / sizeof(v6_ranges[0]); i++)
		if (prefix_match(a, v6_ranges[i].prefix, v6_ranges[i].bits))
			return v6_ranges[i].cls;
	return NETPOLICY_RESERVED;   /* outside 2000::/3: not allocated for unicast */
}

enum netpolicy_class netpolicy_classify(const struct sockaddr *sa, size_t len)
{
	if (!sa || len < sizeof(sa_family_t))
		return NETPOLICY_RESERVED;
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		struct sockaddr_in in;
		memcpy(&in, sa, sizeof(in));
		return classify_v4(ntohl(in.sin_addr.s_addr));
	}
	if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		struct sockaddr_in6 in6;
		memcpy(&in6, sa, sizeof(in6));
		return classify_v6(in6.sin6_addr.s6_addr);
	}
	return NETPOLICY_RESERVED;
}

const char *netpolicy_class_name(enum netpolicy_class c)
{
	switch (c) {
	case NETPOLICY_PUBLIC: return "public";
	case NETPOLICY_LOOPBACK: return "loopback";
	case NETPOLICY_PRIVATE: return "private";
	case NETPOLICY_LINK_LOCAL: return "link-local";
	case NETPOLICY_UNSPECIFIED: return "unspecified";
	case NETPOLICY_MULTICAST: return "multicast";
	case NETPOLICY_RESERVED: return "reserved";
	}
	return "reserved";
}

int netpolicy_address_allowed(const struct sockaddr *sa, size_t len, int allow_private)
{
	enum netpolicy_class c = netpolicy_classify(sa, len);
	if (c == NETPOLICY_PUBLIC)
		return 1;
	if (c == NETPOLICY_MULTICAST)
		return 0;
	/* What we cannot classify (another family, a short address) is never
	 * allowed, whatever the setting. */
	if (!sa || len < sizeof(sa_family_t))
		return 0;
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in))
		return allow_private != 0;
	if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6))
		return allow_private != 0;
	return 0;
}

void netpolicy_address_text(const struct sockaddr *sa, size_t len, char *out, size_t out_size)
{
	const void *addr = NULL;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
	if (out_size == 0)
		return;
	if (sa && len >= sizeof(in) && sa->sa_family == AF_INET) {
		memcpy(&in, sa, sizeof(in));
		addr = &in.sin_addr;
	} else if (sa && len >= sizeof(in6) && sa->sa_family == AF_INET6) {
		memcpy(&in6, sa, sizeof(in6));
		addr = &in6.sin6_addr;
	}
	if (!addr || !inet_ntop(sa->sa_family, addr, out, (socklen_t)out_size))
		snprintf(out, out_size, "?");
}

/* ---- host allow lists ---- */

struct hostport {
	char host[256];
	unsigned port;       /* 0: any */
};

static int parse_port(const char *s, unsigned *out)
{
	char *end;
	if (*s < '0' || *s > '9' || strlen(s) > 5)
		return -1;
	unsigned long v = strtoul(s, &end, 10);
	if (*end || v == 0 || v > 65535)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static int copy_host(char *dst, const char *src, size_t n)
{
	if (n == 0 || n >= 256)
		return -1;
	memcpy(dst, src, n);
	dst[n] = '\0';
	if (n > 1 && dst[n - 1] == '.')
		dst[n - 1] = '\0';
	return 0;
}

/* "host", "host:port", "[v6]", "[v6]:port", or a bare IPv6 literal. */
static int parse_hostport(const char *s, struct hostport *out)
{
	const char *colon;
	out->port = 0;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || (close[1] && (close[1] != ':' || parse_port(close + 2, &out->port))))
			return -1;
		return copy_host(out->host, s + 1, (size_t)(close - s - 1));
	}
	colon = strchr(s, ':');
	if (colon && !strchr(colon + 1, ':')) {
		if (parse_port(colon + 1, &out->port))
			return -1;
		return copy_host(out->host, s, (size_t)(colon - s));
	}
	return copy_host(out->host, s, strlen(s));
}

static int same_host(const char *a, const char *b)
{
	struct in6_addr x, y;
	if (inet_pton(AF_INET6, a, &x) == 1 && inet_pton(AF_INET6, b, &y) == 1)
		return memcmp(&x, &y, sizeof(x)) == 0;
	return strcasecmp(a, b) == 0;
}

/* host ends with ".domain" and has something before it. */
static int below_domain(const char *host, const char *domain)
{
	size_t h = strlen(host), d = strlen(domain);
	return d > 0 && h > d + 1 && host[h - d - 1] == '.' && strcasecmp(host + h - d, domain) == 0;
}

int netpolicy_host_match(const char *pattern, const char *host, unsigned port)
{
	struct hostport p, h;
	int wildcard;
	if (!pattern || !host || !*pattern || !*host)
		return 0;
	wildcard = strncmp(pattern, "*.", 2) == 0;
	if (parse_hostport(wildcard ? pattern + 2 : pattern, &p) || !p.host[0])
		return 0;
	if (host[0] == '[') {
		if (parse_hostport(host, &h) || h.port)
			return 0;
	} else if (copy_host(h.host, host, strlen(host))) {
		return 0;
	}
	if (p.port && p.port != port)
		return 0;
	return wildcard ? below_domain(h.host, p.host) : same_host(p.host, h.host);
}
