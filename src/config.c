/* config.c - flags and environment of theater-server; see config.h. */
#include "src/config.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/home.h"
#include "src/util/log.h"
#include "src/util/units.h"

const char *config_usage(void)
{
	return
"usage: theater-server [options]\n"
"\n"
"A WebAssembly actor supervisor with a REST API. Options (environment in brackets):\n"
"  --listen ADDR:PORT        where to listen [THEATER_LISTEN] (127.0.0.1:8080;\n"
"                            port 0 picks a free port and prints it; IPv6 as [::1]:PORT)\n"
"  --home DIR                data folder, an absolute path [THEATER_HOME]\n"
"                            ($HOME/.theater)\n"
"  --package-root DIR        file references resolve only under these folders;\n"
"                            repeatable [THEATER_PACKAGE_ROOTS, ':'-separated]\n"
"                            ($THEATER_HOME/packages)\n"
"  --token-file FILE         bearer token file [THEATER_TOKEN_FILE]; or set\n"
"                            THEATER_TOKEN (16 characters or more); required for\n"
"                            a non-loopback listen address\n"
"  --max-body BYTES          request body limit (1M) [THEATER_MAX_BODY]\n"
"  --max-store-object BYTES  store upload limit (64M) [THEATER_MAX_STORE_OBJECT]\n"
"  --max-download BYTES      package download/file size cap (64M) [THEATER_MAX_DOWNLOAD]\n"
"  --connect-timeout-ms MS   fetch connect timeout (5000) [THEATER_CONNECT_TIMEOUT_MS]\n"
"  --fetch-timeout-ms MS     fetch total timeout (30000) [THEATER_FETCH_TIMEOUT_MS]\n"
"  --cache-bytes BYTES       static package cache bound (256M) [THEATER_CACHE_BYTES]\n"
"  --max-conns N             connection limit (1024) [THEATER_MAX_CONNS]\n"
"  --max-conns-per-ip N      per-client connection limit (256) [THEATER_MAX_CONNS_PER_IP]\n"
"  --conn-timeout S          idle connection timeout (60) [THEATER_CONN_TIMEOUT]\n"
"  --http-threads N          HTTP event threads (2) [THEATER_HTTP_THREADS]\n"
"  --workers N               worker threads (4) [THEATER_WORKERS]\n"
"  --actor-fuel N            instructions per actor call (100M) [THEATER_ACTOR_FUEL]\n"
"  --actor-memory BYTES      linear memory per actor (64M) [THEATER_ACTOR_MEMORY]\n"
"  --call-timeout-ms MS      running time per actor call, waits excluded (5000) [THEATER_CALL_TIMEOUT_MS]\n"
"  --mailbox N               queued messages per actor (1024) [THEATER_MAILBOX]\n"
"  --max-message BYTES       message/request size (1M) [THEATER_MAX_MESSAGE]\n"
"  --mailbox-bytes BYTES     queued message bytes per actor (64M) [THEATER_MAILBOX_BYTES]\n"
"  --max-actors N            live actors server-wide (10000) [THEATER_MAX_ACTORS]\n"
"  --max-children N          live children per parent (1000) [THEATER_MAX_CHILDREN]\n"
"  --call-events N           host-call events one actor call may write (100000)\n"
"                            [THEATER_CALL_EVENTS]\n"
"  --call-bytes BYTES        host-call chain bytes one actor call may write (64M)\n"
"                            [THEATER_CALL_BYTES]\n"
"  --recover all|none        bring live actors back on start (all) [THEATER_RECOVER]\n"
"  --shutdown-grace-ms MS    on SIGTERM, time running calls get to finish before\n"
"                            actors are suspended (10000) [THEATER_SHUTDOWN_GRACE_MS]\n"
"  --idle-release-ms MS      an actor that took no mail this long drops its instance\n"
"                            (its next mail brings it back); 0: never (60000)\n"
"                            [THEATER_IDLE_RELEASE_MS]\n"
"  --max-memory BYTES        resident memory from 90% of which spawns are refused\n"
"                            with 503 (the cgroup's limit, else the machine's)\n"
"                            [THEATER_MAX_MEMORY]\n"
"  --min-free-disk BYTES     disk space kept free for running actors' events: below\n"
"                            it spawns are refused with 503 (128M); 0: no check\n"
"                            [THEATER_MIN_FREE_DISK]\n"
"  --max-open-chains N       chain files open at once; others are reopened on use\n"
"                            (half the descriptor limit) [THEATER_MAX_OPEN_CHAINS]\n"
"  --verify-chains tail|full at start, verify chains past the index's last\n"
"                            checkpoint (tail) or whole (full) [THEATER_VERIFY_CHAINS]\n"
"  --spare-chains N          empty chain files made ahead of need, kept across\n"
"                            restarts; 0: spawns create their own (1024)\n"
"                            [THEATER_SPARE_CHAINS]\n"
"  --log-level LEVEL         debug, info, warn, error (info) [THEATER_LOG_LEVEL]\n"
"  --log-format FORMAT       text or json, one object a line (text) [THEATER_LOG_FORMAT]\n"
"  --http-allow-private      let actors' http-client reach loopback, private and\n"
"                            link-local addresses [THEATER_HTTP_ALLOW_PRIVATE=1]\n"
"  --fetch-allow-private     let package and manifest fetches reach loopback,\n"
"                            private and link-local addresses (tests, local\n"
"                            registries) [THEATER_FETCH_ALLOW_PRIVATE=1]\n"
"  --fetch-allow LIST        only these: ADDR[:PORT],... e.g. 127.0.0.1:5000\n"
"                            (numeric, after DNS) [THEATER_FETCH_ALLOW]\n"
"  --http-timeout-ms MS      default timeout of an actor's send-http (60000)\n"
"                            [THEATER_HTTP_TIMEOUT_MS]\n"
"  --http-timeout-max-ms MS  cap of a handler's timeout_ms (600000)\n"
"                            [THEATER_HTTP_TIMEOUT_MAX_MS]\n"
"  --nats URL[,URL...]       join a cluster over these NATS servers (JetStream on;\n"
"                            docs/cluster.md) [THEATER_NATS]; without it: one node\n"
"  --node NAME               this node's name in the cluster, [A-Za-z0-9_-]{1,64}\n"
"                            [THEATER_NODE] (the host name)\n"
"  --nats-replicas N         replicas of the cluster's streams and buckets (3)\n"
"                            [THEATER_NATS_REPLICAS]\n"
"  --cluster-lapse-ms MS     how long this node may miss heartbeats before the\n"
"                            others take its actors over (4000; 2000-600000)\n"
"                            [THEATER_CLUSTER_LAPSE_MS]\n"
"  --advertise-url URL       how clients reach this node, shown in GET /cluster\n"
"                            and used to redirect event streams of its actors\n"
"                            [THEATER_ADVERTISE_URL] (http://<listen address>)\n"
"  --health-check            GET /health on the listen address; exit 0 if healthy\n"
"  --version, --help\n"
"Sizes accept K, M, G and T suffixes (powers of 1024), up to 1024T.\n";
}

