#include "common/http_server.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>

#include "tests/testing/status_matchers.h"

namespace tessera {
namespace {

TEST(HttpServerTest, ServesMetricsHealthAndReadiness) {
  MetricsRegistry metrics;
  metrics.GetCounter("tessera_test_events_total", "Events.").Increment(3);
  std::atomic<bool> ready{false};
  HttpServer server;
  AddObservabilityRoutes(&server, &metrics, [&] { return ready.load(); });
  ASSERT_OK_AND_ASSIGN(int port, server.Start("127.0.0.1", 0));
  ASSERT_GT(port, 0);

  httplib::Client client("127.0.0.1", port);
  auto res = client.Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_NE(res->body.find("tessera_test_events_total 3"), std::string::npos) << res->body;

  res = client.Get("/healthz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  res = client.Get("/readyz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  ready = true;
  res = client.Get("/readyz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  res = client.Get("/nope");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  server.Stop();
}

}  // namespace
}  // namespace tessera
