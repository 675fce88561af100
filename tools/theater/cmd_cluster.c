/* cmd_cluster.c - `theater cluster`: the nodes of a cluster (GET /cluster). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/theater/cli.h"
#include "tools/theater/table.h"

static const char cluster_help[] =
	"usage: theater cluster\n\n"
	"The cluster the server belongs to (docs/cluster.md): this node, its NATS\n"
	"connection, whether it accepts writes now, then every node that ever beat in\n"
	"the heartbeat bucket. Columns: NODE (* marks the node asked), STATUS (up while\n"
	"its heartbeat is fresh), LOAD (live actors), HEARTBEAT (age of the last one),\n"
	"LAPSE (the node counts as down once its last heartbeat is that old: its own\n"
	"--cluster-lapse-ms), URL. Last, this node's counters since it started:\n"
	"takeovers, failed rebuilds, copies fenced, events not replicated, lost events\n"
	"published again, streams relayed to other nodes.\n"
	"A server without --nats says it is not in a cluster.\n\n"
	"  --json           the server's answer as it is\n";

static long long num(const json_t *o, const char *key)
{
	return (long long)json_integer_value(json_object_get(o, key));
}

int cmd_cluster(struct cli *c, int argc, char **argv)
{
	int npos, rc;
	if ((rc = cli_parse(c, argc, argv, NULL, cluster_help, NULL, 0, 0, &npos)) >= 0)
		return rc;
	json_t *j;
	if ((rc = cli_json(c, "GET", "/cluster", NULL, NULL, 0, &j, NULL)))
		return rc;
	if (c->json) {
		cli_print_json(j);
		json_decref(j);
		return EXIT_OK;
	}
	if (!json_is_true(json_object_get(j, "enabled"))) {
		printf("not in a cluster: %s runs without --nats\n", c->url);
		json_decref(j);
		return EXIT_OK;
	}
	json_t *nats = json_object_get(j, "nats");
	const char *refused = cli_str(j, "writes_refused");
	int up = json_is_true(json_object_get(nats, "connected"));
	const char *server = cli_str(nats, "server");
	printf("node %s: NATS %s%s, %lld replicas, %lld placements known\n",
	       cli_str(j, "node") ? cli_str(j, "node") : "?", up ? "connected to " : "not connected",
	       up && server ? server : "", num(nats, "replicas"), num(j, "placements"));
	if (refused)
		printf("writes: refused (%s)\n", refused);
	else
		printf("writes: accepted\n");
	static const char *const heads[] = {"NODE", "STATUS", "LOAD", "HEARTBEAT", "LAPSE",
					     "URL"};
	struct table t;
	table_init(&t, 6, heads);
	size_t i;
	json_t *n;
	json_array_foreach(json_object_get(j, "nodes"), i, n) {
		char name[80], load[24], age[32], lapse[32];
		snprintf(name, sizeof(name), "%s%s", cli_str(n, "node") ? cli_str(n, "node") : "?",
			 json_is_true(json_object_get(n, "self")) ? " *" : "");
		snprintf(load, sizeof(load), "%lld", num(n, "load"));
		fmt_age(cli_str(n, "heartbeat_at"), age, sizeof(age));
		long long ms = num(n, "lapse_ms");
		if (!ms)                     /* a server of an older version */
			snprintf(lapse, sizeof(lapse), "-");
		else if (ms % 1000)
			snprintf(lapse, sizeof(lapse), "%lld ms", ms);
		else
			snprintf(lapse, sizeof(lapse), "%lld s", ms / 1000);
		const char *cells[] = {name, cli_str(n, "status"), load, age, lapse,
				       cli_str(n, "url")};
		table_add(&t, cells);
	}
	table_print(&t, stdout);
	table_release(&t);
	json_t *st = json_object_get(j, "stats");
	if (st)
		printf("since start: %lld takeovers, %lld failed rebuilds, %lld copies fenced, "
		       "%lld not replicated, %lld lost events published again, %lld streams "
		       "relayed now\n", num(st, "takeovers"), num(st, "rebuild_failures"),
		       num(st, "fenced"), num(st, "unreplicated"), num(st, "healed"),
		       num(st, "relayed_streams"));
	json_decref(j);
	return EXIT_OK;
}
