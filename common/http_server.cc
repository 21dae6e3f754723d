#include "common/http_server.h"

#include <httplib.h>
#include <prometheus/text_serializer.h>

#include <exception>
#include <utility>

#include "common/process_metrics.h"

namespace tessera {

struct HttpServer::Impl {
  httplib::Server server;
};

HttpServer::HttpServer() : impl_(std::make_unique<Impl>()) {
  // Replies go out in more than one write; with Nagle's algorithm the last
  // one waits for the client's delayed ACK (~40 ms per request on a kept-
  // alive connection).
  impl_->server.set_tcp_nodelay(true);
  impl_->server.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
        res.status = 500;
        res.set_content("{\"error\":\"internal error\"}", "application/json");
      });
}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Handle(const std::string& method, const std::string& path,
                        HttpHandler handler) {
  auto adapter = [handler = std::move(handler), method](const httplib::Request& req,
                                                        httplib::Response& res) {
    HttpRequest request{method, req.path, req.body};
    HttpResponse response = handler(request);
    res.status = response.status;
    res.set_content(response.body, response.content_type.c_str());
  };
  if (method == "GET") {
    impl_->server.Get(path, adapter);
  } else if (method == "POST") {
    impl_->server.Post(path, adapter);
  }
}

StatusOr<int> HttpServer::Start(const std::string& host, int port) {
  int bound = port == 0 ? impl_->server.bind_to_any_port(host.c_str())
                        : (impl_->server.bind_to_port(host.c_str(), port) ? port : -1);
  if (bound <= 0) {
    return UnavailableError("http: cannot bind " + host + ":" + std::to_string(port));
  }
  // The socket already listens after bind, so clients may connect at once.
  thread_ = std::thread([this] { impl_->server.listen_after_bind(); });
  return bound;
}

void HttpServer::Stop() {
  impl_->server.stop();
  if (thread_.joinable()) thread_.join();
}

void AddObservabilityRoutes(HttpServer* server, const MetricsRegistry* metrics,
                            std::function<bool()> ready) {
  server->Handle("GET", "/metrics", [metrics](const HttpRequest&) {
    // Each node is a process of its own, so its page also carries the
    // process_* families (memory, CPU, file descriptors).
    return HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8",
                        metrics->SerializeText() +
                            prometheus::TextSerializer().Serialize(CollectProcessMetrics())};
  });
  server->Handle("GET", "/healthz",
                 [](const HttpRequest&) { return HttpResponse{200, "text/plain", "ok\n"}; });
  server->Handle("GET", "/readyz", [ready = std::move(ready)](const HttpRequest&) {
    return ready() ? HttpResponse{200, "text/plain", "ready\n"}
                   : HttpResponse{503, "text/plain", "not ready\n"};
  });
}

}  // namespace tessera
