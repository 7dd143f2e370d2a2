#include "base/metrics.h"

#include <cmath>

#include <fmt/core.h>

namespace lathe {

void GaugeChild::Add(double v) {
  double cur = value_.load(std::memory_order_relaxed);
  while (!value_.compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
  }
}

HistogramChild::HistogramChild(const std::vector<double>* bounds)
    : bounds_(bounds), buckets_(new std::atomic<uint64_t>[bounds->size() + 1]) {
  for (size_t i = 0; i <= bounds_->size(); ++i) buckets_[i].store(0);
}

void HistogramChild::Observe(double v) {
  size_t i = 0;
  while (i < bounds_->size() && v > (*bounds_)[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  double cur = sum_.load(std::memory_order_relaxed);
  while (!sum_.compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
  }
  count_.fetch_add(1, std::memory_order_relaxed);
}

void HistogramChild::Snapshot(std::vector<uint64_t>* cumulative, double* sum,
                              uint64_t* count) const {
  cumulative->assign(bounds_->size() + 1, 0);
  uint64_t acc = 0;
  for (size_t i = 0; i <= bounds_->size(); ++i) {
    acc += buckets_[i].load(std::memory_order_relaxed);
    (*cumulative)[i] = acc;
  }
  *sum = sum_.load(std::memory_order_relaxed);
  // Report the bucket total as the count so the exposition is consistent
  // even while observations race with the scrape.
  *count = acc;
}

namespace {
template <typename Child>
std::unique_ptr<Child> MakeChild(const std::vector<double>* bounds) {
  if constexpr (std::is_same_v<Child, HistogramChild>) {
    return std::make_unique<HistogramChild>(bounds);
  } else {
    (void)bounds;
    return std::make_unique<Child>();
  }
}
}  // namespace

template <typename Child>
Child& Family<Child>::With(const std::vector<std::string>& values) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = children_.find(values);
  if (it == children_.end()) {
    it = children_.emplace(values, MakeChild<Child>(&bounds_)).first;
  }
  return *it->second;
}

template <typename Child>
void Family<Child>::ForEach(
    const std::function<void(const std::vector<std::string>&, const Child&)>& fn) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [values, child] : children_) fn(values, *child);
}

template class Family<CounterChild>;
template class Family<GaugeChild>;
template class Family<HistogramChild>;

const std::vector<double>& LatencyBuckets() {
  static const std::vector<double>* const kBuckets = new std::vector<double>{
      0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
      0.025,   0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,     10};
  return *kBuckets;
}

Counter& MetricsRegistry::AddCounter(std::string name, std::string help,
                                     std::vector<std::string> labels) {
  std::lock_guard<std::mutex> lock(mu_);
  auto family = std::make_unique<Counter>(name, std::move(help), std::move(labels));
  Counter& ref = *family;
  counters_[std::move(name)] = std::move(family);
  return ref;
}

Gauge& MetricsRegistry::AddGauge(std::string name, std::string help,
                                 std::vector<std::string> labels) {
  std::lock_guard<std::mutex> lock(mu_);
  auto family = std::make_unique<Gauge>(name, std::move(help), std::move(labels));
  Gauge& ref = *family;
  gauges_[std::move(name)] = std::move(family);
  return ref;
}

Histogram& MetricsRegistry::AddHistogram(std::string name, std::string help,
                                         std::vector<std::string> labels,
                                         std::vector<double> bounds) {
  std::lock_guard<std::mutex> lock(mu_);
  auto family =
      std::make_unique<Histogram>(name, std::move(help), std::move(labels), std::move(bounds));
  Histogram& ref = *family;
  histograms_[std::move(name)] = std::move(family);
  return ref;
}

void MetricsRegistry::AddCallbackGauge(std::string name, std::string help,
                                       std::function<double()> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  callbacks_[std::move(name)] = {std::move(help), std::move(fn)};
}

