#include "tenancy/tenancy.h"

#include <algorithm>

#include <fmt/core.h>

#include "base/crypto.h"
#include "base/id.h"

namespace lathe::tenancy {

using store::AsInt;
using store::AsText;
using store::IsNull;
using store::Null;
using store::ResultSet;
using store::Tx;
using store::TxMode;
using store::Value;

namespace {

constexpr int64_t kMaxPageLimit = 1000;
constexpr size_t kMaxDescription = 1024;
constexpr size_t kMaxTokenName = 100;
constexpr std::string_view kTokenPrefix = "lathe_";

Role MinRole(Role a, Role b) { return static_cast<int>(a) < static_cast<int>(b) ? a : b; }

std::string NewTokenSecret() {
  return std::string(kTokenPrefix) + Base64UrlEncode(SecureRandomBytes(24));
}

// Keyset pagination: fetch limit+1 rows, keep limit, and the last kept id
// becomes the cursor when there was one more.
template <typename T, typename F>
Page<T> MakePage(const ResultSet& rs, int64_t limit, size_t id_column, F&& decode) {
  Page<T> page;
  size_t n = std::min<size_t>(rs.rows.size(), static_cast<size_t>(limit));
  for (size_t i = 0; i < n; ++i) page.items.push_back(decode(rs.rows[i]));
  if (rs.rows.size() > n && n > 0) {
    page.next_page_token = EncodePageToken(AsText(rs.rows[n - 1][id_column]));
  }
  return page;
}

// PERMISSION_DENIED unless the caller's role in `proj` is at least `min`.
Status RequireRole(const Project& proj, Role min) {
  if (static_cast<int>(proj.role) >= static_cast<int>(min)) return OkStatus();
  return PermissionDeniedError(fmt::format("your role in project \"{}\" is {}; {} is required",
                                           proj.name, RoleName(proj.role), RoleName(min)));
}

// FAILED_PRECONDITION when `user_id` is the project's only admin, so that
// demoting or removing them would leave the project without one.
Status KeepsAnotherAdmin(Tx& tx, const Project& proj, const std::string& user_id) {
  ASSIGN_OR_RETURN(ResultSet admins,
                   tx.Query("SELECT COUNT(*) FROM memberships WHERE project_id = ? AND role = "
                            "'admin' AND user_id <> ?",
                            {proj.id, user_id}));
  if (AsInt(admins.rows[0][0]) > 0) return OkStatus();
  return FailedPreconditionError(
      fmt::format("project \"{}\" must keep at least one admin", proj.name), "role");
}

Status AdminOnly(const Principal& p, std::string_view what) {
  if (!p.is_admin || p.scoped()) {
    return PermissionDeniedError(fmt::format("only server admins can {}", what));
  }
  return OkStatus();
}

}  // namespace

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kViewer: return "viewer";
    case Role::kEditor: return "editor";
    case Role::kAdmin: return "admin";
  }
  return "viewer";
}

StatusOr<Role> ParseRole(std::string_view text, std::string_view field) {
  if (text == "viewer") return Role::kViewer;
  if (text == "editor") return Role::kEditor;
  if (text == "admin") return Role::kAdmin;
  return InvalidArgumentError(
      fmt::format("{}: \"{}\" is not a role (viewer, editor, admin)", field, text),
      std::string(field));
}

Status ValidateName(std::string_view name, std::string_view field) {
  auto bad = [&](std::string_view why) {
    return InvalidArgumentError(fmt::format("{}: \"{}\" {}", field, name, why), std::string(field));
  };
  if (name.empty()) return bad("is empty");
  if (name.size() > 63) return bad("is longer than 63 characters");
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
      return bad("may contain only lower-case letters, digits and '-'");
    }
  }
  if (name.front() == '-' || name.back() == '-') return bad("must start and end with a letter or digit");
  return OkStatus();
}

std::string EncodePageToken(std::string_view last_id) { return Base64UrlEncode(last_id); }

StatusOr<std::string> DecodePageToken(std::string_view token) {
  std::string id;
  if (token.empty()) return id;
  if (!Base64UrlDecode(token, &id) || !IsValidId(id)) {
    return InvalidArgumentError("page_token: not a page token returned by this API", "page_token");
  }
  return id;
}

