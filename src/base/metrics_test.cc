#include "base/metrics.h"

#include <gtest/gtest.h>

namespace lathe {
namespace {

TEST(Metrics, RendersPrometheusText) {
  MetricsRegistry reg;
  Counter& c = reg.AddCounter("t_requests_total", "Requests.", {"route", "code"});
  c.With({"/a", "200"}).Increment(2);
  c.With({"/a\"", "500"}).Increment();
  Histogram& h = reg.AddHistogram("t_latency_seconds", "Latency.", {"route"}, {0.1, 1});
  h.With({"/a"}).Observe(0.05);
  h.With({"/a"}).Observe(0.5);
  h.With({"/a"}).Observe(5);
  reg.AddCallbackGauge("t_up", "Up.", [] { return 1.0; });
  std::string text = reg.Render();
  EXPECT_NE(text.find("# TYPE t_requests_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("t_requests_total{route=\"/a\",code=\"200\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("t_requests_total{route=\"/a\\\"\",code=\"500\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("t_latency_seconds_bucket{route=\"/a\",le=\"0.1\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("t_latency_seconds_bucket{route=\"/a\",le=\"1\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("t_latency_seconds_bucket{route=\"/a\",le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("t_latency_seconds_count{route=\"/a\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("t_up 1\n"), std::string::npos);
  // Sorted by name.
  EXPECT_LT(text.find("t_latency_seconds"), text.find("t_requests_total"));
}

}  // namespace
}  // namespace lathe
