#include "serving/feedback_service.h"

#include <utility>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "serving/feedback/event_log.h"

namespace tessera::serving {

using nlohmann::json;
using ojson = nlohmann::ordered_json;

FeedbackService::FeedbackService(const FeedbackOptions& options, std::vector<std::string> arms,
                                 feedback::EventLogWriter* log, Clock* clock,
                                 MetricsRegistry* metrics)
    : options_(options),
      arms_(arms),
      log_(log),
      clock_(clock),
      metrics_(metrics),
      ab_(std::move(arms), metrics) {}

void FeedbackService::Register(HttpServer* server) {
  server->Handle("POST", "/v1/feedback", [this](const HttpRequest& r) { return HandleFeedback(r); });
  server->Handle("GET", "/v1/ab", [this](const HttpRequest& r) { return HandleAb(r); });
}

void FeedbackService::OnServed(const std::string& request_id, size_t arm,
                               const std::string& version, const std::vector<ServedItem>& items) {
  const int64_t now = clock_->UnixMillis();
  if (log_ != nullptr) {
    for (const ServedItem& item : items) {
      log_->Append(feedback::FormatImpression({.unix_ms = now,
                                               .request_id = request_id,
                                               .item_id = feedback::SanitizeField(item.item_id, false),
                                               .arm = arms_[arm],
                                               .model_version = version,
                                               .score = item.score,
                                               .features = item.features}));
    }
  }
  ab_.AddImpressions(arm, version, items.size());
  Served served{.unix_ms = now, .arm = arm, .version = version, .items = {}};
  for (const ServedItem& item : items) served.items.emplace(item.item_id, 0);
  absl::MutexLock lock(&mu_);
  const auto [it, inserted] = requests_.insert_or_assign(request_id, std::move(served));
  if (inserted) order_.push_back(request_id);
  while (order_.size() > options_.max_requests) {
    requests_.erase(order_.front());
    order_.pop_front();
  }
}

HttpResponse FeedbackService::Reject(int status, const std::string& reason,
                                     const std::string& message) {
  metrics_
      ->GetCounter("tessera_serving_feedback_rejected_total", "Feedback events refused, by reason",
                   {{"reason", reason}})
      .Increment();
  return HttpResponse{status, "application/json", ojson{{"error", message}}.dump(-1, ' ', false, ojson::error_handler_t::replace)};
}

HttpResponse FeedbackService::HandleFeedback(const HttpRequest& request) {
  if (request.body.size() > options_.max_body_bytes) {
    return Reject(413, "body_too_large",
                  absl::StrCat("feedback body of ", request.body.size(),
                               " bytes exceeds the limit of ", options_.max_body_bytes));
  }
  const json doc = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Reject(400, "malformed_json", "request body is not valid JSON");
  if (!doc.is_object()) {
    return Reject(400, "invalid_request",
                  absl::StrCat("request body: expected an object, got ", doc.type_name()));
  }
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    if (it.key() != "request_id" && it.key() != "item_id" && it.key() != "event") {
      return Reject(400, "invalid_request",
                    absl::StrCat(it.key(), ": unknown key (request_id, item_id, event)"));
    }
  }
  std::string fields[3];
  const char* names[3] = {"request_id", "item_id", "event"};
  for (int i = 0; i < 3; ++i) {
    const auto it = doc.find(names[i]);
    if (it == doc.end()) return Reject(400, "invalid_request", absl::StrCat(names[i], ": missing"));
    if (!it->is_string() || it->get_ref<const std::string&>().empty()) {
      return Reject(400, "invalid_request",
                    absl::StrCat(names[i], ": expected a non-empty string, got ",
                                 it->is_string() ? "an empty string" : it->type_name()));
    }
    fields[i] = it->get<std::string>();
  }
  const std::string& request_id = fields[0];
  const std::string& item_id = fields[1];
  const std::string& event = fields[2];
  if (event != "click" && event != "purchase") {
    return Reject(400, "invalid_request",
                  absl::StrCat("event: '", event, "' is not an event (click, purchase)"));
  }
  const uint8_t bit = event == "click" ? 1 : 2;
  int64_t shown_ms = 0;
  size_t arm = 0;
  std::string version;
  {
    absl::MutexLock lock(&mu_);
    const auto served = requests_.find(request_id);
    if (served == requests_.end()) {
      return Reject(404, "unknown_request",
                    absl::StrCat("request_id '", request_id,
                                 "': not served here, or older than the last ",
                                 options_.max_requests, " requests"));
    }
    const auto item = served->second.items.find(item_id);
    if (item == served->second.items.end()) {
      return Reject(404, "unknown_item",
                    absl::StrCat("item_id '", item_id, "': not returned by request '", request_id,
                                 "'"));
    }
    if ((item->second & bit) != 0) {
      return Reject(409, "duplicate",
                    absl::StrCat("duplicate: '", event, "' on item '", item_id, "' of request '",
                                 request_id, "' was recorded before"));
    }
    item->second |= bit;
    shown_ms = served->second.unix_ms;
    arm = served->second.arm;
    version = served->second.version;
  }
  if (log_ != nullptr) {
    log_->Append(feedback::FormatFeedback({.unix_ms = clock_->UnixMillis(),
                                           .request_id = request_id,
                                           .item_id = feedback::SanitizeField(item_id, false),
                                           .event = event,
                                           .impression_unix_ms = shown_ms,
                                           .arm = arms_[arm]}));
  }
  ab_.AddEvent(arm, version, event);
  metrics_
      ->GetCounter("tessera_serving_feedback_accepted_total", "Feedback events recorded, by event",
                   {{"event", event}})
      .Increment();
  const ojson reply{{"request_id", request_id}, {"item_id", item_id},  {"event", event},
                    {"arm", arms_[arm]},        {"model_version", version}};
  return HttpResponse{200, "application/json", reply.dump(-1, ' ', false, ojson::error_handler_t::replace)};
}

HttpResponse FeedbackService::HandleAb(const HttpRequest&) const {
  return HttpResponse{200, "application/json", ab_.Json().dump(-1, ' ', false, ojson::error_handler_t::replace)};
}

}  // namespace tessera::serving
