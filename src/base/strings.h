// Small string helpers shared by several layers.
#pragma once

#include <string>
#include <string_view>

namespace lathe {

// ASCII case-insensitive equality (HTTP header names, "NaN"/"Infinity").
bool EqualsIgnoreCaseAscii(std::string_view a, std::string_view b);

// A copy with ASCII A-Z lowered (other bytes unchanged).
std::string AsciiLower(std::string_view s);

// SQL LIKE over bytes, case-sensitive: '%' matches any run, '_' one byte
// (no escape character). Linear backtracking on the last '%'.
bool SqlLikeMatch(std::string_view s, std::string_view pattern);

// The offset of the first byte that is not part of well-formed UTF-8
// (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF), or
// std::string_view::npos when all of `s` is valid.
size_t FirstInvalidUtf8(std::string_view s);

}  // namespace lathe
