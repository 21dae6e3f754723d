#include "common/transport.h"

#include <cstring>

namespace tessera {

Frame Frame::FromString(std::string bytes) {
  auto owner = std::make_shared<const std::string>(std::move(bytes));
  return Frame(reinterpret_cast<const uint8_t*>(owner->data()), owner->size(), owner);
}

Frame Frame::Copy(const void* data, size_t size) {
  return FromString(std::string(static_cast<const char*>(data), size));
}

size_t Message::ByteSize() const {
  size_t n = 0;
  for (const Frame& f : frames) n += f.size();
  return n;
}

}  // namespace tessera
