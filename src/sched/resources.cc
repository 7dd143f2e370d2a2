// Arithmetic on Resources and the small helpers of Job.
#include "sched/model.h"

namespace lathe::sched {

Resources& Resources::operator+=(const Resources& o) {
  cpu_milli += o.cpu_milli;
  memory_mib += o.memory_mib;
  gpu_milli += o.gpu_milli;
  return *this;
}

Resources& Resources::operator-=(const Resources& o) {
  cpu_milli -= o.cpu_milli;
  memory_mib -= o.memory_mib;
  gpu_milli -= o.gpu_milli;
  return *this;
}

Resources Resources::operator*(int64_t n) const {
  return Resources{cpu_milli * n, memory_mib * n, gpu_milli * n};
}

bool Resources::FitsIn(const Resources& o) const {
  return cpu_milli <= o.cpu_milli && memory_mib <= o.memory_mib && gpu_milli <= o.gpu_milli;
}

int Job::TotalTasks() const {
  int n = 0;
  for (const TaskGroup& g : groups) n += g.count;
  return n;
}

}  // namespace lathe::sched
