# theater-rust.cmake - theater_rust_actor(): build a theater actor written in Rust
# with the SDK in sdk/rust into a WebAssembly module, offline.
#
# It uses Debian's Rust (rustc, cargo, libstd-rust-dev-wasm32 for the
# wasm32-unknown-unknown target) and the crates Debian installs as sources
# under /usr/share/cargo/registry (librust-serde-dev, librust-serde-json-dev),
# through a CARGO_HOME in the build tree whose config.toml replaces crates.io
# with that directory. scripts/install-deps.sh installs all of it; the
# configuration fails loudly when something is missing.
include_guard(GLOBAL)

# Debian's toolchain first: a rustup toolchain earlier in PATH may lack the
# wasm32 standard library.
find_program(THEATER_CARGO cargo PATHS /usr/bin NO_DEFAULT_PATH)
find_program(THEATER_CARGO cargo)
find_program(THEATER_RUSTC rustc PATHS /usr/bin NO_DEFAULT_PATH)
find_program(THEATER_RUSTC rustc)
set(THEATER_CARGO_REGISTRY /usr/share/cargo/registry CACHE PATH
  "the directory of crate sources that replaces crates.io for the Rust actors")
if(NOT THEATER_CARGO OR NOT THEATER_RUSTC)
  message(FATAL_ERROR "the Rust actors need cargo and rustc (Debian: apt-get install "
    "rustc cargo libstd-rust-dev-wasm32 librust-serde-dev librust-serde-json-dev; see "
    "scripts/install-deps.sh)")
endif()
file(GLOB serde_dirs ${THEATER_CARGO_REGISTRY}/serde_json-*)
if(NOT serde_dirs)
  message(FATAL_ERROR "no serde_json sources in ${THEATER_CARGO_REGISTRY} (Debian: "
    "apt-get install librust-serde-dev librust-serde-json-dev)")
endif()

# (Variables are CACHE INTERNAL so that every directory that calls the
# function sees them.)
set(THEATER_CARGO_HOME ${CMAKE_BINARY_DIR}/cargo-home CACHE INTERNAL "")
set(THEATER_CARGO_TARGET ${CMAKE_BINARY_DIR}/cargo-target CACHE INTERNAL "")
file(WRITE ${THEATER_CARGO_HOME}/config.toml
  "# written by sdk/rust/theater-rust.cmake: crates come from Debian's packages\n"
  "[source.crates-io]\nreplace-with = \"local-registry\"\n\n"
  "[source.local-registry]\ndirectory = \"${THEATER_CARGO_REGISTRY}\"\n\n"
  "[net]\noffline = true\n")

# theater_rust_actor(<crate dir> <output.wasm>): the crate is a cdylib whose
# package name, with '-' as '_', names the module cargo writes.
function(theater_rust_actor dir out)
  file(GLOB_RECURSE srcs CONFIGURE_DEPENDS ${dir}/src/*.rs ${CMAKE_SOURCE_DIR}/sdk/rust/src/*.rs)
  file(STRINGS ${dir}/Cargo.toml name_line REGEX "^name *= *\"")
  list(GET name_line 0 name_line)
  string(REGEX REPLACE "^name *= *\"([^\"]+)\".*" "\\1" crate ${name_line})
  string(REPLACE "-" "_" crate ${crate})
  get_filename_component(out_dir ${out} DIRECTORY)
  get_filename_component(rel ${out} NAME)
  set(rustflags "")
  if(THEATER_WERROR)
    set(rustflags "RUSTFLAGS=-Dwarnings")   # cargo caps the lints of dependencies
  endif()
  add_custom_command(OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${out_dir}
    COMMAND ${CMAKE_COMMAND} -E env CARGO_HOME=${THEATER_CARGO_HOME} ${rustflags}
      RUSTC=${THEATER_RUSTC} CARGO_TARGET_DIR=${THEATER_CARGO_TARGET}
      ${THEATER_CARGO} build --quiet --release --offline --target wasm32-unknown-unknown
      --manifest-path ${dir}/Cargo.toml
    COMMAND ${CMAKE_COMMAND} -E copy
      ${THEATER_CARGO_TARGET}/wasm32-unknown-unknown/release/${crate}.wasm ${out}
    DEPENDS ${srcs} ${dir}/Cargo.toml ${CMAKE_SOURCE_DIR}/sdk/rust/Cargo.toml
    COMMENT "building actor ${rel} (cargo, wasm32-unknown-unknown)"
    VERBATIM)
endfunction()
