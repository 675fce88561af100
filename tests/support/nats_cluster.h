/* nats_cluster.h - end-to-end test support for cluster mode (issue 15): a real
 * three-server NATS cluster with JetStream on 127.0.0.1 (free ports, config
 * files and stores in a temporary folder), started from Debian's nats-server.
 * When nats-server is missing the harness installs it with apt-get and fails
 * the test loudly when it cannot. */
#ifndef THEATER_TESTS_NATS_CLUSTER_H
#define THEATER_TESTS_NATS_CLUSTER_H

#include <sys/types.h>

#include <jansson.h>

#define NATS_SERVERS 3

struct nats_cluster {
	char *dir;                         /* configs, stores and logs */
	pid_t pid[NATS_SERVERS];
	unsigned short port[NATS_SERVERS], route[NATS_SERVERS], monitor[NATS_SERVERS];
	char urls[256];                    /* "nats://127.0.0.1:p1,nats://..." for --nats */
	int single;                        /* nats_single_start: server 0 only */
	int lagging;                       /* nats_cluster_wait_current: the server whose
					    * replica was behind when it gave up, or -1 */
};

/* Starts the servers and waits until JetStream has a metadata leader that counts
 * every server a current peer. 0, or -1 with the servers' logs on stderr. */
int nats_cluster_start(struct nats_cluster *nc);
/* One NATS server with JetStream and no cluster (what a single node would run):
 * server 0 only, urls names it. 0, or -1 with a message on stderr. Stop it with
 * nats_cluster_destroy. */
int nats_single_start(struct nats_cluster *nc);
/* A port the kernel just handed out on 127.0.0.1 (closed again at once): where
 * nothing listens, for a while. */
unsigned short nats_free_port(void);
/* SIGKILL one server (i) and wait for it. */
void nats_cluster_kill(struct nats_cluster *nc, int i);
/* Starts server i again with the same config and store and waits as
 * nats_cluster_start does (for the servers running). 0 or -1. */
int nats_cluster_restart(struct nats_cluster *nc, int i);
/* Server i's /jsz?accounts=true&streams=true, parsed (a new reference), or NULL
 * when it does not answer. */
json_t *nats_cluster_jsz(const struct nats_cluster *nc, int i);
/* nats_cluster_restart with server i's store removed first: it comes back
 * empty and catches up from the others (after kill -9, nats-server 2.9.10 was
 * seen coming back from its own store with replicas missing most messages
 * while calling them current). */
int nats_cluster_restart_empty(struct nats_cluster *nc, int i);
/* Waits until every stream of theater's (THEATER_*, KV_theater_*) has a leader
 * that counts each other replica current and every server holds the same
 * messages of it (a server that came back has caught up): the cluster can lose
 * one more server.
 * The milliseconds waited, or -1 (with why on stderr) after timeout_ms. */
int nats_cluster_wait_current(struct nats_cluster *nc, int timeout_ms);
/* Stops every server and removes the folder. */
void nats_cluster_destroy(struct nats_cluster *nc);

#endif
