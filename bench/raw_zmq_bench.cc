#include "bench/raw_zmq_bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <zmq.hpp>

#include "common/status.h"
#include "common/transport.h"
#include "common/zmq_transport.h"

namespace tessera::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kServerPatience = std::chrono::seconds(30);  // A stuck run ends.

int WarmupIterations(int iterations) { return std::clamp(iterations / 10, 2, 50); }

// Figures from per-iteration latencies (microseconds) and the loop's wall time.
RawZmqResult Summarize(std::vector<double> latencies_us, double wall_s, size_t bytes_per_trip) {
  RawZmqResult r;
  if (latencies_us.empty() || wall_s <= 0) return r;
  std::sort(latencies_us.begin(), latencies_us.end());
  const size_t n = latencies_us.size();
  r.p50_us = latencies_us[n / 2];
  r.p99_us = latencies_us[std::min(n - 1, static_cast<size_t>(std::ceil(n * 0.99)) - 1)];
  r.round_trips_per_s = static_cast<double>(n) / wall_s;
  r.mb_per_s = r.round_trips_per_s * static_cast<double>(bytes_per_trip) / 1e6;
  return r;
}

RawZmqResult Failed(std::string error) {
  RawZmqResult r;
  r.error = std::move(error);
  return r;
}

// A zero-copy message over `bytes`, which must outlive the send.
zmq::message_t Borrow(std::vector<char>& bytes) {
  return zmq::message_t(bytes.data(), bytes.size(), /*ffn=*/nullptr);
}

// ROUTER echo server for MeasureRawZmqRoundTrip: answers `count` requests
// with `*reply`, sent zero-copy, so it must outlive the context (an I/O
// thread may still be writing the last reply when this returns).
void RawServer(zmq::socket_t* router, std::vector<char>* reply, int count, std::string* error) {
  try {
    for (int i = 0; i < count; ++i) {
      zmq::pollitem_t item{router->handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, kServerPatience) == 0) {
        *error = "server: no request";
        return;
      }
      zmq::message_t id;
      zmq::message_t request;
      (void)router->recv(id);
      (void)router->recv(request);
      router->send(id, zmq::send_flags::sndmore);
      zmq::message_t out = Borrow(*reply);
      router->send(out, zmq::send_flags::none);
    }
  } catch (const zmq::error_t& e) {
    *error = std::string("server: ") + e.what();
  }
}

