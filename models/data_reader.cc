#include "models/data_reader.h"

#include <fcntl.h>
#include <glob.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/logging.h"
#include "models/strings.h"

namespace tessera::models {
namespace {

namespace fs = std::filesystem;

constexpr size_t kInitialBuffer = 1 << 20;

// A stream of bytes: the rest of a file from some offset, or a gzip file's
// uncompressed contents.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Up to `n` bytes into `dst`; 0 at the end.
  virtual StatusOr<size_t> Read(char* dst, size_t n) = 0;
};

class FdSource : public ByteSource {
 public:
  FdSource(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~FdSource() override { ::close(fd_); }
  StatusOr<size_t> Read(char* dst, size_t n) override {
    while (true) {
      const ssize_t got = ::read(fd_, dst, n);
      if (got >= 0) return static_cast<size_t>(got);
      if (errno != EINTR) return DataLossError(absl::StrCat(path_, ": read: ", std::strerror(errno)));
    }
  }

 private:
  const int fd_;
  const std::string path_;
};

class GzSource : public ByteSource {
 public:
  GzSource(gzFile file, std::string path) : file_(file), path_(std::move(path)) {}
  ~GzSource() override { gzclose(file_); }
  StatusOr<size_t> Read(char* dst, size_t n) override {
    const unsigned want = static_cast<unsigned>(std::min<size_t>(n, 1u << 30));
    const int got = gzread(file_, dst, want);
    int err = Z_OK;
    const char* message = gzerror(file_, &err);
    // A truncated stream reads short and then reports Z_BUF_ERROR.
    if (got < 0 || (err != Z_OK && err != Z_STREAM_END)) {
      return DataLossError(absl::StrCat(path_, ": gzip: ", message != nullptr ? message : "read error"));
    }
    return static_cast<size_t>(got);
  }

 private:
  gzFile file_;
  const std::string path_;
};

class BufferedLineReader : public LineReader {
 public:
  BufferedLineReader(FileChunk chunk, std::unique_ptr<ByteSource> source, uint64_t offset,
                     size_t max_line_bytes)
      : chunk_(std::move(chunk)),
        max_line_bytes_(max_line_bytes),
        source_(std::move(source)),
        buf_(new char[kInitialBuffer]),  // not zeroed: only read bytes are used
        capacity_(kInitialBuffer),
        buf_offset_(offset) {}

  // REQUIRES: the source is positioned at chunk.begin - 1 (begin > 0).
  // Drops everything up to and including the first '\n'.
  Status SkipPartialLine() {
    while (true) {
      const char* nl = static_cast<const char*>(std::memchr(buf_.get() + pos_, '\n', len_ - pos_));
      if (nl != nullptr) {
        pos_ = static_cast<size_t>(nl - buf_.get()) + 1;
        return OkStatus();
      }
      pos_ = len_;
      if (eof_) return OkStatus();
      TESSERA_RETURN_IF_ERROR(Fill());
    }
  }

  StatusOr<bool> Next(std::string_view* line) override {
    if (buf_offset_ + pos_ >= chunk_.end) return false;
    size_t scanned = pos_;
    while (true) {
      const char* nl = static_cast<const char*>(std::memchr(buf_.get() + scanned, '\n', len_ - scanned));
      if (nl != nullptr || (eof_ && pos_ < len_)) {
        const size_t stop = nl != nullptr ? static_cast<size_t>(nl - buf_.get()) : len_;
        *line = std::string_view(buf_.get() + pos_, stop - pos_);
        line_offset_ = buf_offset_ + pos_;
        ++line_number_;
        pos_ = nl != nullptr ? stop + 1 : len_;
        return true;
      }
      if (eof_) return false;
      scanned = len_ - pos_;  // positions move to the front in Fill
      TESSERA_RETURN_IF_ERROR(Fill());
    }
  }

  uint64_t end_offset() const override { return buf_offset_ + pos_; }

  std::string Location() const override {
    if (chunk_.begin == 0) return absl::StrCat(chunk_.path, ":", line_number_);
    return absl::StrCat(chunk_.path, "@", line_offset_);
  }

 private:
  // Moves the unread bytes to the front (growing the buffer for a long
  // line) and reads more; sets eof_ at the end.
  Status Fill() {
    if (pos_ > 0) {
      std::memmove(buf_.get(), buf_.get() + pos_, len_ - pos_);
      buf_offset_ += pos_;
      len_ -= pos_;
      pos_ = 0;
    }
    if (len_ == capacity_) {  // a line longer than the buffer
      if (capacity_ >= max_line_bytes_) {
        return DataLossError(absl::StrCat(chunk_.path, "@", buf_offset_, ": line longer than ", capacity_,
                                          " bytes (not a text data file?)"));
      }
      std::unique_ptr<char[]> bigger(new char[capacity_ * 2]);
      std::memcpy(bigger.get(), buf_.get(), len_);
      buf_ = std::move(bigger);
      capacity_ *= 2;
    }
    TESSERA_ASSIGN_OR_RETURN(size_t got, source_->Read(buf_.get() + len_, capacity_ - len_));
    len_ += got;
    if (got == 0) eof_ = true;
    return OkStatus();
  }

