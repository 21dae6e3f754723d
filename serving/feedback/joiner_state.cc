// The joiner's checkpoint and commit protocol (feedback/joiner.h).
//
// OUT/.join-state, text:
//   tessera-join-state 1
//   next_seq N
//   pending_seq N          (the output file this checkpoint commits; 0: none;
//                          informational: Open() completes every temp output
//                          numbered below next_seq)
//   file NAME              (event log position; "-" before the first file)
//   offset N
//   watermark_ms N
//   stats N N N ...        (JoinerStats in declaration order)
//   open N
//   <unix_ms> \t <clicked 0|1> \t <request_id> \t <item_id> \t <features>   (N lines, oldest first)
//   end
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/logging.h"
#include "serving/feedback/joiner.h"

namespace tessera::feedback {
namespace fs = std::filesystem;
namespace {

constexpr char kStateMagic[] = "tessera-join-state 1";

std::string OutputName(uint64_t seq) { return absl::StrFormat("join-%012d.tsv", seq); }
std::string TempName(uint64_t seq) { return absl::StrCat(".", OutputName(seq), ".tmp"); }
bool ParseTempName(std::string_view name, uint64_t* seq) {
  constexpr std::string_view kPrefix = ".join-", kSuffix = ".tsv.tmp";
  if (name.size() <= kPrefix.size() + kSuffix.size() || name.substr(0, kPrefix.size()) != kPrefix ||
      name.substr(name.size() - kSuffix.size()) != kSuffix) {
    return false;
  }
  const std::string_view digits =
      name.substr(kPrefix.size(), name.size() - kPrefix.size() - kSuffix.size());
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), *seq);
  return ec == std::errc() && end == digits.data() + digits.size();
}

Status WriteSynced(const std::string& path, std::string_view text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return UnavailableError(absl::StrCat(path, ": cannot create: ", std::strerror(errno)));
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t w = ::write(fd, text.data() + done, text.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      const std::string err = std::strerror(errno);
      ::close(fd);
      return UnavailableError(absl::StrCat(path, ": write failed: ", err));
    }
    done += static_cast<size_t>(w);
  }
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!synced) return UnavailableError(absl::StrCat(path, ": fsync failed"));
  return OkStatus();
}

Status RenameSynced(const std::string& from, const std::string& to, const std::string& dir) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return UnavailableError(absl::StrCat("rename ", from, " -> ", to, ": ", std::strerror(errno)));
  }
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  return OkStatus();
}

bool ParseU64(std::string_view text, uint64_t* v) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *v);
  return ec == std::errc() && end == text.data() + text.size() && !text.empty();
}
bool ParseI64(std::string_view text, int64_t* v) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *v);
  return ec == std::errc() && end == text.data() + text.size() && !text.empty();
}

std::vector<uint64_t*> StatFields(JoinerStats* s) {
  return {&s->impressions, &s->feedback, &s->positives, &s->negatives,
          &s->late,        &s->duplicate, &s->unmatched, &s->evicted,
          &s->repeated,    &s->bad_lines, &s->bad_rows,  &s->files_written,
          &s->other_arm};
}

// `text` cut at `sep`; with max_pieces > 0 the last piece keeps the rest.
std::vector<std::string_view> Split(std::string_view text, char sep, size_t max_pieces) {
  std::vector<std::string_view> out;
  while (max_pieces == 0 || out.size() + 1 < max_pieces) {
    const size_t at = text.find(sep);
    if (at == std::string_view::npos) break;
    out.push_back(text.substr(0, at));
    text.remove_prefix(at + 1);
  }
  out.push_back(text);
  return out;
}

// The parsed checkpoint.
struct State {
  uint64_t next_seq = 1;
  uint64_t pending_seq = 0;
  LogPosition position;
  int64_t watermark_ms = 0;
  JoinerStats stats;
  struct Entry {
    int64_t unix_ms;
    bool clicked;
    std::string key;
    std::string features;
  };
  std::vector<Entry> open;
};

