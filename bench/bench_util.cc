#include "bench/bench_util.h"

#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>

#include "tests/e2e/process_util.h"

namespace tessera::bench {

namespace fs = std::filesystem;
using std::chrono::seconds;
using testing::ReadFileOrEmpty;

bool GenerateData(const std::string& tessera, const std::string& out, int rows) {
  const std::string log = out + ".gen.log";
  const pid_t gen = testing::Spawn(
      {tessera, "gen", "--out", out, "--rows", std::to_string(rows), "--seed", "7"}, log);
  std::optional<int> status = testing::WaitForExit(gen, seconds(300));
  if (!status || !WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
    std::cerr << "tessera gen failed:\n" << ReadFileOrEmpty(log);
    return false;
  }
  return true;
}

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}

std::string DefaultTesseraBinary() {
  if (const char* bin = std::getenv("TESSERA_BIN"); bin != nullptr && *bin != '\0') return bin;
  std::error_code ec;
  const auto self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return "";
  return (self.parent_path().parent_path() / "tools" / "tessera").string();
}

}  // namespace tessera::bench