Status ValidatePage(const PageRequest& page) {
  if (page.limit < 1 || page.limit > kMaxPageLimit) {
    return InvalidArgumentError(
        fmt::format("limit: {} is outside 1..{}", page.limit, kMaxPageLimit), "limit");
  }
  return OkStatus();
}

TenancyService::TenancyService(store::Store& store, const Clock& clock, int64_t token_cache_ttl_ms)
    : store_(store), clock_(clock), cache_ttl_ns_(token_cache_ttl_ms * 1'000'000) {}

// ------------------------------------------------------------------ tokens

StatusOr<Principal> TenancyService::Authenticate(std::string_view token) {
  if (token.empty()) return UnauthenticatedError("missing bearer token");
  const std::string hash = Sha256Hex(token);
  const int64_t now_mono = clock_.MonotonicNanos();
  if (cache_ttl_ns_ > 0) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = cache_.find(hash);
    if (it != cache_.end()) {
      if (it->second.expires_mono_ns > now_mono) return it->second.principal;
      cache_.erase(it);
    }
  }
  Principal p;
  int64_t expires_at = 0;
  Status st = store::RunInTx(store_, TxMode::kRead, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(ResultSet rs,
                     tx.Query("SELECT t.id, t.user_id, u.name, u.is_admin, t.project_id, t.role, "
                              "t.expires_at, t.revoked_at FROM tokens t "
                              "JOIN users u ON u.id = t.user_id WHERE t.secret_hash = ?",
                              {hash}));
    if (rs.empty()) return UnauthenticatedError("invalid token");
    const auto& row = rs.rows[0];
    if (!IsNull(row[7])) return UnauthenticatedError("token has been revoked");
    expires_at = IsNull(row[6]) ? 0 : AsInt(row[6]);
    if (expires_at != 0 && expires_at <= clock_.NowMicros()) {
      return UnauthenticatedError("token has expired");
    }
    p.token_id = AsText(row[0]);
    p.user_id = AsText(row[1]);
    p.user_name = AsText(row[2]);
    p.is_admin = AsInt(row[3]) != 0;
    if (!IsNull(row[4])) p.scope_project_id = AsText(row[4]);
    if (!IsNull(row[5])) {
      ASSIGN_OR_RETURN(p.scope_role, ParseRole(AsText(row[5])));
    }
    return OkStatus();
  });
  RETURN_IF_ERROR(st);
  if (cache_ttl_ns_ > 0) {
    int64_t expiry = now_mono + cache_ttl_ns_;
    if (expires_at != 0) {
      expiry = std::min(expiry, now_mono + (expires_at - clock_.NowMicros()) * 1000);
    }
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (cache_.size() > 100'000) cache_.clear();  // bound memory under token churn
    cache_[hash] = CacheEntry{p, expiry};
  }
  return p;
}

void TenancyService::ForgetTokens() {
  std::lock_guard<std::mutex> lock(cache_mu_);
  cache_.clear();
}

StatusOr<Token> TenancyService::InsertToken(Tx& tx, const std::string& user_id,
                                            const std::string& user_name, const TokenRequest& req,
                                            const std::string& project_id) {
  Token t;
  t.id = NewId();
  t.name = req.name;
  t.user_name = user_name;
  t.project = req.project;
  t.role = req.role;
  t.created_at = clock_.NowMicros();
  t.expires_at = req.ttl_seconds > 0 ? t.created_at + req.ttl_seconds * 1'000'000 : 0;
  t.secret = NewTokenSecret();
  RETURN_IF_ERROR(
      tx.Exec("INSERT INTO tokens (id, user_id, name, secret_hash, project_id, role, created_at, "
              "expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
              {t.id, user_id, t.name, Sha256Hex(t.secret),
               project_id.empty() ? Null() : Value(project_id),
               t.role ? Value(std::string(RoleName(*t.role))) : Null(), t.created_at,
               t.expires_at ? Value(t.expires_at) : Null()})
          .status());
  return t;
}

