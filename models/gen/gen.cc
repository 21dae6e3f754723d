#include "models/gen/gen.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "models/gen/click_model.h"
#include "models/metrics.h"
#include "models/schema.h"
#include "models/strings.h"

namespace tessera::models::gen {
namespace {

// A buffered file writer; rows are formatted straight into its buffer.
class TsvWriter {
 public:
  TsvWriter(std::FILE* file, std::string path) : file_(file), path_(std::move(path)), buf_(4 << 20) {}
  ~TsvWriter() {
    if (file_ != nullptr) std::fclose(file_);
  }

  static StatusOr<std::unique_ptr<TsvWriter>> Open(const std::string& path) {
    std::FILE* file = std::fopen(path.c_str(), "wb");
    if (file == nullptr) {
      return UnavailableError(absl::StrCat(path, ": cannot create: ", std::strerror(errno)));
    }
    return std::make_unique<TsvWriter>(file, path);
  }

  // A pointer with room for `bytes` more; Commit(end) keeps what was written.
  StatusOr<char*> Reserve(size_t bytes) {
    if (used_ + bytes > buf_.size()) {
      TESSERA_RETURN_IF_ERROR(Flush());
      if (bytes > buf_.size()) buf_.resize(bytes);
    }
    return buf_.data() + used_;
  }
  void Commit(const char* end) { used_ = static_cast<size_t>(end - buf_.data()); }

  Status Flush() {
    if (used_ > 0 && std::fwrite(buf_.data(), 1, used_, file_) != used_) {
      return DataLossError(absl::StrCat(path_, ": write failed: ", std::strerror(errno)));
    }
    used_ = 0;
    return OkStatus();
  }

  Status Close() {
    TESSERA_RETURN_IF_ERROR(Flush());
    const int rc = std::fclose(file_);
    file_ = nullptr;
    if (rc != 0) return DataLossError(absl::StrCat(path_, ": close failed: ", std::strerror(errno)));
    return OkStatus();
  }

 private:
  std::FILE* file_;
  const std::string path_;
  std::vector<char> buf_;
  size_t used_ = 0;
};

char* PutUint(char* p, uint32_t value) { return std::to_chars(p, p + 10, value).ptr; }

char* PutToken(char* p, char prefix, uint32_t value) {
  *p++ = prefix;
  return PutUint(p, value);
}

// Bytes a row can take: fixed fields plus three histories.
// Per history token: an item, a category and a brand token of at most 11
// characters each, with their commas.
size_t MaxRowBytes(uint32_t max_len) { return 256 + static_cast<size_t>(max_len) * 36; }

// Pre-formatted tokens ("i123") of the items or categories: histories repeat
// them on every row, and copying beats formatting.
class TokenTable {
 public:
  TokenTable(char prefix, uint32_t n) : offsets_(n + 1) {
    char buf[16];
    for (uint32_t i = 0; i < n; ++i) {
      offsets_[i] = static_cast<uint32_t>(chars_.size());
      chars_.append(buf, PutToken(buf, prefix, i));
    }
    offsets_[n] = static_cast<uint32_t>(chars_.size());
  }
  char* Put(char* p, uint32_t i) const {
    const uint32_t begin = offsets_[i];
    const uint32_t len = offsets_[i + 1] - begin;
    std::memcpy(p, chars_.data() + begin, len);
    return p + len;
  }

