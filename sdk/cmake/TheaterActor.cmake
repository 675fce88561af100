# TheaterActor.cmake - build theater actors written in C with the C SDK
# (sdk/include/theater/). Use it from any CMake project:
#
#   include(/path/to/theater/sdk/cmake/TheaterActor.cmake)
#   theater_add_actor(counter SOURCES counter.c)            # -> counter.wasm
#   theater_add_actor(agent SOURCES agent.c util.c OUTPUT ${CMAKE_BINARY_DIR}/x/agent.wasm)
#
# theater_add_actor(<name> SOURCES <file.c>... [OUTPUT <file.wasm>]
#                   [INCLUDE_DIRS <dir>...] [COMPILE_OPTIONS <flag>...])
#   adds the target <name> (built by ALL) that compiles the sources with
#   clang --target=wasm32 and links them with wasm-ld into one module,
#   <name>.wasm in the current binary directory unless OUTPUT says otherwise.
#   The variable <name>_WASM is set to the module's path in the caller's scope.
#   Exactly one source defines THEATER_ACTOR_IMPL before including the SDK's
#   headers (docs/sdk.md).
#
# Actors are freestanding (-nostdlib): theater provides the imports of its actor
# ABI (docs/actor-abi.md) and nothing else, so WASI's libc cannot be used
# (theater/libc.h has the memcpy & co. that clang may call). The stack comes
# first in memory (--stack-first) so that an overflow traps instead of
# overwriting data, and it is small (16 KiB) so that an idle actor fits in one
# 64 KiB page. The configuration fails loudly when clang or wasm-ld is missing
# or cannot target wasm32 (Debian: apt-get install clang lld).
#
# The same flags as one plain command, for projects without CMake:
#   clang --target=wasm32 -std=c17 -O2 -nostdlib -ffreestanding \
#     -Wl,--no-entry -Wl,--export-dynamic -Wl,--stack-first -Wl,-z,stack-size=16384 \
#     -I <theater>/sdk/include -o counter.wasm counter.c
include_guard(GLOBAL)

get_filename_component(_theater_sdk_dir ${CMAKE_CURRENT_LIST_DIR}/.. ABSOLUTE)
set(THEATER_SDK_DIR ${_theater_sdk_dir} CACHE INTERNAL "theater's sdk/ folder")

find_program(THEATER_ACTOR_CC NAMES clang clang-14 clang-15 clang-16 clang-17 clang-18 clang-19)
find_program(THEATER_WASM_LD NAMES wasm-ld wasm-ld-14 wasm-ld-15 wasm-ld-16 wasm-ld-17 wasm-ld-18 wasm-ld-19)
if(NOT THEATER_ACTOR_CC OR NOT THEATER_WASM_LD)
  message(FATAL_ERROR "theater actors in C need clang and wasm-ld (Debian: apt-get install "
    "clang lld): clang='${THEATER_ACTOR_CC}' wasm-ld='${THEATER_WASM_LD}'")
endif()

# Prove once, at configure time, that the toolchain can build an actor.
set(_theater_probe_dir ${CMAKE_BINARY_DIR}/CMakeFiles/theater-actor-probe)
file(MAKE_DIRECTORY ${_theater_probe_dir})
file(WRITE ${_theater_probe_dir}/probe.c
  "__attribute__((export_name(\"probe\"))) int probe(void) { return 1; }\n")
execute_process(
  COMMAND ${THEATER_ACTOR_CC} --target=wasm32 -O2 -nostdlib -fuse-ld=${THEATER_WASM_LD}
    -Wl,--no-entry -o ${_theater_probe_dir}/probe.wasm ${_theater_probe_dir}/probe.c
  RESULT_VARIABLE _theater_probe_rc OUTPUT_VARIABLE _theater_probe_out
  ERROR_VARIABLE _theater_probe_out)
if(NOT _theater_probe_rc EQUAL 0)
  message(FATAL_ERROR "'${THEATER_ACTOR_CC}' cannot build a wasm32 module with "
    "'${THEATER_WASM_LD}' (theater actors need clang's WebAssembly target and lld):\n"
    "${_theater_probe_out}")
endif()

# The flags of every actor (the plain command above, plus warnings) into <var>.
# A function, not a variable, because include_guard(GLOBAL) includes this file
# once while directories' variables are their own.
function(_theater_actor_flags var)
  set(flags --target=wasm32 -std=c17 -O2 -nostdlib -ffreestanding
    -Wall -Wextra -Wshadow -Wstrict-prototypes -Wvla -Wno-unused-parameter
    -fuse-ld=${THEATER_WASM_LD}
    -Wl,--no-entry -Wl,--export-dynamic -Wl,--stack-first -Wl,-z,stack-size=16384
    -I${THEATER_SDK_DIR}/include)
  if(THEATER_WERROR)
    list(APPEND flags -Werror)
  endif()
  set(${var} ${flags} PARENT_SCOPE)
endfunction()

function(theater_add_actor name)
  cmake_parse_arguments(PARSE_ARGV 1 A "" "OUTPUT" "SOURCES;INCLUDE_DIRS;COMPILE_OPTIONS")
  if(NOT A_SOURCES)
    message(FATAL_ERROR "theater_add_actor(${name}): no SOURCES")
  endif()
  if(NOT A_OUTPUT)
    set(A_OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/${name}.wasm)
  endif()
  set(srcs "")
  foreach(s ${A_SOURCES})
    get_filename_component(s ${s} ABSOLUTE BASE_DIR ${CMAKE_CURRENT_SOURCE_DIR})
    list(APPEND srcs ${s})
  endforeach()
  _theater_actor_flags(flags)
  foreach(d ${A_INCLUDE_DIRS})
    list(APPEND flags -I${d})
  endforeach()
  list(APPEND flags ${A_COMPILE_OPTIONS})
  file(GLOB sdk_headers CONFIGURE_DEPENDS ${THEATER_SDK_DIR}/include/theater/*.h)
  get_filename_component(out_dir ${A_OUTPUT} DIRECTORY)
  get_filename_component(out_name ${A_OUTPUT} NAME)
  add_custom_command(OUTPUT ${A_OUTPUT}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${out_dir}
    COMMAND ${THEATER_ACTOR_CC} ${flags} -o ${A_OUTPUT} ${srcs}
    DEPENDS ${srcs} ${sdk_headers}
    COMMENT "building actor ${out_name} (clang --target=wasm32)"
    VERBATIM)
  add_custom_target(${name} ALL DEPENDS ${A_OUTPUT})
  set(${name}_WASM ${A_OUTPUT} PARENT_SCOPE)
endfunction()

# theater_actor_wasm(<source.c> <output.wasm>): the older form, for callers
# that add the output to a target of their own.
function(theater_actor_wasm src out)
  _theater_actor_flags(flags)
  file(GLOB sdk_headers CONFIGURE_DEPENDS ${THEATER_SDK_DIR}/include/theater/*.h)
  get_filename_component(out_dir ${out} DIRECTORY)
  get_filename_component(rel ${out} NAME)
  add_custom_command(OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${out_dir}
    COMMAND ${THEATER_ACTOR_CC} ${flags} -o ${out} ${src}
    DEPENDS ${src} ${sdk_headers}
    COMMENT "building actor ${rel} (clang --target=wasm32)"
    VERBATIM)
endfunction()