static enum err_code parse_size(const char *flag, const char *v, size_t *out, struct err *err)
{
	uint64_t x;
	if (units_parse_size(v, 1ull << 50, &x) != 0)
		return err_set(err, ERR_INVALID, "%s: '%s' is not a size (bytes, or a number with "
			       "K, M, G or T: powers of 1024; at most 1024T)", flag, v);
	*out = (size_t)x;
	return ERR_OK;
}

static enum err_code parse_uint(const char *flag, const char *v, unsigned long max,
				unsigned long *out, struct err *err)
{
	char *end;
	if (!isdigit((unsigned char)*v))
		return err_set(err, ERR_INVALID, "%s: '%s' is not a number", flag, v);
	unsigned long x = strtoul(v, &end, 10);
	if (*end || x > max)
		return err_set(err, ERR_INVALID, "%s: '%s' must be a number up to %lu", flag, v,
			       max);
	*out = x;
	return ERR_OK;
}

static enum err_code parse_listen(struct config *cfg, const char *v, struct err *err)
{
	const char *colon = strrchr(v, ':');
	if (!colon || colon == v)
		return err_set(err, ERR_INVALID, "--listen: '%s' is not ADDR:PORT", v);
	unsigned long port;
	if (parse_uint("--listen", colon + 1, 65535, &port, err))
		return ERR_INVALID;
	size_t n = (size_t)(colon - v);
	if (v[0] == '[') {
		if (n < 3 || v[n - 1] != ']')
			return err_set(err, ERR_INVALID, "--listen: '%s' is not [ADDR]:PORT", v);
		v++;
		n -= 2;
	}
	free(cfg->host);
	cfg->host = strndup(v, n);
	if (!cfg->host)
		return err_set(err, ERR_NOMEM, "out of memory");
	if (strcmp(cfg->host, "localhost") == 0) {
		free(cfg->host);
		cfg->host = strdup("127.0.0.1");
	}
	cfg->port = (uint16_t)port;
	return cfg->host ? ERR_OK : ERR_NOMEM;
}

