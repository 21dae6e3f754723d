# tessera_e2e_util: running the `tessera` binary as real processes
# (process_util) and clusters of them started node by node
# (process_cluster), for the e2e tests and for the benchmarks that drive the
# binary. It needs no GoogleTest, so the top-level CMakeLists.txt includes
# this file before bench/, with or without TESSERA_BUILD_TESTS.
tessera_library(tessera_e2e_util
  SRCS
    ${CMAKE_CURRENT_LIST_DIR}/process_util.cc
    ${CMAKE_CURRENT_LIST_DIR}/process_cluster.cc
  DEPS
    tessera_common PkgConfig::HTTPLIB nlohmann_json::nlohmann_json absl::strings
    Threads::Threads)

# tessera_e2e_loop_util: following a job's publish directory from outside
# (publish_util) and the closed loop of serve, join and simulate
# (closed_loop), for the closed-loop e2e test and the drift benchmark.
tessera_library(tessera_e2e_loop_util
  SRCS
    ${CMAKE_CURRENT_LIST_DIR}/publish_util.cc
    ${CMAKE_CURRENT_LIST_DIR}/closed_loop.cc
  DEPS
    tessera_e2e_util tessera_models nlohmann_json::nlohmann_json)
