/* test_config.c - theater-server's flags and environment. */
#include "tests/support/testutil.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "src/config.h"

static void clear_env(void)
{
	const char *vars[] = {"THEATER_LISTEN", "THEATER_HOME", "THEATER_PACKAGE_ROOTS",
			      "THEATER_TOKEN", "THEATER_TOKEN_FILE", "THEATER_MAX_BODY",
			      "THEATER_WORKERS", "THEATER_NATS", "THEATER_NODE",
			      "THEATER_NATS_REPLICAS", "THEATER_CLUSTER_LAPSE_MS", NULL};
	for (int i = 0; vars[i]; i++)
		unsetenv(vars[i]);
}

static enum err_code parse(struct config *c, struct err *e, const char **args)
{
	char *argv[32] = {"theater-server"};
	int argc = 1;
	for (int i = 0; args && args[i]; i++)
		argv[argc++] = (char *)args[i];
	return config_parse(c, argc, argv, e);
}

static void test_defaults(void **state)
{
	(void)state;
	clear_env();
	setenv("THEATER_HOME", "/tmp/theater-config-test", 1);
	struct config c;
	struct err e = {0};
	assert_int_equal(parse(&c, &e, NULL), ERR_OK);
	assert_string_equal(c.host, "127.0.0.1");
	assert_int_equal(c.port, 8080);
	assert_string_equal(c.home, "/tmp/theater-config-test");
	assert_int_equal(c.max_body, 1 << 20);
	assert_null(c.token);
	assert_int_equal(c.spare_chains, 1024);
	assert_int_equal(c.min_free_disk, 128u << 20);
	config_release(&c);
}

/* A flag whose 0 turns its feature off (not "the default"), given by its
 * environment variable too, and refused naming itself when its value is bad. */
struct off_flag {
	const char *flag, *env, *env_value, *bad;
	size_t env_want;
	size_t (*get)(const struct config *c);
};

static void check_off_flag(const struct off_flag *f)
{
	clear_env();
	setenv("THEATER_HOME", "/tmp/theater-config-test", 1);
	struct config c;
	struct err e = {0};
	const char *off[] = {f->flag, "0", NULL};
	assert_int_equal(parse(&c, &e, off), ERR_OK);
	assert_int_equal(f->get(&c), 0);
	config_release(&c);
	setenv(f->env, f->env_value, 1);
	assert_int_equal(parse(&c, &e, NULL), ERR_OK);
	assert_int_equal(f->get(&c), f->env_want);
	config_release(&c);
	unsetenv(f->env);
	const char *bad[] = {f->flag, f->bad, NULL};
	assert_int_equal(parse(&c, &e, bad), ERR_INVALID);
	assert_non_null(strstr(e.msg, f->flag));
	config_release(&c);
}

static size_t spare_chains_of(const struct config *c)
{
	return c->spare_chains;
}

static size_t min_free_disk_of(const struct config *c)
{
	return c->min_free_disk;
}

/* --spare-chains: 0 turns the pool off. */
static void test_spare_chains(void **state)
{
	(void)state;
	const struct off_flag f = {"--spare-chains", "THEATER_SPARE_CHAINS", "64", "-1", 64,
				   spare_chains_of};
	check_off_flag(&f);
}

/* --min-free-disk: a size (128 MiB by default: test_defaults), 0 turns the check off. */
static void test_min_free_disk(void **state)
{
	(void)state;
	const struct off_flag f = {"--min-free-disk", "THEATER_MIN_FREE_DISK", "2G", "lots",
				   (size_t)2 << 30, min_free_disk_of};
	check_off_flag(&f);
	/* a disk larger than a tebibyte (sizes once stopped at 1024G, and said only
	 * "not a size") */
	clear_env();
	setenv("THEATER_HOME", "/tmp/theater-config-test", 1);
	struct config c;
	struct err e = {0};
	const char *big[] = {"--min-free-disk", "2T", NULL};
	assert_int_equal(parse(&c, &e, big), ERR_OK);
	assert_int_equal(c.min_free_disk, (size_t)2 << 40);
	config_release(&c);
	const char *over[] = {"--min-free-disk", "1025T", NULL};
	assert_int_equal(parse(&c, &e, over), ERR_INVALID);
	assert_non_null(strstr(e.msg, "at most 1024T"));
	config_release(&c);
}