static enum err_code read_token_file(struct config *cfg, const char *path, struct err *err)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return err_errno(err, ERR_INVALID, errno, "cannot read token file '%s'", path);
	char line[512] = "";
	char *ok = fgets(line, sizeof(line), f);
	fclose(f);
	line[strcspn(line, "\r\n")] = '\0';
	if (!ok || strlen(line) < 16)
		return err_set(err, ERR_INVALID, "token file '%s' must hold a token of at least "
			       "16 characters on its first line", path);
	free(cfg->token);
	cfg->token = strdup(line);
	return ERR_OK;
}

static enum err_code add_root(struct config *cfg, const char *dir, struct err *err)
{
	if (cfg->nroots == CONFIG_MAX_ROOTS)
		return err_set(err, ERR_INVALID, "--package-root: at most %d roots",
			       CONFIG_MAX_ROOTS);
	char *real = realpath(dir, NULL);
	if (!real)
		return err_errno(err, ERR_INVALID, errno, "--package-root: cannot use '%s'", dir);
	cfg->roots[cfg->nroots++] = real;
	return ERR_OK;
}

static int log_level_of(const char *v)
{
	static const char *const names[] = {"debug", "info", "warn", "error"};
	for (int i = 0; i < 4; i++)
		if (strcmp(v, names[i]) == 0)
			return i;
	return -1;
}

struct opt {
	const char *flag;
	const char *env;
	int kind;     /* 0 size, 1 uint, 2 listen, 3 home, 4 root, 5 token file, 6 log level,
		       * 7 recover, 8 fetch allow list, 9 log format, 10 verify chains,
		       * 11 a string (malloc'd) */
	size_t off;
	unsigned long max;
};

