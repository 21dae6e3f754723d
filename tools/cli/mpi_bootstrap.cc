#include "tools/cli/mpi_bootstrap.h"

// The C API only: without these, mpi.h pulls in the deprecated C++ bindings
// (libmpi_cxx), which we neither use nor link.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/curve_keys.h"
#include "common/logging.h"
#include "tools/cli/node_flags.h"
#include "tools/cli/role_commands.h"

namespace tessera::cli {
namespace {

struct Bootstrap {
  std::string scheduler;  // empty: rank 0 failed to start
  std::string token;
};

// Collective. Rank 0 passes its values; every rank returns rank 0's.
Bootstrap Broadcast(const Bootstrap& mine) {
  std::string packed = mine.scheduler + "\n" + mine.token;
  int size = static_cast<int>(packed.size());
  MPI_Bcast(&size, 1, MPI_INT, 0, MPI_COMM_WORLD);
  packed.resize(static_cast<size_t>(size));
  MPI_Bcast(packed.data(), size, MPI_CHAR, 0, MPI_COMM_WORLD);
  size_t newline = packed.find('\n');
  if (newline == std::string::npos) return {};
  return {packed.substr(0, newline), packed.substr(newline + 1)};
}

// The IPv4 address of network interface `name` on this host; NotFound if it
// has none.
StatusOr<std::string> InterfaceAddress(const std::string& name) {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return UnavailableError("getifaddrs failed");
  std::string address;
  for (ifaddrs* it = list; it != nullptr && address.empty(); it = it->ifa_next) {
    if (it->ifa_addr == nullptr || it->ifa_addr->sa_family != AF_INET || name != it->ifa_name) {
      continue;
    }
    char text[INET_ADDRSTRLEN] = {};
    const auto* in = reinterpret_cast<const sockaddr_in*>(it->ifa_addr);
    if (::inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text)) != nullptr) address = text;
  }
  ::freeifaddrs(list);
  if (address.empty()) return NotFoundError("network interface '" + name + "' has no IPv4 address");
  return address;
}

// The interface to use, if one is named: TESSERA_INTERFACE, else the first
// of Open MPI's TCP interfaces (mpirun --mca btl_tcp_if_include eth0) when
// it names an interface rather than a subnet. Empty: none named.
std::string NamedInterface() {
  for (const char* var : {kInterfaceEnv, "OMPI_MCA_btl_tcp_if_include"}) {
    const char* value = std::getenv(var);
    if (value == nullptr || value[0] == '\0') continue;
    std::string first(value);
    first = first.substr(0, first.find(','));
    if (first.find('/') == std::string::npos) return first;
  }
  return "";
}

// Collective. Loopback when every rank shares this host.
std::string AdvertisedHost(int world_size) {
  MPI_Comm local;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local);
  int local_size = 0;
  MPI_Comm_size(local, &local_size);
  MPI_Comm_free(&local);
  if (local_size == world_size) return "127.0.0.1";
  char name[256] = {};
  ::gethostname(name, sizeof(name) - 1);
  return name;
}

// Same answer on every rank (no communication), so all ranks agree to fail.
Status Validate(const ClusterSpec& spec, const WorkerProgramRegistry& programs, int world_size) {
  const int workers = world_size - 1 - spec.servers;
  if (spec.servers < 0 || workers < 1) {
    return InvalidArgumentError("mpirun -np " + std::to_string(world_size) + " with --servers " +
                                std::to_string(spec.servers) +
                                " leaves no worker (need np >= servers + 2)");
  }
  if (spec.workers_given && spec.workers != workers) {
    return InvalidArgumentError("--workers " + std::to_string(spec.workers) + " contradicts np " +
                                std::to_string(world_size) + " - 1 - --servers " +
                                std::to_string(spec.servers) + " = " + std::to_string(workers));
  }
  if (programs.Find(spec.program) == nullptr) {
    return InvalidArgumentError("unknown worker program '" + spec.program + "'");
  }
  return programs.TablesFor(spec.table_specs, spec.program, spec.program_args).status();
}

