// The scheduler: one pure function from a Snapshot to a Plan.
//
//   Plan plan = Schedule(snapshot, policy);
//
// No clock, no I/O, no global state: the same inputs give the same plan
// (random choices come from policy.seed). The server, `lathe sim` and the
// tests all call this. Thread-safe (it shares nothing).
//
// Guarantees of every plan (checked by the property tests):
//  * no node is over-committed: per node, running + bound requests fit the
//    capacity, and per GPU the shares fit in 1000 milli;
//  * a gang is bound whole (at least GangSize() tasks, all of them placed in
//    this plan) or not at all;
//  * a queue's ceiling (and every ancestor's) is never exceeded;
//  * a queue with pending demand gets its guarantee before others borrow it;
//  * every pending job that is not bound gets a PendingReason.
#pragma once

#include "sched/model.h"
#include "sched/policy.h"

namespace lathe::sched {

// Validates the snapshot (unknown queue, bad GPU request, duplicate ids…):
// INVALID_ARGUMENT naming the field, e.g. "pending[3].groups[0].request.gpu_milli".
Status ValidateSnapshot(const Snapshot& snapshot);

// Runs one scheduling cycle. Precondition: ValidateSnapshot(snapshot).ok().
Plan Schedule(const Snapshot& snapshot, const Policy& policy);

}  // namespace lathe::sched
