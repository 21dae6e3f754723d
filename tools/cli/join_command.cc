#include "tools/cli/join_command.h"

#include <unistd.h>

#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/http_server.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/shutdown_signals.h"
#include "serving/feedback/joiner.h"
#include "models/job_config.h"
#include "models/schema.h"
#include "models/tsv_parser.h"
#include "tools/cli/node_flags.h"

namespace tessera::cli {
namespace {

struct JoinFlags {
  std::string job;
  std::vector<std::string> overrides;
  std::string impression_dir;
  std::string output_dir;
  bool once = false;
  std::string log_level = "info";
  int metrics_port = -1;  // -1: no /metrics endpoint
};

// The joiner's options from the job file and flags.
StatusOr<feedback::JoinerOptions> Options(const JoinFlags& flags, const models::JobConfig& job) {
  feedback::JoinerOptions options;
  options.event_dir = flags.impression_dir.empty() ? job.join.impression_dir : flags.impression_dir;
  if (options.event_dir.empty()) {
    return InvalidArgumentError(
        "no event log: give --impression-dir or join.impression_dir (serve's --impression-dir)");
  }
  options.output_dir = flags.output_dir.empty() ? job.join.output_dir : flags.output_dir;
  if (options.output_dir.empty() && job.data.follow && job.data.train.size() == 1) {
    options.output_dir = job.data.train[0];  // the directory the job trains on
  }
  if (options.output_dir.empty()) {
    return InvalidArgumentError(
        "no output directory: give --out, join.output_dir, or data.train with data.follow: true");
  }
  options.window_ms = static_cast<int64_t>(job.join.window_s * 1000);
  options.grace_ms = static_cast<int64_t>(job.join.grace_s * 1000);
  options.max_open = job.join.max_open;
  options.arms = job.join.arms;
  return options;
}

int RunJoin(const JoinFlags& flags) {
  auto fail = [](const Status& s) {
    std::cerr << "tessera join: " << s.message() << "\n";
    return s.code() == StatusCode::kInvalidArgument ? kExitUsage : 1;
  };
  if (Status s = ApplyLogLevel(flags.log_level); !s.ok()) return fail(s);
  SetLogNodeLabel("join/0");
  StatusOr<models::JobConfig> job = models::LoadJobConfig(flags.job, flags.overrides);
  if (!job.ok()) return fail(job.status());
  StatusOr<feedback::JoinerOptions> options = Options(flags, *job);
  if (!options.ok()) return fail(options.status());
  StatusOr<models::Schema> schema = models::Schema::Load(job->data.schema);
  if (!schema.ok()) return fail(schema.status());
  // Every row is parsed as training will parse it.
  auto parser = std::make_shared<models::TsvParser>(&*schema);
  auto example = std::make_shared<models::Example>();
  options->check_row = [parser, example](std::string_view row, std::string* reason) {
    return parser->Parse(row, example.get(), reason) != models::LineKind::kBad;
  };
  RealClock clock;
  MetricsRegistry metrics;
  StatusOr<std::unique_ptr<feedback::Joiner>> joiner =
      feedback::Joiner::Open(*options, &clock, &metrics);
  if (!joiner.ok()) return fail(joiner.status());
  HttpServer http;
  if (flags.metrics_port >= 0) {
    AddObservabilityRoutes(&http, &metrics, [] { return true; });
    StatusOr<int> port = http.Start("0.0.0.0", flags.metrics_port);
    if (!port.ok()) return fail(port.status());
    TESSERA_LOG(kInfo) << "join: metrics on http://0.0.0.0:" << *port << "/metrics";
  }
  TESSERA_LOG(kInfo) << "join: " << options->event_dir << " -> " << options->output_dir
                     << " (window " << job->join.window_s << " s); " << (*joiner)->StatsLine();
  absl::Notification stop;
  ShutdownSignalWatcher watcher([&](int signo, bool insist) {
    if (insist) _exit(128 + signo);
    TESSERA_LOG(kInfo) << "join: " << ShutdownSignalName(signo) << ", stopping";
    if (!stop.HasBeenNotified()) stop.Notify();
  });
  const absl::Duration interval = absl::Milliseconds(job->join.commit_interval_ms);
  auto last_report = std::chrono::steady_clock::now();
  while (true) {
    const feedback::LogPosition before = (*joiner)->position();
    StatusOr<size_t> rows = (*joiner)->Step();
    if (!rows.ok()) {
      TESSERA_LOG(kWarning) << "join: " << rows.status().message() << " (retrying)";
    }
    const bool idle = rows.ok() && *rows == 0 && (*joiner)->position() == before;
    if (flags.once && idle) break;
    if (std::chrono::steady_clock::now() - last_report > std::chrono::seconds(10)) {
      TESSERA_LOG(kInfo) << (*joiner)->StatsLine();
      last_report = std::chrono::steady_clock::now();
    }
    if (stop.HasBeenNotified()) break;
    if (!flags.once || !rows.ok()) stop.WaitForNotificationWithTimeout(interval);
  }
  std::cout << (*joiner)->StatsLine() << std::endl;
  http.Stop();
  return 0;
}

}  // namespace

void AddJoinCommand(CLI::App* app, Command* selected) {
  CLI::App* cmd = app->add_subcommand(
      "join",
      "Join serve's impressions with click feedback into training examples (an online joiner)");
  auto flags = std::make_shared<JoinFlags>();
  cmd->add_option("job", flags->job, "Job file (YAML): join: keys, data.schema, data.train")
      ->required();
  cmd->add_option("--set", flags->overrides, "Override a job key (key.path=value), repeatable");
  cmd->add_option("--impression-dir", flags->impression_dir,
                  "serve's --impression-dir (default: join.impression_dir)");
  cmd->add_option("--out", flags->output_dir,
                  "Directory for the examples (default: join.output_dir, else data.train when "
                  "data.follow)");
  cmd->add_option("--metrics-port", flags->metrics_port,
                  "Serve /metrics (tessera_join_*_total), /healthz on this port (0: any free "
                  "port, logged; default: none)")
      ->check(CLI::Range(0, 65535));
  cmd->add_flag("--once", flags->once,
                "Read the event log to its end, commit and exit (open impressions stay in the "
                "checkpoint)");
  AddLogLevelFlag(cmd, &flags->log_level);
  cmd->footer(
      "Example: tessera serve --model-dir runs/ctr/publish --impression-dir events/ &\n"
      "         tessera join job.yaml --set join.window_s=600 &   # writes into data.train\n"
      "         tessera train job.yaml    # data: {train: joined/, follow: true}\n"
      "See docs/feedback_loop.md.");
  cmd->callback([flags, selected] { *selected = [flags] { return RunJoin(*flags); }; });
}

void AddImpressionFlags(CLI::App* serve, serving::ServeOptions* options) {
  serve->add_option("--impression-dir", options->impression_dir,
                    "Log impressions and feedback to rotating files here (for `tessera join`; "
                    "docs/feedback_loop.md)");
  serve->add_option("--impression-max-file-mb", options->impression_max_file_mb,
                    "Rotate event log files past this size (MiB)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  serve->add_option("--impression-max-file-s", options->impression_max_file_s,
                    "Rotate event log files after this many seconds")
      ->capture_default_str()
      ->check(CLI::Range(1, 86400));
  serve->add_option("--impression-fsync-ms", options->impression_fsync_ms,
                    "fsync the event log this often (0: after every batch of records)")
      ->capture_default_str()
      ->check(CLI::Range(0, 3600000));
  serve->add_option("--impression-queue", options->impression_queue,
                    "Records queued for the event log writer; more are dropped and counted")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000000));
  serve->add_option("--feedback-max-requests", options->feedback_max_requests,
                    "Requests remembered for POST /v1/feedback")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000000));
}

}  // namespace tessera::cli
