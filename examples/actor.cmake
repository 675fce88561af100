# actor.cmake - kept for older includes: the rules to build actors in C live in
# the C SDK, sdk/cmake/TheaterActor.cmake (theater_add_actor, theater_actor_wasm).
include(${CMAKE_CURRENT_LIST_DIR}/../sdk/cmake/TheaterActor.cmake)
