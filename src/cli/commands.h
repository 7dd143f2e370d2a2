// The client subcommands of the `lathe` CLI. Each returns a Status; main.cc
// (the only file that sees CLI11) prints a failure as one line and exits 1.
//
// Where the CLI finds its server and token, highest precedence first:
// --server/--token flags, LATHE_SERVER/LATHE_TOKEN, then the file written by
// `lathe login`: $LATHE_CLI_CONFIG, else $XDG_CONFIG_HOME/lathe/config.yaml,
// else ~/.config/lathe/config.yaml.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

#include "base/status.h"
#include "cli/output.h"

namespace lathe::cli {

struct ClientOptions {
  std::string server;  // from --server
  std::string token;   // from --token
  std::string output = "table";
};

struct ListOptions {
  int64_t limit = 0;  // 0: every page
  std::string page_token;
};

std::string ClientConfigPath();

Status Login(const std::string& server, const std::string& token_file, std::ostream& out);

Status ProjectCreate(const ClientOptions& o, const std::string& name, const std::string& description,
                     std::ostream& out);
Status ProjectList(const ClientOptions& o, const ListOptions& l, std::ostream& out);
Status ProjectGet(const ClientOptions& o, const std::string& name, std::ostream& out);
Status ProjectRemove(const ClientOptions& o, const std::string& name, std::ostream& out);
Status MemberSet(const ClientOptions& o, const std::string& project, const std::string& user,
                 const std::string& role, std::ostream& out);
Status MemberList(const ClientOptions& o, const std::string& project, const ListOptions& l,
                  std::ostream& out);
Status MemberRemove(const ClientOptions& o, const std::string& project, const std::string& user,
                    std::ostream& out);

struct TokenCreateOptions {
  std::string name;
  std::string user;
  std::string project;
  std::string role;
  std::string ttl;  // "90d", "12h", "30m", "45s" or seconds
};
Status TokenCreate(const ClientOptions& o, const TokenCreateOptions& t, std::ostream& out);
Status TokenList(const ClientOptions& o, const std::string& user, const ListOptions& l,
                 std::ostream& out);
Status TokenRevoke(const ClientOptions& o, const std::string& id, std::ostream& out);

Status UserCreate(const ClientOptions& o, const std::string& name, bool is_admin, std::ostream& out);
Status UserList(const ClientOptions& o, const ListOptions& l, std::ostream& out);

Status WhoAmI(const ClientOptions& o, std::ostream& out);

// "90d" → 7776000. INVALID_ARGUMENT naming --`flag` otherwise.
StatusOr<int64_t> ParseDurationSeconds(const std::string& text, const std::string& flag = "ttl");

}  // namespace lathe::cli
