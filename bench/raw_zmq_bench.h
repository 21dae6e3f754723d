// The raw ZeroMQ round-trip limit of this machine, and the same round trip
// through ZmqTransport, so benchmarks can print Tessera's figures beside what
// the wire itself allows.
//
// Both measure one request in flight over tcp://127.0.0.1 (OS-chosen port),
// client and server in one process on separate threads, each side with its
// own zmq context and one I/O thread (as two processes would have). Payloads
// are sent zero-copy from preallocated buffers on both paths.
//
// Example:
//   RawZmqResult raw = MeasureRawZmqRoundTrip(800'000, 25'600'000, 30);
//   std::printf("raw pull: p50 %.0f us, %.0f MB/s\n", raw.p50_us, raw.mb_per_s);
#ifndef TESSERA_BENCH_RAW_ZMQ_BENCH_H_
#define TESSERA_BENCH_RAW_ZMQ_BENCH_H_

#include <cstddef>
#include <string>
#include <vector>

namespace tessera::bench {

struct RawZmqResult {
  double p50_us = 0;             // Median round-trip latency.
  double p99_us = 0;             // 99th percentile round-trip latency.
  double round_trips_per_s = 0;  // iterations / wall time of the timed loop.
  double mb_per_s = 0;           // (request + reply bytes) per second, 1 MB = 1e6 B.
  std::string error;             // Empty on success; otherwise the figures are 0.
};

// A DEALER client and a ROUTER echo-server thread: `iterations` timed round
// trips (after a short warm-up), each a request of `request_bytes` answered
// by a reply of `reply_bytes`. REQUIRES: iterations > 0.
RawZmqResult MeasureRawZmqRoundTrip(size_t request_bytes, size_t reply_bytes, int iterations);

// The same round trip between two ZmqTransport instances (client and server
// each bind a ROUTER and send over a DEALER, as in production).
RawZmqResult MeasureZmqTransportRoundTrip(size_t request_bytes, size_t reply_bytes,
                                          int iterations);

// Runs both for several sizes and prints them side by side with the
// transport/raw ratios, each figure the median over repetitions. `args`:
//   --sizes=REQ:REPLY[,REQ:REPLY...]  bytes (default 64:64,8000:32000,800000:25600000,
//                                     i.e. tiny, 1k keys x 8 floats, 100k keys x 64 floats)
//   --iterations=N   timed round trips per run (default: by size, ~0.2 GB per run)
//   --repetitions=R  runs per figure (default 5)
// Returns a process exit code (0 ok, 1 measurement failed, 2 bad arguments).
int RunTransportBench(const std::vector<std::string>& args);

}  // namespace tessera::bench

#endif  // TESSERA_BENCH_RAW_ZMQ_BENCH_H_
