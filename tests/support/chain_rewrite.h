/* chain_rewrite.h - test support: rewrites a chain file with an edit and every
 * hash recomputed, the way someone who wants a forged but valid-looking chain
 * would (docs/chain-format.md). Used to make replay diverge on purpose. */
#ifndef THEATER_TESTS_CHAIN_REWRITE_H
#define THEATER_TESTS_CHAIN_REWRITE_H

#include <stddef.h>
#include <stdint.h>

/* Called for every event in order. To change its data, set *new_data to a
 * malloc'd buffer (taken) and *new_len; leave *new_data NULL to keep it. */
typedef void (*chain_edit_fn)(void *user, uint64_t seq, const char *event_type,
			      const uint8_t *data, size_t len, uint8_t **new_data,
			      size_t *new_len);

/* Rewrites <chains_dir>/<actor_id>.chain (no server may have it open): each event
 * passes through edit, and the file is replaced by one whose hashes and parent
 * links are recomputed. Returns 0, or -1 with a message on stderr. */
int chain_rewrite(const char *chains_dir, const char *actor_id, chain_edit_fn edit,
		  void *user);

#endif
