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

#include "src/util/json.h"
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

/* What server i's /jsz says: -1 no answer or no meta leader named, 0 a leader
 * named, 1 it is the leader and counts `current` other servers current replicas of
 * the meta group. */
static int jsz_view(const struct nats_cluster *nc, int i, int *current)
{
	char *url = tu_fmt("http://127.0.0.1:%u/jsz", nc->monitor[i]);
	struct http_result r = {0};
	int view = -1;
	*current = 0;
	if (http_do("GET", url, NULL, 0, NULL, &r) == 0 && r.status == 200 && r.body) {
		json_t *j = json_parse(r.body, r.len, 16, NULL);
		json_t *meta = json_object_get(j, "meta_cluster");
		const char *leader = json_string_value(json_object_get(meta, "leader"));
		/* only the leader lists the group's other members (2.9's /jsz names no
		 * server, so that is how the leader is told apart) */
		json_t *replicas = json_object_get(meta, "replicas");
		if (leader && *leader)
			view = replicas != NULL;
		size_t k;
		json_t *rep;
		json_array_foreach(replicas, k, rep)
			*current += json_is_true(json_object_get(rep, "current"));
		json_decref(j);
	}
	http_result_release(&r);
	free(url);
	return view;
}

/* JetStream is usable once every running server names a meta leader and the leader
 * counts every other running server a current peer. A leader alone is not enough:
 * two of three servers elect one while the third is not yet a peer, and streams of
 * three replicas have nowhere to go (seen once under ASan load: a node's 20 s start
 * budget ran out on "no 3 servers to place its replicas on"). */
static int cluster_ready(const struct nats_cluster *nc)
{
	int running = 0, leader_whole = 0;
	for (int i = 0; i < NATS_SERVERS; i++)
		running += nc->pid[i] > 0;
	for (int i = 0; i < NATS_SERVERS; i++) {
		if (nc->pid[i] <= 0)
			continue;
		int current = 0, view = jsz_view(nc, i, &current);
		if (view < 0)
			return 0;
		if (view == 1 && current >= running - 1)
			leader_whole = 1;
	}
	return leader_whole;
}

/* The end of every server's log on stderr: why a cluster did not form. */
static void show_logs(const struct nats_cluster *nc)
{
	for (int i = 0; i < NATS_SERVERS; i++) {
		char *path = tu_fmt("%s/n%d.log", nc->dir, i + 1);
		char heading[64];
		snprintf(heading, sizeof(heading), "nats_cluster: the end of n%d's log:", i + 1);
		tu_show_tail(heading, path, 3000);
		free(path);
	}
}

/* A single server is ready once its health check counts JetStream in. */
static int single_ready(const struct nats_cluster *nc)
{
	char *url = tu_fmt("http://127.0.0.1:%u/healthz?js-enabled-only=true", nc->monitor[0]);
	struct http_result r = {0};
	int ok = http_do("GET", url, NULL, 0, NULL, &r) == 0 && r.status == 200 && r.body &&
		 strstr(r.body, "\"ok\"");
	http_result_release(&r);
	free(url);
	return ok;
}

/* Waits until JetStream is usable (cluster_ready, or single_ready). 0, or -1 with
 * the servers' logs on stderr. */
static int wait_jetstream(struct nats_cluster *nc, int timeout_ms)
{
	int ok = 0;
	for (int waited = 0; waited < timeout_ms && !ok; waited += 200) {
		ok = nc->single ? single_ready(nc) : cluster_ready(nc);
		if (!ok)
			nap_ms(200);
	}
	if (!ok) {
		fprintf(stderr, "nats_cluster: JetStream not ready after %d s (files in %s)\n",
			timeout_ms / 1000, nc->dir);
		show_logs(nc);
	}
	return ok ? 0 : -1;
}

json_t *nats_cluster_jsz(const struct nats_cluster *nc, int i)
{
	char *url = tu_fmt("http://127.0.0.1:%u/jsz?accounts=true&streams=true", nc->monitor[i]);
	struct http_result r = {0};
	json_t *j = NULL;
	if (http_do("GET", url, NULL, 0, NULL, &r) == 0 && r.status == 200 && r.body) {
		/* "reserved_memory": 2^64-1 does not fit a JSON integer: blank it */
		for (char *big = r.body; (big = strstr(big, "18446744073709551615"));)
			memcpy(big, "                   0", 20);
		j = json_parse(r.body, r.len, 32, NULL);
	}
	http_result_release(&r);
	free(url);
	return j;
}

/* Every stream of theater's has a leader, the leader counts each other replica
 * current with no lag, and every server's replica holds the same messages (last
 * sequence and count: nats-server 2.9.10 was seen calling a replica current that
 * held 127 of 1,595 messages after a restart). 1, or 0 with what is not current
 * in why (and nc->lagging: the server behind, when one is). */
