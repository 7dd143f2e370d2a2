#include "base/id.h"

#include "base/crypto.h"

namespace lathe {
namespace {
constexpr char kCrockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
}  // namespace

IdGenerator::IdGenerator(const Clock& clock) : clock_(clock) {}

std::string IdGenerator::Next() {
  int64_t ms = clock_.NowMicros() / 1000;
  std::array<uint8_t, 10> rand;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (ms <= last_ms_) {
      // Same (or earlier: clock stepped back) millisecond: keep the last
      // timestamp and increment the random part so ids stay ordered.
      ms = last_ms_;
      for (int i = 9; i >= 0; --i) {
        if (++last_rand_[i] != 0) break;
      }
    } else {
      std::string bytes = SecureRandomBytes(10);
      for (int i = 0; i < 10; ++i) last_rand_[i] = static_cast<uint8_t>(bytes[i]);
      // Leave headroom for increments within this millisecond.
      last_rand_[0] &= 0x7f;
      last_ms_ = ms;
    }
    rand = last_rand_;
  }
  // 128 bits: 48 time + 80 random, encoded 5 bits at a time from the top;
  // 26 characters carry 130 bits, the first holds only the top 3 bits.
  unsigned __int128 v = static_cast<unsigned __int128>(static_cast<uint64_t>(ms) & 0xFFFFFFFFFFFFull)
                        << 80;
  for (int i = 0; i < 10; ++i) v |= static_cast<unsigned __int128>(rand[i]) << (8 * (9 - i));
  std::string out(26, '0');
  for (int i = 25; i >= 0; --i) {
    out[i] = kCrockford[static_cast<unsigned>(v & 31)];
    v >>= 5;
  }
  return out;
}

std::string NewId() {
  static IdGenerator* const kGen = new IdGenerator(SystemClock());
  return kGen->Next();
}

bool IsValidId(std::string_view id) {
  if (id.size() != 26) return false;
  if (id[0] > '7') return false;
  for (char c : id) {
    bool ok = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z' && c != 'I' && c != 'L' &&
                                         c != 'O' && c != 'U');
    if (!ok) return false;
  }
  return true;
}

}  // namespace lathe