int RunRank0(const ClusterSpec& spec, const WorkerProgramRegistry& programs, NodeFlags node,
             int workers, const std::optional<CurveKeys>& curve) {
  StatusOr<std::string> token = ReadOrGenerateClusterToken(spec.token_file);
  if (!token.ok()) {
    TESSERA_LOG(kError) << token.status();
    Broadcast({});
    return 1;
  }
  scheduler::SchedulerMainArgs args =
      MakeSchedulerArgs(node, spec.servers, workers,
                        *programs.TablesFor(spec.table_specs, spec.program, spec.program_args),
                        *token, curve, {spec.heartbeat_interval_ms, spec.heartbeat_timeout_ms});
  if (spec.table_specs.empty()) {
    if (Status s = programs.SetUpScheduler(spec.program, spec.program_args, &args.node); !s.ok()) {
      TESSERA_LOG(kError) << s;
      Broadcast({});
      return 1;
    }
  }
  bool broadcast = false;
  args.on_bound = [&](const protocol::NodeInfo& self) {
    Broadcast({self.endpoint, *token});
    broadcast = true;
    return OkStatus();
  };
  if (!spec.output_dir.empty()) {
    std::error_code error;
    std::filesystem::create_directories(spec.output_dir, error);
    args.on_running = ClusterFileWriter(spec.output_dir + "/cluster.json");
  }
  int code = scheduler::RunScheduler(args);
  if (!broadcast) Broadcast({});  // unblock the other ranks: they fail too
  return code;
}

int RunRank(const ClusterSpec& spec, const WorkerProgramRegistry& programs, int rank, int size) {
  if (Status s = ApplyLogLevel(spec.log_level); !s.ok()) {
    if (rank == 0) TESSERA_LOG(kError) << s;
    return 2;
  }
  if (Status s = Validate(spec, programs, size); !s.ok()) {
    if (rank == 0) TESSERA_LOG(kError) << s;
    return 2;
  }
  // Each rank reads the key directory itself (a shared path on every host).
  StatusOr<std::optional<CurveKeys>> curve = LoadCurveKeys(spec.curve_dir);
  if (!curve.ok()) {
    TESSERA_LOG(kError) << curve.status();
    return 2;
  }
  NodeFlags node;
  node.host = AdvertisedHost(size);  // collective: every rank calls it
  node.bind = node.host == "127.0.0.1" ? "tcp://127.0.0.1:0" : "tcp://0.0.0.0:0";
  node.metrics_host = node.host == "127.0.0.1" ? "127.0.0.1" : "0.0.0.0";
  // Each rank binds to and advertises its own address on a named interface.
  const std::string interface = NamedInterface();
  StatusOr<std::string> address =
      interface.empty() ? StatusOr<std::string>(std::string()) : InterfaceAddress(interface);
  if (!address.ok()) TESSERA_LOG(kError) << "rank " << rank << ": " << address.status();
  int all_ok = address.ok() ? 1 : 0;  // collective: no rank may wait for a failed one
  MPI_Allreduce(MPI_IN_PLACE, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (all_ok == 0) return 2;
  if (!address->empty()) {
    node.host = *address;
    node.bind = "tcp://" + *address + ":0";
    node.metrics_host = "0.0.0.0";
  }
  node.startup_timeout_s = spec.startup_timeout_s;
  if (rank == 0) return RunRank0(spec, programs, node, size - 1 - spec.servers, *curve);

  Bootstrap bootstrap = Broadcast({});
  if (bootstrap.scheduler.empty()) {
    TESSERA_LOG(kError) << "rank 0 could not start the scheduler";
    return 1;
  }
  node.scheduler = bootstrap.scheduler;
  if (rank <= spec.servers) {
    node.rank = rank - 1;
    server::ServerMainArgs args = MakeServerArgs(node, bootstrap.token, *curve);
    args.first_signal_drains = spec.drain_on_signal;  // mpirun signals every rank
    return server::RunServer(args);
  }
  node.rank = rank - 1 - spec.servers;
  worker::WorkerMainArgs args = MakeWorkerArgs(node, bootstrap.token, *curve,
                                               *programs.Find(spec.program), spec.program_args);
  args.first_signal_drains = spec.drain_on_signal;
  return worker::RunWorker(args);
}

}  // namespace

bool LaunchedByMpi() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"}) {
    if (std::getenv(var) != nullptr) return true;
  }
  return false;
}

int RunMpiCluster(const ClusterSpec& spec, const WorkerProgramRegistry& programs) {
  MPI_Init(nullptr, nullptr);
  int rank = 0;
  int size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  SetLogNodeLabel("mpi/" + std::to_string(rank));
  int code = RunRank(spec, programs, rank, size);
  MPI_Finalize();
  return code;
}

}  // namespace tessera::cli