 private:
  std::string chars_;
  std::vector<uint32_t> offsets_;
};

struct RowTokens {
  TokenTable items;
  TokenTable categories;
};

// Formats one impression as a TSV row at `p`; returns the end.
char* FormatRow(const Impression& imp, const ClickWorld& world, const RowTokens& tokens, char* p) {
  *p++ = imp.click ? '1' : '0';
  *p++ = '\t';
  p = PutToken(p, 'u', imp.user);
  *p++ = '\t';
  p = tokens.items.Put(p, imp.item);
  *p++ = '\t';
  p = tokens.categories.Put(p, imp.category);
  *p++ = '\t';
  p = PutToken(p, 'b', imp.brand);
  *p++ = '\t';
  p = std::to_chars(p, p + 32, imp.price, std::chars_format::fixed, 2).ptr;
  *p++ = '\t';
  p = PutUint(p, imp.hour);
  *p++ = '\t';
  const std::string_view device = kDeviceNames[static_cast<int>(imp.device)];
  p = std::copy(device.begin(), device.end(), p);
  *p++ = '\t';
  for (size_t i = 0; i < imp.history.size(); ++i) {
    if (i > 0) *p++ = ',';
    p = tokens.items.Put(p, imp.history[i]);
  }
  *p++ = '\t';
  for (size_t i = 0; i < imp.history.size(); ++i) {
    if (i > 0) *p++ = ',';
    p = tokens.categories.Put(p, world.CategoryOf(imp.history[i]));
  }
  *p++ = '\t';
  for (size_t i = 0; i < imp.history.size(); ++i) {
    if (i > 0) *p++ = ',';
    p = PutToken(p, 'b', world.BrandOf(imp.history[i]));
  }
  *p++ = '\n';
  return p;
}

std::string SchemaYaml(uint32_t max_len) {
  return absl::StrCat(
      "# Written by `tessera gen`: a synthetic e-commerce CTR dataset.\n"
      "fields:\n"
      "  - {name: user_id, type: categorical}\n"
      "  - {name: item_id, type: categorical, table: item}\n"
      "  - {name: category, type: categorical}\n"
      "  - {name: brand, type: categorical}\n"
      "  - {name: price, type: numeric, transform: log1p}\n"
      "  - {name: hour, type: categorical}\n"
      "  - {name: device, type: categorical}\n"
      "  - {name: hist_items, type: sequence, table: item, max_len: ",
      max_len,
      "}\n"
      "  - {name: hist_cats, type: sequence, table: category, max_len: ",
      max_len,
      "}\n"
      "  - {name: hist_brands, type: sequence, table: brand, max_len: ",
      max_len, "}\n");
}

Status WriteSmallFile(const std::string& path, std::string_view text) {
  TESSERA_ASSIGN_OR_RETURN(auto writer, TsvWriter::Open(path));
  TESSERA_ASSIGN_OR_RETURN(char* p, writer->Reserve(text.size()));
  writer->Commit(std::copy(text.begin(), text.end(), p));
  return writer->Close();
}

Status Validate(const GenOptions& o) {
  if (o.out.empty()) return InvalidArgumentError("--out is required");
  if (o.rows < 1) return InvalidArgumentError("--rows must be >= 1");
  if (o.users < 1) return InvalidArgumentError("--users must be >= 1");
  if (o.items < 10) return InvalidArgumentError("--items must be >= 10");
  if (o.max_len < 1 || o.max_len > kMaxSequenceLength) {
    return InvalidArgumentError(absl::StrCat("--max_len must be in 1..", kMaxSequenceLength));
  }
  if (!(o.test_fraction > 0 && o.test_fraction < 1)) {
    return InvalidArgumentError("--test_fraction must be in (0, 1)");
  }
  if (!(o.drift >= 0 && o.drift <= 1)) return InvalidArgumentError("--drift must be in [0, 1]");
  if (!(o.item_drift >= 0 && o.item_drift <= 1)) {
    return InvalidArgumentError("--item_drift must be in [0, 1]");
  }
  if (o.windows > o.rows) return InvalidArgumentError("--windows must be <= --rows");
  return OkStatus();
}

template <typename T>
Status ParseNumber(std::string_view flag, std::string_view text, T* value) {
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), *value);
  if (ec != std::errc() || ptr != text.data() + text.size()) {
    return InvalidArgumentError(absl::StrCat("--", Sv(flag), ": bad value '", Sv(text), "'"));
  }
  return OkStatus();
}

Status SetFlag(std::string_view name, std::string_view value, GenOptions* o) {
  if (name == "out") {
    o->out = std::string(value);
    return OkStatus();
  }
  if (name == "rows") return ParseNumber(name, value, &o->rows);
  if (name == "users") return ParseNumber(name, value, &o->users);
  if (name == "items") return ParseNumber(name, value, &o->items);
  if (name == "max_len") return ParseNumber(name, value, &o->max_len);
  if (name == "seed") return ParseNumber(name, value, &o->seed);
  if (name == "test_fraction") return ParseNumber(name, value, &o->test_fraction);
  if (name == "windows") return ParseNumber(name, value, &o->windows);
  if (name == "drift") return ParseNumber(name, value, &o->drift);
  if (name == "item_drift") return ParseNumber(name, value, &o->item_drift);
  return InvalidArgumentError(absl::StrCat("unknown flag --", Sv(name), "\n", GenUsage()));
}

std::string BayesJson(const GenOptions& o, const GenSummary& s) {
  return absl::StrFormat(
      "{\n  \"seed\": %d,\n  \"users\": %d,\n  \"items\": %d,\n  \"train_rows\": %d,\n"
      "  \"test_rows\": %d,\n  \"train_ctr\": %.6f,\n  \"test_ctr\": %.6f,\n"
      "  \"split\": \"time-ordered: the last %.3g of the impressions are test\",\n"
      "  \"bayes_auc\": %.6f,\n  \"bayes_logloss\": %.6f\n}\n",
      o.seed, o.users, o.items, s.train_rows, s.test_rows, s.train_ctr, s.test_ctr, o.test_fraction,
      s.bayes_auc, s.bayes_logloss);
}

