# CTR model throughput (`models_bench`, see bench/models_bench.h). Included
# from bench/CMakeLists.txt. tessera_bench_models is the library the
# `tessera bench` CLI can call (RunModelsBench); models_bench is the
# standalone binary (the same source compiled with its main()).
tessera_library(tessera_bench_models
  SRCS ${CMAKE_CURRENT_LIST_DIR}/models_bench.cc
  DEPS tessera_models absl::flat_hash_map absl::strings)

add_executable(models_bench ${CMAKE_CURRENT_LIST_DIR}/models_bench.cc)
target_compile_definitions(models_bench PRIVATE TESSERA_MODELS_BENCH_MAIN)
target_compile_options(models_bench PRIVATE ${TESSERA_WARNINGS})
target_include_directories(models_bench PRIVATE ${PROJECT_SOURCE_DIR})
target_link_libraries(models_bench PRIVATE tessera_models absl::flat_hash_map absl::strings)
