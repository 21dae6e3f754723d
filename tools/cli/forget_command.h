// `tessera forget`: the right to be forgotten. Removes the rows of given ids
// from a running job: every server (and, with replication, every copy) erases
// them, and the next published delta carries them as tombstones, so later
// versions (and `tessera serve`) no longer hold them.
//
//   tessera forget --job job.yaml --table user_id --ids u123,u456
//                  [--ids-file FILE] [--run DIR | --scheduler tcp://HOST:PORT]
//
// The keys are computed here exactly as the job's workers compute them: the
// job's schema, the field's (or table's) index and the id salt of the
// environment (tools/cli/id_salt.h). The cluster token comes from
// TESSERA_CLUSTER_TOKEN or --token-file. The request goes to the scheduler
// (protocols/codec.h ForgetRequest), which asks every live server; each
// server confirms with the rows it erased. Exit code 0 when every server
// confirmed, 1 otherwise (an error or no answer in time: erasing is
// idempotent, so run it again), 2 for bad arguments.
#ifndef TESSERA_TOOLS_CLI_FORGET_COMMAND_H_
#define TESSERA_TOOLS_CLI_FORGET_COMMAND_H_

#include <CLI/CLI.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/transport.h"
#include "common/types.h"
#include "models/schema.h"
#include "protocols/codec.h"
#include "tools/cli/command.h"

namespace tessera::cli {

void AddForgetCommand(CLI::App* app, Command* selected);

// The scheduler address of the local job whose output directory is `dir`
// (its cluster.json, written by `tessera train` / `tessera local` once the
// cluster runs). NotFound if the file is absent (not running, or not yet).
StatusOr<std::string> SchedulerAddressOfRun(const std::string& dir);

// The keys of `ids` in `table_or_field` of `schema` (with the schema's
// hasher): a categorical or sequence field's name, or an embedding table's.
// Duplicate ids count once. InvalidArgument for an unknown name or an empty
// id.
StatusOr<std::vector<Key>> ForgetKeys(const models::Schema& schema,
                                      const std::string& table_or_field,
                                      const std::vector<std::string>& ids);

struct ForgetClientOptions {
  std::string scheduler;  // data-plane address, e.g. tcp://127.0.0.1:5555
  std::string token;      // the cluster token
  std::string bind = "tcp://0.0.0.0:0";
  std::string host = "127.0.0.1";  // advertised to the scheduler in place of 0.0.0.0
  std::chrono::milliseconds timeout{30000};
};

// Over `transport` (unbound; borrowed: binds options.bind, connects to the
// scheduler, and is shut down on return), sends ForgetRequests (at most kMaxForgetKeysPerRequest keys
// each) for `keys` of table `table` and returns every server's confirmation,
// summed over the requests, by server rank. DeadlineExceeded without an
// answer in time; the scheduler's error otherwise.
inline constexpr size_t kMaxForgetKeysPerRequest = size_t{1} << 20;
StatusOr<protocol::ForgetReplyInfo> SendForget(Transport* transport,
                                               const ForgetClientOptions& options, TableId table,
                                               const std::vector<Key>& keys);

}  // namespace tessera::cli

#endif  // TESSERA_TOOLS_CLI_FORGET_COMMAND_H_