/* Cluster mode (issue 15): off by default; --nats, --node, --nats-replicas and
 * their environment; a node name that cannot be a NATS subject token is refused. */
static void test_cluster_flags(void **state)
{
	(void)state;
	clear_env();
	setenv("THEATER_HOME", "/tmp/theater-config-test", 1);
	struct config c;
	struct err e = {0};
	assert_int_equal(parse(&c, &e, NULL), ERR_OK);
	assert_null(c.nats);
	assert_null(c.node);
	assert_int_equal(c.nats_replicas, 3);
	assert_int_equal(c.cluster_lapse_ms, 4000);
	config_release(&c);
	const char *a[] = {"--nats", "nats://127.0.0.1:4222,nats://127.0.0.1:4223", "--node",
			   "alpha-1", "--nats-replicas", "1", "--cluster-lapse-ms", "15000", NULL};
	assert_int_equal(parse(&c, &e, a), ERR_OK);
	assert_int_equal(c.cluster_lapse_ms, 15000);
	assert_string_equal(c.nats, "nats://127.0.0.1:4222,nats://127.0.0.1:4223");
	assert_string_equal(c.node, "alpha-1");
	assert_int_equal(c.nats_replicas, 1);
	config_release(&c);
	setenv("THEATER_NATS", "nats://10.0.0.1:4222", 1);
	setenv("THEATER_NODE", "beta", 1);
	setenv("THEATER_CLUSTER_LAPSE_MS", "2000", 1);
	assert_int_equal(parse(&c, &e, NULL), ERR_OK);
	assert_int_equal(c.cluster_lapse_ms, 2000);
	assert_string_equal(c.nats, "nats://10.0.0.1:4222");
	assert_string_equal(c.node, "beta");
	config_release(&c);
	const char *bad[][3] = {{"--node", "has.dot", NULL}, {"--node", "a b", NULL},
				{"--node", "", NULL}, {"--nats-replicas", "0", NULL},
				{"--nats-replicas", "6", NULL}, {"--cluster-lapse-ms", "1999", NULL},
				{"--cluster-lapse-ms", "600001", NULL}, {"--cluster-lapse-ms", "4s", NULL}};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&e, 0, sizeof(e));
		assert_int_equal(parse(&c, &e, bad[i]), ERR_INVALID);
		assert_non_null(strstr(e.msg, bad[i][0]));
		config_release(&c);
	}
	assert_true(config_node_name_valid("node_1-A"));
	char long_name[66];
	memset(long_name, 'x', 65);
	long_name[65] = '\0';
	assert_false(config_node_name_valid(long_name));
	clear_env();
}

static void test_flags_and_env(void **state)
{
	(void)state;
	clear_env();
	char *dir = tu_mkdtemp("theater-config");
	setenv("THEATER_MAX_BODY", "2M", 1);
	setenv("THEATER_WORKERS", "7", 1);
	setenv("THEATER_HOME", dir, 1);
	const char *args[] = {"--listen", "[::1]:0", "--max-body", "64K", "--package-root", dir,
			      NULL};
	struct config c;
	struct err e = {0};
	assert_int_equal(parse(&c, &e, args), ERR_OK);
	assert_string_equal(c.host, "::1");
	assert_int_equal(c.port, 0);
	assert_int_equal(c.max_body, 64 << 10);     /* the flag wins */
	assert_int_equal(c.workers, 7);             /* the environment applies */
	assert_int_equal(c.nroots, 1);
	config_release(&c);
	tu_rmtree(dir);
	free(dir);
}

