#include "http/router.h"

#include <cstdlib>
#include <utility>

#include "base/log.h"
#include "http/wire.h"

namespace lathe::http {
namespace {

// What a pattern segment matches, most specific first: a literal, "{name}"
// (one segment), "{name*}" (the rest of the path, one or more segments).
enum class SegmentKind { kLiteral, kParam, kRest };

SegmentKind KindOf(std::string_view segment) {
  if (segment.size() < 2 || segment.front() != '{' || segment.back() != '}')
    return SegmentKind::kLiteral;
  return segment.size() >= 3 && segment[segment.size() - 2] == '*' ? SegmentKind::kRest
                                                                   : SegmentKind::kParam;
}

// "project" for "{project}", "path" for "{path*}".
std::string ParamName(std::string_view segment) {
  const bool rest = KindOf(segment) == SegmentKind::kRest;
  return std::string(segment.substr(1, segment.size() - (rest ? 3 : 2)));
}

// Splits "/a/b/" into {"a", "b"}: the leading slash is skipped and one
// trailing slash ignored, so "/api/v1/projects/" matches "/api/v1/projects".
std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> parts;
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  if (!path.empty() && path.back() == '/') path.remove_suffix(1);
  if (path.empty()) return parts;
  while (true) {
    size_t slash = path.find('/');
    parts.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return parts;
}

// True when route `a` is more specific than `b` (both match the same path):
// at the first position where they differ in kind, a literal beats a
// parameter and a parameter beats a rest parameter.
bool MoreSpecific(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    SegmentKind ka = KindOf(a[i]), kb = KindOf(b[i]);
    if (ka != kb) return ka < kb;
  }
  return false;
}

void DefaultError(Request&, Response& res, int status, std::string_view message) {
  res.status = status;
  res.content_type = "application/json";
  std::string_view code = status == 404   ? "NOT_FOUND"
                          : status == 405 ? "METHOD_NOT_ALLOWED"
                                          : "INVALID_ARGUMENT";
  res.body = ErrorJson(code, message);
}

}  // namespace

void Router::Add(Method method, std::string_view pattern, Handler handler) {
  Route route;
  route.method = method;
  route.pattern = std::string(pattern);
  for (std::string_view part : SplitPath(pattern)) route.segments.emplace_back(part);
  for (size_t i = 0; i + 1 < route.segments.size(); ++i) {
    if (KindOf(route.segments[i]) == SegmentKind::kRest) {
      LOG_ERROR("http::Router: in {} a rest parameter {} is not the last segment", pattern,
                route.segments[i]);
      std::abort();
    }
  }
  route.has_rest = !route.segments.empty() && KindOf(route.segments.back()) == SegmentKind::kRest;
  for (const Route& other : routes_) {
    if (other.method != method || other.segments.size() != route.segments.size()) continue;
    bool same = true;
    for (size_t i = 0; i < route.segments.size() && same; ++i) {
      const std::string& x = other.segments[i];
      const std::string& y = route.segments[i];
      SegmentKind kx = KindOf(x);
      same = kx == KindOf(y) && (kx != SegmentKind::kLiteral || x == y);
    }
    if (same) {
      LOG_ERROR("http::Router: duplicate route {} {} (already {})", MethodName(method), pattern,
                other.pattern);
      std::abort();
    }
  }
  route.handler = std::move(handler);
  routes_.push_back(std::move(route));
}

void Router::SetErrorHandler(std::function<void(Request&, Response&, int, std::string_view)> fn) {
  on_error_ = std::move(fn);
}

