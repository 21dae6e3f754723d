// The id salt (models/feature_hash.h) of a job's processes, from the
// environment only: never the job file, never a command-line value (which
// `ps` would show to every user).
//
//   TESSERA_ID_SALT=<salt>          the salt itself, or
//   TESSERA_ID_SALT_FILE=<path>     a file holding it (surrounding whitespace
//                                   trimmed; keep it mode 0600)
//
// Training (every scheduler and worker process), `tessera eval`, `tessera
// serve` and `tessera forget` must see the same salt. Neither set: unsalted
// keys, exactly as before salts existed. Use a long random salt (e.g.
// `head -c 32 /dev/urandom | base64`): models publish a fingerprint of it,
// and a short salt could be guessed from that.
#ifndef TESSERA_TOOLS_CLI_ID_SALT_H_
#define TESSERA_TOOLS_CLI_ID_SALT_H_

#include "common/status.h"
#include "models/feature_hash.h"

namespace tessera::cli {

inline constexpr char kIdSaltEnv[] = "TESSERA_ID_SALT";
inline constexpr char kIdSaltFileEnv[] = "TESSERA_ID_SALT_FILE";

// The hasher of the salt the environment names (unsalted if none).
// InvalidArgument if both variables are set or the file is empty; NotFound if
// the file cannot be read.
StatusOr<models::FeatureHasher> ReadIdSaltHasher();

}  // namespace tessera::cli

#endif  // TESSERA_TOOLS_CLI_ID_SALT_H_
