#include "tools/cli/serve_command.h"

#include <iostream>
#include <memory>

#include "serving/serve_main.h"

namespace tessera::cli {

void AddServeCommand(CLI::App* app, Command* selected) {
  CLI::App* cmd = app->add_subcommand(
      "serve", "Serve a saved model over HTTP (TensorFlow Serving REST: predict, recommend)");
  auto options = std::make_shared<serving::ServeOptions>();
  cmd->add_option("--model-dir", options->model_dir, "Saved model directory (<output_dir>/model)")
      ->required();
  cmd->add_option("--port", options->port, "HTTP port (0: any free port)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--host", options->host, "Address to bind")->capture_default_str();
  cmd->add_option("--name", options->name, "Model name in /v1/models/NAME")->capture_default_str();
  cmd->add_option("--catalog", options->catalog,
                  "Item catalogue (training-format TSV rows) that fills bare recommend candidates");
  cmd->footer(
      "Example: tessera serve --model-dir runs/demo/model --port 8501 --name ctr\n"
      "         curl -d '{\"instances\": [{\"user_id\": \"u1\", \"item_id\": \"i9\"}]}' \\\n"
      "              localhost:8501/v1/models/ctr:predict");
  cmd->callback([options, selected] {
    *selected = [options] {
      Status s = serving::RunServe(*options);
      if (s.ok()) return 0;
      std::cerr << "tessera serve: " << s.message() << "\n";
      return 1;
    };
  });
}

}  // namespace tessera::cli