Status ParseState(const std::string& text, const std::string& path, State* state) {
  const std::vector<std::string_view> lines = Split(text, '\n', 0);
  size_t n = 0;
  auto bad = [&](std::string_view why) {
    return DataLossError(absl::StrCat(path, ": line ", n, ": ", std::string(why)));
  };
  auto next = [&](std::string_view name, std::string_view* value) {
    if (n >= lines.size()) return false;
    std::string_view line = lines[n++];
    if (line.size() <= name.size() || line.substr(0, name.size()) != name ||
        line[name.size()] != ' ') {
      return false;
    }
    *value = line.substr(name.size() + 1);
    return true;
  };
  if (lines.empty() || lines[n++] != kStateMagic) return bad("not a joiner checkpoint");
  std::string_view v;
  if (!next("next_seq", &v) || !ParseU64(v, &state->next_seq)) return bad("expected next_seq N");
  if (!next("pending_seq", &v) || !ParseU64(v, &state->pending_seq)) return bad("expected pending_seq N");
  if (!next("file", &v)) return bad("expected file NAME");
  state->position.file = v == "-" ? "" : std::string(v);
  if (!next("offset", &v) || !ParseU64(v, &state->position.offset)) return bad("expected offset N");
  if (!next("watermark_ms", &v) || !ParseI64(v, &state->watermark_ms)) return bad("expected watermark_ms N");
  if (!next("stats", &v)) return bad("expected stats");
  const std::vector<std::string_view> numbers = Split(v, ' ', 0);
  std::vector<uint64_t*> fields = StatFields(&state->stats);
  // A checkpoint written before other_arm existed has one number less.
  if (numbers.size() != fields.size() && numbers.size() + 1 != fields.size()) {
    return bad("stats: wrong count");
  }
  for (size_t i = 0; i < numbers.size(); ++i) {
    if (!ParseU64(numbers[i], fields[i])) return bad("stats: not a number");
  }
  uint64_t count = 0;
  if (!next("open", &v) || !ParseU64(v, &count)) return bad("expected open N");
  for (uint64_t i = 0; i < count; ++i) {
    if (n >= lines.size()) return bad("truncated");
    const std::vector<std::string_view> c = Split(lines[n++], '\t', 5);
    State::Entry e;
    if (c.size() != 5 || !ParseI64(c[0], &e.unix_ms) || (c[1] != "0" && c[1] != "1")) {
      return bad("expected <unix_ms> <clicked> <request_id> <item_id> <features>");
    }
    e.clicked = c[1] == "1";
    e.key = std::string(c[2]);
    e.key.append(1, '\t').append(c[3]);
    e.features = std::string(c[4]);
    state->open.push_back(std::move(e));
  }
  if (n >= lines.size() || lines[n++] != "end") return bad("expected end (truncated checkpoint)");
  return OkStatus();
}

}  // namespace

