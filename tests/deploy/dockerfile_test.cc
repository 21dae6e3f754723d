// deploy/docker/Dockerfile without a Docker engine: what can be checked
// statically. Every stage is Debian 12 (bookworm); the build stage runs the
// project's own scripts, which exist; the binary it copies is where
// tools/build.sh puts it (BUILD_DIR, default build/, + the tessera target's
// directory); the runtime stage installs the package of every shared
// library the binary links directly.
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera {
namespace {

namespace fs = std::filesystem;

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? "" : value;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string RunShell(const std::string& command) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return out;
  char buffer[4096];
  for (size_t n; (n = fread(buffer, 1, sizeof(buffer), pipe)) > 0;) out.append(buffer, n);
  ::pclose(pipe);
  return out;
}

// Dockerfile lines with continuations joined.
std::vector<std::string> Instructions(const std::string& text) {
  std::vector<std::string> out;
  std::string current;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (current.empty() && (line.empty() || line[0] == '#')) continue;
    if (!line.empty() && line.back() == '\\') {
      current += line.substr(0, line.size() - 1) + " ";
      continue;
    }
    out.push_back(current + line);
    current.clear();
  }
  return out;
}

class DockerfileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(Env("TESSERA_SOURCE_DIR").empty());
    text_ = ReadAll(Env("TESSERA_SOURCE_DIR") + "/deploy/docker/Dockerfile");
    ASSERT_FALSE(text_.empty());
    instructions_ = Instructions(text_);
  }

  std::string text_;
  std::vector<std::string> instructions_;
};

TEST_F(DockerfileTest, EveryStageIsBookworm) {
  int stages = 0;
  for (const std::string& line : instructions_) {
    if (line.rfind("FROM ", 0) != 0) continue;
    ++stages;
    EXPECT_THAT(line, ::testing::MatchesRegex("FROM debian:bookworm(-slim)?( AS [a-z]+)?"));
  }
  EXPECT_GE(stages, 2) << "multi-stage: a build stage and a runtime stage";
}

TEST_F(DockerfileTest, InvokedScriptsExistAndAreExecutable) {
  static const std::regex kScript(R"(tools/[a-z_]+\.sh)");
  std::set<std::string> scripts;
  for (std::sregex_iterator it(text_.begin(), text_.end(), kScript), end; it != end; ++it) {
    scripts.insert(it->str());
  }
  EXPECT_EQ(scripts, (std::set<std::string>{"tools/build.sh", "tools/install_deps.sh"}));
  for (const std::string& script : scripts) {
    const fs::path path = fs::path(Env("TESSERA_SOURCE_DIR")) / script;
    ASSERT_TRUE(fs::exists(path)) << script;
    EXPECT_NE(fs::status(path).permissions() & fs::perms::owner_exec, fs::perms::none) << script;
  }
}

TEST_F(DockerfileTest, CopiesTheBinaryWhereBuildShPutsIt) {
  // tools/build.sh: BUILD_DIR defaults to build; the Dockerfile may set it.
  const std::string build_sh = ReadAll(Env("TESSERA_SOURCE_DIR") + "/tools/build.sh");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(build_sh, m, std::regex(R"(BUILD_DIR=\$\{BUILD_DIR:-([^}]+)\})")));
  std::string build_dir = m[1];
  std::string workdir = "/";
  std::string copied;
  for (const std::string& line : instructions_) {
    if (std::regex_search(line, m, std::regex(R"(^WORKDIR (\S+))")) && copied.empty()) {
      workdir = m[1];
    }
    if (std::regex_search(line, m, std::regex(R"(BUILD_DIR=(\S+) tools/build\.sh)"))) {
      build_dir = m[1];
    }
    if (std::regex_search(line, m, std::regex(R"(^COPY --from=build (\S+) )"))) copied = m[1];
  }
  // The tessera target's path below the build directory, from this build.
  const std::string relative =
      fs::relative(Env("TESSERA_BIN"), Env("TESSERA_BINARY_DIR")).string();
  EXPECT_EQ(relative, "tools/tessera");
  EXPECT_EQ(copied, (fs::path(workdir) / build_dir / relative).string());
}

TEST_F(DockerfileTest, RuntimeStageInstallsEveryDirectlyLinkedLibrary) {
  const std::string runtime = text_.substr(text_.find("AS runtime"));
  const std::string needed = RunShell("readelf -d '" + Env("TESSERA_BIN") + "' 2>/dev/null");
  const std::string ldd = RunShell("ldd '" + Env("TESSERA_BIN") + "' 2>/dev/null");
  if (needed.empty() || RunShell("command -v dpkg").empty()) {
    GTEST_SKIP() << "readelf or dpkg missing";
  }
  // Always in debian:bookworm-slim.
  const std::set<std::string> base = {"libc6", "libstdc++6", "libgcc-s1", "zlib1g"};
  static const std::regex kNeeded(R"(\(NEEDED\)\s+Shared library: \[([^\]]+)\])");
  int checked = 0;
  for (std::sregex_iterator it(needed.begin(), needed.end(), kNeeded), end; it != end; ++it) {
    const std::string lib = (*it)[1];
    std::smatch m;
    ASSERT_TRUE(std::regex_search(ldd, m, std::regex(std::regex_replace(lib, std::regex(R"([.+])"), R"(\$&)") + R"( => (\S+))")))
        << lib;
    // dpkg knows a file by the path its package ships (/lib or /usr/lib,
    // usrmerge), the symlink or its target.
    const std::string real = fs::canonical(m[1].str()).string();
    std::string package;
    for (std::string path : {real, m[1].str()}) {
      for (std::string candidate : {path, path.rfind("/usr/", 0) == 0 ? path.substr(4) : path}) {
        if (package.empty()) {
          package = RunShell("dpkg -S '" + candidate + "' 2>/dev/null | cut -d: -f1 | head -1");
        }
      }
    }
    package = package.substr(0, package.find_first_of("\n"));
    ASSERT_FALSE(package.empty()) << real;
    ++checked;
    if (base.count(package) != 0) continue;
    EXPECT_THAT(runtime, ::testing::HasSubstr(" " + package + " ")) << lib << " is in " << package;
  }
  EXPECT_GT(checked, 5);
}

}  // namespace
}  // namespace tessera
