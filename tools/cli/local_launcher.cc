#include "tools/cli/local_launcher.h"

#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "common/logging.h"
#include "common/shutdown_signals.h"
#include "tools/cli/child_process.h"
#include "tools/cli/cluster_file.h"
#include "tools/cli/node_flags.h"

namespace tessera::cli {
namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

// How often the launcher looks for the files its children write.
constexpr int kPollIntervalMs = 50;
// SIGTERM -> SIGKILL.
constexpr std::chrono::seconds kStopGrace(10);
// After the scheduler exited, the other nodes have this long to follow.
constexpr std::chrono::seconds kWindDown(30);

void Log(LogLevel level, const std::string& message) {
  if (LogEnabled(level)) LogLine(level, message);
}

struct Child {
  std::string name;  // "server/1"
  Role role = Role::kServer;
  pid_t pid = 0;
  bool running = true;
  int wait_status = 0;
  bool lost = false;  // a worker killed while the cluster ran: survived (Reap)
};

class LocalLauncher {
 public:
  LocalLauncher(const ClusterSpec& spec, std::string exe, fs::path dir, int signal_fd)
      : spec_(spec), exe_(std::move(exe)), dir_(std::move(dir)), signal_fd_(signal_fd) {}

  int Run();

 private:
  enum class Phase { kWaitScheduler, kWaitCluster, kRunning };

  std::vector<std::string> NodeArgs(Role role, int rank) const;
  Status Spawn(Role role, int rank);
  Status SpawnMembers(const std::string& scheduler);
  void ReadSignals();
  void Reap();
  void Advance();
  void BeginStop(const std::string& why, bool failure);
  int live() const;
  // Whether a server was already lost (Reap).
  bool ServerLost() const;

