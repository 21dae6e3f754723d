// Starting and stopping the processes of a local cluster.
#ifndef TESSERA_TOOLS_CLI_CHILD_PROCESS_H_
#define TESSERA_TOOLS_CLI_CHILD_PROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "common/status.h"

namespace tessera::cli {

// The path of the running executable (/proc/self/exe resolved).
StatusOr<std::string> SelfExePath();

// Forks and execs argv[0] with `argv`, inheriting the environment, stdout
// and stderr. In the child, SIGINT/SIGTERM/SIGCHLD are unblocked and
// PR_SET_PDEATHSIG makes the kernel SIGKILL it if this thread dies, so a
// killed launcher leaves nothing behind.
// REQUIRES: the calling process has a single thread (fork is then safe).
StatusOr<pid_t> SpawnChild(const std::vector<std::string>& argv);

// "exit 3", "killed by SIGKILL", ... for a waitpid() status.
std::string DescribeExit(int wait_status);

}  // namespace tessera::cli

#endif  // TESSERA_TOOLS_CLI_CHILD_PROCESS_H_
