/* config.h - theater-server's settings: flags, their environment equivalents and
 * defaults. Flags win over the environment, which wins over defaults.
 * Ownership: config_release frees every string. Threads: parse once in main. */
#ifndef THEATER_CONFIG_H
#define THEATER_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "src/util/err.h"

#define CONFIG_MAX_ROOTS 16

struct config {
	char *host;                 /* --listen ADDR:PORT, THEATER_LISTEN [127.0.0.1:8080] */
	uint16_t port;
	char *home;                 /* --home, THEATER_HOME [$HOME/.theater] */
	char *roots[CONFIG_MAX_ROOTS]; /* --package-root (repeatable), THEATER_PACKAGE_ROOTS (':') */
	size_t nroots;              /* [$THEATER_HOME/packages] */
	char *token;                /* THEATER_TOKEN or the first line of --token-file / THEATER_TOKEN_FILE */
	size_t max_body;            /* --max-body [1 MiB] */
	size_t max_store_object;    /* --max-store-object [64 MiB] */
	size_t max_download;        /* --max-download [64 MiB] */
	long connect_timeout_ms;    /* --connect-timeout-ms [5000] */
	long fetch_timeout_ms;      /* --fetch-timeout-ms [30000] */
	size_t cache_bytes;         /* --cache-bytes [256 MiB] */
	unsigned max_conns;         /* --max-conns [1024] */
	unsigned max_conns_per_ip;  /* --max-conns-per-ip [256] */
	unsigned conn_timeout_s;    /* --conn-timeout [60] */
	unsigned http_threads;      /* --http-threads [2] */
	unsigned workers;           /* --workers [4] */
	size_t actor_fuel;          /* --actor-fuel: instructions per call [100M] */
	size_t actor_memory;        /* --actor-memory: linear memory per actor [64M] */
	unsigned call_timeout_ms;   /* --call-timeout-ms: wall clock per call [5000] */
	unsigned mailbox;           /* --mailbox: queued messages per actor [1024] */
	size_t max_message;         /* --max-message: message/request bytes [1M] */
	size_t mailbox_bytes;       /* --mailbox-bytes: queued bytes per actor [64M] */
	unsigned max_actors;        /* --max-actors: live actors server-wide [10000] */
	unsigned max_children;      /* --max-children: live children per parent [1000] */
	size_t call_events;         /* --call-events: host-call events per call [100000] */
	size_t call_bytes;          /* --call-bytes: host-call chain bytes per call [64M] */
	int log_level;              /* --log-level debug|info|warn|error [info] */
	int log_format;             /* --log-format text|json [text] (enum log_format) */
	int health_check;           /* --health-check: probe /health and exit */
	int http_allow_private;     /* --http-allow-private, THEATER_HTTP_ALLOW_PRIVATE=1 */
	int fetch_allow_private;    /* --fetch-allow-private, THEATER_FETCH_ALLOW_PRIVATE=1 */
	char *fetch_allow;          /* --fetch-allow ADDR[:PORT],...  [THEATER_FETCH_ALLOW] */
	unsigned http_timeout_ms;   /* --http-timeout-ms: actors' send-http default [60000] */
	unsigned http_timeout_max_ms; /* --http-timeout-max-ms: cap of timeout_ms [600000] */
	int recover_none;           /* --recover none: live runs end failed on start */
	unsigned shutdown_grace_ms; /* --shutdown-grace-ms [10000] */
	unsigned idle_release_ms;   /* --idle-release-ms [60000]; 0: never */
	size_t max_memory;          /* --max-memory: resident bytes before spawns are refused
				     * [0: the cgroup's limit, else the machine's memory] */
	size_t min_free_disk;       /* --min-free-disk: bytes the home's file system keeps
				     * free before spawns are refused [128 MiB]; 0: no check */
	unsigned max_open_chains;   /* --max-open-chains: chain files open at once [0: half
				     * of the descriptor limit] */
	int verify_full;            /* --verify-chains full: verify whole chains at start */
	unsigned spare_chains;      /* --spare-chains: chain files made ahead of need [1024]; 0: off */
	char *nats;                 /* --nats URL[,URL...] [THEATER_NATS]: cluster mode when set */
	char *node;                 /* --node NAME [THEATER_NODE] (main: the host name) */
	unsigned nats_replicas;     /* --nats-replicas [3] */
	unsigned cluster_lapse_ms;  /* --cluster-lapse-ms [4000] */
	char *advertise_url;        /* --advertise-url [THEATER_ADVERTISE_URL] */
	int show_help, show_version;
};

/* Parses argv and the environment (envp may be NULL for the real one). Errors
 * (ERR_INVALID) name the flag and the problem. */
enum err_code config_parse(struct config *cfg, int argc, char **argv, struct err *err);
void config_release(struct config *cfg);
/* 1 when host is a loopback address (127.0.0.0/8, ::1, localhost). */
int config_host_is_loopback(const char *host);
/* 1 when name is a valid --node: 1 to 64 of A-Z a-z 0-9 _ -. */
int config_node_name_valid(const char *name);
/* The --help text. */
const char *config_usage(void);

#endif
