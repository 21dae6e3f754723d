// The REST API of `tessera serve`, compatible with TensorFlow Serving's:
//   GET  /v1/models/NAME            {"model_version_status": [{"version": "<V>",
//                                    "state": "AVAILABLE", "status":
//                                    {"error_code": "OK", "error_message": ""}}]}
//   POST /v1/models/NAME:predict    {"instances": [{field: value, ...}, ...],
//                                    "explain": false}
//        -> {"predictions": [p, ...], "model_version": "<V>"
//            [, "explanations": [{logit, bias, fields, attention}, ...]]}
//   POST /v1/models/NAME:recommend  {"context": {field: value, ...},
//                                    "candidates": [{field: value, ...} | "id", ...],
//                                    "k": 10, "explain": false}
//        -> {"items": [{"<item field>": id, "score": p
//            [, "explanation": {...}]}, ...], "model_version": "<V>"}
// plus /healthz, /readyz (a model is loaded) and /metrics. Instances are
// described in serving/instance_encoder.h. A recommend candidate is scored
// as one instance: its own fields, then the context's, then (for a bare id,
// which sets the item field, serving/item_catalog.h) the catalogue row's;
// the top k come back by descending score (ties: request order).
//
// Errors are JSON, {"error": "..."}, naming the place
// ("instances[3].price: expected a number, got string"): 404 unknown model
// name or method, 400 malformed JSON / wrong types / unknown fields, 413 a
// body over max_body_bytes or more than max_instances instances or
// candidates, 503 before a model is loaded. A body is checked after
// cpp-httplib has read it.
//
// Metrics: tessera_serving_requests_total{route, code},
// tessera_serving_instances_total, tessera_serving_request_latency_seconds
// {route}, tessera_serving_bad_requests_total{reason}.
//
// Thread-safe: handlers run on the HTTP server's pool threads.
#ifndef TESSERA_SERVING_REST_API_H_
#define TESSERA_SERVING_REST_API_H_

#include <atomic>
#include <cstddef>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "common/http_server.h"
#include "common/metrics.h"
#include "serving/served_model.h"

namespace tessera::serving {

struct RestApiOptions {
  std::string name = "default";       // NAME in the routes
  size_t max_body_bytes = 16u << 20;  // larger bodies: 413
  int max_instances = 10000;          // instances or candidates per request; more: 413
};

class RestApi {
 public:
  // `metrics` is borrowed and must outlive this object.
  RestApi(const RestApiOptions& options, MetricsRegistry* metrics);

  // Serves `model` from now on and makes /readyz ready. REQUIRES: called at
  // most once (hot swapping versions is later work).
  void SetModel(std::unique_ptr<const ServedModel> model);
  bool ready() const { return model_.load() != nullptr; }

  // Adds the /v1/models routes and /metrics, /healthz, /readyz to `server`.
  // REQUIRES: before server->Start(); this object outlives the server.
  void Register(HttpServer* server);

  // One /v1/models/... request (what the routes call).
  HttpResponse Handle(const HttpRequest& request);

  // An answer before it becomes an HttpResponse; `reason` labels a refused
  // request in the metrics ("" for success).
  struct Reply {
    int status = 200;
    std::string reason;
    nlohmann::ordered_json body;
  };

 private:
  Reply Dispatch(const HttpRequest& request, std::string* route);
  Reply ModelStatus(const ServedModel& model) const;
  Reply Predict(const ServedModel& model, const std::string& body);
  Reply Recommend(const ServedModel& model, const std::string& body);

  const RestApiOptions options_;
  MetricsRegistry* const metrics_;
  std::unique_ptr<const ServedModel> owned_;  // set once by SetModel
  std::atomic<const ServedModel*> model_{nullptr};
};

}  // namespace tessera::serving

#endif  // TESSERA_SERVING_REST_API_H_
