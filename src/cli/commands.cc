#include "cli/commands.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include <fmt/core.h>

#include "base/json.h"
#include "base/yaml.h"
#include "cli/api_client.h"
#include "cli/session.h"
#include "http/message.h"

namespace lathe::cli {
namespace {

using http::Method;

struct SavedConfig {
  std::string server;
  std::string token;
};

StatusOr<SavedConfig> LoadSavedConfig() {
  SavedConfig c;
  std::string path = ClientConfigPath();
  std::ifstream in(path);
  if (!in) return c;  // not logged in yet
  std::stringstream buf;
  buf << in.rdbuf();
  auto doc = ParseYaml(buf.str());
  if (!doc.ok()) return doc.status().WithPrefix(path);
  auto r = ObjectReader::Make(*doc, "");
  if (!r.ok()) return r.status().WithPrefix(path);
  RETURN_IF_ERROR(r->String("server", &c.server).WithPrefix(path));
  RETURN_IF_ERROR(r->String("token", &c.token).WithPrefix(path));
  return c;
}

Status SaveConfig(const SavedConfig& c) {
  std::string path = ClientConfigPath();
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  if (ec) return InternalError(fmt::format("cannot create the directory of {}: {}", path, ec.message()));
  std::string text = ToYaml(JsonValue::MakeObject({{"server", JsonValue::MakeString(c.server)},
                                                   {"token", JsonValue::MakeString(c.token)}}));
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return InternalError(fmt::format("cannot write {}", tmp));
  ::fchmod(fd, 0600);
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = ::fsync(fd) == 0 && ok;
  ok = ::close(fd) == 0 && ok;
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    return InternalError(fmt::format("cannot write {}", path));
  }
  return OkStatus();
}

}  // namespace

const char* Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : nullptr;
}

StatusOr<Session> Connect(const ClientOptions& o) {
  ASSIGN_OR_RETURN(OutputFormat format, ParseOutputFormat(o.output));
  ASSIGN_OR_RETURN(SavedConfig saved, LoadSavedConfig());
  std::string server = !o.server.empty() ? o.server : Env("LATHE_SERVER") ? Env("LATHE_SERVER") : saved.server;
  std::string token = !o.token.empty() ? o.token : Env("LATHE_TOKEN") ? Env("LATHE_TOKEN") : saved.token;
  ASSIGN_OR_RETURN(std::unique_ptr<ApiClient> api, ApiClient::Make(server, token));
  return Session{std::move(api), format};
}

std::string JsonBody(const std::function<void(JsonWriter&)>& fn) {
  std::string body;
  JsonWriter w(&body);
  fn(w);
  return body;
}

std::string Seg(const std::string& s) { return http::PercentEncode(s); }

Status PrintListing(Session& s, const std::string& path, const ListOptions& l,
                    const std::vector<Column>& columns, std::ostream& out) {
  std::string next;
  ASSIGN_OR_RETURN(std::vector<JsonValue> items, s.api->List(path, l.limit, l.page_token, &next));
  PrintList(out, s.format, items, columns);
  if (!next.empty()) std::cerr << "more results: --page-token " << next << "\n";
  return OkStatus();
}

namespace {

const std::vector<Column>& ProjectColumns() {
  static const auto* const kCols = new std::vector<Column>{
      {"NAME", "name"}, {"ROLE", "role"}, {"CREATED BY", "created_by"},
      {"CREATED", "created_at"}, {"DESCRIPTION", "description"}};
  return *kCols;
}
const std::vector<Column>& TokenColumns() {
  static const auto* const kCols = new std::vector<Column>{
      {"ID", "id"},           {"NAME", "name"},         {"USER", "user"},
      {"PROJECT", "project"}, {"ROLE", "role"},         {"CREATED", "created_at"},
      {"EXPIRES", "expires_at"}, {"REVOKED", "revoked_at"}};
  return *kCols;
}
const std::vector<Column>& UserColumns() {
  static const auto* const kCols = new std::vector<Column>{
      {"NAME", "name"}, {"ADMIN", "is_admin"}, {"ID", "id"}, {"CREATED", "created_at"}};
  return *kCols;
}
const std::vector<Column>& MemberColumns() {
  static const auto* const kCols =
      new std::vector<Column>{{"USER", "user"}, {"ROLE", "role"}, {"SINCE", "created_at"}};
  return *kCols;
}

}  // namespace

