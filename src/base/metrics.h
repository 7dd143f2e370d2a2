// Prometheus metrics: counters, gauges and histograms, each a family with
// label names, rendered in the text exposition format (version 0.0.4).
//
//   static Counter& requests = DefaultRegistry().AddCounter(
//       "lathe_http_requests_total", "HTTP requests.", {"route", "code"});
//   requests.With({"/api/v1/projects", "200"}).Increment();
//
// Families are created once and never removed; With() returns a child that
// stays valid for the registry's lifetime, so hot paths look it up once and
// keep the reference. Updates are lock-free; With() takes a mutex.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace lathe {

class CounterChild {
 public:
  void Increment(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class GaugeChild {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double v);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class HistogramChild {
 public:
  explicit HistogramChild(const std::vector<double>* bounds);
  void Observe(double v);
  // Cumulative counts per bound, then +Inf; sum; count.
  void Snapshot(std::vector<uint64_t>* cumulative, double* sum, uint64_t* count) const;

 private:
  const std::vector<double>* bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // one per bound, plus +Inf
  std::atomic<double> sum_{0};
  std::atomic<uint64_t> count_{0};
};

// A family: a metric name with label names and one child per label values.
template <typename Child>
class Family {
 public:
  Family(std::string name, std::string help, std::vector<std::string> labels,
         std::vector<double> bounds = {})
      : name_(std::move(name)),
        help_(std::move(help)),
        labels_(std::move(labels)),
        bounds_(std::move(bounds)) {}
  // The child for these label values (as many as label names). Thread-safe.
  Child& With(const std::vector<std::string>& values);
  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  const std::vector<std::string>& labels() const { return labels_; }
  const std::vector<double>& bounds() const { return bounds_; }
  // Calls fn(label values, child) for every child, in label order.
  void ForEach(const std::function<void(const std::vector<std::string>&, const Child&)>& fn) const;

 private:
  std::string name_, help_;
  std::vector<std::string> labels_;
  std::vector<double> bounds_;
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<Child>> children_;  // guarded by mu_
};

using Counter = Family<CounterChild>;
using Gauge = Family<GaugeChild>;
using Histogram = Family<HistogramChild>;

// Latency buckets in seconds, 50 µs to 10 s.
const std::vector<double>& LatencyBuckets();

class MetricsRegistry {
 public:
  // Each Add* registers a new family; names must be unique. The returned
  // reference lives as long as the registry.
  Counter& AddCounter(std::string name, std::string help, std::vector<std::string> labels = {});
  Gauge& AddGauge(std::string name, std::string help, std::vector<std::string> labels = {});
  Histogram& AddHistogram(std::string name, std::string help, std::vector<std::string> labels,
                          std::vector<double> bounds = LatencyBuckets());
  // A gauge computed when scraped (e.g. resident memory).
  void AddCallbackGauge(std::string name, std::string help, std::function<double()> fn);

  // The Prometheus text exposition of every family, sorted by name.
  std::string Render() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Counter>> counters_;
  std::map<std::string, std::unique_ptr<Gauge>> gauges_;
  std::map<std::string, std::unique_ptr<Histogram>> histograms_;
  std::map<std::string, std::pair<std::string, std::function<double()>>> callbacks_;
};

// The process-wide registry served on /metrics.
MetricsRegistry& DefaultRegistry();

}  // namespace lathe
