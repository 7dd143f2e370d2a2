#include "base/log.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>

namespace lathe {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};

spdlog::logger& Logger(const char* name) {
  // Leaked on purpose: loggers are used until the process exits, including
  // from static destructors and signal-driven shutdown paths.
  static spdlog::logger* main = [] {
    auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    auto* l = new spdlog::logger("lathe", sink);
    l->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %L %v", spdlog::pattern_time_type::utc);
    l->set_level(spdlog::level::trace);
    return l;
  }();
  static spdlog::logger* access = [] {
    // Its own sink: a pattern belongs to the sink, and the two differ.
    auto* l = new spdlog::logger("access", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    l->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ A %v", spdlog::pattern_time_type::utc);
    l->set_level(spdlog::level::trace);
    return l;
  }();
  return name[0] == 'a' ? *access : *main;
}

spdlog::level::level_enum ToSpd(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return spdlog::level::debug;
    case LogLevel::kInfo: return spdlog::level::info;
    case LogLevel::kWarn: return spdlog::level::warn;
    case LogLevel::kError: return spdlog::level::err;
    case LogLevel::kOff: return spdlog::level::off;
  }
  return spdlog::level::info;
}

}  // namespace

bool ParseLogLevel(std::string_view text, LogLevel* level) {
  if (text == "debug") *level = LogLevel::kDebug;
  else if (text == "info") *level = LogLevel::kInfo;
  else if (text == "warn" || text == "warning") *level = LogLevel::kWarn;
  else if (text == "error") *level = LogLevel::kError;
  else if (text == "off") *level = LogLevel::kOff;
  else return false;
  return true;
}

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }

bool LogEnabled(LogLevel level) {
  return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed) &&
         level != LogLevel::kOff;
}

void LogMessage(LogLevel level, std::string_view message) {
  Logger("lathe").log(ToSpd(level), message);
}

void LogAccess(std::string_view line) {
  if (LogEnabled(LogLevel::kInfo)) Logger("access").info(line);
}

}  // namespace lathe
