/* test_netpolicy.c - the address policy of actor HTTP: classes of many IPv4 and
 * IPv6 addresses (with the IPv6 forms that carry an IPv4 address), what is
 * allowed with and without the private-address setting, host allow lists; and
 * the fetch module's address check and url split, which put the policy to work
 * (against a fixture server on 127.0.0.1). */
#include "tests/support/testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "src/fetch.h"
#include "src/netpolicy.h"
#include "tests/support/fixture_httpd.h"

/* Parses text as IPv4 or IPv6 into ss; fails the test when it is neither. */
static size_t make_addr(const char *text, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, text, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons(80);
		return sizeof(*in);
	}
	if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(80);
		return sizeof(*in6);
	}
	fail_msg("bad test address '%s'", text);
	return 0;
}

static enum netpolicy_class classify(const char *text)
{
	struct sockaddr_storage ss;
	size_t len = make_addr(text, &ss);
	return netpolicy_classify((struct sockaddr *)&ss, len);
}

struct case_ {
	const char *addr;
	enum netpolicy_class cls;
};

static void check_cases(const struct case_ *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		enum netpolicy_class got = classify(cases[i].addr);
		if (got != cases[i].cls)
			fail_msg("'%s': expected %s, got %s", cases[i].addr,
				 netpolicy_class_name(cases[i].cls), netpolicy_class_name(got));
	}
}

