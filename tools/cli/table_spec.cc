#include "tools/cli/table_spec.h"

#include <charconv>
#include <set>

namespace tessera::cli {
namespace {

bool ValidName(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

Status SpecError(std::string_view spec, std::string_view why) {
  return InvalidArgumentError(
      "--table '" + std::string(spec) + "': " + std::string(why) +
      " (expected name:sparse:DIM:OPTIMIZER[:LR] or name:dense:SIZE:OPTIMIZER[:LR])");
}

std::vector<std::string_view> Split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (size_t pos; (pos = text.find(separator, start)) != std::string_view::npos; start = pos + 1) {
    parts.push_back(text.substr(start, pos - start));
  }
  parts.push_back(text.substr(start));
  return parts;
}

// Whole-string numbers only ("12x" and "" fail).
template <typename T>
bool ParseNumber(std::string_view text, T* value) {
  const char* end = text.data() + text.size();
  auto [ptr, error] = std::from_chars(text.data(), end, *value);
  return error == std::errc() && ptr == end && !text.empty();
}

}  // namespace

StatusOr<TableConfig> ParseTableSpec(std::string_view spec, TableId id) {
  std::vector<std::string_view> parts = Split(spec, ':');
  if (parts.size() < 4 || parts.size() > 5) return SpecError(spec, "wrong number of fields");
  TableConfig config;
  config.id = id;
  if (!ValidName(parts[0])) return SpecError(spec, "name must be [A-Za-z0-9_.-]+");
  config.name = std::string(parts[0]);
  uint64_t size = 0;
  if (!ParseNumber(parts[2], &size) || size == 0) {
    return SpecError(spec, "size/dim must be a positive integer");
  }
  if (parts[1] == "sparse") {
    config.kind = TableKind::kSparse;
    if (size > UINT32_MAX) return SpecError(spec, "dim too large");
    config.dim = static_cast<uint32_t>(size);
  } else if (parts[1] == "dense") {
    config.kind = TableKind::kDense;
    config.size = size;
  } else {
    return SpecError(spec, "kind must be sparse or dense");
  }
  if (!ParseOptimizerType(parts[3], &config.optimizer.type)) {
    return SpecError(spec, "optimizer must be sgd, adagrad, adam or ftrl");
  }
  if (parts.size() == 5) {
    float lr = 0;
    if (!ParseNumber(parts[4], &lr) || !(lr > 0)) {
      return SpecError(spec, "learning rate must be a positive number");
    }
    config.optimizer.learning_rate = lr;
  }
  if (Status s = ValidateTableConfig(config); !s.ok())
    return SpecError(spec, std::string(s.message()));
  return config;
}

StatusOr<std::vector<TableConfig>> ParseTableSpecs(const std::vector<std::string>& specs) {
  std::vector<TableConfig> tables;
  std::set<std::string> names;
  for (const std::string& spec : specs) {
    TESSERA_ASSIGN_OR_RETURN(TableConfig config,
                             ParseTableSpec(spec, static_cast<TableId>(tables.size())));
    if (!names.insert(config.name).second) {
      return SpecError(spec, "table name '" + config.name + "' given twice");
    }
    tables.push_back(std::move(config));
  }
  return tables;
}

std::string FormatTableSpec(const TableConfig& config) {
  bool sparse = config.kind == TableKind::kSparse;
  char lr[32];
  auto [end, error] = std::to_chars(lr, lr + sizeof(lr), config.optimizer.learning_rate);
  (void)error;  // 32 chars always hold a float's shortest form
  return config.name + (sparse ? ":sparse:" : ":dense:") +
         std::to_string(sparse ? uint64_t{config.dim} : config.size) + ":" +
         std::string(OptimizerTypeName(config.optimizer.type)) + ":" + std::string(lr, end);
}

}  // namespace tessera::cli
