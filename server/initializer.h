// Forwarding header: the deterministic initializer moved to
// common/initializer.h so that models/ (which must not include server/) can
// compute the same initial values when it scores a saved model. Existing
// server code and tests keep using tessera::server::InitializeRow/Slice.
#ifndef TESSERA_SERVER_INITIALIZER_H_
#define TESSERA_SERVER_INITIALIZER_H_

#include "common/initializer.h"

namespace tessera::server {

using ::tessera::InitializeRow;
using ::tessera::InitializeSlice;

}  // namespace tessera::server

#endif  // TESSERA_SERVER_INITIALIZER_H_
