/* main.c - theater-server: the one place that knows every layer. It reads the
 * configuration, starts the layers in order (storage, supervisor, api, http),
 * waits for SIGINT/SIGTERM, and stops them in reverse:
 *   api draining -> supervisor shutdown (jobs finish, live actors stopped and
 *   recorded) -> streams closed -> http stopped -> everything freed.
 * Signals are blocked in every thread and taken with sigwait here, so no
 * handler and no global flag are needed. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "api/api.h"
#include "cluster/cluster.h"
#include "server/http.h"
#include "src/chain.h"
#include "src/config.h"
#include "src/db.h"
#include "src/fetch.h"
#include "src/headroom.h"
#include "src/home.h"
#include "src/resolve.h"
#include "src/secrets.h"
#include "src/store.h"
#include "src/util/log.h"
#include "supervisor/supervisor.h"

struct app {
	struct config cfg;
	char *chains_dir, *store_dir, *db_path, *default_root;
	struct db *db;
	struct store *store;
	struct resolver *resolver;
	struct secrets *secrets;
	struct headroom *headroom;
	struct supervisor *sup;
	struct api *api;
	struct http_server *http;
	struct cluster *cluster;      /* --nats, else NULL */
	int home_lock;                /* flock()ed <home>/lock, -1 when not held */
};

static char *join(const char *a, const char *b)
{
	char *s = NULL;
	return asprintf(&s, "%s/%s", a, b) < 0 ? NULL : s;
}

