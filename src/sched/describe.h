// Human-readable spellings for pending reasons and plan dumps.
#pragma once

#include <string>

#include "sched/model.h"

namespace lathe::sched {

// "{cpu 4, mem 16384Mi, gpu 0.5}"; zero dimensions are left out ("{}" if all).
std::string DescribeResources(const Resources& r);

// The dimensions of `a` that exceed `b`, as "cpu", "gpu", "cpu and memory".
std::string ExceedingDimensions(const Resources& a, const Resources& b);

}  // namespace lathe::sched