#define OFF(f) offsetof(struct config, f)
static const struct opt opts[] = {
	{"--listen", "THEATER_LISTEN", 2, 0, 0},
	{"--home", "THEATER_HOME", 3, 0, 0},
	{"--package-root", "THEATER_PACKAGE_ROOTS", 4, 0, 0},
	{"--token-file", "THEATER_TOKEN_FILE", 5, 0, 0},
	{"--max-body", "THEATER_MAX_BODY", 0, OFF(max_body), 0},
	{"--max-store-object", "THEATER_MAX_STORE_OBJECT", 0, OFF(max_store_object), 0},
	{"--max-download", "THEATER_MAX_DOWNLOAD", 0, OFF(max_download), 0},
	{"--cache-bytes", "THEATER_CACHE_BYTES", 0, OFF(cache_bytes), 0},
	{"--connect-timeout-ms", "THEATER_CONNECT_TIMEOUT_MS", 1, OFF(connect_timeout_ms), 600000},
	{"--fetch-timeout-ms", "THEATER_FETCH_TIMEOUT_MS", 1, OFF(fetch_timeout_ms), 3600000},
	{"--max-conns", "THEATER_MAX_CONNS", 1, OFF(max_conns), 100000},
	{"--max-conns-per-ip", "THEATER_MAX_CONNS_PER_IP", 1, OFF(max_conns_per_ip), 100000},
	{"--conn-timeout", "THEATER_CONN_TIMEOUT", 1, OFF(conn_timeout_s), 86400},
	{"--http-threads", "THEATER_HTTP_THREADS", 1, OFF(http_threads), 64},
	{"--workers", "THEATER_WORKERS", 1, OFF(workers), 256},
	{"--actor-fuel", "THEATER_ACTOR_FUEL", 0, OFF(actor_fuel), 0},
	{"--actor-memory", "THEATER_ACTOR_MEMORY", 0, OFF(actor_memory), 0},
	{"--call-timeout-ms", "THEATER_CALL_TIMEOUT_MS", 1, OFF(call_timeout_ms), 3600000},
	{"--mailbox", "THEATER_MAILBOX", 1, OFF(mailbox), 1000000},
	{"--max-message", "THEATER_MAX_MESSAGE", 0, OFF(max_message), 0},
	{"--log-level", "THEATER_LOG_LEVEL", 6, 0, 0},
	{"--fetch-allow", "THEATER_FETCH_ALLOW", 8, 0, 0},
	{"--mailbox-bytes", "THEATER_MAILBOX_BYTES", 0, OFF(mailbox_bytes), 0},
	{"--max-actors", "THEATER_MAX_ACTORS", 1, OFF(max_actors), 10000000},
	{"--max-children", "THEATER_MAX_CHILDREN", 1, OFF(max_children), 10000000},
	{"--call-events", "THEATER_CALL_EVENTS", 0, OFF(call_events), 0},
	{"--call-bytes", "THEATER_CALL_BYTES", 0, OFF(call_bytes), 0},
	{"--http-timeout-ms", "THEATER_HTTP_TIMEOUT_MS", 1, OFF(http_timeout_ms), 86400000},
	{"--http-timeout-max-ms", "THEATER_HTTP_TIMEOUT_MAX_MS", 1, OFF(http_timeout_max_ms),
	 86400000},
	{"--recover", "THEATER_RECOVER", 7, 0, 0},
	{"--shutdown-grace-ms", "THEATER_SHUTDOWN_GRACE_MS", 1, OFF(shutdown_grace_ms), 600000},
	{"--idle-release-ms", "THEATER_IDLE_RELEASE_MS", 1, OFF(idle_release_ms), 86400000},
	{"--log-format", "THEATER_LOG_FORMAT", 9, 0, 0},
	{"--max-memory", "THEATER_MAX_MEMORY", 0, OFF(max_memory), 0},
	{"--min-free-disk", "THEATER_MIN_FREE_DISK", 0, OFF(min_free_disk), 0},
	{"--max-open-chains", "THEATER_MAX_OPEN_CHAINS", 1, OFF(max_open_chains), 10000000},
	{"--verify-chains", "THEATER_VERIFY_CHAINS", 10, 0, 0},
	{"--spare-chains", "THEATER_SPARE_CHAINS", 1, OFF(spare_chains), 1000000},
	{"--nats", "THEATER_NATS", 11, OFF(nats), 0},
	{"--node", "THEATER_NODE", 11, OFF(node), 0},
	{"--nats-replicas", "THEATER_NATS_REPLICAS", 1, OFF(nats_replicas), 5},
	{"--cluster-lapse-ms", "THEATER_CLUSTER_LAPSE_MS", 1, OFF(cluster_lapse_ms), 600000},
	{"--advertise-url", "THEATER_ADVERTISE_URL", 11, OFF(advertise_url), 0},
};

static enum err_code set_uint_field(struct config *cfg, const struct opt *o, unsigned long v)
{
	char *p = (char *)cfg + o->off;
	if (o->off == OFF(connect_timeout_ms) || o->off == OFF(fetch_timeout_ms))
		*(long *)(void *)p = (long)v;
	else
		*(unsigned *)(void *)p = (unsigned)v;
	return ERR_OK;
}

