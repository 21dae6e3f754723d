// The REST API of `tessera serve`, compatible with TensorFlow Serving's:
//   GET  /v1/models/NAME            {"model_version_status": [{"version": "<V>",
//                                    "state": "AVAILABLE", "status":
//                                    {"error_code": "OK", "error_message": ""}}]}
//   POST /v1/models/NAME:predict    {"instances": [{field: value, ...}, ...],
//                                    "explain": false}
//        -> {"predictions": [p, ...], "model_version": "<V>", "request_id": "<id>",
//            "arm": "<arm>" [, "explanations": [{logit, bias, fields, attention}, ...]]}
//   POST /v1/models/NAME:recommend  {"context": {field: value, ...},
//                                    "candidates": [{field: value, ...} | "id", ...],
//                                    "k": 10, "explain": false}
//        -> {"items": [{"<item field>": id, "score": p
//            [, "explanation": {...}]}, ...], "model_version": "<V>",
//            "request_id": "<id>", "arm": "<arm>"}
// plus /healthz, /readyz (every arm has a model) and /metrics. Instances are
// described in serving/instance_encoder.h. A recommend candidate is scored
// as one instance: its own fields, then the context's, then (for a bare id,
// which sets the item field, serving/item_catalog.h) the catalogue row's;
// the top k come back by descending score (ties: request order).
//
// Versions and A/B arms: each arm (one, "default", unless configured)
// answers from its ModelSlot (serving/model_slot.h); a request holds one
// model from start to end, so its reply names the version that computed
// every score in it. A predict or recommend request's arm is picked by
// serving/arm_split.h from the value of `arm_field` in the first instance
// (predict) or the context (recommend); a request without that value is
// split by its request id (so it lands on an arm at random). The request
// id is the body's "request_id" (a string of 1-128 printable characters)
// if given, else "<prefix>-<counter>", unique within the process (the
// prefix: the start time in ms since the epoch, in hex). With several arms,
// GET /v1/models/NAME lists one entry per arm, each with an "arm" key.
//
// Errors are JSON, {"error": "..."}, naming the place
// ("instances[3].price: expected a number, got string"): 404 unknown model
// name or method, 400 malformed JSON / wrong types / unknown fields, 413 a
// body over max_body_bytes or more than max_instances instances or
// candidates, 503 before a model is loaded. A body is checked after
// cpp-httplib has read it.
//
// Metrics: tessera_serving_requests_total{arm, route, code} (arm "" when
// the request was refused before an arm was picked),
// tessera_serving_instances_total, tessera_serving_request_latency_seconds
// {route}, tessera_serving_bad_requests_total{reason}.
//
// Impressions (issue 8): with set_feedback, every scored candidate a
// successful predict (each instance) or recommend (each returned item)
// reply carries is passed to FeedbackService::OnServed before the reply is
// sent (serving/feedback_service.h), with the instance's schema-TSV
// columns when impressions are logged.
//
// Thread-safe: handlers run on the HTTP server's pool threads.
#ifndef TESSERA_SERVING_REST_API_H_
#define TESSERA_SERVING_REST_API_H_

#include <atomic>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/http_server.h"
#include "common/metrics.h"
#include "serving/arm_split.h"
#include "serving/feedback_service.h"
#include "serving/model_slot.h"
#include "serving/served_model.h"

namespace tessera::serving {

struct RestApiOptions {
  std::string name = "default";       // NAME in the routes
  size_t max_body_bytes = 16u << 20;  // larger bodies: 413
  int max_instances = 10000;          // instances or candidates per request; more: 413
  // The A/B arms and their weights (normalized); REQUIRES: valid for
  // ArmSplit::Create.
  std::vector<ArmWeight> arms = {{"default", 1.0}};
  std::string arm_field = "user_id";  // the field that picks a request's arm
  std::string request_id_prefix = "";  // "": the start time in hex
};

class RestApi {
 public:
  // `metrics` is borrowed and must outlive this object.
  RestApi(const RestApiOptions& options, MetricsRegistry* metrics);

  // Serves `model` on the first arm from now on (slot(0)->Set).
  void SetModel(std::shared_ptr<const ServedModel> model) { slot(0)->Set(std::move(model)); }
  // Arm `arm`'s slot (index in options.arms), for a ModelFollower.
  ModelSlot* slot(size_t arm) { return slots_[arm].get(); }
  // Impressions go to `feedback` (borrowed; outlives this object; may be
  // null: none). REQUIRES: before requests arrive.
  void set_feedback(FeedbackService* feedback) { feedback_ = feedback; }
  // True once every arm has a model.
  bool ready() const;

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
  Reply Dispatch(const HttpRequest& request, std::string* route, std::string* arm);
  Reply ModelStatus() const;
  // The request id of `doc`: its "request_id" or a new one.
  bool RequestId(const nlohmann::json& doc, std::string* id, Reply* error);
  size_t PickArm(const nlohmann::json& doc, const std::string& route,
                 const std::string& request_id) const;
  // `tags` (model_version, request_id, arm) are added to a success reply;
  // with feedback_, `served` gets the reply's candidates.
  Reply Predict(const ServedModel& model, const nlohmann::json& doc,
                const nlohmann::ordered_json& tags, std::vector<ServedItem>* served);
  Reply Recommend(const ServedModel& model, const nlohmann::json& doc,
                  const nlohmann::ordered_json& tags, std::vector<ServedItem>* served);
  // The impression of a returned, scored `instance`.
  ServedItem Impression(const ServedModel& model, const nlohmann::json& instance,
                        float score) const;

  const RestApiOptions options_;
  MetricsRegistry* const metrics_;
  const ArmSplit split_;
  const std::string request_id_prefix_;
  std::vector<std::unique_ptr<ModelSlot>> slots_;  // one per arm; fixed
  std::atomic<uint64_t> next_request_{0};
  FeedbackService* feedback_ = nullptr;
};

}  // namespace tessera::serving

#endif  // TESSERA_SERVING_REST_API_H_
