// libFuzzer target: the wire message decoder. DecodedMessage::Decode on any
// bytes, then every accessor (each checks the decoded type itself, so the one
// matching type() does the real work), touching every byte they return.
// Hostile input may be accepted or rejected, never crash or read out of
// bounds. Ideas from tests/protocols/codec_fuzz_test.cc.
#include <cstddef>
#include <cstdint>

#include "common/transport.h"
#include "fuzz/fuzz_util.h"
#include "protocols/codec.h"
#include "tests/protocols/touch_message.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using tessera::protocol::DecodedMessage;
  uint64_t sink = 0;
  auto decoded = DecodedMessage::Decode(tessera::Frame::Copy(data, size));
  if (decoded.ok()) tessera::protocol::TouchEveryAccessor(*decoded, &sink);
  tessera::fuzz::KeepAlive(sink);
  return 0;
}
