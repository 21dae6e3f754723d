#include "serving/rest_api.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/logging.h"
#include "serving/instance_tsv.h"

namespace tessera::serving {

using nlohmann::json;
using ojson = nlohmann::ordered_json;

namespace {

constexpr char kPrefix[] = "/v1/models/";
constexpr size_t kMaxRequestIdBytes = 128;

ArmSplit MakeSplit(const std::vector<ArmWeight>& arms) {
  StatusOr<ArmSplit> split = ArmSplit::Create(arms);
  if (!split.ok()) {  // a REQUIRES of RestApiOptions: a bug of the caller
    TESSERA_LOG(kError) << "RestApi: invalid arms: " << split.status().message();
    std::abort();
  }
  return *std::move(split);
}

std::string StartTimeHex() {
  const int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  return absl::StrFormat("%x", ms);
}

}  // namespace

RestApi::RestApi(const RestApiOptions& options, MetricsRegistry* metrics)
    : options_(options),
      metrics_(metrics),
      split_(MakeSplit(options.arms)),
      request_id_prefix_(options.request_id_prefix.empty() ? StartTimeHex()
                                                           : options.request_id_prefix) {
  for (size_t i = 0; i < split_.size(); ++i) slots_.push_back(std::make_unique<ModelSlot>());
}

bool RestApi::ready() const {
  return std::all_of(slots_.begin(), slots_.end(),
                     [](const auto& slot) { return slot->Get() != nullptr; });
}

void RestApi::Register(HttpServer* server) {
  // cpp-httplib matches route patterns as regular expressions on the path.
  const std::string pattern = std::string(kPrefix) + "[^/]+";
  for (const char* method : {"GET", "POST"}) {
    server->Handle(method, pattern, [this](const HttpRequest& r) { return Handle(r); });
  }
  AddObservabilityRoutes(server, metrics_, [this] { return ready(); });
}

HttpResponse RestApi::Handle(const HttpRequest& request) {
  const auto start = std::chrono::steady_clock::now();
  std::string route = "other";
  std::string arm;
  Reply reply = Dispatch(request, &route, &arm);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  metrics_
      ->GetCounter("tessera_serving_requests_total",
                   "Requests by A/B arm, route and HTTP status code",
                   {{"arm", arm}, {"route", route}, {"code", std::to_string(reply.status)}})
      .Increment();
  metrics_
      ->GetHistogram("tessera_serving_request_latency_seconds", "Request latency by route",
                     LatencyBuckets(), {{"route", route}})
      .Observe(seconds);
  if (!reply.reason.empty()) {
    metrics_
        ->GetCounter("tessera_serving_bad_requests_total", "Requests refused, by reason",
                     {{"reason", reply.reason}})
        .Increment();
  }
  return HttpResponse{reply.status, "application/json",
                      reply.body.dump(-1, ' ', false, ojson::error_handler_t::replace)};
}

namespace {

RestApi::Reply Error(int status, std::string reason, std::string message) {
  return {status, std::move(reason), ojson{{"error", std::move(message)}}};
}

// The request body as a JSON object, or the error reply.
bool ParseBody(const std::string& body, size_t max_bytes, json* doc, RestApi::Reply* error) {
  if (body.size() > max_bytes) {
    *error = Error(
        413, "body_too_large",
        absl::StrCat("request body of ", body.size(), " bytes exceeds the limit of ", max_bytes));
    return false;
  }
  *doc = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc->is_discarded()) {
    *error = Error(400, "malformed_json", "request body is not valid JSON");
    return false;
  }
  if (!doc->is_object()) {
    *error = Error(400, "invalid_request",
                   absl::StrCat("request body: expected an object, got ", doc->type_name()));
    return false;
  }
  return true;
}

// Checks the top-level keys of a request: only `allowed` ones.
bool CheckKeys(const json& doc, std::initializer_list<const char*> allowed, RestApi::Reply* error) {
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    // A named variable, not a structured binding: clang 14 cannot capture
    // those in a lambda (the fuzz build uses clang).
    const std::string& key = it.key();
    if (std::find_if(allowed.begin(), allowed.end(), [&](const char* a) { return key == a; }) ==
        allowed.end()) {
      *error = Error(400, "invalid_request", absl::StrCat(key, ": unknown key"));
      return false;
    }
  }
  return true;
}

