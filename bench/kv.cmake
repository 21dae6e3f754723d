# The KV benchmark worker program (`tessera bench kv`).
add_library(tessera_bench_kv STATIC ${CMAKE_CURRENT_LIST_DIR}/kv_bench.cc)
target_include_directories(tessera_bench_kv PUBLIC ${PROJECT_SOURCE_DIR})
target_compile_options(tessera_bench_kv PRIVATE ${TESSERA_WARNINGS})
target_link_libraries(tessera_bench_kv PUBLIC tessera_worker tessera_raw_zmq_bench absl::strings)
