#include "tools/cli/simulate_command.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "serving/feedback/ab_stats.h"
#include "models/gen/click_model.h"
// Last: httplib's macros break Eigen's headers.
#include <httplib.h>

namespace tessera::cli {
namespace {

using nlohmann::json;
using models::gen::ClickWorld;
using models::gen::Device;

struct SimulateFlags {
  std::string url;
  std::string name = "default";
  uint32_t users = 10000;
  uint32_t items = 20000;
  uint32_t max_len = 30;
  uint64_t seed = 1;
  double drift = 0.01;
  double item_drift = 0;
  uint64_t after_rows = 0;
  uint64_t requests = 2000;
  uint32_t candidates = 30;
  uint32_t k = 5;
  uint64_t report_every = 200;
  double rate = 0;  // requests per second; 0: as fast as serving answers
};

struct ArmCounts {
  uint64_t impressions = 0;
  uint64_t clicks = 0;
  double planted = 0;  // sum of the planted click probability of what was shown
  double ceiling = 0;  // the same for the k best candidates
  void Add(const ArmCounts& o) {
    impressions += o.impressions;
    clicks += o.clicks;
    planted += o.planted;
    ceiling += o.ceiling;
  }
};

// One visit's request body; fills the candidates' items and their planted
// click probabilities.
json Visit(ClickWorld* world, uint32_t user, uint32_t hour, Device device, const SimulateFlags& f,
           std::vector<uint32_t>* items, std::vector<double>* probability) {
  json hist_items = json::array(), hist_cats = json::array(), hist_brands = json::array();
  for (uint32_t h : world->UserHistory(user)) {
    hist_items.push_back(absl::StrCat("i", h));
    hist_cats.push_back(absl::StrCat("c", world->CategoryOf(h)));
    hist_brands.push_back(absl::StrCat("b", world->BrandOf(h)));
  }
  json candidates = json::array();
  items->clear();
  probability->clear();
  for (uint32_t c = 0; c < f.candidates; ++c) {
    const uint32_t item = world->Candidate(user);
    if (std::find(items->begin(), items->end(), item) != items->end()) continue;
    items->push_back(item);
    probability->push_back(world->ClickProbability(user, item, hour, device));
    candidates.push_back(json{{"item_id", absl::StrCat("i", item)},
                              {"category", absl::StrCat("c", world->CategoryOf(item))},
                              {"brand", absl::StrCat("b", world->BrandOf(item))},
                              {"price", world->PriceOf(item)}});
  }
  const json context{{"user_id", absl::StrCat("u", user)},
                     {"hour", std::to_string(hour)},
                     {"device", models::gen::kDeviceNames[static_cast<int>(device)]},
                     {"hist_items", std::move(hist_items)},
                     {"hist_cats", std::move(hist_cats)},
                     {"hist_brands", std::move(hist_brands)}};
  return json{{"context", context}, {"candidates", std::move(candidates)}, {"k", f.k}};
}

std::string Report(const std::map<std::string, ArmCounts>& arms) {
  std::string line;
  for (const auto& [arm, c] : arms) {
    const double n = std::max<double>(1, static_cast<double>(c.impressions));
    absl::StrAppend(&line, " | ", arm, ": ", c.impressions, " shown, ", c.clicks, " clicks, CTR ",
                    absl::StrFormat("%.4f (planted %.4f, best-k %.4f)", c.clicks / n,
                                    c.planted / n, c.ceiling / n));
  }
  return line;
}

int RunSimulate(const SimulateFlags& f) {
  httplib::Client client(f.url);
  client.set_connection_timeout(5);
  client.set_read_timeout(30);
  models::gen::WorldOptions world_options;
  world_options.users = f.users;
  world_options.items = f.items;
  world_options.max_len = f.max_len;
  world_options.seed = f.seed;
  world_options.drift = f.drift;
  world_options.item_drift = f.item_drift;
  ClickWorld world(world_options);
  // The world as it is at the end of gen's data: the shoppers continue it.
  for (uint64_t i = 0; i < f.after_rows; ++i) {
    const models::gen::Impression& last = world.Next();
    if (i + 1 == f.after_rows && last.click) world.RecordClick(last.user, last.item);
  }
  const std::string recommend = absl::StrCat("/v1/models/", f.name, ":recommend");
  std::map<std::string, ArmCounts> window, total;
  uint64_t errors = 0;
  std::vector<uint32_t> items;
  std::vector<double> probability;
  const auto start = std::chrono::steady_clock::now();
  for (uint64_t i = 0; i < f.requests; ++i) {
    if (f.rate > 0) {
      std::this_thread::sleep_until(start + std::chrono::duration<double>(i / f.rate));
    }
    const uint32_t user = world.NextVisitor();
    const auto hour = static_cast<uint32_t>(i * 24 / std::max<uint64_t>(f.requests, 1));
    const Device device = world.Uniform() < 0.85
                              ? world.DeviceOf(user)
                              : static_cast<Device>(static_cast<int>(world.Uniform() * 3));
    const json body = Visit(&world, user, hour, device, f, &items, &probability);
    auto r = client.Post(recommend, body.dump(), "application/json");
    const json reply = r ? json::parse(r->body, nullptr, false) : json();
    if (!r || r->status != 200 || !reply.is_object() || !reply.contains("items")) {
      if (errors++ == 0) {
        std::cerr << "tessera simulate: " << f.url << recommend << ": "
                  << (r ? absl::StrCat(r->status, " ", r->body) : httplib::to_string(r.error()))
                  << "\n";
      }
      if (errors == i + 1 && errors >= 10) {
        std::cerr << "tessera simulate: the first " << errors << " requests failed; giving up\n";
        return 1;
      }
      continue;
    }
    ArmCounts& counts = window[reply.value("arm", "")];
    std::vector<double> best = probability;
    std::sort(best.rbegin(), best.rend());
    for (size_t b = 0; b < std::min<size_t>(f.k, best.size()); ++b) counts.ceiling += best[b];
    for (const json& item : reply["items"]) {
      const std::string id = item.value("item_id", "");
      const auto at = std::find_if(items.begin(), items.end(),
                                   [&](uint32_t x) { return id == absl::StrCat("i", x); });
      if (at == items.end()) continue;
      const double p = probability[at - items.begin()];
      ++counts.impressions;
      counts.planted += p;
      if (world.Uniform() >= p) continue;
      ++counts.clicks;
      world.RecordClick(user, *at);
      const json click{{"request_id", reply.value("request_id", "")}, {"item_id", id}, {"event", "click"}};
      auto fr = client.Post("/v1/feedback", click.dump(), "application/json");
      if ((!fr || fr->status != 200) && errors++ == 0) {
        std::cerr << "tessera simulate: /v1/feedback: "
                  << (fr ? absl::StrCat(fr->status, " ", fr->body) : httplib::to_string(fr.error()))
                  << "\n";
      }
    }
    if ((i + 1) % f.report_every == 0 || i + 1 == f.requests) {
      const double s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::cout << absl::StrFormat("simulate: requests %d-%d (%.1f s)",
                                   (i / f.report_every) * f.report_every + 1, i + 1, s)
                << Report(window) << std::endl;
      for (const auto& [arm, c] : window) total[arm].Add(c);
      window.clear();
    }
  }
  std::cout << "simulate: total" << Report(total) << ", errors " << errors << std::endl;
  const ArmCounts* control = total.empty() ? nullptr : &total.begin()->second;
  for (const auto& [arm, c] : total) {
    const feedback::CtrInterval ci = feedback::WilsonInterval(c.clicks, c.impressions);
    std::cout << absl::StrFormat("simulate: arm %s CTR %.4f [%.4f, %.4f]", arm, ci.ctr, ci.low,
                                 ci.high);
    if (&c != control) {
      const feedback::ZTest t =
          feedback::TwoProportionZTest(c.clicks, c.impressions, control->clicks, control->impressions);
      std::cout << absl::StrFormat(" vs %s: z %.2f, p %.4f", total.begin()->first, t.z, t.p_value);
    }
    std::cout << std::endl;
  }
  return 0;
}

}  // namespace

void AddSimulateCommand(CLI::App* app, Command* selected) {
  CLI::App* cmd = app->add_subcommand(
      "simulate", "Synthetic shoppers (the planted click model of gen) for a running tessera serve");
  auto f = std::make_shared<SimulateFlags>();
  cmd->add_option("--serve", f->url, "serve's URL, e.g. http://127.0.0.1:8501")->required();
  cmd->add_option("--name", f->name, "Model name in /v1/models/NAME")->capture_default_str();
  cmd->add_option("--users", f->users, "As tessera gen --users")->capture_default_str();
  cmd->add_option("--items", f->items, "As tessera gen --items")
      ->capture_default_str()
      ->check(CLI::Range(1u, 100000000u));
  cmd->add_option("--max-len", f->max_len, "As tessera gen --max_len")->capture_default_str();
  cmd->add_option("--seed", f->seed, "As tessera gen --seed")->capture_default_str();
  cmd->add_option("--drift", f->drift, "As tessera gen --drift")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--item-drift", f->item_drift, "As tessera gen --item_drift")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--after-rows", f->after_rows,
                  "Start from the world as it is after gen's first N impressions (gen's --rows: "
                  "the shoppers continue the world the model was trained on)")
      ->capture_default_str();
  cmd->add_option("--requests", f->requests, "Recommend requests to send")->capture_default_str();
  cmd->add_option("--candidates", f->candidates, "Candidates per request")
      ->capture_default_str()
      ->check(CLI::Range(1u, 10000u));
  cmd->add_option("--k", f->k, "Items shown per request")
      ->capture_default_str()
      ->check(CLI::Range(1u, 10000u));
  cmd->add_option("--report-every", f->report_every, "Print CTR per arm every N requests")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40));
  cmd->add_option("--rate", f->rate, "Requests per second (0: as fast as serve answers)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e6));
  cmd->footer(
      "Example: tessera gen --out data && tessera train job.yaml   # a model of that world\n"
      "         tessera serve --model-dir runs/demo/model --name ctr --impression-dir events &\n"
      "         tessera simulate --serve http://127.0.0.1:8501 --name ctr --requests 5000\n"
      "See docs/feedback_loop.md.");
  cmd->callback([f, selected] { *selected = [f] { return RunSimulate(*f); }; });
}

}  // namespace tessera::cli
