#include "tools/cli/serve_command.h"

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "common/logging.h"
#include "serving/serve_main.h"
#include "tools/cli/id_salt.h"
#include "tools/cli/join_command.h"
#include "tools/cli/node_flags.h"

namespace tessera::cli {

void AddServeCommand(CLI::App* app, Command* selected) {
  CLI::App* cmd = app->add_subcommand("serve",
                                      "Serve saved or continuously published models over HTTP "
                                      "(TensorFlow Serving REST: "
                                      "predict, recommend), optionally as A/B arms");
  auto options = std::make_shared<serving::ServeOptions>();
  auto arms = std::make_shared<std::vector<std::string>>();
  auto log_level = std::make_shared<std::string>("info");
  CLI::Option* model_dir =
      cmd->add_option("--model-dir", options->model_dir,
                      "A saved model (<output_dir>/model) or a publish directory "
                      "(publish.model_dir: the latest "
                      "version is served and new versions are applied as they appear)");
  CLI::Option* arm = cmd->add_option("--arm", *arms,
                                     "A/B arm NAME=DIR:WEIGHT (repeat; DIR as "
                                     "--model-dir; weights are normalized)");
  model_dir->excludes(arm);
  arm->excludes(model_dir);
  cmd->add_option("--arm-field", options->arm_field,
                  "Request field whose value picks the arm (first instance, or "
                  "the recommend "
                  "context; requests without it are split by request id)")
      ->capture_default_str();
  cmd->add_option("--poll-ms", options->poll_ms, "How often publish directories are polled")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600000));
  cmd->add_option("--port", options->port, "HTTP port (0: any free port)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--host", options->host, "Address to bind")->capture_default_str();
  cmd->add_option("--name", options->name, "Model name in /v1/models/NAME")->capture_default_str();
  cmd->add_option("--catalog", options->catalog,
                  "Item catalogue (training-format TSV rows) that fills bare "
                  "recommend candidates");
  AddLogLevelFlag(cmd, log_level.get());
  AddImpressionFlags(cmd, options.get());
  cmd->footer(
      "Example: tessera serve --model-dir runs/demo/model --port 8501 "
      "--name ctr\n"
      "         curl -d '{\"instances\": [{\"user_id\": \"u1\", "
      "\"item_id\": \"i9\"}]}' \\\n"
      "              localhost:8501/v1/models/ctr:predict\n"
      "         tessera serve --arm a=runs/a/publish:0.9 --arm "
      "b=runs/b/publish:0.1 --name ctr\n"
      "Models trained with an id salt need the same salt in TESSERA_ID_SALT or "
      "TESSERA_ID_SALT_FILE.");
  cmd->callback([options, arms, log_level, selected] {
    *selected = [options, arms, log_level] {
      if (Status s = ApplyLogLevel(*log_level); !s.ok()) {
        std::cerr << "tessera serve: " << s.message() << "\n";
        return 2;
      }
      SetLogNodeLabel("serve/" + options->name);
      for (const std::string& text : *arms) {
        StatusOr<serving::ArmSpec> spec = serving::ParseArmSpec(text);
        if (!spec.ok()) {
          std::cerr << "tessera serve: " << spec.status().message() << "\n";
          return 2;
        }
        options->arms.push_back(*spec);
      }
      StatusOr<models::FeatureHasher> hasher = ReadIdSaltHasher();
      if (!hasher.ok()) {
        std::cerr << "tessera serve: " << hasher.status().message() << "\n";
        return 2;
      }
      options->id_hasher = *hasher;
      Status s = serving::RunServe(*options);
      if (s.ok()) return 0;
      std::cerr << "tessera serve: " << s.message() << "\n";
      return 1;
    };
  });
}

}  // namespace tessera::cli
