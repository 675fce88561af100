/* chain_rewrite.c - rewriting a chain with recomputed hashes; see chain_rewrite.h.
 * The scan of the old file feeds appends to a new chain in a scratch folder
 * (the chain module computes the hashes), which then replaces the old file. */
#include "tests/support/chain_rewrite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "src/chain.h"
#include "tests/support/testutil.h"

struct rewrite {
	struct chain *out;
	chain_edit_fn edit;
	void *user;
};

static enum err_code copy_event(void *user, const struct chain_event *ev)
{
	struct rewrite *w = user;
	uint8_t *nd = NULL;
	size_t nl = 0;
	w->edit(w->user, ev->seq, ev->event_type, ev->data, ev->data_len, &nd, &nl);
	struct err e = {0};
	enum err_code rc = chain_append_nosync(w->out, ev->event_type, nd ? nd : ev->data,
					       nd ? nl : ev->data_len, NULL, &e);
	if (rc)
		fprintf(stderr, "chain_rewrite: cannot append event %llu: %s\n",
			(unsigned long long)ev->seq, e.msg);
	free(nd);
	return rc;
}

int chain_rewrite(const char *chains_dir, const char *actor_id, chain_edit_fn edit,
		  void *user)
{
	char *scratch = tu_fmt("%s/../chain-rewrite-%s", chains_dir, actor_id);
	char *from = tu_fmt("%s/%s.chain", chains_dir, actor_id);
	char *to = tu_fmt("%s/%s.chain", scratch, actor_id);
	struct rewrite w = {.edit = edit, .user = user};
	struct chain_open_report rep;
	struct chain_verify_result vr;
	struct err e = {0};
	int rc = -1;
	tu_rmtree(scratch);
	mkdir(scratch, 0755);
	if (chain_open(scratch, actor_id, &w.out, &rep, &e) ||
	    chain_scan_file(from, copy_event, &w, &vr, &e) || chain_sync(w.out, &e)) {
		fprintf(stderr, "chain_rewrite: %s\n", e.msg);
		goto out;
	}
	chain_close(w.out);
	w.out = NULL;
	if (rename(to, from) != 0) {
		perror("chain_rewrite: rename");
		goto out;
	}
	rc = 0;
out:
	chain_close(w.out);
	tu_rmtree(scratch);
	free(scratch);
	free(from);
	free(to);
	return rc;
}