StatusOr<Token> TenancyService::MintScopedToken(Tx& tx, const std::string& user_id,
                                                const std::string& project_id,
                                                std::string_view name, int64_t ttl_seconds) {
  ASSIGN_OR_RETURN(ResultSet u, tx.Query("SELECT name FROM users WHERE id = ?", {user_id}));
  if (u.empty()) return NotFoundError(fmt::format("user {} not found", user_id));
  ASSIGN_OR_RETURN(ResultSet pr, tx.Query("SELECT name FROM projects WHERE id = ?", {project_id}));
  if (pr.empty()) return NotFoundError(fmt::format("project {} not found", project_id));
  TokenRequest req;
  req.name = std::string(name);
  req.project = AsText(pr.rows[0][0]);
  req.role = Role::kEditor;
  req.ttl_seconds = ttl_seconds;
  return InsertToken(tx, user_id, AsText(u.rows[0][0]), req, project_id);
}

StatusOr<Principal> TenancyService::PrincipalForUser(const std::string& user_id) {
  Principal p;
  RETURN_IF_ERROR(store::RunInTx(store_, TxMode::kRead, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(ResultSet u, tx.Query("SELECT name, is_admin FROM users WHERE id = ?", {user_id}));
    if (u.empty()) return NotFoundError(fmt::format("user {} not found", user_id));
    p.user_id = user_id;
    p.user_name = AsText(u.rows[0][0]);
    p.is_admin = AsInt(u.rows[0][1]) != 0;
    return OkStatus();
  }));
  return p;
}