static void raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* Descriptors are shared by chain files (the chain cache's cap), connections and a
 * reserve (SQLite, the store, fetches, the lock, stdio): connections get what is
 * left, so accept() never fails for want of one (issue 16: libmicrohttpd then
 * spins and logs millions of lines). */
#define FD_RESERVE_OTHER 64

static unsigned conns_within_fds(unsigned want)
{
	uint64_t limit = headroom_fd_limit(), chains = chain_fd_cap();
	uint64_t left = limit > chains + FD_RESERVE_OTHER + 16 ? limit - chains - FD_RESERVE_OTHER
							      : 16;
	if (want <= left)
		return want;
	log_warn("main", "--max-conns %u lowered to %llu: the descriptor limit is %llu and chain "
		 "files may hold %llu", want, (unsigned long long)left, (unsigned long long)limit,
		 (unsigned long long)chains);
	return (unsigned)left;
}

static enum err_code open_storage(struct app *app, struct err *err)
{
	struct config *c = &app->cfg;
	enum err_code rc = home_prepare(c->home, err);
	if (!rc)
		rc = home_lock(c->home, &app->home_lock, err);
	if (rc)
		return rc;
	app->chains_dir = join(c->home, "chains");
	app->store_dir = join(c->home, "store");
	app->db_path = join(c->home, "theater.db");
	if (!app->chains_dir || !app->store_dir || !app->db_path)
		return err_set(err, ERR_NOMEM, "out of memory");
	if (c->nroots == 0) {
		char *dir = join(c->home, "packages");
		c->roots[0] = dir ? realpath(dir, NULL) : NULL;
		free(dir);
		if (!c->roots[0])
			return err_errno(err, ERR_IO, errno, "cannot use '%s/packages'", c->home);
		c->nroots = 1;
	}
	char *secrets_dir = join(c->home, "secrets");
	if (!secrets_dir)
		return err_set(err, ERR_NOMEM, "out of memory");
	rc = secrets_open(secrets_dir, &app->secrets, err);
	free(secrets_dir);
	if (rc)
		return rc;
	if ((rc = db_open(app->db_path, &app->db, err))) {
		/* The index is rebuilt from the chains when it is missing: say so. */
		if (rc != ERR_NOMEM && access(app->db_path, F_OK) == 0) {
			size_t n = strlen(err->msg);
			snprintf(err->msg + n, sizeof(err->msg) - n, "; it is only an index: move "
				 "'%s' (and any -wal/-shm beside it) away and start again to "
				 "rebuild it from the chains", app->db_path);
		}
		return rc;
	}
	if ((rc = store_open(app->store_dir, &app->store, err)))
		return rc;
	struct resolver_config rcfg = {
		.package_roots = (const char *const *)c->roots, .nroots = c->nroots,
		.store = app->store,
		.fetch = {.max_bytes = c->max_download, .connect_timeout_ms = c->connect_timeout_ms,
			  .total_timeout_ms = c->fetch_timeout_ms, .max_redirects = 5},
		.max_package_bytes = c->max_download, .cache_max_bytes = c->cache_bytes,
		.allow_private = c->fetch_allow_private, .fetch_allow = c->fetch_allow,
	};
	return resolver_new(&rcfg, &app->resolver, err);
}

/* SIGINT or SIGTERM waiting for the process (blocked in every thread until
 * the start is over and main waits for them), or 0. The cluster's start-up
 * retries (NATS unreachable, JetStream electing: up to 30 s) ask it too, and end
 * at once when a stop was asked. */
static int stop_signal_pending(void)
{
	sigset_t p;
	if (sigpending(&p) != 0)
		return 0;
	return sigismember(&p, SIGTERM) == 1 ? SIGTERM : sigismember(&p, SIGINT) == 1 ? SIGINT : 0;
}

/* Cluster mode (docs/cluster.md): after the HTTP server, whose port the other
 * nodes' forwarded requests are replayed against over loopback. */
static enum err_code join_cluster(struct app *app, struct err *err)
{
	struct config *c = &app->cfg;
	char url[300], host[256];
	const char *h = c->host;
	if (!strcmp(h, "0.0.0.0") || !strcmp(h, "::") || !strcmp(h, "localhost"))
		h = strcmp(h, "::") == 0 ? "::1" : "127.0.0.1";
	snprintf(host, sizeof(host), strchr(h, ':') ? "[%s]" : "%s", h);
	snprintf(url, sizeof(url), "http://%s:%u", host, http_server_port(app->http));
	char node[256] = "";
	if (c->node)
		snprintf(node, sizeof(node), "%s", c->node);
	else if (gethostname(node, sizeof(node) - 1) || !config_node_name_valid(node))
		return err_set(err, ERR_INVALID, "--nats needs --node NAME (the host name '%s' "
			       "is not a node name)", node);
	/* How clients reach us: --advertise-url, else the listen address (the
	 * host name when listening on every address). */
	char adv[512], me[256] = "";
	if (c->advertise_url)
		snprintf(adv, sizeof(adv), "%s", c->advertise_url);
	else if ((!strcmp(c->host, "0.0.0.0") || !strcmp(c->host, "::")) &&
		 !gethostname(me, sizeof(me) - 1))
		snprintf(adv, sizeof(adv), "http://%s:%u", me, http_server_port(app->http));
	else
		snprintf(adv, sizeof(adv), "%s", url);
	struct cluster_config cc = {
		.urls = c->nats, .node = node, .http_url = url, .token = c->token,
		.replicas = c->nats_replicas, .lapse_ms = c->cluster_lapse_ms,
		.sup = app->sup, .advertise_url = adv,
		.interrupted = stop_signal_pending,
	};
	enum err_code rc = cluster_start(&cc, &app->cluster, err);
	if (rc)
		return rc;
	api_set_cluster(app->api, app->cluster);
	return ERR_OK;
}

/* A home on ext4 without a journal works, but a file creation there costs 10 to
 * 30 times as much for minutes after deletes (home.h), and every spawn's
 * chain is a new file: said once at start. THEATER_TEST_SYSFS (tests only): the
 * sysfs tree to read instead of /sys. */
static void note_home_fs(const char *home)
{
	const char *sysfs = getenv("THEATER_TEST_SYSFS");
	if (home_fs_kind(home, sysfs && sysfs[0] ? sysfs : "/sys") != HOME_FS_EXT4_NOJOURNAL)
		return;
	log_warn("main", "'%s' is on ext4 without a journal: for minutes after files are "
		 "deleted on that file system, creating one (each actor's chain is a file) costs "
		 "10 to 30 times as much, and a crash leaves it to fsck; a journaled ext4 or XFS "
		 "has neither cost (docs/operations.md)", home);
}

static enum err_code start(struct app *app, struct err *err)
{
	struct config *c = &app->cfg;
	enum err_code rc = open_storage(app, err);
	if (rc)
		return rc;
	struct headroom_config hr = {.max_memory = c->max_memory, .disk_path = c->home,
				     .disk_reserve = c->min_free_disk};
	if ((rc = headroom_new(&hr, &app->headroom, err)))
		return rc;
	struct supervisor_config scfg = {
		.chains_dir = app->chains_dir, .db = app->db, .store = app->store,
		.resolver = app->resolver, .workers = c->workers, .fuel = c->actor_fuel,
		.memory_bytes = c->actor_memory, .call_timeout_ms = c->call_timeout_ms,
		.mailbox = c->mailbox, .max_message = c->max_message,
		.http_allow_private = c->http_allow_private, .secrets = app->secrets,
		.http_timeout_ms = c->http_timeout_ms, .http_timeout_max_ms = c->http_timeout_max_ms,
		.mailbox_bytes = c->mailbox_bytes, .max_actors = c->max_actors,
		.max_children = c->max_children, .call_events = c->call_events,
		.call_bytes = c->call_bytes,
		.recover_none = c->recover_none, .shutdown_grace_ms = c->shutdown_grace_ms,
		.idle_release_ms = c->idle_release_ms,
		.exits_after_shutdown = 1,
		.headroom = app->headroom, .verify_full = c->verify_full,
		.spare_chains = c->spare_chains,
	};
	if ((rc = supervisor_new(&scfg, &app->sup, err)))
		return rc;
	char listen[300];
	snprintf(listen, sizeof(listen), "%s:%u", c->host, c->port);
	struct api_config acfg = {
		.sup = app->sup, .store = app->store, .resolver = app->resolver,
		.secrets = app->secrets,
		.token = c->token, .max_body = c->max_body,
		.max_store_object = c->max_store_object, .listen = listen,
		.max_message = c->max_message,
	};
	if ((rc = api_new(&acfg, &app->api, err)))
		return rc;
	struct http_handler h;
	api_handler(app->api, &h);
	struct http_config hcfg = {
		.host = c->host, .port = c->port, .threads = c->http_threads,
		.conn_timeout_s = c->conn_timeout_s, .max_conns = conns_within_fds(c->max_conns),
		.max_conns_per_ip = c->max_conns_per_ip,
	};
	if ((rc = http_server_start(&hcfg, &h, &app->http, err)))
		return rc;
	return c->nats ? join_cluster(app, err) : ERR_OK;
}

static void stop(struct app *app)
{
	if (app->api)
		api_set_draining(app->api, 1);
	cluster_stop(app->cluster);
	int64_t t0 = db_now_ms();
	supervisor_shutdown(app->sup);
	int64_t t1 = db_now_ms();
	if (app->api)
		api_close_streams(app->api);
	http_server_stop(app->http);
	if (app->api)
		api_set_cluster(app->api, NULL);
	cluster_free(app->cluster);
	supervisor_free(app->sup);
	int64_t t2 = db_now_ms();
	api_free(app->api);
	resolver_free(app->resolver);
	store_close(app->store);
	secrets_close(app->secrets);
	db_close(app->db);
	if (app->sup)
		log_info("main", "stop: supervisor shut down in %lld ms, freed in %lld ms, the "
			 "rest (index closed) in %lld ms", (long long)(t1 - t0),
			 (long long)(t2 - t1), (long long)(db_now_ms() - t2));
	headroom_free(app->headroom);
	free(app->chains_dir);
	free(app->store_dir);
	free(app->db_path);
	config_release(&app->cfg);
	if (app->home_lock >= 0)
		close(app->home_lock);
	app->home_lock = -1;
}

static int health_check(const struct config *c)
{
	char url[300];
	const char *host = strcmp(c->host, "0.0.0.0") == 0 ? "127.0.0.1"
			 : strcmp(c->host, "::") == 0 ? "[::1]" : c->host;
	int v6 = strchr(host, ':') && host[0] != '[';
	snprintf(url, sizeof(url), "http://%s%s%s:%u/health", v6 ? "[" : "", host, v6 ? "]" : "",
		 c->port);
	struct fetch_limits lim = {.max_bytes = 4096, .connect_timeout_ms = 2000,
				   .total_timeout_ms = 5000, .max_redirects = 0};
	uint8_t *data = NULL;
	size_t len = 0;
	struct err e = {0};
	if (fetch_url(url, &lim, &data, &len, &e)) {
		fprintf(stderr, "theater-server: unhealthy: %s\n", e.msg);
		return 1;
	}
	free(data);
	printf("healthy: %s\n", url);
	return 0;
}

int main(int argc, char **argv)
{
	struct app app = {.home_lock = -1};
	struct err e = {0};
	if (config_parse(&app.cfg, argc, argv, &e)) {
		fprintf(stderr, "theater-server: %s\n", e.msg);
		config_release(&app.cfg);
		return 2;
	}
	if (app.cfg.show_help || app.cfg.show_version) {
		fputs(app.cfg.show_help ? config_usage() : "theater-server " THEATER_VERSION "\n",
		      stdout);
		config_release(&app.cfg);
		return 0;
	}
	if (app.cfg.health_check) {
		int rc = health_check(&app.cfg);
		config_release(&app.cfg);
		return rc;
	}
	log_set_level((enum log_level)app.cfg.log_level);
	log_set_format((enum log_format)app.cfg.log_format);
	raise_fd_limit();
	chain_fd_set_cap(app.cfg.max_open_chains);
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (start(&app, &e)) {
		int sig = stop_signal_pending();
		if (sig) { /* asked to stop while starting: a stop, not a failure */
			log_info("main", "%s during start-up: stopping (the start ended: %s)",
				 sig == SIGINT ? "SIGINT" : "SIGTERM", e.msg);
			stop(&app);
			log_info("main", "stopped cleanly");
			return 0;
		}
		log_error("main", "cannot start: %s", e.msg);
		stop(&app);
		return 1;
	}
	log_info("main", "data in '%s' (package roots: %s%s)", app.cfg.home, app.cfg.roots[0],
		 app.cfg.nroots > 1 ? ", ..." : "");
	note_home_fs(app.cfg.home);
	log_info("main", "listening on http://%s%s%s:%u%s", strchr(app.cfg.host, ':') ? "[" : "",
		 app.cfg.host, strchr(app.cfg.host, ':') ? "]" : "", http_server_port(app.http),
		 app.cfg.token ? " (bearer token required)" : "");
	printf("theater-server listening on http://%s%s%s:%u\n", strchr(app.cfg.host, ':') ? "[" : "",
	       app.cfg.host, strchr(app.cfg.host, ':') ? "]" : "", http_server_port(app.http));
	fflush(stdout);
	int sig = 0;
	sigwait(&sigs, &sig);
	log_info("main", "%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
	stop(&app);
	log_info("main", "stopped cleanly");
	return 0;
}
