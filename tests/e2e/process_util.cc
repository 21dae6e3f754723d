#include "tests/e2e/process_util.h"

#include <fcntl.h>
#include <httplib.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace tessera::testing {

std::string TesseraBinary() {
  const char* path = std::getenv("TESSERA_BIN");
  return path != nullptr ? path : "";
}

pid_t Spawn(const std::vector<std::string>& argv, const std::string& output_file, bool own_group) {
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(127);
  if (own_group) ::setpgid(0, 0);
  if (!output_file.empty()) {
    int fd = ::open(output_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
      ::close(fd);
    }
  }
  ::execv(args[0], args.data());
  ::_exit(127);
}

std::optional<int> WaitForExit(pid_t pid, std::chrono::milliseconds timeout) {
  int status = 0;
  bool done = PollUntil([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, timeout);
  if (!done) return std::nullopt;
  return status;
}

namespace {

// `pid`'s exit code (128 + the signal if a signal ended it) once it exits
// within `timeout`; otherwise -1, SIGKILLed and reaped.
int ExitCodeOrKill(pid_t pid, std::chrono::milliseconds timeout) {
  const std::optional<int> status = WaitForExit(pid, timeout);
  if (!status) {
    ::kill(pid, SIGKILL);
    WaitForExit(pid, std::chrono::seconds(10));
    return -1;
  }
  return WIFEXITED(*status) ? WEXITSTATUS(*status) : 128 + WTERMSIG(*status);
}

}  // namespace

int RunToExit(const std::vector<std::string>& argv, const std::string& output_file,
              std::chrono::milliseconds timeout) {
  const pid_t pid = Spawn(argv, output_file);
  return pid < 0 ? -1 : ExitCodeOrKill(pid, timeout);
}

int StopProcess(pid_t pid, std::chrono::milliseconds timeout) {
  if (pid <= 0) return -1;
  ::kill(pid, SIGTERM);
  return ExitCodeOrKill(pid, timeout);
}

pid_t StartServe(const std::string& binary, const std::vector<std::string>& args,
                 const std::string& log, int* port, std::chrono::milliseconds timeout) {
  std::vector<std::string> argv = {binary, "serve", "--port", "0"};
  argv.insert(argv.end(), args.begin(), args.end());
  const pid_t pid = Spawn(argv, log);
  if (pid < 0) return -1;
  static constexpr char kListening[] = "listening on http://127.0.0.1:";
  const bool ready = PollUntil(
      [&] {
        if (!ProcessAlive(pid)) return true;
        const std::string text = ReadFileOrEmpty(log);
        const size_t at = text.find(kListening);
        if (at == std::string::npos) return false;
        *port = std::atoi(text.c_str() + at + std::strlen(kListening));
        const std::optional<HttpResult> readyz = HttpGet(*port, "/readyz");
        return readyz && readyz->status == 200;
      },
      timeout);
  if (ready && ProcessAlive(pid)) return pid;
  ::kill(pid, SIGKILL);
  WaitForExit(pid, std::chrono::seconds(10));
  return -1;
}

bool ProcessAlive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string content;
  if (!std::getline(stat, content)) return false;
  // Format: "pid (comm) S ..."; comm may hold spaces, so look after ')'.
  size_t paren = content.rfind(')');
  return paren != std::string::npos && paren + 2 < content.size() && content[paren + 2] != 'Z' &&
         content[paren + 2] != 'X';
}

bool PollUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::optional<HttpResult> HttpGet(int port, const std::string& path) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(std::chrono::seconds(2));
  client.set_read_timeout(std::chrono::seconds(5));
  httplib::Result result = client.Get(path);
  if (!result) return std::nullopt;
  return HttpResult{result->status, result->body};
}

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace tessera::testing
