# actor.cmake - theater_actor_wasm(): build a theater actor written in C into a
# WebAssembly module with clang --target=wasm32 and wasm-ld.
#
# Actors are freestanding (-nostdlib): theater provides the imports of its actor
# ABI (docs/actor-abi.md) and nothing else, so WASI's libc cannot be used. The
# stack comes first in memory (-Wl,--stack-first) so that an overflow traps
# instead of overwriting data, and it is small (16 KiB) so that an idle actor
# fits in one 64 KiB page.
#
# Included by examples/ and bench/actors/; it fails the configuration loudly
# when clang or wasm-ld is missing or cannot target wasm32.
include_guard(GLOBAL)

find_program(THEATER_ACTOR_CC NAMES clang clang-14 clang-15 clang-16 clang-17 clang-18)
find_program(THEATER_WASM_LD NAMES wasm-ld wasm-ld-14 wasm-ld-15 wasm-ld-16 wasm-ld-17 wasm-ld-18)
if(NOT THEATER_ACTOR_CC OR NOT THEATER_WASM_LD)
  message(FATAL_ERROR "the example actors need clang and wasm-ld (Debian: apt-get install "
    "clang lld; see scripts/install-deps.sh): clang='${THEATER_ACTOR_CC}' "
    "wasm-ld='${THEATER_WASM_LD}'")
endif()

# Prove once, at configure time, that the toolchain can build an actor.
set(probe_dir ${CMAKE_BINARY_DIR}/CMakeFiles/theater-actor-probe)
file(MAKE_DIRECTORY ${probe_dir})
file(WRITE ${probe_dir}/probe.c
  "__attribute__((export_name(\"probe\"))) int probe(void) { return 1; }\n")
execute_process(
  COMMAND ${THEATER_ACTOR_CC} --target=wasm32 -O2 -nostdlib -fuse-ld=${THEATER_WASM_LD}
    -Wl,--no-entry -o ${probe_dir}/probe.wasm ${probe_dir}/probe.c
  RESULT_VARIABLE probe_rc OUTPUT_VARIABLE probe_out ERROR_VARIABLE probe_out)
if(NOT probe_rc EQUAL 0)
  message(FATAL_ERROR "'${THEATER_ACTOR_CC}' cannot build a wasm32 module with "
    "'${THEATER_WASM_LD}' (the example actors need clang's WebAssembly target "
    "and lld):\n${probe_out}")
endif()

# theater_actor_wasm(<source.c> <output.wasm>): adds the command; the caller
# adds the output to a target. (The flags are set here, not in variables of
# the including directory, so that any directory may call it.)
function(theater_actor_wasm src out)
  file(GLOB headers CONFIGURE_DEPENDS
    ${CMAKE_SOURCE_DIR}/sdk/include/theater/*.h ${CMAKE_SOURCE_DIR}/examples/common/*.h)
  set(flags --target=wasm32 -std=c17 -O2 -nostdlib -ffreestanding
    -Wall -Wextra -Wshadow -Wstrict-prototypes -Wvla -Wno-unused-parameter
    -I${CMAKE_SOURCE_DIR}/sdk/include -I${CMAKE_SOURCE_DIR}
    -fuse-ld=${THEATER_WASM_LD}
    -Wl,--no-entry -Wl,--export-dynamic -Wl,--stack-first -Wl,-z,stack-size=16384)
  if(THEATER_WERROR)
    list(APPEND flags -Werror)
  endif()
  get_filename_component(out_dir ${out} DIRECTORY)
  get_filename_component(rel ${out} NAME)
  add_custom_command(OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${out_dir}
    COMMAND ${THEATER_ACTOR_CC} ${flags} -o ${out} ${src}
    DEPENDS ${src} ${headers}
    COMMENT "building actor ${rel} (clang --target=wasm32)"
    VERBATIM)
endfunction()
