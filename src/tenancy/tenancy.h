// Tenancy: users, projects, memberships with roles, and API tokens.
//
// Who may do what:
//   * A Principal is the user behind a token. A token may be scoped to one
//     project; then it reaches only that project, with at most its role.
//   * Server admins (users.is_admin) act as project admin everywhere with an
//     unscoped token; only they manage users.
//   * Project roles: viewer (read) < editor (write) < admin (members,
//     delete). Whoever creates a project becomes its admin.
//   * A project the principal cannot read answers NOT_FOUND, as if it did
//     not exist, so names in other tenants do not leak.
// Tokens are "lathe_" + 32 base64url characters (192 random bits), shown
// once at creation and stored only as their SHA-256.
//
// Thread-safe: all state is in the store, plus a small cache of
// authenticated tokens (config: token_cache_ttl_ms) that this process
// invalidates itself when it revokes a token or deletes a project.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "store/store.h"

namespace lathe::tenancy {

enum class Role { kViewer = 1, kEditor = 2, kAdmin = 3 };
std::string_view RoleName(Role role);
// "viewer" | "editor" | "admin"; INVALID_ARGUMENT naming `field` otherwise.
StatusOr<Role> ParseRole(std::string_view text, std::string_view field = "role");

struct Principal {
  std::string user_id;
  std::string user_name;
  bool is_admin = false;
  std::string token_id;
  // Set for project-scoped tokens.
  std::string scope_project_id;
  std::optional<Role> scope_role;
  bool scoped() const { return !scope_project_id.empty(); }
};

struct User {
  std::string id;
  std::string name;
  bool is_admin = false;
  int64_t created_at = 0;  // µs since epoch
};

struct Project {
  std::string id;
  std::string name;
  std::string description;
  std::string created_by;  // user name
  int64_t created_at = 0;
  // The caller's effective role in this project.
  Role role = Role::kViewer;
};

struct Member {
  std::string user_name;
  Role role = Role::kViewer;
  int64_t created_at = 0;
};

struct Token {
  std::string id;
  std::string name;
  std::string user_name;
  std::string project;  // name of the scope project, "" if unscoped
  std::optional<Role> role;
  int64_t created_at = 0;
  int64_t expires_at = 0;  // 0 = never
  int64_t revoked_at = 0;  // 0 = active
  // Only in the result of CreateToken: the secret, shown once.
  std::string secret;
};

// One page of a list. `next_page_token` is empty on the last page.
template <typename T>
struct Page {
  std::vector<T> items;
  std::string next_page_token;
};

struct PageRequest {
  int64_t limit = 100;  // 1..1000
  std::string page_token;
};

struct TokenRequest {
  std::string name;
  std::string user;     // admin only: create for another user
  std::string project;  // scope, "" = unscoped
  std::optional<Role> role;
  int64_t ttl_seconds = 0;  // 0 = no expiry
};

// The project created at first start, where MLflow clients act unless a
// scoped token or the X-Lathe-Project header names another.
inline constexpr std::string_view kDefaultProjectName = "default";

// Validates a resource name: 1-63 characters of [a-z0-9-], starting and
// ending with a letter or digit (a DNS label, as Kubernetes names are).
Status ValidateName(std::string_view name, std::string_view field = "name");

class TenancyService {
 public:
  TenancyService(store::Store& store, const Clock& clock, int64_t token_cache_ttl_ms = 10'000);

  // Resolves "Bearer <token>"'s token. UNAUTHENTICATED when unknown,
  // revoked or expired.
  StatusOr<Principal> Authenticate(std::string_view token);

  // First start: when the store has no users, creates server admin "admin",
  // the project "default" (kDefaultProjectName, admin its admin member) and
  // a token for the admin, calls `save(token)` inside the same transaction
  // (its failure rolls everything back, so the admin is never created
  // without its token being saved) and returns true. Returns false when
  // users already exist.
  StatusOr<bool> Bootstrap(const std::function<Status(const std::string& token)>& save);

  StatusOr<User> CreateUser(const Principal& p, std::string_view name, bool is_admin);
  StatusOr<Page<User>> ListUsers(const Principal& p, const PageRequest& page);

  StatusOr<Project> CreateProject(const Principal& p, std::string_view name,
                                  std::string_view description);
  StatusOr<Project> GetProject(const Principal& p, std::string_view name);
  StatusOr<Page<Project>> ListProjects(const Principal& p, const PageRequest& page);
  Status DeleteProject(const Principal& p, std::string_view name);

  // The caller's role in project `name`, or NOT_FOUND if it cannot see it,
  // or PERMISSION_DENIED if its role is below `min`. Returns the project.
  StatusOr<Project> AuthorizeProject(const Principal& p, std::string_view name, Role min);

  Status SetMember(const Principal& p, std::string_view project, std::string_view user, Role role);
  Status RemoveMember(const Principal& p, std::string_view project, std::string_view user);
  StatusOr<Page<Member>> ListMembers(const Principal& p, std::string_view project,
                                     const PageRequest& page);

  StatusOr<Token> CreateToken(const Principal& p, const TokenRequest& req);
  // The caller's tokens; admins may pass `user` ("*" for everyone's). A
  // project-scoped caller sees (and may revoke) only tokens of its scope.
  StatusOr<Page<Token>> ListTokens(const Principal& p, std::string_view user,
                                   const PageRequest& page);
  Status RevokeToken(const Principal& p, std::string_view token_id);

  // For controllers acting for a user (no principal at hand), inside the
  // caller's transaction: a token of `user_id` scoped to `project_id` with
  // role editor, named `name` (jobs get one in LATHE_TOKEN).
  StatusOr<Token> MintScopedToken(store::Tx& tx, const std::string& user_id,
                                  const std::string& project_id, std::string_view name,
                                  int64_t ttl_seconds);
  // Revokes every active token named `name`. Call ForgetCachedTokens() after
  // the transaction commits so this process stops accepting them at once.
  Status RevokeTokensNamed(store::Tx& tx, std::string_view name);
  void ForgetCachedTokens() { ForgetTokens(); }
  // The principal of user `user_id` acting with its own roles (no token
  // scope), for controllers acting on behalf of whoever submitted a job.
  StatusOr<Principal> PrincipalForUser(const std::string& user_id);

 private:
  struct CacheEntry {
    Principal principal;
    int64_t expires_mono_ns;  // cache entry expiry
  };
  StatusOr<Project> ResolveProject(store::Tx& tx, const Principal& p, std::string_view name);
  StatusOr<Token> InsertToken(store::Tx& tx, const std::string& user_id, const std::string& user_name,
                              const TokenRequest& req, const std::string& project_id);
  void ForgetTokens();

  store::Store& store_;
  const Clock& clock_;
  const int64_t cache_ttl_ns_;
  std::mutex cache_mu_;
  std::unordered_map<std::string, CacheEntry> cache_;  // guarded by cache_mu_; key: secret hash
};

// Cursor encoding shared by every list: an opaque token for "after this id".
std::string EncodePageToken(std::string_view last_id);
StatusOr<std::string> DecodePageToken(std::string_view token);
// Checks limit bounds (1..1000), INVALID_ARGUMENT naming "limit".
Status ValidatePage(const PageRequest& page);

}  // namespace lathe::tenancy