std::string WindowsJson(const GenOptions& o, const GenSummary& s) {
  std::string windows;
  for (size_t w = 0; w < s.windows.size(); ++w) {
    const GenWindow& g = s.windows[w];
    absl::StrAppendFormat(&windows,
                          "%s\n    {\"file\": \"window-%d.tsv\", \"rows\": %d, \"ctr\": %.6f, "
                          "\"bayes_auc\": %.6f, \"bayes_logloss\": %.6f}",
                          w == 0 ? "" : ",", w, g.rows, g.ctr, g.bayes_auc, g.bayes_logloss);
  }
  return absl::StrFormat(
      "{\n  \"seed\": %d,\n  \"users\": %d,\n  \"items\": %d,\n  \"drift\": %g,\n"
      "  \"item_drift\": %g,\n  \"split\": \"time-ordered windows\",\n  \"windows\": [%s\n  ]\n}\n",
      o.seed, o.users, o.items, o.drift, o.item_drift, windows);
}

// --windows: consecutive time windows, each with its Bayes-optimal metrics.
Status WriteWindows(const GenOptions& options, ClickWorld* world, const RowTokens& tokens,
                    GenSummary* summary) {
  const std::string dir = options.out + "/";
  const size_t row_bytes = MaxRowBytes(options.max_len);
  const uint64_t per_window = options.rows / options.windows;
  std::vector<float> probabilities, labels;
  for (uint32_t w = 0; w < options.windows; ++w) {
    const uint64_t rows = w + 1 < options.windows ? per_window : options.rows - per_window * w;
    probabilities.clear();
    labels.clear();
    TESSERA_ASSIGN_OR_RETURN(auto writer, TsvWriter::Open(absl::StrCat(dir, "window-", w, ".tsv")));
    for (uint64_t r = 0; r < rows; ++r) {
      const Impression& imp = world->Next();
      TESSERA_ASSIGN_OR_RETURN(char* p, writer->Reserve(row_bytes));
      writer->Commit(FormatRow(imp, *world, tokens, p));
      probabilities.push_back(static_cast<float>(imp.probability));
      labels.push_back(imp.click ? 1.0f : 0.0f);
    }
    TESSERA_RETURN_IF_ERROR(writer->Close());
    const EvalMetrics bayes = Evaluate(probabilities, labels, {});
    summary->windows.push_back({.rows = rows,
                                .ctr = bayes.ctr,
                                .bayes_auc = bayes.auc.value_or(0.5),
                                .bayes_logloss = bayes.logloss.value_or(0)});
  }
  return WriteSmallFile(dir + "bayes.json", WindowsJson(options, *summary));
}

}  // namespace

std::string GenUsage() {
  return "usage: tessera gen --out DIR [--rows N (200000)] [--users N (10000)] [--items N (20000)]\n"
         "                   [--max_len N (30)] [--test_fraction F (0.1)] [--seed N (1)]\n"
         "                   [--drift P (0.01)] [--item_drift P (0)] [--windows N (0)]\n"
         "Writes DIR/schema.yaml, DIR/train.tsv, DIR/test.tsv and DIR/bayes.json.\n"
         "--drift: per impression, the probability that the user's interests move to\n"
         "another category. --item_drift: per impression, the probability that an\n"
         "item (drawn by exposure) starts a new trend (a click-rate shift that no\n"
         "feature shows). --windows N: instead of train/test, N consecutive time\n"
         "windows DIR/window-0.tsv ... window-<N-1>.tsv, with each window's\n"
         "Bayes-optimal AUC in bayes.json (data for frozen-vs-continuous training).\n";
}

StatusOr<GenOptions> ParseGenFlags(const std::vector<std::string>& args) {
  GenOptions options;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (!arg.starts_with("--")) {
      return InvalidArgumentError(absl::StrCat("unexpected argument '", Sv(arg), "'"));
    }
    arg.remove_prefix(2);
    const size_t eq = arg.find('=');
    if (eq != std::string_view::npos) {
      TESSERA_RETURN_IF_ERROR(SetFlag(arg.substr(0, eq), arg.substr(eq + 1), &options));
    } else if (i + 1 < args.size()) {
      TESSERA_RETURN_IF_ERROR(SetFlag(arg, args[++i], &options));
    } else {
      return InvalidArgumentError(absl::StrCat("--", Sv(arg), " needs a value"));
    }
  }
  TESSERA_RETURN_IF_ERROR(Validate(options));
  return options;
}

