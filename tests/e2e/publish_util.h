// Helpers for tests and benches that follow a training job's publish
// directory (publish.model_dir) from outside, as serving does.
#ifndef TESSERA_TESTS_E2E_PUBLISH_UTIL_H_
#define TESSERA_TESTS_E2E_PUBLISH_UTIL_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace tessera::testing {

// True if version `v` of publish dir `pub` has fully trained the followed
// file named `name` (a file name, not a path). Reads the version's
// manifest.json training_state.data (scheduler/data_assigner.h): followed
// files are taken in name order, the watermark names the last one taken,
// and a file not yet trained still has chunks ("chunks") or is listed
// untrained in "stream_files". So `name` counts as trained once it is the
// watermark with nothing of it open: drop one file at a time.
bool VersionTrainedFile(const std::string& pub, uint64_t v, const std::string& name);

// Polls `pub` for the first version that has trained `name`; nullopt after
// `timeout` or once the process `train` has exited.
std::optional<uint64_t> WaitForVersionTrainedFile(const std::string& pub, const std::string& name,
                                                  pid_t train, std::chrono::milliseconds timeout);

}  // namespace tessera::testing

#endif  // TESSERA_TESTS_E2E_PUBLISH_UTIL_H_
