// Sortable unique ids (ULID layout): 48 bits of milliseconds since the epoch
// then 80 random bits, written as 26 characters of Crockford base32. Ids made
// by one generator sort in creation order, also within one millisecond
// (the random part is incremented), which makes them usable as pagination
// cursors and primary keys.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include "base/clock.h"

namespace lathe {

class IdGenerator {
 public:
  explicit IdGenerator(const Clock& clock = SystemClock());
  // Thread-safe.
  std::string Next();

 private:
  const Clock& clock_;
  std::mutex mu_;
  int64_t last_ms_ = -1;                 // guarded by mu_
  std::array<uint8_t, 10> last_rand_{};  // guarded by mu_
};

// A new id from the process-wide generator on the system clock.
std::string NewId();

// True when `id` has the shape of an id (26 Crockford base32 characters).
bool IsValidId(std::string_view id);

}  // namespace lathe
