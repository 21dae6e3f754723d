// Helpers for the monitoring tests (deploy/prometheus, deploy/grafana,
// docs/metrics.md): the metric names a catalogue documents, a PromQL
// expression reads, or a /metrics page exposes; and running promtool.
#ifndef TESSERA_TESTS_DEPLOY_MONITORING_UTIL_H_
#define TESSERA_TESTS_DEPLOY_MONITORING_UTIL_H_

#include <set>
#include <string>

namespace tessera::testing {

// Names in the first column of docs/metrics.md's tables: lines starting
// "| `name`".
std::set<std::string> DocumentedMetrics(const std::string& markdown);

// Metric names a PromQL expression selects: identifiers outside strings,
// label matchers, ranges and grouping lists that are not functions,
// keywords or numbers. Histogram series (_bucket, _sum, _count) are kept as
// written.
std::set<std::string> MetricNamesInExpr(const std::string& expr);

// True if `name` is documented, directly or as a documented histogram's
// _bucket, _sum or _count series.
bool IsDocumented(const std::set<std::string>& documented, const std::string& name);

// Families of a text-format page (its "# TYPE name type" lines).
std::set<std::string> FamiliesInExposition(const std::string& text);

// The absolute path of `program` found in $PATH, or "" if absent.
std::string FindInPath(const std::string& program);

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};
// Runs `command` with /bin/sh and waits for it.
CommandResult RunCommand(const std::string& command);

}  // namespace tessera::testing

#endif  // TESSERA_TESTS_DEPLOY_MONITORING_UTIL_H_
