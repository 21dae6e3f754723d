// libFuzzer target: the serving JSON decoder. The input is parsed as JSON
// (nlohmann, no exceptions), then an object goes to InstanceEncoder::Encode
// on a fixed small schema (fuzz_util.h), as do the elements of an
// "instances" array and a "context" object, the shapes of :predict and
// :recommend bodies.
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "fuzz/fuzz_util.h"
#include "models/tsv_parser.h"
#include "serving/instance_encoder.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using nlohmann::json;
  const json body = json::parse(data, data + size, /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return 0;
  const tessera::serving::InstanceEncoder encoder(&tessera::fuzz::FuzzSchema());
  tessera::models::Example ex;
  tessera::serving::KeptTokens tokens;
  auto encode = [&](const json& instance) {
    if (encoder.Encode(instance, "instances[0]", &ex, &tokens).ok()) {
      tessera::fuzz::KeepAlive(ex.keys.size() + tokens.size());
    }
  };
  encode(body);
  if (body.is_object()) {
    if (auto it = body.find("instances"); it != body.end() && it->is_array()) {
      for (const json& instance : *it) encode(instance);
    }
    if (auto it = body.find("context"); it != body.end()) encode(*it);
  }
  return 0;
}