  const ClusterSpec& spec_;
  const std::string exe_;
  const fs::path dir_;
  const int signal_fd_;
  const Clock::time_point startup_deadline_ =
      Clock::now() + std::chrono::seconds(spec_.startup_timeout_s);
  std::vector<Child> children_;
  Phase phase_ = Phase::kWaitScheduler;
  bool stopping_ = false;
  bool failed_ = false;
  int interrupted_by_ = 0;
  std::optional<Clock::time_point> kill_at_;
  std::optional<Clock::time_point> first_signal_;
  std::optional<Clock::time_point> wind_down_until_;
};

std::vector<std::string> LocalLauncher::NodeArgs(Role role, int rank) const {
  std::vector<std::string> args = {
      exe_,
      std::string(RoleName(role)),
      "--bind=tcp://127.0.0.1:0",
      "--host=127.0.0.1",
      "--metrics-host=127.0.0.1",
      "--metrics-port=0",
      "--log-level=" + spec_.log_level,
      "--startup-timeout-s=" + std::to_string(spec_.startup_timeout_s)};
  if (role != Role::kScheduler) args.push_back("--rank=" + std::to_string(rank));
  return args;
}

Status LocalLauncher::Spawn(Role role, int rank) {
  std::vector<std::string> args = NodeArgs(role, rank);
  if (role == Role::kScheduler) {
    args.push_back("--servers=" + std::to_string(spec_.servers));
    args.push_back("--workers=" + std::to_string(spec_.workers));
    args.push_back("--heartbeat-interval-ms=" + std::to_string(spec_.heartbeat_interval_ms));
    args.push_back("--heartbeat-timeout-ms=" + std::to_string(spec_.heartbeat_timeout_ms));
    args.push_back("--address-file=" + (dir_ / "scheduler.addr").string());
    args.push_back("--cluster-file=" + (dir_ / "cluster.json").string());
    for (const std::string& table : spec_.table_specs) args.push_back("--table=" + table);
    if (spec_.table_specs.empty()) {
      // The program's tables may depend on its arguments (a job file).
      args.push_back("--tables-for=" + spec_.program);
      if (!spec_.program_args.empty()) args.push_back("--");
      args.insert(args.end(), spec_.program_args.begin(), spec_.program_args.end());
    }
  }
  if (role == Role::kWorker) {
    args.push_back("--program=" + spec_.program);
    if (!spec_.program_args.empty()) args.push_back("--");
    args.insert(args.end(), spec_.program_args.begin(), spec_.program_args.end());
  }
  TESSERA_ASSIGN_OR_RETURN(pid_t pid, SpawnChild(args));
  Child child{std::string(RoleName(role)) + "/" + std::to_string(rank), role, pid};
  TESSERA_LOG(kDebug) << "started " << child.name << " as pid " << pid;
  children_.push_back(std::move(child));
  return OkStatus();
}

Status LocalLauncher::SpawnMembers(const std::string& scheduler) {
  // The children find the scheduler through the environment, like pods do.
  ::setenv(kSchedulerEnv, scheduler.c_str(), 1);
  for (int i = 0; i < spec_.servers; ++i) TESSERA_RETURN_IF_ERROR(Spawn(Role::kServer, i));
  for (int i = 0; i < spec_.workers; ++i) TESSERA_RETURN_IF_ERROR(Spawn(Role::kWorker, i));
  return OkStatus();
}

int LocalLauncher::live() const {
  int n = 0;
  for (const Child& child : children_) n += child.running ? 1 : 0;
  return n;
}

void LocalLauncher::BeginStop(const std::string& why, bool failure) {
  failed_ = failed_ || failure;
  if (stopping_) return;
  stopping_ = true;
  kill_at_ = Clock::now() + kStopGrace;
  Log(failure ? LogLevel::kError : LogLevel::kInfo,
      why + "; stopping " + std::to_string(live()) + " node(s)");
  for (const Child& child : children_) {
    if (child.running) ::kill(child.pid, SIGTERM);
  }
}

void LocalLauncher::ReadSignals() {
  signalfd_siginfo info;
  while (::read(signal_fd_, &info, sizeof(info)) == static_cast<ssize_t>(sizeof(info))) {
    int signo = static_cast<int>(info.ssi_signo);
    if (signo == SIGCHLD) continue;  // Reap() runs after every wake-up
    const Clock::time_point now = Clock::now();
    if (first_signal_ && now - *first_signal_ > kInsistAfter) {
      TESSERA_LOG(kWarning) << ShutdownSignalName(signo) << " again: killing every node";
      kill_at_ = now;
    }
    const bool first = !first_signal_;
    if (first) first_signal_ = now;
    if (first && spec_.drain_on_signal && !stopping_) {
      Log(LogLevel::kInfo, std::string("launcher received ") + ShutdownSignalName(signo) +
                               ": draining the stream (again to stop every node)");
      for (const Child& child : children_) {
        if (child.running && child.role == Role::kScheduler) ::kill(child.pid, signo);
      }
      continue;
    }
    interrupted_by_ = signo;
    BeginStop(std::string("launcher received ") + ShutdownSignalName(signo), false);
  }
}

bool LocalLauncher::ServerLost() const {
  for (const Child& child : children_) {
    if (child.role == Role::kServer && child.lost) return true;
  }
  return false;
}

void LocalLauncher::Reap() {
  int status = 0;
  pid_t pid;
  while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
    for (Child& child : children_) {
      if (child.pid != pid || !child.running) continue;
      child.running = false;
      child.wait_status = status;
      bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
      // A worker other than worker 0 (which writes the model) killed by a
      // signal (SIGKILL, the OOM killer) while the cluster runs is survived:
      // the scheduler declares it dead and hands its data to the others. So
      // is a server with cluster.replication >= 2 (its backup is promoted),
      // one at a time: the scheduler stops the job if the failover fails.
      const bool survivable =
          (child.role == Role::kWorker && child.name != "worker/0") ||
          (child.role == Role::kServer && spec_.replication >= 2 && !ServerLost());
      child.lost = !ok && !stopping_ && phase_ == Phase::kRunning && survivable &&
                   WIFSIGNALED(status);
      Log(ok ? LogLevel::kInfo : child.lost ? LogLevel::kWarning : LogLevel::kError,
          child.name + " (pid " + std::to_string(pid) + ") ended: " + DescribeExit(status) +
              (!child.lost                     ? ""
               : child.role == Role::kServer ? "; its backup takes over its shards"
                                             : "; the other workers take over its data"));
      if (!ok && !stopping_ && !child.lost) BeginStop(child.name + " failed", true);
      if (child.role == Role::kScheduler && !stopping_ && live() > 0) {
        wind_down_until_ = Clock::now() + kWindDown;
      }
    }
  }
}

// Moves the start-up forward: scheduler address -> members -> cluster.json.
void LocalLauncher::Advance() {
  if (stopping_) return;
  if (phase_ == Phase::kWaitScheduler && fs::exists(dir_ / "scheduler.addr")) {
    StatusOr<std::string> addr = ReadWholeFile((dir_ / "scheduler.addr").string());
    Status s =
        addr.ok() ? SpawnMembers(std::string(absl::StripAsciiWhitespace(*addr))) : addr.status();
    if (!s.ok()) return BeginStop("cannot start the nodes: " + std::string(s.message()), true);
    phase_ = Phase::kWaitCluster;
  }
  if (phase_ == Phase::kWaitCluster && fs::exists(dir_ / "cluster.json")) {
    phase_ = Phase::kRunning;
    TESSERA_LOG(kInfo) << "cluster running: " << spec_.servers << " server(s), " << spec_.workers
                       << " worker(s) running " << spec_.program << "; see "
                       << (dir_ / "cluster.json").string();
  }
  if (phase_ != Phase::kRunning && Clock::now() > startup_deadline_) {
    BeginStop("the cluster did not start within " + std::to_string(spec_.startup_timeout_s) + " s",
              true);
  }
  if (wind_down_until_ && Clock::now() > *wind_down_until_) {
    BeginStop("nodes still running long after the scheduler exited", true);
  }
}

