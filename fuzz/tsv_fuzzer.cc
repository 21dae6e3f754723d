// libFuzzer target: the TSV data path on a fixed small schema (fuzz_util.h).
// Every line of the input goes through TsvParser::Parse, and the whole input,
// written to a file, through ExampleReader (line splitting, '\r', a last line
// without '\n', bad-line accounting) in two chunks split at the first byte.
// The reader costs a file write and a 1 MiB buffer per chunk (~10x a parse),
// so it runs only for inputs whose first byte is a multiple of 4; the parser
// gets the other three quarters of the time.
// Accepted examples must hold what the schema promises (checked: abort).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_util.h"
#include "models/data_reader.h"
#include "models/tsv_parser.h"

namespace tessera::fuzz {
namespace {

void CheckExample(const models::Schema& schema, const models::Example& ex) {
  const size_t fields = schema.fields().size();
  bool ok = ex.key_offsets.size() == fields + 1 && ex.key_offsets.back() == ex.keys.size() &&
            ex.numeric.size() == static_cast<size_t>(schema.num_numeric()) &&
            (ex.label == 0.0f || ex.label == 1.0f);
  for (size_t f = 0; ok && f < fields; ++f) {
    ok = ex.key_offsets[f] <= ex.key_offsets[f + 1];
  }
  if (!ok) {
    std::fprintf(stderr, "Example breaks the schema's shape\n");
    std::abort();
  }
}

// This process's scratch file, removed at exit (libFuzzer exits with exit()).
const std::string& ScratchFile() {
  static const std::string* const path = [] {
    const char* dir = std::getenv("TMPDIR");
    auto* p = new std::string(std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp") +
                              "/tessera_tsv_fuzzer." + std::to_string(::getpid()) + ".tsv");
    std::atexit([] { std::remove(ScratchFile().c_str()); });
    return p;
  }();
  return *path;
}

}  // namespace
}  // namespace tessera::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tessera::models;  // NOLINT: a fuzz entry, short names read better
  const Schema& schema = tessera::fuzz::FuzzSchema();
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  const TsvParser parser(&schema);
  Example ex;
  std::string reason;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    if (parser.Parse(text.substr(start, end - start), &ex, &reason) != LineKind::kBad) {
      tessera::fuzz::CheckExample(schema, ex);
    }
    start = end + 1;
  }

  if (size == 0 || data[0] % 4 != 0) return 0;
  const std::string& path = tessera::fuzz::ScratchFile();
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
  }
  const uint64_t split = data[0] % (size + 1);
  ExampleReader reader(&schema, {FileChunk{path, 0, split}, FileChunk{path, split, kToEndOfFile}},
                       ExampleReaderOptions{.max_logged_bad = 0});
  for (;;) {
    auto more = reader.Next(&ex);
    if (!more.ok() || !*more) break;
    tessera::fuzz::CheckExample(schema, ex);
  }
  return 0;
}