Status TenancyService::RevokeTokensNamed(Tx& tx, std::string_view name) {
  return tx.Exec("UPDATE tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                 {clock_.NowMicros(), std::string(name)})
      .status();
}

StatusOr<bool> TenancyService::Bootstrap(
    const std::function<Status(const std::string& token)>& save) {
  bool created = false;
  Status st = store::RunInTx(store_, TxMode::kWrite, [&](Tx& tx) -> Status {
    created = false;
    ASSIGN_OR_RETURN(ResultSet rs, tx.Query("SELECT COUNT(*) FROM users"));
    if (AsInt(rs.rows[0][0]) > 0) return OkStatus();
    std::string user_id = NewId();
    RETURN_IF_ERROR(tx.Exec("INSERT INTO users (id, name, is_admin, created_at) VALUES (?, ?, 1, ?)",
                            {user_id, std::string("admin"), clock_.NowMicros()})
                        .status());
    // The project MLflow clients act in when nothing names another
    // (docs/mlflow.md), so unchanged MLflow code works on a fresh server.
    const std::string project_id = NewId();
    const int64_t now = clock_.NowMicros();
    RETURN_IF_ERROR(tx.Exec("INSERT INTO projects (id, name, description, created_by, created_at) "
                            "VALUES (?, ?, ?, ?, ?)",
                            {project_id, std::string(kDefaultProjectName),
                             std::string("Created at first start: where MLflow clients land by "
                                         "default."),
                             std::string("admin"), now})
                        .status());
    RETURN_IF_ERROR(
        tx.Exec("INSERT INTO memberships (project_id, user_id, role, created_at) VALUES (?, ?, ?, ?)",
                {project_id, user_id, std::string("admin"), now})
            .status());
    TokenRequest req;
    req.name = "bootstrap";
    ASSIGN_OR_RETURN(Token t, InsertToken(tx, user_id, "admin", req, ""));
    RETURN_IF_ERROR(save(t.secret));
    created = true;
    return OkStatus();
  });
  if (st.code() == StatusCode::kAlreadyExists) return false;  // another process won
  RETURN_IF_ERROR(st);
  return created;
}

StatusOr<Token> TenancyService::CreateToken(const Principal& p, const TokenRequest& in) {
  TokenRequest req = in;
  if (req.name.empty()) return InvalidArgumentError("name: required field is missing", "name");
  if (req.name.size() > kMaxTokenName) {
    return InvalidArgumentError(fmt::format("name: longer than {} characters", kMaxTokenName), "name");
  }
  if (req.ttl_seconds < 0) {
    return InvalidArgumentError("ttl_seconds: must not be negative", "ttl_seconds");
  }
  if (!req.user.empty() && req.user != p.user_name) {
    RETURN_IF_ERROR(AdminOnly(p, "create tokens for other users"));
  }
  if (p.scoped()) {
    // A scoped token can only mint tokens inside its own scope, never wider.
    if (p.scope_role && req.role && static_cast<int>(*req.role) > static_cast<int>(*p.scope_role)) {
      return PermissionDeniedError(fmt::format("a token with role {} cannot create a token with role {}",
                                               RoleName(*p.scope_role), RoleName(*req.role)));
    }
    if (!req.role) req.role = p.scope_role;
  } else if (req.role && req.project.empty()) {
    return InvalidArgumentError("role: only project-scoped tokens carry a role; set project", "role");
  }
  Token out;
  RETURN_IF_ERROR(store::RunInTx(store_, TxMode::kWrite, [&](Tx& tx) -> Status {
    std::string project_id;
    if (p.scoped()) {
      ASSIGN_OR_RETURN(ResultSet rs,
                       tx.Query("SELECT name FROM projects WHERE id = ?", {p.scope_project_id}));
      if (rs.empty()) return NotFoundError("the token's project no longer exists");
      std::string scope_name = AsText(rs.rows[0][0]);
      if (!req.project.empty() && req.project != scope_name) {
        return NotFoundError(fmt::format("project \"{}\" not found", req.project));
      }
      req.project = scope_name;
      project_id = p.scope_project_id;
    } else if (!req.project.empty()) {
      ASSIGN_OR_RETURN(Project proj, ResolveProject(tx, p, req.project));
      project_id = proj.id;
    }
    std::string user_id = p.user_id, user_name = p.user_name;
    if (!req.user.empty() && req.user != p.user_name) {
      ASSIGN_OR_RETURN(ResultSet rs, tx.Query("SELECT id FROM users WHERE name = ?", {req.user}));
      if (rs.empty()) {
        return NotFoundError(fmt::format("user \"{}\" not found", req.user)).WithField("user");
      }
      user_id = AsText(rs.rows[0][0]);
      user_name = req.user;
    }
    ASSIGN_OR_RETURN(out, InsertToken(tx, user_id, user_name, req, project_id));
    return OkStatus();
  }));
  return out;
}

StatusOr<Page<Token>> TenancyService::ListTokens(const Principal& p, std::string_view user,
                                                 const PageRequest& page) {
  RETURN_IF_ERROR(ValidatePage(page));
  ASSIGN_OR_RETURN(std::string after, DecodePageToken(page.page_token));
  if (!user.empty() && user != p.user_name) RETURN_IF_ERROR(AdminOnly(p, "list other users' tokens"));
  std::string sql =
      "SELECT t.id, t.name, u.name, pr.name, t.role, t.created_at, t.expires_at, t.revoked_at "
      "FROM tokens t JOIN users u ON u.id = t.user_id LEFT JOIN projects pr ON pr.id = t.project_id "
      "WHERE t.id > ? ";
  std::vector<Value> params{after};
  if (user.empty()) {
    sql += "AND t.user_id = ? ";
    params.emplace_back(p.user_id);
  } else if (user != "*") {
    sql += "AND u.name = ? ";
    params.emplace_back(std::string(user));
  }
  if (p.scoped()) {
    // A scoped token sees only the tokens of its own scope.
    sql += "AND t.project_id = ? ";
    params.emplace_back(p.scope_project_id);
  }
  sql += "ORDER BY t.id LIMIT ?";
  params.emplace_back(page.limit + 1);
  Page<Token> out;
  RETURN_IF_ERROR(store::RunInTx(store_, TxMode::kRead, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(ResultSet rs, tx.Query(sql, params));
    out = MakePage<Token>(rs, page.limit, 0, [](const std::vector<Value>& r) {
      Token t;
      t.id = AsText(r[0]);
      t.name = AsText(r[1]);
      t.user_name = AsText(r[2]);
      t.project = AsText(r[3]);
      if (!IsNull(r[4])) {
        auto role = ParseRole(AsText(r[4]));
        if (role.ok()) t.role = *role;
      }
      t.created_at = AsInt(r[5]);
      t.expires_at = AsInt(r[6]);
      t.revoked_at = AsInt(r[7]);
      return t;
    });
    return OkStatus();
  }));
  return out;
}