int LocalLauncher::Run() {
  if (Status s = Spawn(Role::kScheduler, 0); !s.ok()) {
    TESSERA_LOG(kError) << "cannot start the scheduler: " << s;
    return 1;
  }
  while (live() > 0) {
    pollfd fd{signal_fd_, POLLIN, 0};
    ::poll(&fd, 1, kPollIntervalMs);
    ReadSignals();
    Advance();
    Reap();
    if (kill_at_ && Clock::now() >= *kill_at_) {
      for (Child& child : children_) {
        if (!child.running) continue;
        TESSERA_LOG(kWarning) << child.name << " (pid " << child.pid << ") did not stop: SIGKILL";
        ::kill(child.pid, SIGKILL);
      }
      kill_at_ = Clock::now() + kStopGrace;  // keep reaping; kill again if needed
    }
  }
  if (interrupted_by_ != 0) return 128 + interrupted_by_;
  for (const Child& child : children_) {
    if (child.lost) continue;
    if (!WIFEXITED(child.wait_status) || WEXITSTATUS(child.wait_status) != 0) failed_ = true;
  }
  if (phase_ == Phase::kWaitCluster && fs::exists(dir_ / "cluster.json")) phase_ = Phase::kRunning;
  if (phase_ != Phase::kRunning) failed_ = true;  // the cluster never ran
  Log(failed_ ? LogLevel::kError : LogLevel::kInfo,
      failed_ ? "cluster failed" : "cluster finished: every node exited 0");
  return failed_ ? 1 : 0;
}

StatusOr<fs::path> PrepareOutputDir(const std::string& requested) {
  fs::path dir = requested;
  std::error_code error;
  if (dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern =
        std::string(tmp != nullptr && tmp[0] != '\0' ? tmp : "/tmp") + "/tessera-local-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      return UnavailableError("cannot create a directory from " + pattern);
    }
    dir = pattern;
  } else if (!fs::create_directories(dir, error) && error) {
    return UnavailableError("cannot create " + dir.string() + ": " + error.message());
  }
  // Files of an earlier run would be taken for this one's.
  fs::remove(dir / "scheduler.addr", error);
  fs::remove(dir / "cluster.json", error);
  return dir;
}

}  // namespace

int RunLocalCluster(const ClusterSpec& spec, const WorkerProgramRegistry& programs) {
  SetLogNodeLabel("launcher/0");
  Status s = ApplyLogLevel(spec.log_level);
  if (s.ok() && programs.Find(spec.program) == nullptr) {
    s = InvalidArgumentError("unknown worker program '" + spec.program + "'");
  }
  if (s.ok()) s = programs.TablesFor(spec.table_specs, spec.program, spec.program_args).status();
  if (s.ok() && (spec.servers < 0 || spec.workers < 1)) {
    s = InvalidArgumentError("need --servers >= 0 and --workers >= 1");
  }
  StatusOr<std::string> token = ReadOrGenerateClusterToken(spec.token_file);
  StatusOr<std::string> curve_dir = ResolveCurveDir(spec.curve_dir);
  StatusOr<std::string> exe = SelfExePath();
  StatusOr<fs::path> dir = PrepareOutputDir(spec.output_dir);
  for (const Status& step : {token.status(), curve_dir.status(), exe.status(), dir.status()}) {
    if (s.ok()) s = step;
  }
  if (!s.ok()) {
    TESSERA_LOG(kError) << s;
    return 2;
  }
  ::setenv(kTokenEnv, token->c_str(), 1);  // inherited by every child
  if (!curve_dir->empty()) ::setenv(kCurveDirEnv, curve_dir->c_str(), 1);  // a path, not a key
  TESSERA_LOG(kInfo) << "starting 1 scheduler, " << spec.servers << " server(s), " << spec.workers
                     << " worker(s); output in " << dir->string();

  // With SIGCHLD ignored (inherited) the kernel would reap children for us
  // and we could never learn how they ended.
  ::signal(SIGCHLD, SIG_DFL);
  sigset_t set = ShutdownSignalSet();
  sigaddset(&set, SIGCHLD);
  ::sigprocmask(SIG_BLOCK, &set, nullptr);  // SIGCHLD too: it is read from the fd
  int signal_fd = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (signal_fd < 0) {
    TESSERA_LOG(kError) << "signalfd failed";
    return 1;
  }
  int code = LocalLauncher(spec, *exe, *dir, signal_fd).Run();
  ::close(signal_fd);
  return code;
}

}  // namespace tessera::cli