// Server side of MeasureZmqTransportRoundTrip: answers `count` requests.
void TransportServer(Transport* server, size_t reply_bytes, int count, std::string* error) {
  auto buffer = std::make_shared<const std::string>(reply_bytes, 'r');
  const Frame reply(reinterpret_cast<const uint8_t*>(buffer->data()), buffer->size(), buffer);
  for (int i = 0; i < count; ++i) {
    StatusOr<Message> request = server->Receive(Clock::now() + kServerPatience);
    if (!request.ok()) {
      *error = "server: " + request.status().ToString();
      return;
    }
    Status s = server->Send(Message{request->to, request->from, {reply}});
    if (!s.ok()) {
      *error = "server: " + s.ToString();
      return;
    }
  }
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

RawZmqResult MeasureRawZmqRoundTrip(size_t request_bytes, size_t reply_bytes, int iterations) {
  const int warmup = WarmupIterations(iterations);
  std::string server_error;
  std::vector<double> latencies;
  double wall_s = 0;
  // Sent zero-copy: declared before the contexts, so they outlive every send.
  std::vector<char> request(request_bytes, 'q');
  std::vector<char> reply(reply_bytes, 'r');
  try {
    zmq::context_t server_ctx(1);
    zmq::context_t client_ctx(1);
    zmq::socket_t router(server_ctx, zmq::socket_type::router);
    router.set(zmq::sockopt::linger, 0);
    router.bind("tcp://127.0.0.1:0");
    const std::string endpoint = router.get(zmq::sockopt::last_endpoint);
    zmq::socket_t dealer(client_ctx, zmq::socket_type::dealer);
    dealer.set(zmq::sockopt::linger, 0);
    dealer.connect(endpoint);

    // The router moves to the server thread; the join is the memory barrier.
    std::thread server(RawServer, &router, &reply, warmup + iterations, &server_error);
    latencies.reserve(iterations);
    Clock::time_point loop_start;
    try {
      for (int i = 0; i < warmup + iterations; ++i) {
        if (i == warmup) loop_start = Clock::now();
        const auto t0 = Clock::now();
        zmq::message_t out = Borrow(request);
        dealer.send(out, zmq::send_flags::none);
        zmq::message_t reply;
        zmq::pollitem_t item{dealer.handle(), 0, ZMQ_POLLIN, 0};
        if (zmq::poll(&item, 1, kServerPatience) == 0 || !dealer.recv(reply)) {
          server.join();
          return Failed("client: no reply. " + server_error);
        }
        if (i >= warmup) {
          latencies.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
        }
      }
    } catch (const zmq::error_t&) {
      server.join();
      throw;
    }
    wall_s = std::chrono::duration<double>(Clock::now() - loop_start).count();
    server.join();
  } catch (const zmq::error_t& e) {
    return Failed(std::string("zmq: ") + e.what());
  }
  if (!server_error.empty()) return Failed(server_error);
  return Summarize(std::move(latencies), wall_s, request_bytes + reply_bytes);
}

RawZmqResult MeasureZmqTransportRoundTrip(size_t request_bytes, size_t reply_bytes,
                                          int iterations) {
  constexpr NodeId kClient{Role::kWorker, 0};
  constexpr NodeId kServer{Role::kServer, 0};
  StatusOr<std::unique_ptr<Transport>> client = NewZmqTransport({});
  StatusOr<std::unique_ptr<Transport>> server = NewZmqTransport({});
  if (!client.ok()) return Failed(client.status().ToString());
  if (!server.ok()) return Failed(server.status().ToString());
  StatusOr<std::string> client_ep = (*client)->Bind("tcp://127.0.0.1:0");
  StatusOr<std::string> server_ep = (*server)->Bind("tcp://127.0.0.1:0");
  if (!client_ep.ok()) return Failed(client_ep.status().ToString());
  if (!server_ep.ok()) return Failed(server_ep.status().ToString());
  Status s = (*client)->Connect(kServer, *server_ep);
  if (s.ok()) s = (*server)->Connect(kClient, *client_ep);
  if (!s.ok()) return Failed(s.ToString());

  const int warmup = WarmupIterations(iterations);
  std::string server_error;
  std::thread server_thread(TransportServer, server->get(), reply_bytes, warmup + iterations,
                            &server_error);
  auto buffer = std::make_shared<const std::string>(request_bytes, 'q');
  const Frame request(reinterpret_cast<const uint8_t*>(buffer->data()), buffer->size(), buffer);
  std::vector<double> latencies;
  latencies.reserve(iterations);
  Clock::time_point loop_start;
  std::string client_error;
  for (int i = 0; i < warmup + iterations && client_error.empty(); ++i) {
    if (i == warmup) loop_start = Clock::now();
    const auto t0 = Clock::now();
    s = (*client)->Send(Message{kClient, kServer, {request}});
    StatusOr<Message> reply = s.ok() ? (*client)->Receive(Clock::now() + kServerPatience)
                                     : StatusOr<Message>(s);
    if (!reply.ok()) {
      client_error = "client: " + reply.status().ToString();
    } else if (i >= warmup) {
      latencies.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    }
  }
  const double wall_s = std::chrono::duration<double>(Clock::now() - loop_start).count();
  if (!client_error.empty()) (*server)->Shutdown();  // Unblocks the server thread.
  server_thread.join();
  if (!client_error.empty()) return Failed(client_error + " " + server_error);
  if (!server_error.empty()) return Failed(server_error);
  return Summarize(std::move(latencies), wall_s, request_bytes + reply_bytes);
}

namespace {

struct BenchArgs {
  std::vector<std::pair<size_t, size_t>> sizes = {
      {64, 64}, {8'000, 32'000}, {800'000, 25'600'000}};
  int iterations = 0;  // 0: by size.
  int repetitions = 5;
};

bool ParseSizes(const std::string& text, std::vector<std::pair<size_t, size_t>>* out) {
  out->clear();
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string::npos) comma = text.size();
    const std::string item = text.substr(pos, comma - pos);
    const size_t colon = item.find(':');
    if (colon == std::string::npos) return false;
    char* end = nullptr;
    const unsigned long long req = std::strtoull(item.c_str(), &end, 10);
    if (end != item.c_str() + colon) return false;
    const unsigned long long rep = std::strtoull(item.c_str() + colon + 1, &end, 10);
    if (*end != '\0' || colon + 1 == item.size()) return false;
    out->emplace_back(req, rep);
    pos = comma + 1;
  }
  return !out->empty();
}

bool ParseArgs(const std::vector<std::string>& args, BenchArgs* out) {
  for (const std::string& a : args) {
    auto value = [&](const char* flag) -> const char* {
      const size_t n = std::char_traits<char>::length(flag);
      return a.compare(0, n, flag) == 0 ? a.c_str() + n : nullptr;
    };
    if (const char* v = value("--sizes=")) {
      if (!ParseSizes(v, &out->sizes)) return false;
    } else if (const char* v = value("--iterations=")) {
      out->iterations = std::atoi(v);
      if (out->iterations <= 0) return false;
    } else if (const char* v = value("--repetitions=")) {
      out->repetitions = std::atoi(v);
      if (out->repetitions <= 0) return false;
    } else {
      return false;
    }
  }
  return true;
}

// About 0.2 GB of traffic per run, between 20 and 20000 round trips.
int DefaultIterations(size_t bytes_per_trip) {
  const double n = 200e6 / static_cast<double>(std::max<size_t>(bytes_per_trip, 10'000));
  return static_cast<int>(std::clamp(n, 20.0, 20'000.0));
}

std::string HumanBytes(size_t b) {
  char buf[32];
  if (b >= 1'000'000) {
    std::snprintf(buf, sizeof(buf), "%.1fMB", b / 1e6);
  } else if (b >= 1'000) {
    std::snprintf(buf, sizeof(buf), "%.1fKB", b / 1e3);
  } else {
    std::snprintf(buf, sizeof(buf), "%zuB", b);
  }
  return buf;
}

// Median of each figure over `repetitions` runs of `measure`.
template <typename Fn>
RawZmqResult MedianOf(int repetitions, Fn measure) {
  std::vector<double> p50, p99, rts, mbs;
  for (int r = 0; r < repetitions; ++r) {
    RawZmqResult one = measure();
    if (!one.error.empty()) return one;
    p50.push_back(one.p50_us);
    p99.push_back(one.p99_us);
    rts.push_back(one.round_trips_per_s);
    mbs.push_back(one.mb_per_s);
  }
  RawZmqResult r;
  r.p50_us = Median(p50);
  r.p99_us = Median(p99);
  r.round_trips_per_s = Median(rts);
  r.mb_per_s = Median(mbs);
  return r;
}

}  // namespace

int RunTransportBench(const std::vector<std::string>& args) {
  BenchArgs opts;
  if (!ParseArgs(args, &opts)) {
    std::fprintf(stderr,
                 "usage: raw_zmq_bench [--sizes=REQ:REPLY,...] [--iterations=N] "
                 "[--repetitions=R]\n");
    return 2;
  }
  std::printf("Round trips over tcp://127.0.0.1, one in flight; medians of %d runs.\n",
              opts.repetitions);
  std::printf("%-9s %-9s %6s | %9s %9s %9s %9s | %9s %9s %9s %9s | %6s %6s %6s\n", "request",
              "reply", "iters", "raw p50", "raw p99", "raw rt/s", "raw MB/s", "tr p50", "tr p99",
              "tr rt/s", "tr MB/s", "p50 x", "p99 x", "rt/s x");
  int exit_code = 0;
  for (const auto& size : opts.sizes) {
    const size_t req = size.first;  // Not a structured binding: clang 14 cannot capture those.
    const size_t rep = size.second;
    const int iters = opts.iterations > 0 ? opts.iterations : DefaultIterations(req + rep);
    const RawZmqResult raw =
        MedianOf(opts.repetitions, [&] { return MeasureRawZmqRoundTrip(req, rep, iters); });
    const RawZmqResult tr =
        MedianOf(opts.repetitions, [&] { return MeasureZmqTransportRoundTrip(req, rep, iters); });
    if (!raw.error.empty() || !tr.error.empty()) {
      std::fprintf(stderr, "%s:%s failed: %s %s\n", HumanBytes(req).c_str(),
                   HumanBytes(rep).c_str(), raw.error.c_str(), tr.error.c_str());
      exit_code = 1;
      continue;
    }
    auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
    std::printf(
        "%-9s %-9s %6d | %7.1fus %7.1fus %9.0f %9.1f | %7.1fus %7.1fus %9.0f %9.1f | %6.2f "
        "%6.2f %6.2f\n",
        HumanBytes(req).c_str(), HumanBytes(rep).c_str(), iters, raw.p50_us, raw.p99_us,
        raw.round_trips_per_s, raw.mb_per_s, tr.p50_us, tr.p99_us, tr.round_trips_per_s,
        tr.mb_per_s, ratio(tr.p50_us, raw.p50_us), ratio(tr.p99_us, raw.p99_us),
        ratio(tr.round_trips_per_s, raw.round_trips_per_s));
    std::fflush(stdout);
  }
  return exit_code;
}

}  // namespace tessera::bench

// The same file is the raw_zmq_bench executable (bench/raw_zmq.cmake compiles
// it a second time with this macro), so the library and the binary share one
// source without a separate main file.
#ifdef TESSERA_RAW_ZMQ_BENCH_MAIN
int main(int argc, char** argv) {
  return tessera::bench::RunTransportBench(std::vector<std::string>(argv + 1, argv + argc));
}
#endif
