#include "tests/e2e/publish_util.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "models/model_versions.h"
#include "tests/e2e/process_util.h"

namespace tessera::testing {

bool VersionTrainedFile(const std::string& pub, uint64_t v, const std::string& name) {
  using nlohmann::json;
  const json manifest =
      json::parse(ReadFileOrEmpty(models::VersionDir(pub, v) + "/manifest.json"), nullptr, false);
  if (!manifest.is_object() || !manifest.contains("training_state")) return false;
  const json& state = manifest["training_state"];
  if (!state.is_object() || !state.contains("data")) return false;
  const json& data = state["data"];
  if (!data.is_object()) return false;
  const auto is_name = [&](const json& j) {
    return j.is_string() && std::filesystem::path(j.get<std::string>()).filename().string() == name;
  };
  if (!is_name(data.value("watermark", json()))) return false;
  for (const json& chunk : data.value("chunks", json::array())) {
    if (chunk.is_object() && is_name(chunk.value("path", json()))) return false;
  }
  for (const json& file : data.value("stream_files", json::array())) {
    if (file.is_object() && is_name(file.value("path", json())) && !file.value("trained", false)) {
      return false;
    }
  }
  return true;
}

std::optional<uint64_t> WaitForVersionTrainedFile(const std::string& pub, const std::string& name,
                                                  pid_t train, std::chrono::milliseconds timeout) {
  std::optional<uint64_t> found;
  PollUntil(
      [&] {
        if (!ProcessAlive(train)) return true;
        auto versions = models::ListVersionNumbers(pub);
        if (!versions.ok() || versions->empty()) return false;
        if (VersionTrainedFile(pub, versions->back(), name)) found = versions->back();
        return found.has_value();
      },
      timeout);
  return found;
}

}  // namespace tessera::testing
