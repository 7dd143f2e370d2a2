// Randomness and hashing for secrets (API tokens).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace lathe {

// `n` bytes from the kernel CSPRNG (getrandom). Aborts if the kernel refuses,
// which only happens on a broken system.
std::string SecureRandomBytes(size_t n);

// Lower-case hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);

// Constant-time comparison of two equal-purpose secrets.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// RFC 4648 base64url without padding, and its inverse (false on bad input).
std::string Base64UrlEncode(std::string_view data);
bool Base64UrlDecode(std::string_view text, std::string* out);

}  // namespace lathe