bool ExplainFlag(const json& doc, bool* explain, RestApi::Reply* error) {
  *explain = false;
  const auto it = doc.find("explain");
  if (it == doc.end() || it->is_null()) return true;
  if (!it->is_boolean()) {
    *error = Error(400, "invalid_request",
                   absl::StrCat("explain: expected a boolean, got ", it->type_name()));
    return false;
  }
  *explain = it->get<bool>();
  return true;
}

RestApi::Reply ScoreError(const Status& s) {
  if (s.code() == StatusCode::kInvalidArgument) {
    return Error(400, "invalid_instance", std::string(s.message()));
  }
  if (s.code() == StatusCode::kUnimplemented) {
    return Error(400, "explain_unsupported", std::string(s.message()));
  }
  return Error(500, "internal", std::string(s.message()));
}

// The instance each recommend candidate is scored as: an object
// candidate's fields over the context's; a bare id's item field over the
// context's fields over its catalogue row's.
bool ExpandCandidates(const ServedModel& model, const json& context, const json& candidates,
                      std::vector<json>* instances, RestApi::Reply* error) {
  const std::string& item_field = model.item_field();
  instances->reserve(candidates.size());
  for (size_t i = 0; i < candidates.size(); ++i) {
    const json& candidate = candidates[i];
    json instance;
    if (candidate.is_string()) {
      if (item_field.empty()) {
        *error =
            Error(400, "invalid_instance",
                  absl::StrCat("candidates[", i, "]: a bare id needs an item field in the schema"));
        return false;
      }
      const json* row = model.catalog()
                            ? model.catalog()->Find(candidate.get_ref<const std::string&>())
                            : nullptr;
      instance = row != nullptr ? *row : json::object();
      instance.update(context);
      instance[item_field] = candidate;
    } else if (candidate.is_object()) {
      instance = context;
      instance.update(candidate);
    } else {
      *error = Error(400, "invalid_instance",
                     absl::StrCat("candidates[", i, "]: expected an object or a string, got ",
                                  candidate.type_name()));
      return false;
    }
    instances->push_back(std::move(instance));
  }
  return true;
}

// The k best-scored instances, best first (ties: request order), as
// {"<item field>": id, "score": p [, "explanation": ...]}; their indices
// into `instances` in *top (if not null).
ojson TopItems(const std::string& item_field, const std::vector<json>& instances, size_t k,
               bool explain, ScoreResult* result, std::vector<size_t>* top) {
  const std::vector<float>& scores = result->predictions;
  const auto key = [&](size_t i) { return std::isnan(scores[i]) ? -INFINITY : scores[i]; };
  std::vector<size_t> order(instances.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return key(a) > key(b); });
  order.resize(std::min(order.size(), k));
  if (top != nullptr) *top = order;
  const std::string id_key = item_field.empty() ? "item_id" : item_field;
  ojson items = ojson::array();
  for (size_t i : order) {
    const auto id = item_field.empty() ? instances[i].end() : instances[i].find(item_field);
    ojson item{{id_key, id != instances[i].end() && id->is_string() ? ojson(id->get<std::string>())
                                                                    : ojson()},
               {"score", JsonFloat(scores[i])}};
    if (explain) item["explanation"] = std::move(result->explanations[i]);
    items.push_back(std::move(item));
  }
  return items;
}

}  // namespace

