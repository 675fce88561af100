/* nats_cluster.c - a three-server NATS JetStream cluster for the tests; see
 * nats_cluster.h. */
#include "tests/support/nats_cluster.h"

#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/support/server_proc.h"
#include "tests/support/testutil.h"

static void nap_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

unsigned short nats_free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t n = sizeof(a);
	unsigned short port = 0;
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &n) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static int have_nats_server(void)
{
	return system("command -v nats-server >/dev/null 2>&1") == 0;
}

/* Installs nats-server when it is missing (CI on a fresh Debian 12). */
static int ensure_nats_server(void)
{
	if (have_nats_server())
		return 0;
	fprintf(stderr, "nats_cluster: nats-server is missing; installing it with apt-get\n");
	int rc = system("(apt-get -o DPkg::Lock::Timeout=600 install -y -qq nats-server || "
			"sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq nats-server) "
			">&2");
	if (rc != 0 || !have_nats_server()) {
		fprintf(stderr, "nats_cluster: FAILED to install nats-server (apt-get install "
			"nats-server); cluster tests need it\n");
		return -1;
	}
	return 0;
}

static int write_config(struct nats_cluster *nc, int i)
{
	if (nc->single) {              /* one server: no cluster block */
		char *conf = tu_fmt("server_name: single\nlisten: 127.0.0.1:%u\n"
				    "http: 127.0.0.1:%u\njetstream {\n  store_dir: \"%s/n1\"\n"
				    "  max_memory_store: 64MB\n  max_file_store: 1GB\n}\n",
				    nc->port[0], nc->monitor[0], nc->dir);
		char *path = tu_fmt("%s/n1.conf", nc->dir);
		int rc = tu_write_file(path, conf, strlen(conf));
		free(path);
		free(conf);
		return rc;
	}
	char routes[256] = "";
	for (int k = 0; k < NATS_SERVERS; k++) {
		if (k == i)
			continue;
		size_t n = strlen(routes);
		snprintf(routes + n, sizeof(routes) - n, "%snats-route://127.0.0.1:%u",
			 *routes ? ", " : "", nc->route[k]);
	}
	char *conf = tu_fmt("server_name: n%d\nlisten: 127.0.0.1:%u\nhttp: 127.0.0.1:%u\n"
			    "max_payload: 8MB\n"
			    "jetstream {\n  store_dir: \"%s/n%d\"\n  max_memory_store: 64MB\n"
			    "  max_file_store: 1GB\n}\n"
			    "cluster {\n  name: theater-test\n  listen: 127.0.0.1:%u\n"
			    "  routes: [%s]\n}\n",
			    i + 1, nc->port[i], nc->monitor[i], nc->dir, i + 1, nc->route[i],
			    routes);
	char *path = tu_fmt("%s/n%d.conf", nc->dir, i + 1);
	int rc = tu_write_file(path, conf, strlen(conf));
	free(path);
	free(conf);
	return rc;
}

static int spawn_server(struct nats_cluster *nc, int i)
{
	char *conf = tu_fmt("%s/n%d.conf", nc->dir, i + 1);
	char *log = tu_fmt("%s/n%d.log", nc->dir, i + 1);
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		FILE *f = freopen(log, "a", stderr);
		(void)f;
		dup2(2, 1);
		execlp("nats-server", "nats-server", "-c", conf, (char *)NULL);
		_exit(127);
	}
	free(conf);
	free(log);
	if (pid < 0)
		return -1;
	nc->pid[i] = pid;
	return 0;
}

/* JetStream is usable once the monitoring endpoint names a meta leader (a single
 * server: once its health check counts JetStream in). */
static int wait_jetstream(struct nats_cluster *nc, int i, int timeout_ms)
{
	char *url = nc->single ? tu_fmt("http://127.0.0.1:%u/healthz?js-enabled-only=true",
					nc->monitor[i])
			       : tu_fmt("http://127.0.0.1:%u/jsz", nc->monitor[i]);
	int ok = 0;
	for (int waited = 0; waited < timeout_ms && !ok; waited += 200) {
		struct http_result r = {0};
		if (http_do("GET", url, NULL, 0, NULL, &r) == 0 && r.status == 200 && r.body &&
		    strstr(r.body, nc->single ? "\"ok\"" : "\"leader\""))
			ok = 1;
		http_result_release(&r);
		if (!ok)
			nap_ms(200);
	}
	free(url);
	return ok ? 0 : -1;
}

int nats_cluster_start(struct nats_cluster *nc)
{
	memset(nc, 0, sizeof(*nc));
	if (ensure_nats_server())
		return -1;
	nc->dir = tu_mkdtemp("theater-nats");
	size_t at = 0;
	for (int i = 0; i < NATS_SERVERS; i++) {
		nc->port[i] = nats_free_port();
		nc->route[i] = nats_free_port();
		nc->monitor[i] = nats_free_port();
		at += (size_t)snprintf(nc->urls + at, sizeof(nc->urls) - at, "%snats://127.0.0.1:%u",
				       i ? "," : "", nc->port[i]);
	}
	for (int i = 0; i < NATS_SERVERS; i++)
		if (write_config(nc, i) || spawn_server(nc, i))
			return -1;
	for (int i = 0; i < NATS_SERVERS; i++)
		if (wait_jetstream(nc, i, 30000)) {
			fprintf(stderr, "nats_cluster: server n%d has no JetStream leader after 30 s "
				"(logs in %s)\n", i + 1, nc->dir);
			return -1;
		}
	return 0;
}

int nats_single_start(struct nats_cluster *nc)
{
	memset(nc, 0, sizeof(*nc));
	nc->single = 1;
	if (ensure_nats_server())
		return -1;
	nc->dir = tu_mkdtemp("theater-nats");
	nc->port[0] = nats_free_port();
	nc->monitor[0] = nats_free_port();
	snprintf(nc->urls, sizeof(nc->urls), "nats://127.0.0.1:%u", nc->port[0]);
	if (write_config(nc, 0) || spawn_server(nc, 0))
		return -1;
	if (wait_jetstream(nc, 0, 30000)) {
		fprintf(stderr, "nats_cluster: the single server has no JetStream after 30 s (log "
			"in %s)\n", nc->dir);
		return -1;
	}
	return 0;
}

void nats_cluster_kill(struct nats_cluster *nc, int i)
{
	if (nc->pid[i] <= 0)
		return;
	kill(nc->pid[i], SIGKILL);
	waitpid(nc->pid[i], NULL, 0);
	nc->pid[i] = 0;
}

int nats_cluster_restart(struct nats_cluster *nc, int i)
{
	nats_cluster_kill(nc, i);
	if (spawn_server(nc, i))
		return -1;
	return wait_jetstream(nc, i, 30000);
}

void nats_cluster_destroy(struct nats_cluster *nc)
{
	for (int i = 0; i < NATS_SERVERS; i++)
		nats_cluster_kill(nc, i);
	if (nc->dir)
		tu_rmtree(nc->dir);
	free(nc->dir);
	nc->dir = NULL;
}