Status TenancyService::RevokeToken(const Principal& p, std::string_view token_id) {
  RETURN_IF_ERROR(store::RunInTx(store_, TxMode::kWrite, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(ResultSet rs, tx.Query("SELECT user_id, project_id FROM tokens WHERE id = ?",
                                            {std::string(token_id)}));
    bool visible = !rs.empty() && (AsText(rs.rows[0][0]) == p.user_id || (p.is_admin && !p.scoped()));
    // A scoped token may revoke only tokens of its own scope.
    if (visible && p.scoped()) visible = AsText(rs.rows[0][1]) == p.scope_project_id;
    if (!visible) return NotFoundError(fmt::format("token \"{}\" not found", token_id));
    return tx
        .Exec("UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
              {clock_.NowMicros(), std::string(token_id)})
        .status();
  }));
  ForgetTokens();
  return OkStatus();
}

// ------------------------------------------------------------------- users

StatusOr<User> TenancyService::CreateUser(const Principal& p, std::string_view name, bool is_admin) {
  RETURN_IF_ERROR(AdminOnly(p, "create users"));
  RETURN_IF_ERROR(ValidateName(name));
  User u{NewId(), std::string(name), is_admin, clock_.NowMicros()};
  Status st = store::RunInTx(store_, TxMode::kWrite, [&](Tx& tx) -> Status {
    return tx
        .Exec("INSERT INTO users (id, name, is_admin, created_at) VALUES (?, ?, ?, ?)",
              {u.id, u.name, int64_t{is_admin ? 1 : 0}, u.created_at})
        .status();
  });
  if (st.code() == StatusCode::kAlreadyExists) {
    return AlreadyExistsError(fmt::format("user \"{}\" already exists", name), "name");
  }
  RETURN_IF_ERROR(st);
  return u;
}

StatusOr<Page<User>> TenancyService::ListUsers(const Principal& p, const PageRequest& page) {
  RETURN_IF_ERROR(AdminOnly(p, "list users"));
  RETURN_IF_ERROR(ValidatePage(page));
  ASSIGN_OR_RETURN(std::string after, DecodePageToken(page.page_token));
  Page<User> out;
  RETURN_IF_ERROR(store::RunInTx(store_, TxMode::kRead, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(ResultSet rs, tx.Query("SELECT id, name, is_admin, created_at FROM users "
                                            "WHERE id > ? ORDER BY id LIMIT ?",
                                            {after, page.limit + 1}));
    out = MakePage<User>(rs, page.limit, 0, [](const std::vector<Value>& r) {
      return User{AsText(r[0]), AsText(r[1]), AsInt(r[2]) != 0, AsInt(r[3])};
    });
    return OkStatus();
  }));
  return out;
}

// ---------------------------------------------------------------- projects

StatusOr<Project> TenancyService::ResolveProject(Tx& tx, const Principal& p, std::string_view name) {
  Status not_found = NotFoundError(fmt::format("project \"{}\" not found", name));
  ASSIGN_OR_RETURN(ResultSet rs, tx.Query("SELECT id, name, description, created_by, created_at "
                                          "FROM projects WHERE name = ?",
                                          {std::string(name)}));
  if (rs.empty()) return not_found;
  const auto& r = rs.rows[0];
  Project proj{AsText(r[0]), AsText(r[1]), AsText(r[2]), AsText(r[3]), AsInt(r[4]), Role::kViewer};
  if (p.scoped() && p.scope_project_id != proj.id) return not_found;
  if (p.is_admin) {
    proj.role = Role::kAdmin;
  } else {
    ASSIGN_OR_RETURN(ResultSet m, tx.Query("SELECT role FROM memberships WHERE project_id = ? AND "
                                           "user_id = ?",
                                           {proj.id, p.user_id}));
    if (m.empty()) return not_found;
    ASSIGN_OR_RETURN(proj.role, ParseRole(AsText(m.rows[0][0])));
  }
  if (p.scope_role) proj.role = MinRole(proj.role, *p.scope_role);
  return proj;
}

