#include "serving/instance_tsv.h"

#include <algorithm>
#include <charconv>
#include <vector>

#include "serving/feedback/event_log.h"

namespace tessera::serving {

std::string InstanceTsv(const models::Schema& schema, const nlohmann::json& instance) {
  std::string out;
  out.reserve(256);
  bool first = true;
  for (const models::Field& field : schema.fields()) {
    if (!first) out += '\t';
    first = false;
    const auto it = instance.find(field.name);
    if (it == instance.end() || it->is_null()) continue;
    switch (field.type) {
      case models::FieldType::kNumeric:
        if (it->is_number()) {
          // The shortest text that parses back to the same double.
          char buf[32];
          const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), it->get<double>());
          if (ec == std::errc()) out.append(buf, end);
        }
        break;
      case models::FieldType::kCategorical:
        if (it->is_string()) feedback::AppendSanitized(it->get_ref<const std::string&>(), true, &out);
        break;
      case models::FieldType::kSequence: {
        if (!it->is_array()) break;
        std::vector<const std::string*> kept;
        for (size_t i = it->size(); i-- > 0 && kept.size() < field.max_len;) {
          const nlohmann::json& token = (*it)[i];
          if (token.is_string() && !token.get_ref<const std::string&>().empty()) {
            kept.push_back(&token.get_ref<const std::string&>());
          }
        }
        std::reverse(kept.begin(), kept.end());
        for (size_t i = 0; i < kept.size(); ++i) {
          if (i > 0) out += ',';
          feedback::AppendSanitized(*kept[i], true, &out);
        }
        break;
      }
    }
  }
  return out;
}

}  // namespace tessera::serving
