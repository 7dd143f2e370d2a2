#include "serving/repository.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>

#include <fmt/core.h>
#include <fmt/ranges.h>

namespace lathe::serving {

namespace fs = std::filesystem;

std::string_view ModelControlModeName(ModelControlMode mode) {
  switch (mode) {
    case ModelControlMode::kNone:
      return "none";
    case ModelControlMode::kPoll:
      return "poll";
    case ModelControlMode::kExplicit:
      return "explicit";
  }
  return "unknown";
}

StatusOr<ModelControlMode> ParseModelControlMode(std::string_view name) {
  if (name == "none") return ModelControlMode::kNone;
  if (name == "poll") return ModelControlMode::kPoll;
  if (name == "explicit") return ModelControlMode::kExplicit;
  return InvalidArgumentError(
      fmt::format("\"{}\" is not a model control mode (none, poll or explicit)", name));
}

std::optional<int64_t> ParseVersionDir(std::string_view name) {
  if (name.empty() || name[0] == '0' || name.size() > 19) return std::nullopt;
  int64_t v = 0;
  for (char c : name) {
    if (c < '0' || c > '9') return std::nullopt;
    int digit = c - '0';
    if (v > (std::numeric_limits<int64_t>::max() - digit) / 10) return std::nullopt;
    v = v * 10 + digit;
  }
  return v;
}

std::vector<int64_t> VersionsInListing(const std::vector<DirEntry>& listing) {
  std::vector<int64_t> versions;
  for (const DirEntry& e : listing) {
    if (!e.is_dir) continue;
    if (std::optional<int64_t> v = ParseVersionDir(e.name)) versions.push_back(*v);
  }
  std::sort(versions.begin(), versions.end());
  versions.erase(std::unique(versions.begin(), versions.end()), versions.end());
  return versions;
}

VersionSelection SelectVersions(const VersionPolicy& policy,
                                const std::vector<int64_t>& available) {
  VersionSelection s;
  switch (policy.kind) {
    case VersionPolicy::Kind::kAll:
      s.versions = available;
      break;
    case VersionPolicy::Kind::kLatest: {
      size_t n = std::min<size_t>(available.size(), static_cast<size_t>(policy.latest));
      s.versions.assign(available.end() - static_cast<ptrdiff_t>(n), available.end());
      break;
    }
    case VersionPolicy::Kind::kSpecific:
      for (int64_t v : policy.specific) {
        if (std::binary_search(available.begin(), available.end(), v)) {
          s.versions.push_back(v);
        } else {
          s.missing.push_back(v);
        }
      }
      break;
  }
  return s;
}

ModelEntry ResolveModel(std::string_view name, std::string_view path,
                        const std::vector<DirEntry>& listing,
                        const std::optional<std::string>& config_yaml, const TensorLimits& limits) {
  ModelEntry m;
  m.name = std::string(name);
  m.path = std::string(path);
  const std::string config_path = fmt::format("{}/{}", path, kConfigFileName);
  if (!IsValidModelName(name)) {
    m.status = InvalidArgumentError(fmt::format(
        "\"{}\" is not a model name (1-128 of A-Z, a-z, 0-9, '_', '.', '-', not starting with "
        "'.')",
        name));
    return m;
  }
  if (!config_yaml) {
    m.status =
        NotFoundError(fmt::format("{}: missing (every model directory needs one)", config_path));
    return m;
  }
  StatusOr<ModelConfig> config = ParseModelConfig(*config_yaml, name, limits);
  if (!config.ok()) {
    m.status = config.status().WithPrefix(config_path);
    return m;
  }
  m.config = *std::move(config);
  m.available = VersionsInListing(listing);
  if (m.available.empty()) {
    m.status = NotFoundError(fmt::format(
        "{}: no version directories (numeric names without a leading zero: 1, 2, ...)", path));
    return m;
  }
  VersionSelection s = SelectVersions(m.config.version_policy, m.available);
  m.versions = std::move(s.versions);
  if (!s.missing.empty()) {
    m.warnings.push_back(fmt::format("version_policy names versions {} that are not in {}",
                                     fmt::join(s.missing, ", "), path));
  }
  if (m.versions.empty()) {
    m.status =
        NotFoundError(fmt::format("{}: version_policy selects none of the versions present ({})",
                                  config_path, fmt::join(m.available, ", ")));
    return m;
  }
  auto loaded = [&](int64_t v) {
    return std::binary_search(m.versions.begin(), m.versions.end(), v);
  };
  for (const auto& [label, version] : m.config.labels) {
    if (!loaded(version)) {
      std::string field = "labels." + label;
      m.status = FailedPreconditionError(
          fmt::format("{}: {}: version {} is not loaded (the version policy loads {})", config_path,
                      field, version, fmt::join(m.versions, ", ")),
          field);
      return m;
    }
  }
  if (m.config.canary && m.config.canary->version != 0 && !loaded(m.config.canary->version)) {
    m.status = FailedPreconditionError(
        fmt::format("{}: canary.version: version {} is not loaded (the version policy loads {})",
                    config_path, m.config.canary->version, fmt::join(m.versions, ", ")),
        "canary.version");
    return m;
  }
  return m;
}

namespace {

StatusOr<std::vector<DirEntry>> ListDir(const fs::path& dir) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) return UnavailableError(fmt::format("cannot list {}: {}", dir.string(), ec.message()));
  std::vector<DirEntry> out;
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    // is_directory follows symbolic links; a dangling one is not a directory.
    std::error_code type_ec;
    bool is_dir = it->is_directory(type_ec);
    out.push_back({it->path().filename().string(), is_dir && !type_ec});
  }
  if (ec) return UnavailableError(fmt::format("cannot list {}: {}", dir.string(), ec.message()));
  std::sort(out.begin(), out.end(),
            [](const DirEntry& a, const DirEntry& b) { return a.name < b.name; });
  return out;
}