static enum err_code apply(struct config *cfg, const struct opt *o, const char *v,
			   struct err *err)
{
	unsigned long u;
	int lvl;
	switch (o->kind) {
	case 0: return parse_size(o->flag, v, (size_t *)(void *)((char *)cfg + o->off), err);
	case 1:
		if (parse_uint(o->flag, v, o->max, &u, err))
			return ERR_INVALID;
		return set_uint_field(cfg, o, u);
	case 2: return parse_listen(cfg, v, err);
	case 3:
		free(cfg->home);
		cfg->home = strdup(v);
		return ERR_OK;
	case 4: return add_root(cfg, v, err);
	case 5: return read_token_file(cfg, v, err);
	case 8:
		free(cfg->fetch_allow);
		cfg->fetch_allow = strdup(v);
		return ERR_OK;
	case 7:
		if (strcmp(v, "all") != 0 && strcmp(v, "none") != 0)
			return err_set(err, ERR_INVALID, "%s: '%s' is not all or none", o->flag, v);
		cfg->recover_none = strcmp(v, "none") == 0;
		return ERR_OK;
	case 10:
		if (strcmp(v, "tail") && strcmp(v, "full"))
			return err_set(err, ERR_INVALID, "%s: '%s' is not tail or full", o->flag, v);
		cfg->verify_full = strcmp(v, "full") == 0;
		return ERR_OK;
	case 11: {
		char **field = (char **)(void *)((char *)cfg + o->off);
		free(*field);
		*field = strdup(v);
		return *field ? ERR_OK : ERR_NOMEM;
	}
	case 9:
		if (strcmp(v, "text") && strcmp(v, "json"))
			return err_set(err, ERR_INVALID, "%s: '%s' is not text or json", o->flag, v);
		cfg->log_format = strcmp(v, "json") == 0 ? LOG_JSON : LOG_TEXT;
		return ERR_OK;
	default:
		if ((lvl = log_level_of(v)) < 0)
			return err_set(err, ERR_INVALID, "%s: '%s' is not debug, info, warn or "
				       "error", o->flag, v);
		cfg->log_level = lvl;
		return ERR_OK;
	}
}

static enum err_code from_env(struct config *cfg, struct err *err)
{
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		const char *v = getenv(opts[i].env);
		if (!v || !*v)
			continue;
		if (opts[i].kind == 4) {
			char *copy = strdup(v), *save = NULL;
			for (char *t = strtok_r(copy, ":", &save); t; t = strtok_r(NULL, ":", &save))
				if (add_root(cfg, t, err)) {
					free(copy);
					return ERR_INVALID;
				}
			free(copy);
		} else if (apply(cfg, &opts[i], v, err)) {
			err_prefix(err, "environment %s", opts[i].env);
			return ERR_INVALID;
		}
	}
	const char *priv = getenv("THEATER_HTTP_ALLOW_PRIVATE");
	if (priv && strcmp(priv, "1") == 0)
		cfg->http_allow_private = 1;
	priv = getenv("THEATER_FETCH_ALLOW_PRIVATE");
	if (priv && strcmp(priv, "1") == 0)
		cfg->fetch_allow_private = 1;
	const char *tok = getenv("THEATER_TOKEN");
	if (tok && *tok) {
		free(cfg->token);
		cfg->token = strdup(tok);
	}
	return ERR_OK;
}

static void defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->host = strdup("127.0.0.1");
	cfg->port = 8080;
	cfg->spare_chains = 1024;
	cfg->max_body = 1 << 20;
	cfg->max_store_object = 64u << 20;
	cfg->max_download = 64u << 20;
	cfg->connect_timeout_ms = 5000;
	cfg->fetch_timeout_ms = 30000;
	cfg->cache_bytes = 256u << 20;
	cfg->max_conns = 1024;
	cfg->max_conns_per_ip = 256;
	cfg->conn_timeout_s = 60;
	cfg->http_threads = 2;
	cfg->workers = 4;
	cfg->actor_fuel = 100000000;
	cfg->actor_memory = 64u << 20;
	cfg->call_timeout_ms = 5000;
	cfg->mailbox = 1024;
	cfg->max_message = 1u << 20;
	cfg->log_level = LOG_INFO;
	cfg->http_timeout_ms = 60000;
	cfg->http_timeout_max_ms = 600000;
	cfg->shutdown_grace_ms = 10000;
	cfg->idle_release_ms = 60000;
	cfg->min_free_disk = 128u << 20;
	cfg->nats_replicas = 3;
	cfg->cluster_lapse_ms = 4000;
}