static void test_ipv4_classes(void **state)
{
	static const struct case_ cases[] = {
		{"0.0.0.0", NETPOLICY_UNSPECIFIED},
		{"0.1.2.3", NETPOLICY_UNSPECIFIED},
		{"10.0.0.1", NETPOLICY_PRIVATE},
		{"10.255.255.255", NETPOLICY_PRIVATE},
		{"11.0.0.1", NETPOLICY_PUBLIC},
		{"100.63.255.255", NETPOLICY_PUBLIC},
		{"100.64.0.1", NETPOLICY_PRIVATE},
		{"100.127.255.254", NETPOLICY_PRIVATE},
		{"100.128.0.1", NETPOLICY_PUBLIC},
		{"127.0.0.1", NETPOLICY_LOOPBACK},
		{"127.255.255.254", NETPOLICY_LOOPBACK},
		{"169.254.169.254", NETPOLICY_LINK_LOCAL},
		{"169.255.0.1", NETPOLICY_PUBLIC},
		{"172.15.255.255", NETPOLICY_PUBLIC},
		{"172.16.0.1", NETPOLICY_PRIVATE},
		{"172.31.255.255", NETPOLICY_PRIVATE},
		{"172.32.0.1", NETPOLICY_PUBLIC},
		{"192.0.0.8", NETPOLICY_RESERVED},
		{"192.0.2.1", NETPOLICY_RESERVED},
		{"192.88.99.1", NETPOLICY_RESERVED},
		{"192.167.255.255", NETPOLICY_PUBLIC},
		{"192.168.1.1", NETPOLICY_PRIVATE},
		{"192.169.0.1", NETPOLICY_PUBLIC},
		{"198.18.0.1", NETPOLICY_RESERVED},
		{"198.19.255.255", NETPOLICY_RESERVED},
		{"198.20.0.1", NETPOLICY_PUBLIC},
		{"198.51.100.7", NETPOLICY_RESERVED},
		{"203.0.113.9", NETPOLICY_RESERVED},
		{"224.0.0.1", NETPOLICY_MULTICAST},
		{"239.255.255.250", NETPOLICY_MULTICAST},
		{"240.0.0.1", NETPOLICY_RESERVED},
		{"255.255.255.255", NETPOLICY_RESERVED},
		{"1.1.1.1", NETPOLICY_PUBLIC},
		{"8.8.8.8", NETPOLICY_PUBLIC},
		{"93.184.216.34", NETPOLICY_PUBLIC},
		{"223.255.255.255", NETPOLICY_PUBLIC},
	};
	(void)state;
	check_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_ipv6_classes(void **state)
{
	static const struct case_ cases[] = {
		{"::", NETPOLICY_UNSPECIFIED},
		{"::1", NETPOLICY_LOOPBACK},
		{"::2", NETPOLICY_RESERVED},
		{"::7f00:1", NETPOLICY_RESERVED},              /* IPv4-compatible */
		{"fc00::1", NETPOLICY_PRIVATE},
		{"fd12:3456:789a::1", NETPOLICY_PRIVATE},
		{"fe80::1", NETPOLICY_LINK_LOCAL},
		{"febf::1", NETPOLICY_LINK_LOCAL},
		{"fec0::1", NETPOLICY_PRIVATE},
		{"ff02::1", NETPOLICY_MULTICAST},
		{"ff0e::1", NETPOLICY_MULTICAST},
		{"100::1", NETPOLICY_RESERVED},
		{"2001:db8::1", NETPOLICY_RESERVED},
		{"2001::1", NETPOLICY_RESERVED},               /* Teredo, inside 2001::/23 */
		{"3fff::1", NETPOLICY_RESERVED},
		{"64:ff9b:1::1", NETPOLICY_PRIVATE},
		{"4000::1", NETPOLICY_RESERVED},               /* outside 2000::/3 */
		{"e000::1", NETPOLICY_RESERVED},
		{"2606:4700:4700::1111", NETPOLICY_PUBLIC},
		{"2a00:1450:4001::1", NETPOLICY_PUBLIC},
		{"2001:4860:4860::8888", NETPOLICY_PUBLIC},
	};
	(void)state;
	check_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* IPv6 forms that carry an IPv4 address take that address's class. */
static void test_ipv6_embedded_ipv4(void **state)
{
	static const struct case_ cases[] = {
		{"::ffff:127.0.0.1", NETPOLICY_LOOPBACK},
		{"::ffff:7f00:1", NETPOLICY_LOOPBACK},
		{"::ffff:0.0.0.0", NETPOLICY_UNSPECIFIED},
		{"::ffff:10.1.2.3", NETPOLICY_PRIVATE},
		{"::ffff:169.254.169.254", NETPOLICY_LINK_LOCAL},
		{"::ffff:100.64.0.1", NETPOLICY_PRIVATE},
		{"::ffff:224.0.0.1", NETPOLICY_MULTICAST},
		{"::ffff:8.8.8.8", NETPOLICY_PUBLIC},
		{"::ffff:0:127.0.0.1", NETPOLICY_LOOPBACK},    /* SIIT */
		{"64:ff9b::127.0.0.1", NETPOLICY_LOOPBACK},    /* NAT64 */
		{"64:ff9b::192.168.0.1", NETPOLICY_PRIVATE},
		{"64:ff9b::8.8.8.8", NETPOLICY_PUBLIC},
		{"2002:7f00:1::1", NETPOLICY_LOOPBACK},        /* 6to4 of 127.0.0.1 */
		{"2002:a9fe:a9fe::1", NETPOLICY_LINK_LOCAL},
		{"2002:0808:0808::1", NETPOLICY_PUBLIC},
	};
	(void)state;
	check_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static int allowed(const char *text, int allow_private)
{
	struct sockaddr_storage ss;
	size_t len = make_addr(text, &ss);
	return netpolicy_address_allowed((struct sockaddr *)&ss, len, allow_private);
}

static void test_allowed(void **state)
{
	(void)state;
	assert_true(allowed("8.8.8.8", 0));
	assert_true(allowed("2606:4700:4700::1111", 0));
	const char *refused[] = {"127.0.0.1", "::1", "::ffff:127.0.0.1", "0.0.0.0", "::",
				 "10.0.0.1", "192.168.0.1", "172.20.1.1", "100.64.0.1",
				 "169.254.169.254", "fe80::1", "fd00::1", "224.0.0.1",
				 "ff02::1", "240.0.0.1", "198.18.0.1", "2001:db8::1"};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		if (allowed(refused[i], 0))
			fail_msg("'%s' allowed without allow_private", refused[i]);
	/* The server setting opens non-public unicast, never multicast. */
	assert_true(allowed("127.0.0.1", 1));
	assert_true(allowed("::1", 1));
	assert_true(allowed("10.0.0.1", 1));
	assert_true(allowed("fe80::1", 1));
	assert_false(allowed("224.0.0.1", 1));
	assert_false(allowed("ff02::1", 1));
}

static void test_odd_sockaddrs(void **state)
{
	struct sockaddr_storage ss;
	struct sockaddr_un un;
	(void)state;
	assert_int_equal(netpolicy_classify(NULL, 0), NETPOLICY_RESERVED);
	size_t len = make_addr("8.8.8.8", &ss);
	/* A truncated address is never taken for a public one. */
	assert_int_equal(netpolicy_classify((struct sockaddr *)&ss, len - 1), NETPOLICY_RESERVED);
	assert_int_equal(netpolicy_classify((struct sockaddr *)&ss, 1), NETPOLICY_RESERVED);
	assert_false(netpolicy_address_allowed((struct sockaddr *)&ss, len - 1, 1));
	memset(&un, 0, sizeof(un));
	un.sun_family = AF_UNIX;
	strcpy(un.sun_path, "/tmp/x");
	assert_int_equal(netpolicy_classify((struct sockaddr *)&un, sizeof(un)), NETPOLICY_RESERVED);
	assert_false(netpolicy_address_allowed((struct sockaddr *)&un, sizeof(un), 1));
}

static void test_address_text(void **state)
{
	struct sockaddr_storage ss;
	char text[64];
	(void)state;
	size_t len = make_addr("::ffff:127.0.0.1", &ss);
	netpolicy_address_text((struct sockaddr *)&ss, len, text, sizeof(text));
	assert_string_equal(text, "::ffff:127.0.0.1");
	len = make_addr("10.1.2.3", &ss);
	netpolicy_address_text((struct sockaddr *)&ss, len, text, sizeof(text));
	assert_string_equal(text, "10.1.2.3");
	netpolicy_address_text(NULL, 0, text, sizeof(text));
	assert_string_equal(text, "?");
	assert_string_equal(netpolicy_class_name(NETPOLICY_LINK_LOCAL), "link-local");
}

static void test_host_match(void **state)
{
	(void)state;
	assert_true(netpolicy_host_match("api.example.com", "api.example.com", 443));
	assert_true(netpolicy_host_match("API.Example.COM", "api.example.com", 80));
	assert_true(netpolicy_host_match("api.example.com.", "api.example.com", 80));
	assert_true(netpolicy_host_match("api.example.com", "api.example.com.", 80));
	assert_false(netpolicy_host_match("api.example.com", "example.com", 443));
	assert_false(netpolicy_host_match("example.com", "api.example.com", 443));
	assert_false(netpolicy_host_match("example.com", "evilexample.com", 443));
	assert_false(netpolicy_host_match("example.com", "example.com.evil.net", 443));
	/* With a port, only that port. */
	assert_true(netpolicy_host_match("127.0.0.1:8080", "127.0.0.1", 8080));
	assert_false(netpolicy_host_match("127.0.0.1:8080", "127.0.0.1", 8081));
	assert_true(netpolicy_host_match("127.0.0.1", "127.0.0.1", 1));
	/* Wildcards match names below the domain, not the domain. */
	assert_true(netpolicy_host_match("*.example.com", "a.example.com", 443));
	assert_true(netpolicy_host_match("*.example.com", "a.b.example.com", 443));
	assert_false(netpolicy_host_match("*.example.com", "example.com", 443));
	assert_false(netpolicy_host_match("*.example.com", "badexample.com", 443));
	assert_true(netpolicy_host_match("*.example.com:8443", "a.example.com", 8443));
	assert_false(netpolicy_host_match("*.example.com:8443", "a.example.com", 443));
	/* IPv6 literals, bracketed or not, compared as addresses. */
	assert_true(netpolicy_host_match("[::1]", "[::1]", 80));
	assert_true(netpolicy_host_match("::1", "[0:0::1]", 80));
	assert_true(netpolicy_host_match("[::1]:8080", "[::1]", 8080));
	assert_false(netpolicy_host_match("[::1]:8080", "[::1]", 80));
	assert_false(netpolicy_host_match("[::2]", "[::1]", 80));
	/* Malformed patterns and hosts match nothing. */
	assert_false(netpolicy_host_match("", "a", 80));
	assert_false(netpolicy_host_match("*.", "a", 80));
	assert_false(netpolicy_host_match("a:0", "a", 0));
	assert_false(netpolicy_host_match("a:99999", "a", 80));
	assert_false(netpolicy_host_match("a:8x", "a", 80));
	assert_false(netpolicy_host_match("[::1", "[::1]", 80));
	assert_false(netpolicy_host_match("a", "", 80));
	assert_false(netpolicy_host_match(NULL, "a", 80));
}

/* ---- the policy at work in fetch ---- */

struct check_ctx {
	int allow_private;
	int calls;
	int refuse_from;     /* refuse the n-th connection on (1-based); 0: never */
};

static int check_addr(void *user, const struct sockaddr *sa, size_t len, char *why, size_t n)
{
	struct check_ctx *c = user;
	c->calls++;
	if (c->refuse_from && c->calls >= c->refuse_from) {
		snprintf(why, n, "connection %d refused", c->calls);
		return 1;
	}
	if (netpolicy_address_allowed(sa, len, c->allow_private))
		return 0;
	char text[64];
	netpolicy_address_text(sa, len, text, sizeof(text));
	snprintf(why, n, "address '%s' is %s", text,
		 netpolicy_class_name(netpolicy_classify(sa, len)));
	return 1;
}

static void test_fetch_address_check(void **state)
{
	(void)state;
	struct fixture_httpd *h = fixture_httpd_start();
	assert_non_null(h);
	fixture_httpd_add_bytes(h, "/x", "hello", 5);
	fixture_httpd_add_redirect(h, "/r", "/x");
	char *url = fixture_httpd_url(h, "/x"), *redir = fixture_httpd_url(h, "/r");
	struct check_ctx ctx = {0};
	struct fetch_request req = {.url = url, .addr_check = check_addr, .addr_check_user = &ctx};
	struct fetch_response resp;
	struct err e = {0};
	/* Loopback is refused before any connection is made. */
	assert_int_equal(fetch_request(&req, NULL, &resp, &e), ERR_FORBIDDEN_PATH);
	assert_non_null(strstr(e.msg, "loopback"));
	assert_true(ctx.calls >= 1);
	assert_int_equal(fixture_httpd_hits(h, "/x"), 0);
	/* Allowed by the setting: the request goes through. */
	ctx = (struct check_ctx){.allow_private = 1};
	assert_int_equal(fetch_request(&req, NULL, &resp, &e), ERR_OK);
	assert_int_equal(resp.status, 200);
	assert_int_equal(resp.body_len, 5);
	fetch_response_release(&resp);
	assert_int_equal(fixture_httpd_hits(h, "/x"), 1);
	/* Every connection of a redirect chain is checked: refuse the second. */
	req.url = redir;
	req.follow_redirects = 1;
	ctx = (struct check_ctx){.allow_private = 1, .refuse_from = 2};
	assert_int_equal(fetch_request(&req, NULL, &resp, &e), ERR_FORBIDDEN_PATH);
	assert_int_equal(ctx.calls, 2);
	assert_int_equal(fixture_httpd_hits(h, "/r"), 1);
	assert_int_equal(fixture_httpd_hits(h, "/x"), 1);
	free(url);
	free(redir);
	fixture_httpd_stop(h);
}

/* With an address check, proxies from the environment are not used: the
 * address checked is the one the request goes to. */
static void test_fetch_address_check_no_proxy(void **state)
{
	(void)state;
	struct fixture_httpd *h = fixture_httpd_start();
	assert_non_null(h);
	fixture_httpd_add_bytes(h, "/x", "direct", 6);
	char *url = fixture_httpd_url(h, "/x");
	char *saved = getenv("no_proxy") ? strdup(getenv("no_proxy")) : NULL;
	unsetenv("no_proxy");
	setenv("http_proxy", "http://127.0.0.1:9", 1);   /* nothing listens there */
	struct check_ctx ctx = {.allow_private = 1};
	struct fetch_request req = {.url = url, .addr_check = check_addr, .addr_check_user = &ctx};
	struct fetch_response resp;
	struct err e = {0};
	enum err_code rc = fetch_request(&req, NULL, &resp, &e);
	unsetenv("http_proxy");
	if (saved)
		setenv("no_proxy", saved, 1);
	free(saved);
	assert_int_equal(rc, ERR_OK);
	assert_string_equal((char *)resp.body, "direct");
	fetch_response_release(&resp);
	free(url);
	fixture_httpd_stop(h);
}

static void test_fetch_url_split(void **state)
{
	struct fetch_url_parts u;
	struct err e = {0};
	(void)state;
	assert_int_equal(fetch_url_split("http://api.example.com/x?y=1", &u, &e), ERR_OK);
	assert_string_equal(u.scheme, "http");
	assert_string_equal(u.host, "api.example.com");
	assert_int_equal(u.port, 80);
	assert_false(u.has_userinfo);
	assert_int_equal(fetch_url_split("HTTPS://Example.com", &u, &e), ERR_OK);
	assert_string_equal(u.scheme, "https");
	assert_int_equal(u.port, 443);
	assert_true(netpolicy_host_match("example.com", u.host, u.port));
	assert_int_equal(fetch_url_split("http://127.0.0.1:8080/", &u, &e), ERR_OK);
	assert_string_equal(u.host, "127.0.0.1");
	assert_int_equal(u.port, 8080);
	assert_int_equal(fetch_url_split("http://[::1]:81/", &u, &e), ERR_OK);
	assert_string_equal(u.host, "[::1]");
	assert_int_equal(u.port, 81);
	assert_true(netpolicy_host_match("[::1]:81", u.host, u.port));
	/* The host is what curl connects to, not what a naive parser sees. */
	assert_int_equal(fetch_url_split("http://allowed.com@evil.net/", &u, &e), ERR_OK);
	assert_string_equal(u.host, "evil.net");
	assert_true(u.has_userinfo);
	assert_int_equal(fetch_url_split("http://u:p@h/", &u, &e), ERR_OK);
	assert_true(u.has_userinfo);
	assert_int_equal(fetch_url_split("ftp://h/", &u, &e), ERR_BAD_REFERENCE);
	assert_int_equal(fetch_url_split("file:///etc/passwd", &u, &e), ERR_BAD_REFERENCE);
	assert_int_equal(fetch_url_split("http://", &u, &e), ERR_BAD_REFERENCE);
	assert_int_equal(fetch_url_split("http://a b/", &u, &e), ERR_BAD_REFERENCE);
	assert_int_equal(fetch_url_split("http://h:99999/", &u, &e), ERR_BAD_REFERENCE);
	assert_int_equal(fetch_url_split(NULL, &u, &e), ERR_BAD_REFERENCE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ipv4_classes),
		cmocka_unit_test(test_ipv6_classes),
		cmocka_unit_test(test_ipv6_embedded_ipv4),
		cmocka_unit_test(test_allowed),
		cmocka_unit_test(test_odd_sockaddrs),
		cmocka_unit_test(test_address_text),
		cmocka_unit_test(test_host_match),
		cmocka_unit_test(test_fetch_address_check),
		cmocka_unit_test(test_fetch_address_check_no_proxy),
		cmocka_unit_test(test_fetch_url_split),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