static void test_errors(void **state)
{
	(void)state;
	clear_env();
	setenv("THEATER_HOME", "/tmp/x", 1);
	struct config c;
	struct err e = {0};
	const char *bad1[] = {"--listen", "nonsense", NULL};
	assert_int_equal(parse(&c, &e, bad1), ERR_INVALID);
	assert_non_null(strstr(e.msg, "--listen"));
	config_release(&c);
	const char *bad2[] = {"--bogus", NULL};
	assert_int_equal(parse(&c, &e, bad2), ERR_INVALID);
	assert_non_null(strstr(e.msg, "--bogus"));
	config_release(&c);
	const char *bad3[] = {"--max-body", "12Q", NULL};
	assert_int_equal(parse(&c, &e, bad3), ERR_INVALID);
	config_release(&c);
	const char *bad4[] = {"--package-root", "/does/not/exist", NULL};
	assert_int_equal(parse(&c, &e, bad4), ERR_INVALID);
	config_release(&c);
	/* a public address needs a token */
	const char *pub[] = {"--listen", "0.0.0.0:8080", NULL};
	assert_int_equal(parse(&c, &e, pub), ERR_INVALID);
	assert_non_null(strstr(e.msg, "token"));
	config_release(&c);
	setenv("THEATER_TOKEN", "short", 1);
	assert_int_equal(parse(&c, &e, NULL), ERR_INVALID);
	config_release(&c);
	setenv("THEATER_TOKEN", "a-long-enough-token-0123", 1);
	assert_int_equal(parse(&c, &e, pub), ERR_OK);
	assert_string_equal(c.token, "a-long-enough-token-0123");
	config_release(&c);
	clear_env();
}

/* The outbound HTTP timeouts of actors: default, cap, and their order. */
static void test_http_timeouts(void **state)
{
	(void)state;
	clear_env();
	setenv("THEATER_HOME", "/tmp/theater-config-test", 1);
	struct config c;
	struct err e = {0};
	assert_int_equal(parse(&c, &e, NULL), ERR_OK);
	assert_int_equal(c.http_timeout_ms, 60000);
	assert_int_equal(c.http_timeout_max_ms, 600000);
	config_release(&c);
	const char *ok[] = {"--http-timeout-ms", "1500", "--http-timeout-max-ms", "3000", NULL};
	assert_int_equal(parse(&c, &e, ok), ERR_OK);
	assert_int_equal(c.http_timeout_ms, 1500);
	assert_int_equal(c.http_timeout_max_ms, 3000);
	config_release(&c);
	setenv("THEATER_HTTP_TIMEOUT_MS", "2000", 1);
	assert_int_equal(parse(&c, &e, NULL), ERR_OK);
	assert_int_equal(c.http_timeout_ms, 2000);
	config_release(&c);
	unsetenv("THEATER_HTTP_TIMEOUT_MS");
	const char *over[] = {"--http-timeout-ms", "5000", "--http-timeout-max-ms", "3000", NULL};
	assert_int_equal(parse(&c, &e, over), ERR_INVALID);
	assert_non_null(strstr(e.msg, "--http-timeout-max-ms"));
	config_release(&c);
	const char *zero[] = {"--http-timeout-ms", "0", NULL};
	assert_int_equal(parse(&c, &e, zero), ERR_INVALID);
	config_release(&c);
}

static void test_token_file(void **state)
{
	(void)state;
	clear_env();
	setenv("THEATER_HOME", "/tmp/x", 1);
	char *dir = tu_mkdtemp("theater-token");
	char *f = tu_fmt("%s/token", dir);
	tu_write_file(f, "file-token-0123456789\n", 22);
	const char *args[] = {"--token-file", f, "--listen", "0.0.0.0:1", NULL};
	struct config c;
	struct err e = {0};
	assert_int_equal(parse(&c, &e, args), ERR_OK);
	assert_string_equal(c.token, "file-token-0123456789");
	config_release(&c);
	const char *missing[] = {"--token-file", "/nope/token", NULL};
	assert_int_equal(parse(&c, &e, missing), ERR_INVALID);
	config_release(&c);
	assert_true(config_host_is_loopback("127.0.0.1"));
	assert_true(config_host_is_loopback("::1"));
	assert_false(config_host_is_loopback("0.0.0.0"));
	tu_rmtree(dir);
	free(f);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_spare_chains),
		cmocka_unit_test(test_min_free_disk),
		cmocka_unit_test(test_cluster_flags),
		cmocka_unit_test(test_flags_and_env),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_token_file),
		cmocka_unit_test(test_http_timeouts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