StatusOr<GenSummary> Generate(const GenOptions& options) {
  TESSERA_RETURN_IF_ERROR(Validate(options));
  const auto start = std::chrono::steady_clock::now();
  std::error_code ec;
  std::filesystem::create_directories(options.out, ec);
  if (ec) return UnavailableError(absl::StrCat(options.out, ": cannot create directory: ", ec.message()));
  const std::string dir = options.out + "/";
  const std::string schema = SchemaYaml(options.max_len);
  TESSERA_RETURN_IF_ERROR(Schema::Parse(schema, "generated schema").status());  // a bug if it fails
  TESSERA_RETURN_IF_ERROR(WriteSmallFile(dir + "schema.yaml", schema));

  GenSummary summary;
  summary.test_rows = std::max<uint64_t>(1, static_cast<uint64_t>(options.rows * options.test_fraction));
  summary.test_rows = std::min(summary.test_rows, options.rows);
  summary.train_rows = options.rows - summary.test_rows;
  ClickWorld world({.users = options.users,
                    .items = options.items,
                    .max_len = options.max_len,
                    .rows = options.rows,
                    .seed = options.seed,
                    .drift = options.drift,
                    .item_drift = options.item_drift});
  const RowTokens tokens{TokenTable('i', options.items), TokenTable('c', world.num_categories())};
  if (options.windows > 0) {
    summary.train_rows = summary.test_rows = 0;
    TESSERA_RETURN_IF_ERROR(WriteWindows(options, &world, tokens, &summary));
    summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return summary;
  }
  std::vector<float> probabilities, labels;
  probabilities.reserve(summary.test_rows);
  labels.reserve(summary.test_rows);
  const size_t row_bytes = MaxRowBytes(options.max_len);
  uint64_t train_clicks = 0;
  for (const char* name : {"train.tsv", "test.tsv"}) {
    const bool test = std::string_view(name) == "test.tsv";
    TESSERA_ASSIGN_OR_RETURN(auto writer, TsvWriter::Open(dir + name));
    const uint64_t rows = test ? summary.test_rows : summary.train_rows;
    for (uint64_t r = 0; r < rows; ++r) {
      const Impression& imp = world.Next();
      TESSERA_ASSIGN_OR_RETURN(char* p, writer->Reserve(row_bytes));
      writer->Commit(FormatRow(imp, world, tokens, p));
      if (test) {
        probabilities.push_back(static_cast<float>(imp.probability));
        labels.push_back(imp.click ? 1.0f : 0.0f);
      } else {
        train_clicks += imp.click ? 1 : 0;
      }
    }
    TESSERA_RETURN_IF_ERROR(writer->Close());
  }
  const EvalMetrics bayes = Evaluate(probabilities, labels, {});
  summary.train_ctr = summary.train_rows == 0 ? 0 : static_cast<double>(train_clicks) / summary.train_rows;
  summary.test_ctr = bayes.ctr;
  summary.bayes_auc = bayes.auc.value_or(0.5);
  summary.bayes_logloss = bayes.logloss.value_or(0);
  TESSERA_RETURN_IF_ERROR(WriteSmallFile(dir + "bayes.json", BayesJson(options, summary)));
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

Status RunGen(const std::vector<std::string>& args) {
  for (const std::string& arg : args) {
    if (arg == "--help" || arg == "-h") {
      std::fputs(GenUsage().c_str(), stdout);
      return OkStatus();
    }
  }
  TESSERA_ASSIGN_OR_RETURN(GenOptions options, ParseGenFlags(args));
  TESSERA_ASSIGN_OR_RETURN(GenSummary s, Generate(options));
  if (options.windows > 0) {
    std::string line = absl::StrFormat("wrote %s: %d windows in %.2f s; Bayes-optimal AUC per window:",
                                       options.out, s.windows.size(), s.seconds);
    for (const GenWindow& w : s.windows) absl::StrAppendFormat(&line, " %.4f", w.bayes_auc);
    std::fputs((line + "\n").c_str(), stdout);
    return OkStatus();
  }
  const double rate = s.seconds > 0 ? static_cast<double>(s.train_rows + s.test_rows) / s.seconds : 0;
  std::fputs(
      absl::StrFormat("wrote %s: %d train + %d test rows in %.2f s (%.0f rows/s); CTR train %.4f test %.4f; "
                      "Bayes-optimal test AUC %.4f logloss %.4f\n",
                      options.out, s.train_rows, s.test_rows, s.seconds, rate, s.train_ctr, s.test_ctr,
                      s.bayes_auc, s.bayes_logloss)
          .c_str(),
      stdout);
  return OkStatus();
}

}  // namespace tessera::models::gen