static int streams_current(struct nats_cluster *nc, char *why, size_t size)
{
	nc->lagging = -1;
	json_t *seen = json_object();   /* stream -> [last_seq, messages, server] */
	int agree = 1;
	for (int i = 0; i < NATS_SERVERS; i++) {
		if (nc->pid[i] <= 0)
			continue;
		json_t *j = nats_cluster_jsz(nc, i);
		if (!j) {
			snprintf(why, size, "n%d: no answer", i + 1);
			json_decref(seen);
			return 0;
		}
		int ok = 1;
		char me[8];
		snprintf(me, sizeof(me), "n%d", i + 1);
		json_t *accs = json_object_get(j, "account_details");
		for (size_t a = 0; ok && a < json_array_size(accs); a++) {
			json_t *sd = json_object_get(json_array_get(accs, a), "stream_detail");
			for (size_t k = 0; ok && k < json_array_size(sd); k++) {
				json_t *st = json_array_get(sd, k);
				const char *name = json_string_value(json_object_get(st, "name"));
				/* theater's streams only: another test's idle bucket left
				 * behind (KV_test_cas) was seen never to catch up on a
				 * server restarted empty, and the nodes do not use it */
				if (!name || (strncmp(name, "KV_theater_", 11) != 0 &&
					      strncmp(name, "THEATER_", 8) != 0))
					continue;
				json_t *state = json_object_get(st, "state");
				json_int_t last = json_integer_value(json_object_get(state, "last_seq"));
				json_int_t msgs = json_integer_value(json_object_get(state, "messages"));
				json_t *before = json_object_get(seen, name);
				if (!before) {
					json_object_set_new(seen, name, json_pack("[I, I, i]", last, msgs,
										  i + 1));
				} else if (agree &&
					   (json_integer_value(json_array_get(before, 0)) != last ||
					    json_integer_value(json_array_get(before, 1)) != msgs)) {
					json_int_t blast = json_integer_value(json_array_get(before, 0));
					json_int_t bmsgs = json_integer_value(json_array_get(before, 1));
					int bserver = (int)json_integer_value(json_array_get(before, 2));
					snprintf(why, size, "%s: n%d holds last %lld, %lld messages; "
						 "%s holds last %lld, %lld messages", name, bserver,
						 (long long)blast, (long long)bmsgs, me, (long long)last,
						 (long long)msgs);
					/* the one behind: the lower last sequence, or fewer
					 * messages at the same one */
					nc->lagging = last < blast || (last == blast && msgs < bmsgs)
							      ? i : bserver - 1;
					agree = 0;
				}
				json_t *cl = json_object_get(st, "cluster");
				const char *leader = json_string_value(json_object_get(cl, "leader"));
				if (!leader || !*leader) {
					snprintf(why, size, "%s: %s has no leader", me, name);
					ok = 0;
					break;
				}
				if (strcmp(leader, me) != 0)
					continue;
				json_t *reps = json_object_get(cl, "replicas");
				for (size_t m = 0; ok && m < json_array_size(reps); m++) {
					json_t *rep = json_array_get(reps, m);
					if (!json_is_true(json_object_get(rep, "current")) ||
					    json_integer_value(json_object_get(rep, "lag")) > 0) {
						const char *rn = json_string_value(
							json_object_get(rep, "name"));
						snprintf(why, size, "%s: replica %s of %s is %lld behind", me,
							 rn, name, (long long)json_integer_value(
								 json_object_get(rep, "lag")));
						if (rn && rn[0] == 'n' && atoi(rn + 1) >= 1 &&
						    atoi(rn + 1) <= NATS_SERVERS)
							nc->lagging = atoi(rn + 1) - 1;
						ok = 0;
					}
				}
			}
		}
		json_decref(j);
		if (!ok) {
			json_decref(seen);
			return 0;
		}
	}
	json_decref(seen);
	return agree;
}

int nats_cluster_wait_current(struct nats_cluster *nc, int timeout_ms)
{
	char why[256] = "";
	for (int waited = 0; waited < timeout_ms; waited += 200) {
		if (streams_current(nc, why, sizeof(why)))
			return waited;
		nap_ms(200);
	}
	fprintf(stderr, "nats_cluster: streams not current after %d s: %s\n", timeout_ms / 1000,
		why);
	return -1;
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
	return wait_jetstream(nc, 30000);
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
	return wait_jetstream(nc, 30000);
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
	return wait_jetstream(nc, 30000);
}

int nats_cluster_restart_empty(struct nats_cluster *nc, int i)
{
	nats_cluster_kill(nc, i);
	char *store = tu_fmt("%s/n%d", nc->dir, i + 1);
	tu_rmtree(store);
	free(store);
	return nats_cluster_restart(nc, i);
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
