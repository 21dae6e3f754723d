#include "tests/deploy/monitoring_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <regex>
#include <sstream>

namespace tessera::testing {
namespace {

// Removes the spans from `open` to the matching `close` (not nested).
std::string Strip(const std::string& s, char open, char close) {
  std::string out;
  bool inside = false;
  for (char c : s) {
    if (!inside && c == open) {
      inside = true;
    } else if (inside && c == close) {
      inside = false;
      out += ' ';
    } else if (!inside) {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::set<std::string> DocumentedMetrics(const std::string& markdown) {
  std::set<std::string> names;
  static const std::regex kRow(R"(^\|\s*`([a-zA-Z_:][a-zA-Z0-9_:]*)`)");
  std::istringstream in(markdown);
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_search(line, m, kRow)) names.insert(m[1]);
  }
  return names;
}

std::set<std::string> MetricNamesInExpr(const std::string& expr) {
  // Strings first (they may hold braces), then matchers and ranges.
  std::string s = Strip(Strip(expr, '"', '"'), '\'', '\'');
  s = Strip(Strip(s, '{', '}'), '[', ']');
  // Grouping and matching lists name labels, not metrics.
  static const std::regex kLists(
      R"(\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\))");
  s = std::regex_replace(s, kLists, " ");
  static const std::set<std::string> kKeywords = {
      "and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
      "group_left", "group_right", "inf", "nan", "Inf", "NaN"};
  static const std::regex kIdent(R"([a-zA-Z_:][a-zA-Z0-9_:]*)");
  std::set<std::string> names;
  for (auto it = std::sregex_iterator(s.begin(), s.end(), kIdent); it != std::sregex_iterator();
       ++it) {
    const size_t end = static_cast<size_t>(it->position() + it->length());
    // Part of a number (1e9) or a duration (5m) is not a name.
    if (it->position() > 0 && std::isdigit(static_cast<unsigned char>(s[it->position() - 1]))) {
      continue;
    }
    size_t next = end;
    while (next < s.size() && s[next] == ' ') ++next;
    if (next < s.size() && s[next] == '(') continue;  // a function
    if (kKeywords.count(it->str())) continue;
    names.insert(it->str());
  }
  return names;
}

bool IsDocumented(const std::set<std::string>& documented, const std::string& name) {
  if (documented.count(name)) return true;
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string sfx(suffix);
    if (name.size() > sfx.size() && name.compare(name.size() - sfx.size(), sfx.size(), sfx) == 0 &&
        documented.count(name.substr(0, name.size() - sfx.size()))) {
      return true;
    }
  }
  return false;
}

std::set<std::string> FamiliesInExposition(const std::string& text) {
  std::set<std::string> names;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# TYPE ", 0) != 0) continue;
    std::istringstream fields(line.substr(7));
    std::string name;
    fields >> name;
    names.insert(name);
  }
  return names;
}

std::string FindInPath(const std::string& program) {
  const char* path = ::getenv("PATH");
  std::istringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + program;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

CommandResult RunCommand(const std::string& command) {
  CommandResult result;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = ::fread(buf.data(), 1, buf.size(), pipe)) > 0) result.output.append(buf.data(), n);
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

}  // namespace tessera::testing
