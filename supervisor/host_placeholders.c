/* host_placeholders.c - TEMPORARY: empty tables for interfaces still being
 * written, so the tree links. Weak: a real table replaces each. */
#include "supervisor/host.h"

#define EMPTY(t) __attribute__((weak)) const struct host_fn t[] = {{NULL, NULL, 0, 0, 0, {0}, {0}, NULL}}
EMPTY(host_message_fns);
EMPTY(host_timing_fns);
EMPTY(host_random_fns);
EMPTY(host_store_fns);
EMPTY(host_supervisor_fns);
EMPTY(host_http_fns);
