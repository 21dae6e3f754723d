#include "serving/feedback/event_log_reader.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "serving/feedback/event_log.h"

namespace tessera::feedback {
namespace fs = std::filesystem;

StatusOr<std::vector<std::string>> EventLogReader::Files() const {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    uint64_t seq = 0;
    if (ParseEventLogFileName(name, &seq) && name >= pos_.file) names.push_back(name);
  }
  if (ec) return UnavailableError(absl::StrCat(dir_, ": cannot list: ", ec.message()));
  std::sort(names.begin(), names.end());
  return names;
}

StatusOr<bool> EventLogReader::Read(
    size_t max_lines,
    const std::function<void(std::string_view line, const std::string& where)>& line) {
  size_t done = 0;
  while (true) {
    // Listed before reading: a file followed by another is complete.
    TESSERA_ASSIGN_OR_RETURN(std::vector<std::string> files, Files());
    if (files.empty()) return true;
    if (files.front() != pos_.file) {
      if (!pos_.file.empty()) {
        TESSERA_LOG(kWarning) << "event log: " << pos_.file << " disappeared at offset "
                              << pos_.offset << "; going on with " << files.front();
      }
      pos_ = {files.front(), 0};
    }
    const bool complete = files.size() > 1;
    const std::string path = (fs::path(dir_) / pos_.file).string();
    std::ifstream in(path, std::ios::binary);
    if (!in) return UnavailableError(absl::StrCat(path, ": cannot open"));
    in.seekg(static_cast<std::streamoff>(pos_.offset));
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) return UnavailableError(absl::StrCat(path, ": read error"));
    size_t at = 0;
    while (done < max_lines) {
      const size_t nl = text.find('\n', at);
      if (nl == std::string::npos) break;
      const std::string where = absl::StrCat(pos_.file, ":", pos_.offset);
      pos_.offset += nl + 1 - at;
      line(std::string_view(text).substr(at, nl - at), where);
      at = nl + 1;
      ++done;
    }
    if (done >= max_lines && text.find('\n', at) != std::string::npos) return false;
    if (!complete) return true;
    if (at < text.size()) {
      TESSERA_LOG(kWarning) << "event log: " << pos_.file << ": skipping an incomplete last line at offset "
                            << pos_.offset << " (" << text.size() - at << " bytes)";
      ++torn_tails_;
    }
    pos_ = {files[1], 0};
    if (done >= max_lines) return false;
  }
}

}  // namespace tessera::feedback