namespace {

void AppendEscapedLabel(std::string* out, const std::string& v) {
  for (char c : v) {
    if (c == '\\') out->append("\\\\");
    else if (c == '"') out->append("\\\"");
    else if (c == '\n') out->append("\\n");
    else out->push_back(c);
  }
}

// {a="x",b="y"} plus an optional extra label (le="...").
std::string Labels(const std::vector<std::string>& names, const std::vector<std::string>& values,
                   const char* extra_name = nullptr, const std::string& extra_value = {}) {
  if (names.empty() && extra_name == nullptr) return {};
  std::string out = "{";
  for (size_t i = 0; i < names.size() && i < values.size(); ++i) {
    if (i > 0) out.push_back(',');
    out += names[i];
    out += "=\"";
    AppendEscapedLabel(&out, values[i]);
    out.push_back('"');
  }
  if (extra_name != nullptr) {
    if (!names.empty()) out.push_back(',');
    out += extra_name;
    out += "=\"";
    out += extra_value;
    out.push_back('"');
  }
  out.push_back('}');
  return out;
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

void Header(std::string* out, const std::string& name, const std::string& help, const char* type) {
  fmt::format_to(std::back_inserter(*out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

}  // namespace

std::string MetricsRegistry::Render() const {
  std::lock_guard<std::mutex> lock(mu_);
  // Merge all kinds into one name-sorted walk.
  std::map<std::string, std::function<void(std::string*)>> renderers;
  for (const auto& [name, family] : counters_) {
    const Counter* f = family.get();
    renderers[name] = [f](std::string* out) {
      Header(out, f->name(), f->help(), "counter");
      f->ForEach([&](const std::vector<std::string>& values, const CounterChild& c) {
        fmt::format_to(std::back_inserter(*out), "{}{} {}\n", f->name(),
                       Labels(f->labels(), values), c.value());
      });
    };
  }
  for (const auto& [name, family] : gauges_) {
    const Gauge* f = family.get();
    renderers[name] = [f](std::string* out) {
      Header(out, f->name(), f->help(), "gauge");
      f->ForEach([&](const std::vector<std::string>& values, const GaugeChild& g) {
        fmt::format_to(std::back_inserter(*out), "{}{} {}\n", f->name(),
                       Labels(f->labels(), values), FormatValue(g.value()));
      });
    };
  }
  for (const auto& [name, family] : histograms_) {
    const Histogram* f = family.get();
    renderers[name] = [f](std::string* out) {
      Header(out, f->name(), f->help(), "histogram");
      f->ForEach([&](const std::vector<std::string>& values, const HistogramChild& h) {
        std::vector<uint64_t> cumulative;
        double sum;
        uint64_t count;
        h.Snapshot(&cumulative, &sum, &count);
        for (size_t i = 0; i < cumulative.size(); ++i) {
          std::string le = i < f->bounds().size() ? FormatValue(f->bounds()[i]) : "+Inf";
          fmt::format_to(std::back_inserter(*out), "{}_bucket{} {}\n", f->name(),
                         Labels(f->labels(), values, "le", le), cumulative[i]);
        }
        fmt::format_to(std::back_inserter(*out), "{}_sum{} {}\n", f->name(),
                       Labels(f->labels(), values), FormatValue(sum));
        fmt::format_to(std::back_inserter(*out), "{}_count{} {}\n", f->name(),
                       Labels(f->labels(), values), count);
      });
    };
  }
  for (const auto& [name, cb] : callbacks_) {
    const std::string* n = &name;
    const auto* entry = &cb;
    renderers[name] = [n, entry](std::string* out) {
      Header(out, *n, entry->first, "gauge");
      fmt::format_to(std::back_inserter(*out), "{} {}\n", *n, FormatValue(entry->second()));
    };
  }
  std::string out;
  for (const auto& [name, render] : renderers) render(&out);
  return out;
}

MetricsRegistry& DefaultRegistry() {
  static MetricsRegistry* const kRegistry = new MetricsRegistry();
  return *kRegistry;
}

}  // namespace lathe
