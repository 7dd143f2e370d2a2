// Small string helpers shared by several layers.
#pragma once

#include <string_view>

namespace lathe {

// ASCII case-insensitive equality (HTTP header names, "NaN"/"Infinity").
bool EqualsIgnoreCaseAscii(std::string_view a, std::string_view b);

}  // namespace lathe
