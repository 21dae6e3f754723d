#include "tools/cli/child_process.h"

#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

namespace tessera::cli {

StatusOr<std::string> SelfExePath() {
  char path[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n <= 0) return UnavailableError(std::string("readlink /proc/self/exe: ") + strerror(errno));
  return std::string(path, static_cast<size_t>(n));
}

StatusOr<pid_t> SpawnChild(const std::vector<std::string>& argv) {
  if (argv.empty()) return InvalidArgumentError("SpawnChild: empty argv");
  // Everything the child touches is prepared before fork(): after it, only
  // async-signal-safe calls.
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  const pid_t parent = ::getpid();
  sigset_t none;
  sigemptyset(&none);

  pid_t pid = ::fork();
  if (pid < 0) return UnavailableError(std::string("fork: ") + strerror(errno));
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the launcher died before prctl
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    ::signal(SIGCHLD, SIG_DFL);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execv(args[0], args.data());
    static constexpr char kMsg[] = "tessera: exec failed\n";
    (void)!::write(STDERR_FILENO, kMsg, sizeof(kMsg) - 1);
    ::_exit(127);
  }
  return pid;
}

std::string DescribeExit(int wait_status) {
  if (WIFEXITED(wait_status)) return "exit " + std::to_string(WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) {
    const char* name = sigabbrev_np(WTERMSIG(wait_status));
    return std::string("killed by SIG") +
           (name != nullptr ? std::string(name) : std::to_string(WTERMSIG(wait_status)));
  }
  return "status " + std::to_string(wait_status);
}

}  // namespace tessera::cli