StatusOr<std::unique_ptr<Joiner>> Joiner::Open(const JoinerOptions& given, Clock* clock,
                                               MetricsRegistry* metrics) {
  JoinerOptions options = given;
  if (options.event_dir.empty()) return InvalidArgumentError("join: no event log directory");
  if (options.output_dir.empty()) return InvalidArgumentError("join: no output directory");
  if (options.window_ms < 0 || options.grace_ms < 0) {
    return InvalidArgumentError("join: window and grace must be >= 0");
  }
  if (options.max_open < 1 || options.max_lines_per_step < 1) {
    return InvalidArgumentError("join: max_open and max_lines_per_step must be >= 1");
  }
  if (options.state_path.empty()) {
    options.state_path = (fs::path(options.output_dir) / ".join-state").string();
  }
  std::error_code ec;
  fs::create_directories(options.output_dir, ec);
  if (ec) return UnavailableError(absl::StrCat(options.output_dir, ": cannot create: ", ec.message()));
  State state;
  if (fs::exists(options.state_path, ec)) {
    std::ifstream in(options.state_path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) return UnavailableError(absl::StrCat(options.state_path, ": cannot read"));
    TESSERA_RETURN_IF_ERROR(ParseState(text.str(), options.state_path, &state));
  }
  // Temp outputs numbered below the checkpoint's next_seq were committed
  // (their checkpoint was written): complete their rename. The others did
  // not reach their checkpoint: remove them.
  const fs::path out(options.output_dir);
  for (fs::directory_iterator it(out, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    uint64_t seq = 0;
    if (!ParseTempName(name, &seq)) continue;
    if (seq < state.next_seq) {
      TESSERA_RETURN_IF_ERROR(RenameSynced(it->path().string(), (out / OutputName(seq)).string(),
                                           options.output_dir));
      TESSERA_LOG(kInfo) << "join: completed the commit of " << OutputName(seq);
    } else {
      std::error_code rm;
      fs::remove(it->path(), rm);
      TESSERA_LOG(kInfo) << "join: removed uncommitted " << name;
    }
  }
  std::unique_ptr<Joiner> joiner(new Joiner(options, clock, metrics, state.position));
  joiner->next_seq_ = state.next_seq;
  joiner->watermark_ms_ = state.watermark_ms;
  joiner->stats_ = state.stats;
  for (State::Entry& e : state.open) {
    joiner->order_.push_back(e.key);
    joiner->open_[std::move(e.key)] = Open_{e.unix_ms, e.clicked, std::move(e.features)};
  }
  return joiner;
}

std::string Joiner::StateText(uint64_t pending_seq) const {
  std::string text = absl::StrCat(kStateMagic, "\nnext_seq ", next_seq_, "\npending_seq ",
                                   pending_seq, "\nfile ",
                                   reader_.position().file.empty() ? "-" : reader_.position().file,
                                   "\noffset ", reader_.position().offset, "\nwatermark_ms ",
                                   watermark_ms_, "\nstats");
  JoinerStats stats = stats_;
  for (uint64_t* field : StatFields(&stats)) absl::StrAppend(&text, " ", *field);
  absl::StrAppend(&text, "\nopen ", order_.size(), "\n");
  for (const std::string& key : order_) {
    const Open_& e = open_.at(key);
    absl::StrAppend(&text, e.unix_ms, "\t", e.clicked ? "1" : "0", "\t", key, "\t", e.features,
                    "\n");
  }
  absl::StrAppend(&text, "end\n");
  return text;
}

Status Joiner::Commit() {
  if (!changed_) return OkStatus();
  const fs::path out(options_.output_dir);
  uint64_t pending = 0;
  if (rows_count_ > 0) {
    pending = next_seq_;
    TESSERA_RETURN_IF_ERROR(WriteSynced((out / TempName(pending)).string(), rows_));
    if (crash_at_ == CrashPoint::kAfterOutput) return AbortedError("TEST_CrashAt(kAfterOutput)");
    ++next_seq_;
    ++stats_.files_written;
  }
  const std::string temp_state = options_.state_path + ".tmp";
  Status s = WriteSynced(temp_state, StateText(pending));
  if (s.ok()) {
    s = RenameSynced(temp_state, options_.state_path,
                     fs::path(options_.state_path).parent_path().string());
  }
  if (!s.ok()) {
    if (pending != 0) {  // retried by the next Step, under the same seq
      --next_seq_;
      --stats_.files_written;
    }
    return s;
  }
  // Committed: the rows are in the checkpointed output, whatever follows.
  rows_.clear();
  rows_count_ = 0;
  changed_ = false;
  if (crash_at_ == CrashPoint::kAfterCheckpoint) return AbortedError("TEST_CrashAt(kAfterCheckpoint)");
  if (pending != 0) {
    // If this fails, Open() completes it (its seq is below next_seq).
    TESSERA_RETURN_IF_ERROR(RenameSynced((out / TempName(pending)).string(),
                                         (out / OutputName(pending)).string(), options_.output_dir));
    metrics_->GetCounter("tessera_join_files_total", "Joiner: output files committed").Increment();
  }
  return OkStatus();
}

}  // namespace tessera::feedback
