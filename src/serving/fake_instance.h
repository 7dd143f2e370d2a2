// A ModelInstance for tests and benchmarks: y = factor·x and z = x + 1,
// element-wise on FP32, with a configurable cost, failure injection, a gate
// that holds executions, and a record of what it ran. Its state is shared
// (FakeState) so a test keeps a handle after the instance moves into a
// batcher.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "serving/backend.h"

namespace lathe::serving::testing {

struct FakeState {
  std::atomic<float> factor{2};
  std::atomic<int64_t> sleep_us{0};    // per Execute
  std::atomic<int64_t> per_row_us{0};  // per batch row
  std::atomic<bool> spin{false};       // burn CPU instead of sleeping
  std::atomic<bool> fail{false};
  std::atomic<int> calls{0};
  std::atomic<bool> destroyed{false};

  // Rows of each Execute, its first input's first element, and the outputs
  // it was asked for, in order.
  std::vector<int64_t> batch_sizes() {
    std::lock_guard<std::mutex> lock(mu);
    return sizes;
  }
  std::vector<float> first_values() {
    std::lock_guard<std::mutex> lock(mu);
    return firsts;
  }
  std::vector<std::vector<std::string>> requested() {
    std::lock_guard<std::mutex> lock(mu);
    return outputs;
  }

  // While closed, Execute waits (after counting the call) until opened.
  void Close() {
    std::lock_guard<std::mutex> lock(gate_mu);
    closed = true;
  }
  void Open() {
    {
      std::lock_guard<std::mutex> lock(gate_mu);
      closed = false;
    }
    gate_cv.notify_all();
  }
  // Waits until `n` executions are held at the gate (false after 5 s).
  bool WaitHeld(int n) {
    std::unique_lock<std::mutex> lock(gate_mu);
    return gate_cv.wait_for(lock, std::chrono::seconds(5), [&] { return held >= n; });
  }

  std::mutex mu;
  std::vector<int64_t> sizes;
  std::vector<float> firsts;
  std::vector<std::vector<std::string>> outputs;
  std::mutex gate_mu;
  std::condition_variable gate_cv;
  bool closed = false;
  int held = 0;
};

class FakeInstance final : public ModelInstance {
 public:
  explicit FakeInstance(std::shared_ptr<FakeState> state, bool batched = true)
      : state_(std::move(state)), batched_(batched) {}
  ~FakeInstance() override { state_->destroyed = true; }

  StatusOr<std::vector<Tensor>> Execute(const std::vector<Tensor>& inputs,
                                        const std::vector<std::string>& outputs) override {
    state_->calls.fetch_add(1);
    if (inputs.empty()) return InvalidArgumentError("fake: no inputs");
    const Tensor& x = inputs[0];
    const int64_t rows = batched_ && !x.shape.empty() ? x.shape[0] : 1;
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      state_->sizes.push_back(rows);
      float first = 0;
      if (x.data.size() >= sizeof first) std::memcpy(&first, x.data.data(), sizeof first);
      state_->firsts.push_back(first);
      state_->outputs.push_back(outputs);
    }
    {
      std::unique_lock<std::mutex> lock(state_->gate_mu);
      if (state_->closed) {
        ++state_->held;
        state_->gate_cv.notify_all();
        state_->gate_cv.wait(lock, [&] { return !state_->closed; });
        --state_->held;
      }
    }
    const int64_t cost_us = state_->sleep_us.load() + state_->per_row_us.load() * rows;
    if (cost_us > 0) {
      if (state_->spin) {
        auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(cost_us);
        while (std::chrono::steady_clock::now() < until) {
        }
      } else {
        std::this_thread::sleep_for(std::chrono::microseconds(cost_us));
      }
    }
    if (state_->fail) return InternalError("fake backend: injected failure");
    std::vector<std::string> names = outputs;
    if (names.empty()) names = {"y", "z"};
    const size_t n = x.data.size() / sizeof(float);
    const float factor = state_->factor.load();
    std::vector<Tensor> out;
    out.reserve(names.size());
    for (const std::string& name : names) {
      std::string bytes(n * sizeof(float), '\0');
      for (size_t i = 0; i < n; ++i) {
        float v;
        std::memcpy(&v, x.data.data() + i * sizeof v, sizeof v);
        v = name == "y" ? v * factor : v + 1;
        std::memcpy(bytes.data() + i * sizeof v, &v, sizeof v);
      }
      out.push_back(Tensor{name, DataType::kFp32, x.shape, TensorData(std::move(bytes))});
    }
    return out;
  }

 private:
  std::shared_ptr<FakeState> state_;
  bool batched_;
};

}  // namespace lathe::serving::testing
