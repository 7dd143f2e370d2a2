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

}  // namespace lathe
