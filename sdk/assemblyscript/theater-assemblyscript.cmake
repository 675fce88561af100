# theater-assemblyscript.cmake - theater_as_actor(): build a theater actor
# written in AssemblyScript with the SDK in sdk/assemblyscript.
#
# The compiler comes from npm at the version pinned in
# sdk/assemblyscript/package-lock.json, installed with `npm ci` into the build
# tree (build/assemblyscript/node_modules) the first time an actor needs it.
# Node and npm are Debian's (scripts/install-deps.sh). Actors import the SDK as
# "theater-sdk": build/assemblyscript/packages/theater-sdk links to
# sdk/assemblyscript/assembly and is passed to asc with --path.
include_guard(GLOBAL)

find_program(THEATER_NODE NAMES node nodejs)
find_program(THEATER_NPM npm)
if(NOT THEATER_NODE OR NOT THEATER_NPM)
  message(FATAL_ERROR "the AssemblyScript actors need node and npm (Debian: apt-get "
    "install nodejs npm; see scripts/install-deps.sh)")
endif()

set(THEATER_AS_SDK ${CMAKE_SOURCE_DIR}/sdk/assemblyscript CACHE INTERNAL "")
set(THEATER_AS_DIR ${CMAKE_BINARY_DIR}/assemblyscript CACHE INTERNAL "")
set(THEATER_ASC ${THEATER_AS_DIR}/node_modules/assemblyscript/bin/asc.js CACHE INTERNAL "")
file(MAKE_DIRECTORY ${THEATER_AS_DIR}/packages)
file(CREATE_LINK ${THEATER_AS_SDK}/assembly ${THEATER_AS_DIR}/packages/theater-sdk SYMBOLIC)

add_custom_command(OUTPUT ${THEATER_ASC}
  COMMAND ${CMAKE_COMMAND} -E copy ${THEATER_AS_SDK}/package.json
    ${THEATER_AS_SDK}/package-lock.json ${THEATER_AS_DIR}/
  COMMAND ${THEATER_NPM} ci --no-audit --no-fund --ignore-scripts --loglevel=error
  COMMAND ${CMAKE_COMMAND} -E touch ${THEATER_ASC}
  WORKING_DIRECTORY ${THEATER_AS_DIR}
  DEPENDS ${THEATER_AS_SDK}/package.json ${THEATER_AS_SDK}/package-lock.json
  COMMENT "installing the AssemblyScript compiler (npm ci, sdk/assemblyscript/package-lock.json)"
  VERBATIM)
add_custom_target(theater_asc DEPENDS ${THEATER_ASC})

# theater_as_actor(<project dir> <output.wasm>): compiles <dir>/assembly/index.ts
# with <dir>/asconfig.json (which extends the SDK's).
function(theater_as_actor dir out)
  file(GLOB_RECURSE srcs CONFIGURE_DEPENDS ${dir}/assembly/*.ts ${THEATER_AS_SDK}/assembly/*.ts)
  get_filename_component(out_dir ${out} DIRECTORY)
  get_filename_component(rel ${out} NAME)
  add_custom_command(OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${out_dir}
    COMMAND ${THEATER_NODE} ${THEATER_ASC} assembly/index.ts --config asconfig.json
      --path ${THEATER_AS_DIR}/packages --transform ${THEATER_AS_SDK}/transform.mjs
      -o ${out}
    WORKING_DIRECTORY ${dir}
    DEPENDS ${THEATER_ASC} ${srcs} ${dir}/asconfig.json ${THEATER_AS_SDK}/asconfig.json
      ${THEATER_AS_SDK}/transform.mjs
    COMMENT "building actor ${rel} (AssemblyScript)"
    VERBATIM)
endfunction()