  const FileChunk chunk_;
  const size_t max_line_bytes_;
  std::unique_ptr<ByteSource> source_;
  std::unique_ptr<char[]> buf_;
  size_t capacity_;
  size_t pos_ = 0;           // start of the unread bytes in buf_
  size_t len_ = 0;           // bytes held in buf_
  uint64_t buf_offset_ = 0;  // file offset of buf_[0]
  bool eof_ = false;
  uint64_t line_number_ = 0;
  uint64_t line_offset_ = 0;
};

bool HasGlobChars(std::string_view s) { return s.find_first_of("*?[") != std::string_view::npos; }

Status ExpandDirectory(const std::string& dir, std::vector<std::string>* out) {
  std::error_code ec;
  std::vector<std::string> files;
  fs::directory_iterator it(dir, ec);
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.empty() || name[0] == '.' || name[0] == '_') continue;
    std::error_code type_ec;
    if (fs::is_regular_file(it->path(), type_ec)) files.push_back(it->path().string());
  }
  if (ec) return NotFoundError(absl::StrCat(dir, ": cannot list directory: ", ec.message()));
  if (files.empty()) return NotFoundError(absl::StrCat(dir, ": directory has no data files"));
  std::sort(files.begin(), files.end());
  out->insert(out->end(), files.begin(), files.end());
  return OkStatus();
}

Status ExpandPath(const std::string& path, std::vector<std::string>* out) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (ec || !fs::exists(status)) return NotFoundError(absl::StrCat(path, ": no such file or directory"));
  if (fs::is_directory(status)) return ExpandDirectory(path, out);
  out->push_back(path);
  return OkStatus();
}

Status ExpandGlob(const std::string& pattern, std::vector<std::string>* out) {
  glob_t matches;
  const int rc = ::glob(pattern.c_str(), 0, nullptr, &matches);  // sorted
  if (rc != 0) {
    globfree(&matches);
    if (rc == GLOB_NOMATCH) return NotFoundError(absl::StrCat(pattern, ": no files match"));
    return NotFoundError(absl::StrCat(pattern, ": glob failed"));
  }
  std::vector<std::string> paths(matches.gl_pathv, matches.gl_pathv + matches.gl_pathc);
  globfree(&matches);
  for (const std::string& path : paths) TESSERA_RETURN_IF_ERROR(ExpandPath(path, out));
  return OkStatus();
}

}  // namespace

bool IsGzipPath(std::string_view path) { return path.ends_with(".gz"); }

StatusOr<std::vector<std::string>> ExpandInputs(std::span<const std::string> inputs) {
  std::vector<std::string> files;
  for (const std::string& input : inputs) {
    if (HasGlobChars(input)) {
      TESSERA_RETURN_IF_ERROR(ExpandGlob(input, &files));
    } else {
      TESSERA_RETURN_IF_ERROR(ExpandPath(input, &files));
    }
  }
  return files;
}

StatusOr<std::vector<FileChunk>> SplitIntoChunks(std::span<const std::string> files, uint64_t chunk_bytes) {
  std::vector<FileChunk> chunks;
  for (const std::string& path : files) {
    if (IsGzipPath(path) || chunk_bytes == 0) {
      chunks.push_back({path, 0, kToEndOfFile});
      continue;
    }
    std::error_code ec;
    const uint64_t size = fs::file_size(path, ec);
    if (ec) return NotFoundError(absl::StrCat(path, ": ", ec.message()));
    for (uint64_t begin = 0; begin < size; begin += chunk_bytes) {
      const uint64_t end = size - begin <= chunk_bytes ? kToEndOfFile : begin + chunk_bytes;
      chunks.push_back({path, begin, end});
    }
  }
  return chunks;
}

