// A small multi-threaded HTTP server (cpp-httplib) that every node runs for
// /metrics, /healthz and /readyz; serving adds its REST routes to the same
// class. Thread-safe; handlers run on the server's pool threads and must not
// block for long.
#ifndef TESSERA_COMMON_HTTP_SERVER_H_
#define TESSERA_COMMON_HTTP_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "common/metrics.h"
#include "common/status.h"

namespace tessera {

struct HttpRequest {
  std::string method;
  std::string path;
  std::string body;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

class HttpServer {
 public:
  HttpServer();
  ~HttpServer();  // Stops.
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // REQUIRES: before Start().
  void Handle(const std::string& method, const std::string& path, HttpHandler handler);
  // Binds host:port (port 0 picks a free port) and starts serving.
  // Returns the bound port.
  StatusOr<int> Start(const std::string& host, int port);
  // Stops serving and joins the listener thread. Idempotent.
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
};

// Adds GET /metrics (text format of `metrics`, then the process metrics of
// common/process_metrics.h), GET /healthz (200 while the
// process runs) and GET /readyz (200 when `ready()` returns true, 503 before).
// `metrics` must outlive `server`.
void AddObservabilityRoutes(HttpServer* server, const MetricsRegistry* metrics,
                            std::function<bool()> ready);

}  // namespace tessera

#endif  // TESSERA_COMMON_HTTP_SERVER_H_