StatusOr<Project> TenancyService::AuthorizeProject(const Principal& p, std::string_view name,
                                                   Role min) {
  Project proj;
  RETURN_IF_ERROR(store::RunInTx(store_, TxMode::kRead, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(proj, ResolveProject(tx, p, name));
    return OkStatus();
  }));
  RETURN_IF_ERROR(RequireRole(proj, min));
  return proj;
}

StatusOr<Project> TenancyService::CreateProject(const Principal& p, std::string_view name,
                                                std::string_view description) {
  if (p.scoped()) return PermissionDeniedError("a project-scoped token cannot create projects");
  RETURN_IF_ERROR(ValidateName(name));
  if (description.size() > kMaxDescription) {
    return InvalidArgumentError(
        fmt::format("description: longer than {} characters", kMaxDescription), "description");
  }
  Project proj{NewId(), std::string(name), std::string(description), p.user_name,
               clock_.NowMicros(), Role::kAdmin};
  Status st = store::RunInTx(store_, TxMode::kWrite, [&](Tx& tx) -> Status {
    RETURN_IF_ERROR(tx.Exec("INSERT INTO projects (id, name, description, created_by, created_at) "
                            "VALUES (?, ?, ?, ?, ?)",
                            {proj.id, proj.name, proj.description, proj.created_by, proj.created_at})
                        .status());
    return tx
        .Exec("INSERT INTO memberships (project_id, user_id, role, created_at) VALUES (?, ?, ?, ?)",
              {proj.id, p.user_id, std::string("admin"), proj.created_at})
        .status();
  });
  if (st.code() == StatusCode::kAlreadyExists) {
    return AlreadyExistsError(fmt::format("project \"{}\" already exists", name), "name");
  }
  RETURN_IF_ERROR(st);
  return proj;
}

StatusOr<Project> TenancyService::GetProject(const Principal& p, std::string_view name) {
  return AuthorizeProject(p, name, Role::kViewer);
}

StatusOr<Page<Project>> TenancyService::ListProjects(const Principal& p, const PageRequest& page) {
  RETURN_IF_ERROR(ValidatePage(page));
  ASSIGN_OR_RETURN(std::string after, DecodePageToken(page.page_token));
  Page<Project> out;
  RETURN_IF_ERROR(store::RunInTx(store_, TxMode::kRead, [&](Tx& tx) -> Status {
    ResultSet rs;
    constexpr const char* kColumns =
        "SELECT pr.id, pr.name, pr.description, pr.created_by, pr.created_at";
    if (p.is_admin) {
      ASSIGN_OR_RETURN(rs, tx.Query(fmt::format("{}, 'admin' FROM projects pr WHERE pr.id > ? "
                                                "{} ORDER BY pr.id LIMIT ?",
                                                kColumns, p.scoped() ? "AND pr.id = ?" : ""),
                                    p.scoped() ? std::vector<Value>{after, p.scope_project_id,
                                                                    page.limit + 1}
                                               : std::vector<Value>{after, page.limit + 1}));
    } else {
      ASSIGN_OR_RETURN(
          rs, tx.Query(fmt::format("{}, m.role FROM projects pr JOIN memberships m ON "
                                   "m.project_id = pr.id WHERE m.user_id = ? AND pr.id > ? {} "
                                   "ORDER BY pr.id LIMIT ?",
                                   kColumns, p.scoped() ? "AND pr.id = ?" : ""),
                       p.scoped() ? std::vector<Value>{p.user_id, after, p.scope_project_id,
                                                       page.limit + 1}
                                  : std::vector<Value>{p.user_id, after, page.limit + 1}));
    }
    out = MakePage<Project>(rs, page.limit, 0, [&](const std::vector<Value>& r) {
      Project proj{AsText(r[0]), AsText(r[1]), AsText(r[2]), AsText(r[3]), AsInt(r[4]),
                   Role::kViewer};
      auto role = ParseRole(AsText(r[5]));
      if (role.ok()) proj.role = *role;
      if (p.scope_role) proj.role = MinRole(proj.role, *p.scope_role);
      return proj;
    });
    return OkStatus();
  }));
  return out;
}

