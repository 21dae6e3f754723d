// Listing, chaining and removing published versions (models/model_versions.h).
// Reading and applying deltas is in model_delta.cc.
#include "models/model_versions.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <set>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace tessera::models {
namespace {

namespace fs = std::filesystem;

constexpr char kDeletingPrefix[] = ".deleting-";

bool IsComplete(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / kManifestFileName, ec);
}

std::string VersionName(uint64_t version) { return std::to_string(version); }

// Deletes the tree at `path`; Unavailable naming it on failure.
Status RemoveTree(const fs::path& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec)
    return UnavailableError(absl::StrCat("cannot remove ", path.string(), ": ", ec.message()));
  return OkStatus();
}

// Renames DIR/<v> to DIR/.deleting-<v> (so it stops being complete at
// once), then deletes it. A version already gone is not an error.
Status RemoveVersion(const std::string& publish_dir, uint64_t version) {
  const fs::path from = VersionDir(publish_dir, version);
  const fs::path to = fs::path(publish_dir) / (kDeletingPrefix + VersionName(version));
  std::error_code ec;
  if (fs::exists(to, ec)) TESSERA_RETURN_IF_ERROR(RemoveTree(to));
  fs::rename(from, to, ec);
  if (ec == std::errc::no_such_file_or_directory) return OkStatus();
  if (ec) {
    return UnavailableError(
        absl::StrCat("cannot rename ", from.string(), " to ", to.string(), ": ", ec.message()));
  }
  return RemoveTree(to);
}

// Deletes ".deleting-*" leftovers of an interrupted removal.
Status RemoveLeftovers(const std::string& publish_dir) {
  std::error_code ec;
  std::vector<fs::path> leftovers;
  for (const fs::directory_entry& e : fs::directory_iterator(publish_dir, ec)) {
    if (absl::StartsWith(e.path().filename().string(), kDeletingPrefix)) {
      leftovers.push_back(e.path());
    }
  }
  for (const fs::path& p : leftovers) TESSERA_RETURN_IF_ERROR(RemoveTree(p));
  return OkStatus();
}

}  // namespace

std::string VersionDir(const std::string& publish_dir, uint64_t version) {
  return (fs::path(publish_dir) / VersionName(version)).string();
}

bool ParseVersionName(std::string_view name, uint64_t* version) {
  if (name.empty() || name.size() > 20 || name[0] == '0') return false;
  if (!std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), *version);
  return ec == std::errc() && end == name.data() + name.size();
}

StatusOr<std::vector<uint64_t>> ListVersionNumbers(const std::string& publish_dir) {
  std::error_code ec;
  fs::directory_iterator it(publish_dir, ec);
  if (ec) {
    return NotFoundError(
        absl::StrCat(publish_dir, ": cannot list the publish directory (", ec.message(), ")"));
  }
  std::vector<uint64_t> versions;
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    uint64_t v = 0;
    if (ParseVersionName(it->path().filename().string(), &v) && IsComplete(it->path())) {
      versions.push_back(v);
    }
  }
  if (ec) return UnavailableError(absl::StrCat(publish_dir, ": listing failed: ", ec.message()));
  std::sort(versions.begin(), versions.end());
  return versions;
}

StatusOr<VersionInfo> ReadVersionInfo(const std::string& publish_dir, uint64_t version) {
  const std::string dir = VersionDir(publish_dir, version);
  if (!IsComplete(dir)) {
    return NotFoundError(absl::StrCat(dir, ": version ", version,
                                      " is not published (missing, incomplete or removed)"));
  }
  TESSERA_ASSIGN_OR_RETURN(ModelManifest m, ReadManifest(dir));
  if (m.version != version) {
    return DataLossError(absl::StrCat(dir, "/", kManifestFileName, ": names version ", m.version,
                                      ", not ", version, " (its directory)"));
  }
  return VersionInfo{version, m.kind == SnapshotKind::kFull, m.base_version};
}

StatusOr<std::vector<VersionInfo>> ListVersions(const std::string& publish_dir) {
  TESSERA_ASSIGN_OR_RETURN(std::vector<uint64_t> numbers, ListVersionNumbers(publish_dir));
  std::vector<VersionInfo> versions;
  for (uint64_t v : numbers) {
    StatusOr<VersionInfo> info = ReadVersionInfo(publish_dir, v);
    if (info.ok()) {
      versions.push_back(*info);
    } else if (info.status().code() != StatusCode::kNotFound) {
      return info.status();
    }  // else removed since it was listed
  }
  return versions;
}

StatusOr<std::vector<VersionInfo>> ResolveChain(const std::string& publish_dir, uint64_t version) {
  std::vector<VersionInfo> chain;
  for (uint64_t v = version;;) {
    StatusOr<VersionInfo> info = ReadVersionInfo(publish_dir, v);
    if (!info.ok() && info.status().code() == StatusCode::kNotFound && v != version) {
      return NotFoundError(absl::StrCat(publish_dir, ": version ", version,
                                        " cannot be loaded: version ", v, ", the base of version ",
                                        chain.back().version,
                                        ", is missing (removed or never "
                                        "published)"));
    }
    if (!info.ok()) return info.status();
    chain.push_back(*info);
    if (info->full) break;
    v = info->base_version;  // < v (ReadManifest checks), so the walk ends
  }
  std::reverse(chain.begin(), chain.end());
  return chain;
}

StatusOr<std::vector<uint64_t>> RemoveOldVersions(const std::string& publish_dir, uint64_t keep) {
  TESSERA_ASSIGN_OR_RETURN(std::vector<uint64_t> versions, ListVersionNumbers(publish_dir));
  TESSERA_RETURN_IF_ERROR(RemoveLeftovers(publish_dir));
  if (keep == 0 || versions.size() <= keep) return std::vector<uint64_t>{};
  // Walk each kept version's chain down, newest first, until a version
  // already needed (its chain is needed already), a full snapshot or a
  // missing link.
  std::set<uint64_t> needed;
  for (size_t i = versions.size() - keep; i < versions.size(); ++i) needed.insert(versions[i]);
  for (size_t i = versions.size(); i-- > versions.size() - keep;) {
    for (uint64_t v = versions[i];;) {
      StatusOr<VersionInfo> info = ReadVersionInfo(publish_dir, v);
      if (!info.ok() && info.status().code() == StatusCode::kNotFound) break;
      if (!info.ok()) return info.status();
      if (info->full) break;
      v = info->base_version;
      if (!needed.insert(v).second) break;
    }
  }
  std::vector<uint64_t> removed;
  for (uint64_t v : versions) {
    if (needed.contains(v)) continue;
    TESSERA_RETURN_IF_ERROR(RemoveVersion(publish_dir, v));
    removed.push_back(v);
  }
  return removed;
}

}  // namespace tessera::models
