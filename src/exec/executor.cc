#include "exec/executor.h"

#include <fmt/core.h>

namespace lathe::exec {

std::string TaskKey::Path() const {
  return fmt::format("{}/{}/{}/{}", job_id, attempt, role, index);
}

std::string_view TaskStateName(TaskState s) {
  switch (s) {
    case TaskState::kStarting:
      return "starting";
    case TaskState::kRunning:
      return "running";
    case TaskState::kExited:
      return "exited";
    case TaskState::kLost:
      return "lost";
    case TaskState::kUnknown:
      return "unknown";
  }
  return "unknown";
}

}  // namespace lathe::exec