static enum err_code from_flags(struct config *cfg, int argc, char **argv, int *roots_given,
				struct err *err)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			cfg->show_help = 1;
			continue;
		}
		if (!strcmp(a, "--version")) {
			cfg->show_version = 1;
			continue;
		}
		if (!strcmp(a, "--health-check")) {
			cfg->health_check = 1;
			continue;
		}
		if (!strcmp(a, "--http-allow-private")) {
			cfg->http_allow_private = 1;
			continue;
		}
		if (!strcmp(a, "--fetch-allow-private")) {
			cfg->fetch_allow_private = 1;
			continue;
		}
		const struct opt *o = NULL;
		for (size_t k = 0; k < sizeof(opts) / sizeof(opts[0]); k++)
			if (!strcmp(a, opts[k].flag))
				o = &opts[k];
		if (!o)
			return err_set(err, ERR_INVALID, "unknown option '%s' (see --help)", a);
		if (i + 1 >= argc)
			return err_set(err, ERR_INVALID, "%s needs a value", a);
		if (o->kind == 4 && !*roots_given) {
			for (size_t r = 0; r < cfg->nroots; r++)   /* flags replace the env list */
				free(cfg->roots[r]);
			cfg->nroots = 0;
			*roots_given = 1;
		}
		if (apply(cfg, o, argv[++i], err))
			return ERR_INVALID;
	}
	return ERR_OK;
}

enum err_code config_parse(struct config *cfg, int argc, char **argv, struct err *err)
{
	defaults(cfg);
	int roots_given = 0;
	if (from_env(cfg, err) || from_flags(cfg, argc, argv, &roots_given, err))
		return ERR_INVALID;
	if (!cfg->home && !(cfg->home = home_resolve()))
		return err_set(err, ERR_INVALID, "cannot find a home folder: set THEATER_HOME");
	if (!cfg->token && !config_host_is_loopback(cfg->host) && !cfg->health_check &&
	    !cfg->show_help && !cfg->show_version)
		return err_set(err, ERR_INVALID, "listening on '%s' (not loopback) requires a "
			       "bearer token: set THEATER_TOKEN or --token-file FILE", cfg->host);
	if (cfg->http_timeout_ms == 0 || cfg->http_timeout_max_ms == 0 ||
	    cfg->http_timeout_ms > cfg->http_timeout_max_ms)
		return err_set(err, ERR_INVALID, "--http-timeout-ms (%u) must be at least 1 and at "
			       "most --http-timeout-max-ms (%u)", cfg->http_timeout_ms,
			       cfg->http_timeout_max_ms);
	if (cfg->node && !config_node_name_valid(cfg->node))
		return err_set(err, ERR_INVALID, "--node: '%.80s' is not a node name (1 to 64 of "
			       "A-Z a-z 0-9 _ -)", cfg->node);
	if (cfg->nats_replicas == 0)
		return err_set(err, ERR_INVALID, "--nats-replicas must be from 1 to 5");
	if (cfg->cluster_lapse_ms < 2000)
		return err_set(err, ERR_INVALID, "--cluster-lapse-ms must be from 2000 to 600000 "
			       "(at least two heartbeats, which are a second apart)");
	if (cfg->token && strlen(cfg->token) < 16)
		return err_set(err, ERR_INVALID, "the bearer token must have at least 16 "
			       "characters");
	return ERR_OK;
}

void config_release(struct config *cfg)
{
	free(cfg->host);
	free(cfg->home);
	free(cfg->token);
	free(cfg->fetch_allow);
	free(cfg->nats);
	free(cfg->node);
	free(cfg->advertise_url);
	for (size_t i = 0; i < cfg->nroots; i++)
		free(cfg->roots[i]);
	memset(cfg, 0, sizeof(*cfg));
}

int config_host_is_loopback(const char *host)
{
	return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 ||
	       strcmp(host, "localhost") == 0;
}

int config_node_name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && name[i] != '_' && name[i] != '-')
			return 0;
	return 1;
}
