// Logging. Messages are formatted with fmt only when their level is enabled.
//
//   LOG_INFO("server listening on {}", addr);
//
// Thread-safe. The sink is spdlog (compiled library) writing to stderr; the
// spdlog headers stay out of this header so including it is cheap.
#pragma once

#include <fmt/core.h>

#include <string_view>

namespace lathe {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };

// Parses "debug", "info", "warn", "error", "off". Returns false when unknown.
bool ParseLogLevel(std::string_view text, LogLevel* level);
void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);
void LogMessage(LogLevel level, std::string_view message);
// The access log: one line per HTTP request, at info level, logger "access".
void LogAccess(std::string_view line);

}  // namespace lathe

#define LATHE_LOG(level, ...)                                                    \
  do {                                                                          \
    if (::lathe::LogEnabled(level)) ::lathe::LogMessage(level, fmt::format(__VA_ARGS__)); \
  } while (0)
#define LOG_DEBUG(...) LATHE_LOG(::lathe::LogLevel::kDebug, __VA_ARGS__)
#define LOG_INFO(...) LATHE_LOG(::lathe::LogLevel::kInfo, __VA_ARGS__)
#define LOG_WARN(...) LATHE_LOG(::lathe::LogLevel::kWarn, __VA_ARGS__)
#define LOG_ERROR(...) LATHE_LOG(::lathe::LogLevel::kError, __VA_ARGS__)