bool Router::Match(const Route& route, const std::vector<std::string_view>& parts,
                   std::vector<std::pair<std::string, std::string>>* params) const {
  const size_t fixed = route.has_rest ? route.segments.size() - 1 : route.segments.size();
  if (route.has_rest ? parts.size() <= fixed : parts.size() != fixed) return false;
  params->clear();
  std::string value;
  for (size_t i = 0; i < fixed; ++i) {
    const std::string& seg = route.segments[i];
    if (KindOf(seg) == SegmentKind::kParam) {
      if (parts[i].empty()) return false;
      if (!PercentDecode(parts[i], &value, false)) return false;
      params->emplace_back(ParamName(seg), std::move(value));
    } else {
      // Literal segments compare against the decoded segment, so "%761"
      // still matches "v1"; an encoded "%2F" never splits a segment.
      if (parts[i].find('%') == std::string_view::npos) {
        if (parts[i] != seg) return false;
      } else {
        if (!PercentDecode(parts[i], &value, false) || value != seg) return false;
      }
    }
  }
  if (route.has_rest) {
    // The same rules per segment as "{name}" (non-empty, well-formed
    // escapes), but the value is the raw text: the parts are views into one
    // string, so the remainder runs from the first part to the end of the last.
    for (size_t i = fixed; i < parts.size(); ++i) {
      if (parts[i].empty()) return false;
      if (parts[i].find('%') != std::string_view::npos && !PercentDecode(parts[i], &value, false))
        return false;
    }
    const char* begin = parts[fixed].data();
    const char* end = parts.back().data() + parts.back().size();
    params->emplace_back(ParamName(route.segments.back()), std::string(begin, end));
  }
  return true;
}

void Router::Dispatch(Request& req, Response& res) const {
  auto error = [&](int status, std::string_view message) {
    if (on_error_) {
      on_error_(req, res, status, message);
    } else {
      DefaultError(req, res, status, message);
    }
  };

  // Split the RAW path (from the target) so that "%2F" inside a segment
  // stays inside it; fall back to the decoded path for requests built by
  // hand without a target.
  std::string_view raw = req.path;
  if (!req.target.empty() && req.target.front() == '/') {
    raw = req.target;
    size_t q = raw.find('?');
    if (q != std::string_view::npos) raw = raw.substr(0, q);
    size_t hash = raw.find('#');
    if (hash != std::string_view::npos) raw = raw.substr(0, hash);
  }
  std::vector<std::string_view> parts = SplitPath(raw);

  const Route* best = nullptr;
  const Route* best_get = nullptr;  // HEAD falls back to the GET route
  std::vector<std::pair<std::string, std::string>> params;
  bool path_known = false;
  bool allowed[static_cast<int>(Method::kOther) + 1] = {};
  for (const Route& route : routes_) {
    if (!Match(route, parts, &params)) continue;
    path_known = true;
    allowed[static_cast<int>(route.method)] = true;
    if (route.method == req.method) {
      if (best == nullptr || MoreSpecific(route.segments, best->segments)) best = &route;
    } else if (req.method == Method::kHead && route.method == Method::kGet) {
      if (best_get == nullptr || MoreSpecific(route.segments, best_get->segments)) best_get = &route;
    }
  }
  if (best == nullptr) best = best_get;
  if (best != nullptr) {
    Match(*best, parts, &req.path_params);
    req.route = best->pattern;
    best->handler(req, res);
    return;
  }
  if (!path_known) {
    error(404, "no route for " + req.path);
    return;
  }
  if (allowed[static_cast<int>(Method::kGet)]) allowed[static_cast<int>(Method::kHead)] = true;
  std::string allow;
  for (Method m : {Method::kGet, Method::kHead, Method::kPost, Method::kPut, Method::kPatch,
                   Method::kDelete, Method::kOptions}) {
    if (!allowed[static_cast<int>(m)]) continue;
    if (!allow.empty()) allow.append(", ");
    allow.append(MethodName(m));
  }
  res.SetHeader("Allow", allow);
  error(405, std::string("method ") + std::string(MethodName(req.method)) + " not allowed for " + req.path);
  // The hook may have rebuilt the headers; the Allow header is part of 405.
  bool has_allow = false;
  for (const auto& [name, value] : res.headers) {
    if (name == "Allow" || name == "allow") has_allow = true;
  }
  if (!has_allow) res.SetHeader("Allow", allow);
}

}  // namespace lathe::http
