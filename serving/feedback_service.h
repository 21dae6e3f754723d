// Impressions and feedback in `tessera serve` (issue 8).
//
// Every scored candidate a predict or recommend reply returns is an
// impression (RestApi calls OnServed before it replies): it is remembered
// for feedback, counted for the A/B results (serving/ab_results.h) and,
// with an event log (--impression-dir), written to it as an impression
// record (feedback/event_log.h: request id, arm, model version, item, score
// and the instance as schema-TSV columns). Writing goes through the
// EventLogWriter's bounded queue: never blocks serving; drops are counted.
//
//   POST /v1/feedback  {"request_id": "...", "item_id": "...", "event": "click"}
//                      (event: click | purchase)
//     200 {"request_id", "item_id", "event", "arm", "model_version"}: recorded
//         (a feedback record in the event log; a click or purchase in the
//         A/B results of the arm and version that served the impression)
//     400 malformed_json | invalid_request: not JSON, not an object, a
//         missing / mistyped / unknown key, an unknown event
//     404 unknown_request: the request id was not served by this process
//         or is older than the last max_requests requests
//     404 unknown_item: the request did not return that item
//     409 duplicate: this event for this request and item was recorded before
//   GET /v1/ab          AbResults::Json()
// Errors are {"error": "..."}. Counters:
// tessera_serving_feedback_accepted_total{event},
// tessera_serving_feedback_rejected_total{reason}.
//
// Memory: the last max_requests requests (id, arm, version, time and their
// items) are kept to validate feedback; older ones are forgotten.
//
// Thread-safe: handlers run on the HTTP server's pool threads.
#ifndef TESSERA_SERVING_FEEDBACK_SERVICE_H_
#define TESSERA_SERVING_FEEDBACK_SERVICE_H_

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/http_server.h"
#include "common/metrics.h"
#include "serving/feedback/event_log_writer.h"
#include "serving/ab_results.h"

namespace tessera::serving {

struct FeedbackOptions {
  size_t max_requests = 100000;  // requests remembered for feedback
  size_t max_body_bytes = 64 << 10;
};

// One returned candidate.
struct ServedItem {
  std::string item_id;   // "" when the instance has no item field
  float score = 0;
  std::string features;  // schema-TSV columns (serving/instance_tsv.h); "" without a log
};

class FeedbackService {
 public:
  // `arms`: the arm names in RestApiOptions order. `log` may be null (no
  // impression log: feedback and A/B results still work). `log`, `clock`
  // and `metrics` are borrowed and must outlive this object.
  FeedbackService(const FeedbackOptions& options, std::vector<std::string> arms,
                  feedback::EventLogWriter* log, Clock* clock, MetricsRegistry* metrics);

  // True when impressions are logged, so callers compute features.
  bool logging() const { return log_ != nullptr; }

  // Records the impressions of one reply.
  void OnServed(const std::string& request_id, size_t arm, const std::string& version,
                const std::vector<ServedItem>& items);

  // Adds POST /v1/feedback and GET /v1/ab. REQUIRES: before server->Start();
  // this object outlives the server.
  void Register(HttpServer* server);

  HttpResponse HandleFeedback(const HttpRequest& request);
  HttpResponse HandleAb(const HttpRequest& request) const;

  const AbResults& ab() const { return ab_; }

 private:
  struct Served {
    int64_t unix_ms = 0;
    size_t arm = 0;
    std::string version;
    // item id -> bit mask of the events recorded (1: click, 2: purchase)
    absl::flat_hash_map<std::string, uint8_t> items;
  };
  HttpResponse Reject(int status, const std::string& reason, const std::string& message);

  const FeedbackOptions options_;
  const std::vector<std::string> arms_;
  feedback::EventLogWriter* const log_;
  Clock* const clock_;
  MetricsRegistry* const metrics_;
  AbResults ab_;

  absl::Mutex mu_;
  // protected by mu_
  absl::flat_hash_map<std::string, Served> requests_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> order_ ABSL_GUARDED_BY(mu_);  // request ids, oldest first
};

}  // namespace tessera::serving

#endif  // TESSERA_SERVING_FEEDBACK_SERVICE_H_
