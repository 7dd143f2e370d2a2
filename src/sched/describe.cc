#include "sched/describe.h"

#include <fmt/format.h>

#include <vector>

namespace lathe::sched {
namespace {

std::string Milli(int64_t v) {
  if (v % 1000 == 0) return fmt::format("{}", v / 1000);
  return fmt::format("{}", static_cast<double>(v) / 1000.0);
}

}  // namespace

std::string DescribeResources(const Resources& r) {
  std::vector<std::string> parts;
  if (r.cpu_milli != 0) parts.push_back("cpu " + Milli(r.cpu_milli));
  if (r.memory_mib != 0) parts.push_back(fmt::format("mem {}Mi", r.memory_mib));
  if (r.gpu_milli != 0) parts.push_back("gpu " + Milli(r.gpu_milli));
  return fmt::format("{{{}}}", fmt::join(parts, ", "));
}

std::string ExceedingDimensions(const Resources& a, const Resources& b) {
  std::vector<std::string> dims;
  if (a.cpu_milli > b.cpu_milli) dims.push_back("cpu");
  if (a.memory_mib > b.memory_mib) dims.push_back("memory");
  if (a.gpu_milli > b.gpu_milli) dims.push_back("gpu");
  if (dims.empty()) return "nothing";
  if (dims.size() == 1) return dims[0];
  std::string last = dims.back();
  dims.pop_back();
  return fmt::format("{} and {}", fmt::join(dims, ", "), last);
}

}  // namespace lathe::sched
