// SIGINT/SIGTERM handling for the process entry points (*_main.cc and the
// CLI) only; library code never touches signals.
//
// The pattern: main() calls BlockShutdownSignals() before any thread exists,
// so every thread inherits a mask with SIGINT and SIGTERM blocked and the
// default "terminate" action can never fire in the middle of a ZeroMQ or MPI
// thread. A ShutdownSignalWatcher then receives them synchronously (sigwait)
// on its own thread and runs a callback, which asks the node to stop in an
// orderly way. Child processes must unblock them again before exec.
//
// Example:
//   int main(int argc, char** argv) {
//     tessera::BlockShutdownSignals();
//     ...
//     ShutdownSignalWatcher watcher([&](int signo, bool insist) {
//       if (insist) _exit(128 + signo);
//       node.member().OnShutdown("signal");
//     });
//     node.WaitForShutdown(...);
//   }
#ifndef TESSERA_COMMON_SHUTDOWN_SIGNALS_H_
#define TESSERA_COMMON_SHUTDOWN_SIGNALS_H_

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <thread>
#include <utility>

namespace tessera {

// The signals that mean "stop": SIGINT and SIGTERM.
inline sigset_t ShutdownSignalSet() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

inline const char* ShutdownSignalName(int signo) {
  return signo == SIGINT ? "SIGINT" : signo == SIGTERM ? "SIGTERM" : "a signal";
}

// Blocks SIGINT and SIGTERM in the calling thread; threads created later
// inherit the mask. REQUIRES: called from main() before any thread exists.
inline void BlockShutdownSignals() {
  sigset_t set = ShutdownSignalSet();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

// A repeated stop signal counts as "stop now" only this long after the first:
// one Ctrl-C or `timeout` reaches a process twice (directly and through its
// process group, or forwarded by a launcher), and that must still stop it in
// order.
inline constexpr std::chrono::seconds kInsistAfter(2);

// Runs `on_signal(signo, insist)` on a dedicated thread for every
// SIGINT/SIGTERM delivered to the process, until destroyed; `insist` is true
// when an earlier one arrived more than kInsistAfter ago (the user asks
// again: stop waiting). The callback must not block.
// REQUIRES: BlockShutdownSignals() was called before any thread started.
// Thread-compatible; owns its thread (joined by the destructor).
class ShutdownSignalWatcher {
 public:
  explicit ShutdownSignalWatcher(std::function<void(int signo, bool insist)> on_signal)
      : on_signal_(std::move(on_signal)), thread_([this] { Loop(); }) {}
  ~ShutdownSignalWatcher() {
    stopping_.store(true);
    // SIGTERM is blocked in the watcher thread, so this only ends its
    // sigwait(); the loop sees stopping_ and returns.
    pthread_kill(thread_.native_handle(), SIGTERM);
    thread_.join();
  }
  ShutdownSignalWatcher(const ShutdownSignalWatcher&) = delete;
  ShutdownSignalWatcher& operator=(const ShutdownSignalWatcher&) = delete;

 private:
  void Loop() {
    const sigset_t set = ShutdownSignalSet();
    std::optional<std::chrono::steady_clock::time_point> first;
    while (true) {
      int signo = 0;
      if (sigwait(&set, &signo) != 0) continue;
      if (stopping_.load()) return;
      const auto now = std::chrono::steady_clock::now();
      on_signal_(signo, first.has_value() && now - *first > kInsistAfter);
      if (!first) first = now;
    }
  }

  const std::function<void(int, bool)> on_signal_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace tessera

#endif  // TESSERA_COMMON_SHUTDOWN_SIGNALS_H_
