/* actor.h - `theater-wasm actor`: run a theater actor offline.
 *
 *   theater-wasm actor FILE.wasm [--state JSON | --init-state JSON]
 *                      [--send BYTES | --request BYTES | --send-file F | --request-file F]...
 *
 * Instantiates the actor with fake host functions (tools/theater-wasm/fakes.h),
 * calls init (or starts from --state), then each --send (handle-send) and
 * --request (handle-request) in order, the way the server would (same ABI:
 * src/actor_abi.h), and prints each call's result, host calls and state, as
 * text or, with --json, one JSON object per line. docs/sdk.md describes it.
 *
 * Exit status: 0 every call returned ok; 3 some call returned an actor error
 * (status 1); 2 a trap or exhausted budget (the calls after it do not run);
 * 1 a module that does not load, link or speak the ABI; 64 a usage error.
 */
#ifndef THEATER_TOOLS_ACTOR_H
#define THEATER_TOOLS_ACTOR_H

/* argv[0] is "actor"; returns the exit status. */
int actor_main(int argc, char **argv);

#endif