// nullopt when the file does not exist; an error when it cannot be read.
StatusOr<std::optional<std::string>> ReadConfig(const fs::path& file) {
  std::error_code ec;
  fs::file_status st = fs::status(file, ec);
  if (ec || !fs::exists(st)) return std::optional<std::string>();
  if (!fs::is_regular_file(st)) {
    return InvalidArgumentError(fmt::format("{}: not a regular file", file.string()));
  }
  uintmax_t size = fs::file_size(file, ec);
  if (ec) return UnavailableError(fmt::format("{}: {}", file.string(), ec.message()));
  if (size > kMaxConfigBytes) {
    return InvalidArgumentError(fmt::format("{}: {} bytes is over the {}-byte limit", file.string(),
                                            size, kMaxConfigBytes));
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) return UnavailableError(fmt::format("{}: cannot open", file.string()));
  std::string text(static_cast<size_t>(size), '\0');
  in.read(text.data(), static_cast<std::streamsize>(size));
  text.resize(static_cast<size_t>(in.gcount()));
  return std::optional<std::string>(std::move(text));
}

}  // namespace

StatusOr<RepositoryScan> ScanRepository(const std::string& root, const TensorLimits& limits) {
  ASSIGN_OR_RETURN(std::vector<DirEntry> top, ListDir(root));
  RepositoryScan scan;
  for (const DirEntry& e : top) {
    if (!e.is_dir || e.name.empty() || e.name[0] == '.') continue;
    const fs::path dir = fs::path(root) / e.name;
    if (!IsValidModelName(e.name)) {
      scan.warnings.push_back(fmt::format("{}: not a valid model name; skipped", dir.string()));
      continue;
    }
    StatusOr<std::vector<DirEntry>> listing = ListDir(dir);
    StatusOr<std::optional<std::string>> config = ReadConfig(dir / kConfigFileName);
    if (!listing.ok() || !config.ok()) {
      ModelEntry m;
      m.name = e.name;
      m.path = dir.string();
      m.status = !listing.ok() ? listing.status() : config.status();
      scan.models.push_back(std::move(m));
      continue;
    }
    scan.models.push_back(ResolveModel(e.name, dir.string(), *listing, *config, limits));
  }
  return scan;
}

}  // namespace lathe::serving
