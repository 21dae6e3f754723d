// Helpers for tests that run the `tessera` binary as real processes: spawn,
// wait with a deadline, check liveness, and read HTTP endpoints. Waiting on
// external processes polls with a deadline (there is nothing to notify us).
#ifndef TESSERA_TESTS_E2E_PROCESS_UTIL_H_
#define TESSERA_TESTS_E2E_PROCESS_UTIL_H_

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace tessera::testing {

// The binary under test: $TESSERA_BIN (set by CMake to $<TARGET_FILE:tessera>).
std::string TesseraBinary();

// Forks and execs argv (argv[0] is a path) with stdout and stderr appended
// to `output_file` (inherited if empty). The child is SIGKILLed if the test
// process dies. With `own_group` it leads a new process group (pgid = pid),
// like a job a shell starts. Returns -1 if fork fails.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& output_file = "",
            bool own_group = false);

// The waitpid() status of `pid` once it exits, or nullopt after `timeout`.
std::optional<int> WaitForExit(pid_t pid, std::chrono::milliseconds timeout);

// Spawns argv (output to `output_file`) and waits for it: its exit code
// (128 + the signal if a signal ended it), or -1 if it was still running
// after `timeout` (then it is SIGKILLed and reaped).
int RunToExit(const std::vector<std::string>& argv, const std::string& output_file,
              std::chrono::milliseconds timeout);

// SIGTERM, then its exit code (128 + the signal if a signal ended it) once
// it exits within `timeout`; otherwise -1, SIGKILLed and reaped. -1 for
// pid <= 0.
int StopProcess(pid_t pid, std::chrono::milliseconds timeout);

// Starts `binary serve --port 0 args...` (output to `log`) and waits until
// the log names its port and GET /readyz answers 200. Returns the pid and
// sets *port; -1 after `timeout` (the process is killed).
pid_t StartServe(const std::string& binary, const std::vector<std::string>& args,
                 const std::string& log, int* port,
                 std::chrono::milliseconds timeout = std::chrono::seconds(60));

// True while `pid` exists and is not a zombie.
bool ProcessAlive(pid_t pid);

// Polls `condition` every 20 ms until it holds (true) or `timeout` passes.
bool PollUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

struct HttpResult {
  int status = 0;
  std::string body;
};
// GET http://127.0.0.1:port/path; nullopt if the connection fails.
std::optional<HttpResult> HttpGet(int port, const std::string& path);

std::string ReadFileOrEmpty(const std::string& path);

}  // namespace tessera::testing

#endif  // TESSERA_TESTS_E2E_PROCESS_UTIL_H_