RestApi::Reply RestApi::Dispatch(const HttpRequest& request, std::string* route,
                                 std::string* arm) {
  std::string rest = request.path.substr(std::min(request.path.size(), sizeof(kPrefix) - 1));
  std::string verb;
  if (const size_t colon = rest.rfind(':'); colon != std::string::npos) {
    verb = rest.substr(colon + 1);
    rest.resize(colon);
  }
  if (request.method == "GET" && verb.empty()) {
    *route = "status";
  } else if (request.method == "POST" && (verb == "predict" || verb == "recommend")) {
    *route = verb;
  } else {
    return Error(404, "unknown_method",
                 absl::StrCat(request.method, " ", request.path,
                              ": no such method (GET /v1/models/NAME, "
                              "POST /v1/models/NAME:predict or :recommend)"));
  }
  if (rest != options_.name) {
    return Error(
        404, "unknown_model",
        absl::StrCat("model '", rest, "' not found (this server serves '", options_.name, "')"));
  }
  if (*route == "status") return ModelStatus();
  Reply error;
  json doc;
  std::string request_id;
  if (!ParseBody(request.body, options_.max_body_bytes, &doc, &error) ||
      !RequestId(doc, &request_id, &error)) {
    return error;
  }
  const size_t index = PickArm(doc, *route, request_id);
  *arm = split_.name(index);
  // One model for the whole request: every score in the reply is of the
  // version it names.
  const std::shared_ptr<const ServedModel> model = slots_[index]->Get();
  if (model == nullptr) return Error(503, "not_ready", "no model is loaded yet");
  const ojson tags{
      {"model_version", model->version()}, {"request_id", request_id}, {"arm", *arm}};
  std::vector<ServedItem> served;
  std::vector<ServedItem>* impressions = feedback_ != nullptr ? &served : nullptr;
  Reply reply = *route == "predict" ? Predict(*model, doc, tags, impressions)
                                    : Recommend(*model, doc, tags, impressions);
  // Before the reply leaves: feedback on it may come right after.
  if (reply.status == 200 && feedback_ != nullptr) {
    feedback_->OnServed(request_id, index, model->version(), served);
  }
  return reply;
}

ServedItem RestApi::Impression(const ServedModel& model, const json& instance, float score) const {
  ServedItem item;
  item.score = score;
  if (!model.item_field().empty()) {
    const auto id = instance.find(model.item_field());
    if (id != instance.end() && id->is_string()) item.item_id = id->get<std::string>();
  }
  if (feedback_->logging()) item.features = InstanceTsv(model.schema(), instance);
  return item;
}

bool RestApi::RequestId(const json& doc, std::string* id, Reply* error) {
  const auto it = doc.find("request_id");
  if (it == doc.end()) {
    *id = absl::StrCat(request_id_prefix_, "-", next_request_.fetch_add(1) + 1);
    return true;
  }
  const bool printable =
      it->is_string() && !it->get_ref<const std::string&>().empty() &&
      it->get_ref<const std::string&>().size() <= kMaxRequestIdBytes &&
      std::all_of(it->get_ref<const std::string&>().begin(),
                  it->get_ref<const std::string&>().end(), [](char c) { return c >= 32 && c < 127; });
  if (!printable) {
    *error = Error(400, "invalid_request",
                   absl::StrCat("request_id: expected a string of 1 to ", kMaxRequestIdBytes,
                                " printable ASCII characters"));
    return false;
  }
  *id = it->get<std::string>();
  return true;
}

size_t RestApi::PickArm(const json& doc, const std::string& route,
                        const std::string& request_id) const {
  if (split_.size() == 1) return 0;
  const json* holder = nullptr;  // the first instance, or the context
  if (route == "predict") {
    const auto it = doc.find("instances");
    if (it != doc.end() && it->is_array() && !it->empty()) holder = &(*it)[0];
  } else if (const auto it = doc.find("context"); it != doc.end()) {
    holder = &*it;
  }
  if (holder != nullptr && holder->is_object()) {
    const auto value = holder->find(options_.arm_field);
    if (value != holder->end() && value->is_string()) {
      return split_.Pick(value->get_ref<const std::string&>());
    }
    if (value != holder->end() && value->is_number()) return split_.Pick(value->dump());
  }
  return split_.Pick(request_id);
}

RestApi::Reply RestApi::ModelStatus() const {
  ojson versions = ojson::array();
  for (size_t i = 0; i < slots_.size(); ++i) {
    const std::shared_ptr<const ServedModel> model = slots_[i]->Get();
    ojson status{{"error_code", "OK"}, {"error_message", ""}};
    ojson version{{"version", model ? model->version() : "0"},
                  {"state", model ? "AVAILABLE" : "LOADING"},
                  {"status", std::move(status)}};
    if (slots_.size() > 1) version["arm"] = split_.name(i);
    versions.push_back(std::move(version));
  }
  if (slots_.size() == 1 && slots_[0]->Get() == nullptr) {
    return Error(503, "not_ready", "no model is loaded yet");
  }
  return {200, "", ojson{{"model_version_status", std::move(versions)}}};
}