StatusOr<std::unique_ptr<LineReader>> LineReader::Open(const FileChunk& chunk, size_t max_line_bytes) {
  if (chunk.begin >= chunk.end) return InvalidArgumentError(absl::StrCat(chunk.path, ": empty byte range"));
  if (IsGzipPath(chunk.path)) {
    if (chunk.end != kToEndOfFile) {
      return InvalidArgumentError(absl::StrCat(chunk.path, ": a gzip file is read whole, not by byte range"));
    }
    gzFile file = gzopen(chunk.path.c_str(), "rb");
    if (file == nullptr) {
      return NotFoundError(absl::StrCat(chunk.path, ": cannot open: ", std::strerror(errno)));
    }
    gzbuffer(file, 256 << 10);
    auto source = std::make_unique<GzSource>(file, chunk.path);
    if (chunk.begin == 0) {
      return std::unique_ptr<LineReader>(new BufferedLineReader(chunk, std::move(source), 0, max_line_bytes));
    }
    // A resumed gzip chunk: decompress and drop the bytes before it (gzseek
    // emulates the seek by reading).
    const uint64_t offset = chunk.begin - 1;
    if (gzseek(file, static_cast<z_off_t>(offset), SEEK_SET) < 0) {
      return DataLossError(absl::StrCat(chunk.path, ": gzip: cannot skip to byte ", offset));
    }
    auto reader = std::make_unique<BufferedLineReader>(chunk, std::move(source), offset, max_line_bytes);
    TESSERA_RETURN_IF_ERROR(reader->SkipPartialLine());
    return std::unique_ptr<LineReader>(std::move(reader));
  }
  const int fd = ::open(chunk.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NotFoundError(absl::StrCat(chunk.path, ": cannot open: ", std::strerror(errno)));
  auto source = std::make_unique<FdSource>(fd, chunk.path);
  if (chunk.begin == 0) {
    return std::unique_ptr<LineReader>(new BufferedLineReader(chunk, std::move(source), 0, max_line_bytes));
  }
  // Start one byte early: if that byte ends a line, the line at `begin` is ours.
  const uint64_t offset = chunk.begin - 1;
  if (::lseek(fd, static_cast<off_t>(offset), SEEK_SET) < 0) {
    return DataLossError(absl::StrCat(chunk.path, ": seek: ", std::strerror(errno)));
  }
  auto reader = std::make_unique<BufferedLineReader>(chunk, std::move(source), offset, max_line_bytes);
  TESSERA_RETURN_IF_ERROR(reader->SkipPartialLine());
  return std::unique_ptr<LineReader>(std::move(reader));
}

void DataStats::Merge(const DataStats& other) {
  lines += other.lines;
  short_lines += other.short_lines;
  bad_lines += other.bad_lines;
  for (const std::string& sample : other.bad_samples) {
    if (bad_samples.size() >= kMaxBadSamples) break;
    bad_samples.push_back(sample);
  }
}

Status CheckBadRatio(const DataStats& stats, double max_bad_ratio) {
  if (stats.bad_ratio() <= max_bad_ratio) return OkStatus();
  std::string message = absl::StrFormat("%d of %d lines bad (%.3g%% > max_bad_ratio %.3g%%)", stats.bad_lines,
                                        stats.lines, 100 * stats.bad_ratio(), 100 * max_bad_ratio);
  const size_t shown = std::min<size_t>(stats.bad_samples.size(), 5);
  for (size_t i = 0; i < shown; ++i) {
    absl::StrAppend(&message, i == 0 ? "; first: " : "; ", stats.bad_samples[i]);
  }
  return InvalidArgumentError(message);
}

ExampleReader::ExampleReader(const Schema* schema, std::vector<FileChunk> chunks,
                             ExampleReaderOptions options)
    : parser_(schema), chunks_(std::move(chunks)), options_(options) {
  if (!chunks_.empty()) position_ = {0, chunks_[0].begin};
}

void ExampleReader::RecordBad(std::string_view reason) {
  ++stats_.bad_lines;
  if (stats_.bad_lines <= static_cast<uint64_t>(options_.max_logged_bad)) {
    TESSERA_LOG(kWarning) << "bad line " << lines_->Location() << ": " << reason;
  }
  if (stats_.bad_samples.size() < DataStats::kMaxBadSamples) {
    stats_.bad_samples.push_back(absl::StrCat(lines_->Location(), ": ", Sv(reason)));
  }
}

StatusOr<bool> ExampleReader::Next(Example* example) {
  while (true) {
    if (lines_ == nullptr) {
      if (next_chunk_ == chunks_.size()) return false;
      position_ = {next_chunk_, chunks_[next_chunk_].begin};
      TESSERA_ASSIGN_OR_RETURN(lines_, LineReader::Open(chunks_[next_chunk_++]));
      line_number_ = 0;
    }
    const uint64_t chunk_end = chunks_[next_chunk_ - 1].end;
    TESSERA_ASSIGN_OR_RETURN(bool more, lines_->Next(&line_));
    if (!more) {
      lines_.reset();
      position_.offset = chunk_end;
      continue;
    }
    position_.offset = std::min(lines_->end_offset(), chunk_end);
    ++stats_.lines;
    ++line_number_;
    switch (parser_.Parse(line_, example, &reason_)) {
      case LineKind::kOk:
        return true;
      case LineKind::kShort:
        ++stats_.short_lines;
        return true;
      case LineKind::kBad:
        RecordBad(reason_);
        break;
    }
  }
}

StatusOr<int> ExampleReader::NextBatch(BatchBuilder* builder, Batch* batch, int max_examples) {
  builder->Start(batch);
  while (builder->size() < max_examples) {
    TESSERA_ASSIGN_OR_RETURN(bool more, Next(&example_));
    if (!more) break;
    builder->Add(example_);
  }
  builder->Finish();
  return builder->size();
}

}  // namespace tessera::models