Status TenancyService::DeleteProject(const Principal& p, std::string_view name) {
  RETURN_IF_ERROR(store::RunInTx(store_, TxMode::kWrite, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(Project proj, ResolveProject(tx, p, name));
    RETURN_IF_ERROR(RequireRole(proj, Role::kAdmin));
    return tx.Exec("DELETE FROM projects WHERE id = ?", {proj.id}).status();
  }));
  ForgetTokens();  // tokens scoped to the project are gone with it
  return OkStatus();
}

// ----------------------------------------------------------------- members

Status TenancyService::SetMember(const Principal& p, std::string_view project, std::string_view user,
                                 Role role) {
  return store::RunInTx(store_, TxMode::kWrite, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(Project proj, ResolveProject(tx, p, project));
    RETURN_IF_ERROR(RequireRole(proj, Role::kAdmin));
    ASSIGN_OR_RETURN(ResultSet u, tx.Query("SELECT id FROM users WHERE name = ?", {std::string(user)}));
    if (u.empty()) return NotFoundError(fmt::format("user \"{}\" not found", user)).WithField("user");
    std::string user_id = AsText(u.rows[0][0]);
    if (role != Role::kAdmin) RETURN_IF_ERROR(KeepsAnotherAdmin(tx, proj, user_id));
    return tx
        .Exec("INSERT INTO memberships (project_id, user_id, role, created_at) VALUES (?, ?, ?, ?) "
              "ON CONFLICT (project_id, user_id) DO UPDATE SET role = excluded.role",
              {proj.id, user_id, std::string(RoleName(role)), clock_.NowMicros()})
        .status();
  });
}

Status TenancyService::RemoveMember(const Principal& p, std::string_view project,
                                    std::string_view user) {
  return store::RunInTx(store_, TxMode::kWrite, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(Project proj, ResolveProject(tx, p, project));
    RETURN_IF_ERROR(RequireRole(proj, Role::kAdmin));
    ASSIGN_OR_RETURN(ResultSet m,
                     tx.Query("SELECT m.user_id, m.role FROM memberships m JOIN users u ON u.id = "
                              "m.user_id WHERE m.project_id = ? AND u.name = ?",
                              {proj.id, std::string(user)}));
    if (m.empty()) {
      return NotFoundError(fmt::format("user \"{}\" is not a member of project \"{}\"", user, project));
    }
    std::string user_id = AsText(m.rows[0][0]);
    RETURN_IF_ERROR(KeepsAnotherAdmin(tx, proj, user_id));
    return tx.Exec("DELETE FROM memberships WHERE project_id = ? AND user_id = ?", {proj.id, user_id})
        .status();
  });
}

StatusOr<Page<Member>> TenancyService::ListMembers(const Principal& p, std::string_view project,
                                                   const PageRequest& page) {
  RETURN_IF_ERROR(ValidatePage(page));
  ASSIGN_OR_RETURN(std::string after, DecodePageToken(page.page_token));
  Page<Member> out;
  RETURN_IF_ERROR(store::RunInTx(store_, TxMode::kRead, [&](Tx& tx) -> Status {
    ASSIGN_OR_RETURN(Project proj, ResolveProject(tx, p, project));
    ASSIGN_OR_RETURN(ResultSet rs,
                     tx.Query("SELECT u.id, u.name, m.role, m.created_at FROM memberships m JOIN "
                              "users u ON u.id = m.user_id WHERE m.project_id = ? AND u.id > ? "
                              "ORDER BY u.id LIMIT ?",
                              {proj.id, after, page.limit + 1}));
    out = MakePage<Member>(rs, page.limit, 0, [](const std::vector<Value>& r) {
      Member m;
      m.user_name = AsText(r[1]);
      auto role = ParseRole(AsText(r[2]));
      if (role.ok()) m.role = *role;
      m.created_at = AsInt(r[3]);
      return m;
    });
    return OkStatus();
  }));
  return out;
}

}  // namespace lathe::tenancy
