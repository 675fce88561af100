/* netpolicy.h - the address policy for outbound HTTP of actors.
 *
 * Actor code is untrusted: an actor that may reach "api.example.com" must not
 * reach the supervisor's own loopback ports, the cloud metadata service on
 * 169.254.169.254 or a database on 10.0.0.5 by pointing a name it controls at
 * such an address (DNS rebinding) or by writing the address in the url. So the
 * check runs on the address actually connected, after DNS, for every
 * connection (redirects included); the caller installs it in the fetch module
 * (fetch_request.addr_check).
 *
 * Classes (IANA special-purpose registries, RFC 6890 and successors):
 *   loopback      127/8, ::1
 *   private       10/8, 172.16/12, 192.168/16, 100.64/10 (shared, RFC 6598),
 *                 fc00::/7 (unique local), fec0::/10 (old site-local),
 *                 64:ff9b:1::/48 (local-use NAT64)
 *   link-local    169.254/16, fe80::/10
 *   unspecified   0.0.0.0/8 ("this network"), ::
 *   multicast     224/4, ff00::/8
 *   reserved      everything else that is not global unicast: 192.0.0/24,
 *                 documentation and benchmarking ranges, 240/4, the broadcast
 *                 address, ::/96 (IPv4-compatible), 100::/64, 2001::/23,
 *                 2001:db8::/32, and all IPv6 outside 2000::/3
 *   public        the rest
 * IPv6 forms that carry an IPv4 address take the class of that address:
 * ::ffff:a.b.c.d (IPv4-mapped), 64:ff9b::a.b.c.d (NAT64) and 2002:aabb:ccdd::/48
 * (6to4). Families other than AF_INET and AF_INET6 are `reserved`.
 *
 * Host allow lists: entries are "host", "host:port", "[v6]", "[v6]:port" or
 * "*.domain" (any name below domain, not domain itself, any port), compared
 * without regard to case and to one trailing dot.
 *
 * Threads: pure functions of their arguments; safe from any thread.
 */
#ifndef THEATER_NETPOLICY_H
#define THEATER_NETPOLICY_H

#include <stddef.h>
#include <sys/socket.h>

enum netpolicy_class {
	NETPOLICY_PUBLIC = 0,
	NETPOLICY_LOOPBACK,
	NETPOLICY_PRIVATE,
	NETPOLICY_LINK_LOCAL,
	NETPOLICY_UNSPECIFIED,
	NETPOLICY_MULTICAST,
	NETPOLICY_RESERVED,
};

/* The class of the address in sa (len bytes; a short or NULL sa is reserved). */
enum netpolicy_class netpolicy_classify(const struct sockaddr *sa, size_t len);
/* "public", "loopback", "private", "link-local", "unspecified", "multicast",
 * "reserved". Never NULL. */
const char *netpolicy_class_name(enum netpolicy_class c);
/* 1 when an actor may connect to sa: public addresses always; with
 * allow_private (a server setting, for tests and trusted networks) every class
 * but multicast. */
int netpolicy_address_allowed(const struct sockaddr *sa, size_t len, int allow_private);
/* The numeric address of sa as text ("127.0.0.1", "::1") into out; "?" when it
 * cannot be shown. */
void netpolicy_address_text(const struct sockaddr *sa, size_t len, char *out, size_t out_size);

/* 1 when host (a url's host; IPv6 literals with or without brackets) and port
 * match the allow-list entry `pattern` (see above); 0 otherwise, also for
 * malformed patterns. */
int netpolicy_host_match(const char *pattern, const char *host, unsigned port);

#endif