RestApi::Reply RestApi::Predict(const ServedModel& model, const json& doc, const ojson& tags,
                                std::vector<ServedItem>* served) {
  Reply error;
  bool explain = false;
  if (!CheckKeys(doc, {"instances", "explain", "signature_name", "request_id"}, &error) ||
      !ExplainFlag(doc, &explain, &error)) {
    return error;
  }
  const auto it = doc.find("instances");
  if (it == doc.end() || !it->is_array()) {
    return Error(400, "invalid_request",
                 it == doc.end()
                     ? std::string("instances: missing")
                     : absl::StrCat("instances: expected an array, got ", it->type_name()));
  }
  const json::array_t& instances = it->get_ref<const json::array_t&>();
  if (instances.size() > static_cast<size_t>(options_.max_instances)) {
    return Error(413, "too_many_instances",
                 absl::StrCat("instances: ", instances.size(), " exceed the limit of ",
                              options_.max_instances));
  }
  ScoreResult result;
  if (Status s = model.Score(instances, "instances", explain, &result); !s.ok()) {
    return ScoreError(s);
  }
  metrics_->GetCounter("tessera_serving_instances_total", "Instances scored")
      .Increment(static_cast<double>(instances.size()));
  ojson predictions = ojson::array();
  for (float p : result.predictions) predictions.push_back(JsonFloat(p));
  if (served != nullptr) {
    for (size_t i = 0; i < instances.size(); ++i) {
      served->push_back(Impression(model, instances[i], result.predictions[i]));
    }
  }
  ojson reply{{"predictions", std::move(predictions)}};
  reply.update(tags);
  if (explain) reply["explanations"] = std::move(result.explanations);
  return {200, "", std::move(reply)};
}

RestApi::Reply RestApi::Recommend(const ServedModel& model, const json& doc,
                                  const ojson& tags, std::vector<ServedItem>* served) {
  Reply error;
  bool explain = false;
  if (!CheckKeys(doc, {"context", "candidates", "k", "explain", "request_id"}, &error) ||
      !ExplainFlag(doc, &explain, &error)) {
    return error;
  }
  json context = doc.value("context", json::object());
  if (!context.is_object()) {
    return Error(400, "invalid_request",
                 absl::StrCat("context: expected an object, got ", context.type_name()));
  }
  // The context alone, so its errors name it rather than a candidate.
  ScoreResult unused;
  if (Status s = model.Score(std::span<const json>(&context, 1), "context", false, &unused);
      !s.ok()) {
    std::string message(s.message());
    if (message.rfind("context[0]", 0) == 0) message.replace(0, 10, "context");
    return ScoreError(Status(s.code(), message));
  }
  int64_t k = 10;
  if (const auto it = doc.find("k"); it != doc.end()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 1) {
      return Error(400, "invalid_request", "k: expected an integer >= 1");
    }
    k = it->get<int64_t>();
  }
  const auto cit = doc.find("candidates");
  if (cit == doc.end() || !cit->is_array()) {
    return Error(400, "invalid_request", "candidates: expected an array");
  }
  if (cit->size() > static_cast<size_t>(options_.max_instances)) {
    return Error(
        413, "too_many_instances",
        absl::StrCat("candidates: ", cit->size(), " exceed the limit of ", options_.max_instances));
  }
  std::vector<json> instances;
  if (!ExpandCandidates(model, context, *cit, &instances, &error)) return error;
  ScoreResult result;
  std::vector<size_t> top;  // the returned candidates' indices
  if (Status s = model.Score(instances, "candidates", explain, &result); !s.ok()) {
    return ScoreError(s);
  }
  metrics_->GetCounter("tessera_serving_instances_total", "Instances scored")
      .Increment(static_cast<double>(instances.size()));
  ojson items = TopItems(model.item_field(), instances, static_cast<size_t>(k), explain, &result,
                         served == nullptr ? nullptr : &top);
  if (served != nullptr) {
    for (size_t i : top) served->push_back(Impression(model, instances[i], result.predictions[i]));
  }
  ojson reply{{"items", std::move(items)}};
  reply.update(tags);
  return {200, "", std::move(reply)};
}

}  // namespace tessera::serving
