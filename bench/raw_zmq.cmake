# Raw ZeroMQ round-trip baseline and the ZmqTransport comparison.
# Included from bench/CMakeLists.txt. tessera_raw_zmq_bench is the library the
# KV benchmark links for MeasureRawZmqRoundTrip(); raw_zmq_bench is the
# standalone binary (the same source compiled with its main()).
tessera_library(tessera_raw_zmq_bench
  SRCS ${CMAKE_CURRENT_LIST_DIR}/raw_zmq_bench.cc
  DEPS tessera_common cppzmq Threads::Threads)

add_executable(raw_zmq_bench ${CMAKE_CURRENT_LIST_DIR}/raw_zmq_bench.cc)
target_compile_definitions(raw_zmq_bench PRIVATE TESSERA_RAW_ZMQ_BENCH_MAIN)
target_compile_options(raw_zmq_bench PRIVATE ${TESSERA_WARNINGS})
target_include_directories(raw_zmq_bench PRIVATE ${PROJECT_SOURCE_DIR})
target_link_libraries(raw_zmq_bench PRIVATE tessera_common cppzmq Threads::Threads)