std::string ClientConfigPath() {
  if (const char* p = Env("LATHE_CLI_CONFIG")) return p;
  if (const char* x = Env("XDG_CONFIG_HOME")) return std::string(x) + "/lathe/config.yaml";
  const char* home = Env("HOME");
  return std::string(home ? home : ".") + "/.config/lathe/config.yaml";
}

StatusOr<int64_t> ParseDurationSeconds(const std::string& text, const std::string& flag) {
  auto bad = [&] {
    return InvalidArgumentError(
        fmt::format("--{}: \"{}\" is not a duration like 90d, 12h, 30m, 45s", flag, text), flag);
  };
  if (text.empty()) return bad();
  char* end = nullptr;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (end == text.c_str() || v <= 0) return bad();
  std::string unit(end);
  if (unit.empty() || unit == "s") return v;
  if (unit == "m") return v * 60;
  if (unit == "h") return v * 3600;
  if (unit == "d") return v * 86400;
  return bad();
}

Status Login(const std::string& server, const std::string& token_file, std::ostream& out) {
  std::string token;
  if (token_file == "-") {
    std::getline(std::cin, token);
  } else {
    std::ifstream in(token_file);
    if (!in) return InvalidArgumentError(fmt::format("--token-file: cannot read {}", token_file), "token-file");
    std::getline(in, token);
  }
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
  if (token.empty()) return InvalidArgumentError("--token-file: the file is empty", "token-file");
  ASSIGN_OR_RETURN(std::unique_ptr<ApiClient> api, ApiClient::Make(server, token));
  ASSIGN_OR_RETURN(JsonValue who, api->Call(Method::kGet, "/api/v1/whoami"));
  RETURN_IF_ERROR(SaveConfig({server, token}));
  out << fmt::format("Logged in to {} as {}; saved to {}\n", server, CellText(who, "user"),
                     ClientConfigPath());
  return OkStatus();
}

Status WhoAmI(const ClientOptions& o, std::ostream& out) {
  ASSIGN_OR_RETURN(Session s, Connect(o));
  ASSIGN_OR_RETURN(JsonValue who, s.api->Call(Method::kGet, "/api/v1/whoami"));
  PrintObject(out, s.format, who,
              {{"USER", "user"}, {"ADMIN", "is_admin"}, {"TOKEN", "token_id"},
               {"PROJECT SCOPE", "project_scope"}});
  return OkStatus();
}

Status ProjectCreate(const ClientOptions& o, const std::string& name, const std::string& description,
                     std::ostream& out) {
  ASSIGN_OR_RETURN(Session s, Connect(o));
  ASSIGN_OR_RETURN(JsonValue p, s.api->Call(Method::kPost, "/api/v1/projects", JsonBody([&](JsonWriter& w) {
                                              w.BeginObject().Field("name", name);
                                              if (!description.empty()) w.Field("description", description);
                                              w.EndObject();
                                            })));
  PrintObject(out, s.format, p, ProjectColumns());
  return OkStatus();
}

Status ProjectList(const ClientOptions& o, const ListOptions& l, std::ostream& out) {
  ASSIGN_OR_RETURN(Session s, Connect(o));
  return PrintListing(s, "/api/v1/projects", l, ProjectColumns(), out);
}

Status ProjectGet(const ClientOptions& o, const std::string& name, std::ostream& out) {
  ASSIGN_OR_RETURN(Session s, Connect(o));
  ASSIGN_OR_RETURN(JsonValue p, s.api->Call(Method::kGet, "/api/v1/projects/" + Seg(name)));
  PrintObject(out, s.format, p, ProjectColumns());
  return OkStatus();
}

Status ProjectRemove(const ClientOptions& o, const std::string& name, std::ostream& out) {
  ASSIGN_OR_RETURN(Session s, Connect(o));
  RETURN_IF_ERROR(s.api->Call(Method::kDelete, "/api/v1/projects/" + Seg(name)).status());
  if (s.format == OutputFormat::kTable) out << fmt::format("project \"{}\" deleted\n", name);
  return OkStatus();
}

Status MemberSet(const ClientOptions& o, const std::string& project, const std::string& user,
                 const std::string& role, std::ostream& out) {
  ASSIGN_OR_RETURN(Session s, Connect(o));
  ASSIGN_OR_RETURN(JsonValue m, s.api->Call(Method::kPut,
                                            "/api/v1/projects/" + Seg(project) + "/members/" + Seg(user),
                                            JsonBody([&](JsonWriter& w) {
                                              w.BeginObject().Field("role", role).EndObject();
                                            })));
  PrintObject(out, s.format, m, {{"USER", "user"}, {"ROLE", "role"}});
  return OkStatus();
}

Status MemberList(const ClientOptions& o, const std::string& project, const ListOptions& l,
                  std::ostream& out) {
  ASSIGN_OR_RETURN(Session s, Connect(o));
  return PrintListing(s, "/api/v1/projects/" + Seg(project) + "/members", l, MemberColumns(), out);
}

Status MemberRemove(const ClientOptions& o, const std::string& project, const std::string& user,
                    std::ostream& out) {
  ASSIGN_OR_RETURN(Session s, Connect(o));
  RETURN_IF_ERROR(
      s.api->Call(Method::kDelete, "/api/v1/projects/" + Seg(project) + "/members/" + Seg(user))
          .status());
  if (s.format == OutputFormat::kTable) {
    out << fmt::format("user \"{}\" removed from project \"{}\"\n", user, project);
  }
  return OkStatus();
}

Status TokenCreate(const ClientOptions& o, const TokenCreateOptions& t, std::ostream& out) {
  int64_t ttl = 0;
  if (!t.ttl.empty()) {
    ASSIGN_OR_RETURN(ttl, ParseDurationSeconds(t.ttl));
  }
  ASSIGN_OR_RETURN(Session s, Connect(o));
  ASSIGN_OR_RETURN(JsonValue tok, s.api->Call(Method::kPost, "/api/v1/tokens", JsonBody([&](JsonWriter& w) {
                                                w.BeginObject().Field("name", t.name);
                                                if (!t.user.empty()) w.Field("user", t.user);
                                                if (!t.project.empty()) w.Field("project", t.project);
                                                if (!t.role.empty()) w.Field("role", t.role);
                                                if (ttl > 0) w.Field("ttl_seconds", ttl);
                                                w.EndObject();
                                              })));
  if (s.format == OutputFormat::kTable) {
    std::vector<Column> cols = TokenColumns();
    cols.push_back({"TOKEN", "token"});
    PrintObject(out, s.format, tok, cols);
    out << "\nThe token is shown only now; store it safely.\n";
  } else {
    PrintObject(out, s.format, tok, {});
  }
  return OkStatus();
}

Status TokenList(const ClientOptions& o, const std::string& user, const ListOptions& l,
                 std::ostream& out) {
  ASSIGN_OR_RETURN(Session s, Connect(o));
  std::string path = "/api/v1/tokens";
  if (!user.empty()) path += "?user=" + http::PercentEncode(user);
  return PrintListing(s, path, l, TokenColumns(), out);
}

Status TokenRevoke(const ClientOptions& o, const std::string& id, std::ostream& out) {
  ASSIGN_OR_RETURN(Session s, Connect(o));
  RETURN_IF_ERROR(s.api->Call(Method::kDelete, "/api/v1/tokens/" + Seg(id)).status());
  if (s.format == OutputFormat::kTable) out << fmt::format("token {} revoked\n", id);
  return OkStatus();
}

Status UserCreate(const ClientOptions& o, const std::string& name, bool is_admin, std::ostream& out) {
  ASSIGN_OR_RETURN(Session s, Connect(o));
  ASSIGN_OR_RETURN(JsonValue u, s.api->Call(Method::kPost, "/api/v1/users", JsonBody([&](JsonWriter& w) {
                                              w.BeginObject().Field("name", name);
                                              if (is_admin) w.Field("is_admin", true);
                                              w.EndObject();
                                            })));
  PrintObject(out, s.format, u, UserColumns());
  return OkStatus();
}

Status UserList(const ClientOptions& o, const ListOptions& l, std::ostream& out) {
  ASSIGN_OR_RETURN(Session s, Connect(o));
  return PrintListing(s, "/api/v1/users", l, UserColumns(), out);
}

}  // namespace lathe::cli
