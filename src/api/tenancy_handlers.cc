// /api/v1 routes for users, projects, members, tokens and whoami.
#include <fmt/core.h>

#include "api/api.h"
#include "base/clock.h"

namespace lathe::api {

using http::Method;
using tenancy::Member;
using tenancy::Page;
using tenancy::Project;
using tenancy::Role;
using tenancy::Token;
using tenancy::User;

namespace {

void EncodeUser(JsonWriter& w, const User& u) {
  w.BeginObject().Field("id", u.id).Field("name", u.name).Field("is_admin", u.is_admin);
  WriteTimeField(w, "created_at", u.created_at);
  w.EndObject();
}

void EncodeProject(JsonWriter& w, const Project& p) {
  w.BeginObject()
      .Field("id", p.id)
      .Field("name", p.name)
      .Field("description", p.description)
      .Field("created_by", p.created_by)
      .Field("role", tenancy::RoleName(p.role));
  WriteTimeField(w, "created_at", p.created_at);
  w.EndObject();
}

void EncodeMember(JsonWriter& w, const Member& m) {
  w.BeginObject().Field("user", m.user_name).Field("role", tenancy::RoleName(m.role));
  WriteTimeField(w, "created_at", m.created_at);
  w.EndObject();
}

void EncodeToken(JsonWriter& w, const Token& t) {
  w.BeginObject().Field("id", t.id).Field("name", t.name).Field("user", t.user_name);
  w.Key("project");
  if (t.project.empty()) w.Null(); else w.String(t.project);
  w.Key("role");
  if (t.role) w.String(tenancy::RoleName(*t.role)); else w.Null();
  WriteTimeField(w, "created_at", t.created_at);
  WriteTimeField(w, "expires_at", t.expires_at);
  WriteTimeField(w, "revoked_at", t.revoked_at);
  if (!t.secret.empty()) w.Field("token", t.secret);
  w.EndObject();
}

template <typename T>
void WritePage(http::Response& res, const Page<T>& page, void (*encode)(JsonWriter&, const T&)) {
  WriteJson(res, 200, [&](JsonWriter& w) {
    w.BeginObject().Key("items").BeginArray();
    for (const T& item : page.items) encode(w, item);
    w.EndArray().Field("next_page_token", page.next_page_token).EndObject();
  });
}

}  // namespace

void Api::RegisterTenancyRoutes() {
  Authed(Method::kGet, "/api/v1/whoami", [](Call& c) {
    const tenancy::Principal& p = *c.principal;
    WriteJson(c.res, 200, [&](JsonWriter& w) {
      w.BeginObject().Field("user", p.user_name).Field("is_admin", p.is_admin).Field("token_id", p.token_id);
      w.Key("project_scope");
      if (p.scoped()) w.String(p.scope_project_id); else w.Null();
      w.EndObject();
    });
    return OkStatus();
  });

  // ----- users
  Authed(Method::kPost, "/api/v1/users", [this](Call& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue body, ParseBody(c.req));
    ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(body, ""));
    std::string name;
    bool is_admin = false;
    RETURN_IF_ERROR(r.String("name", &name, Presence::kRequired));
    RETURN_IF_ERROR(r.Bool("is_admin", &is_admin));
    RETURN_IF_ERROR(r.Finish());
    ASSIGN_OR_RETURN(User u, tenancy_.CreateUser(*c.principal, name, is_admin));
    WriteJson(c.res, 201, [&](JsonWriter& w) { EncodeUser(w, u); });
    return OkStatus();
  });
  Authed(Method::kGet, "/api/v1/users", [this](Call& c) -> Status {
    ASSIGN_OR_RETURN(tenancy::PageRequest page, PageFromQuery(c.req));
    ASSIGN_OR_RETURN(Page<User> users, tenancy_.ListUsers(*c.principal, page));
    WritePage(c.res, users, &EncodeUser);
    return OkStatus();
  });

  // ----- projects
  Authed(Method::kPost, "/api/v1/projects", [this](Call& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue body, ParseBody(c.req));
    ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(body, ""));
    std::string name, description;
    RETURN_IF_ERROR(r.String("name", &name, Presence::kRequired));
    RETURN_IF_ERROR(r.String("description", &description));
    RETURN_IF_ERROR(r.Finish());
    ASSIGN_OR_RETURN(Project p, tenancy_.CreateProject(*c.principal, name, description));
    WriteJson(c.res, 201, [&](JsonWriter& w) { EncodeProject(w, p); });
    return OkStatus();
  });
  Authed(Method::kGet, "/api/v1/projects", [this](Call& c) -> Status {
    ASSIGN_OR_RETURN(tenancy::PageRequest page, PageFromQuery(c.req));
    ASSIGN_OR_RETURN(Page<Project> projects, tenancy_.ListProjects(*c.principal, page));
    WritePage(c.res, projects, &EncodeProject);
    return OkStatus();
  });
  Authed(Method::kGet, "/api/v1/projects/{project}", [this](Call& c) -> Status {
    ASSIGN_OR_RETURN(Project p, tenancy_.GetProject(*c.principal, c.req.PathParam("project")));
    WriteJson(c.res, 200, [&](JsonWriter& w) { EncodeProject(w, p); });
    return OkStatus();
  });
  Authed(Method::kDelete, "/api/v1/projects/{project}", [this](Call& c) -> Status {
    RETURN_IF_ERROR(tenancy_.DeleteProject(*c.principal, c.req.PathParam("project")));
    c.res.status = 204;
    c.res.body.clear();
    return OkStatus();
  });

  // ----- members
  Authed(Method::kGet, "/api/v1/projects/{project}/members", [this](Call& c) -> Status {
    ASSIGN_OR_RETURN(tenancy::PageRequest page, PageFromQuery(c.req));
    ASSIGN_OR_RETURN(Page<Member> members,
                     tenancy_.ListMembers(*c.principal, c.req.PathParam("project"), page));
    WritePage(c.res, members, &EncodeMember);
    return OkStatus();
  });
  Authed(Method::kPut, "/api/v1/projects/{project}/members/{user}", [this](Call& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue body, ParseBody(c.req));
    ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(body, ""));
    std::string role_text;
    RETURN_IF_ERROR(r.String("role", &role_text, Presence::kRequired));
    RETURN_IF_ERROR(r.Finish());
    ASSIGN_OR_RETURN(Role role, tenancy::ParseRole(role_text));
    RETURN_IF_ERROR(tenancy_.SetMember(*c.principal, c.req.PathParam("project"),
                                       c.req.PathParam("user"), role));
    WriteJson(c.res, 200, [&](JsonWriter& w) {
      w.BeginObject()
          .Field("user", c.req.PathParam("user"))
          .Field("role", tenancy::RoleName(role))
          .EndObject();
    });
    return OkStatus();
  });
  Authed(Method::kDelete, "/api/v1/projects/{project}/members/{user}", [this](Call& c) -> Status {
    RETURN_IF_ERROR(tenancy_.RemoveMember(*c.principal, c.req.PathParam("project"),
                                          c.req.PathParam("user")));
    c.res.status = 204;
    c.res.body.clear();
    return OkStatus();
  });

  // ----- tokens
  Authed(Method::kPost, "/api/v1/tokens", [this](Call& c) -> Status {
    ASSIGN_OR_RETURN(JsonValue body, ParseBody(c.req));
    ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::Make(body, ""));
    tenancy::TokenRequest req;
    std::string role;
    RETURN_IF_ERROR(r.String("name", &req.name, Presence::kRequired));
    RETURN_IF_ERROR(r.String("user", &req.user));
    RETURN_IF_ERROR(r.String("project", &req.project));
    RETURN_IF_ERROR(r.String("role", &role));
    RETURN_IF_ERROR(r.Int("ttl_seconds", &req.ttl_seconds));
    RETURN_IF_ERROR(r.Finish());
    if (!role.empty()) {
      ASSIGN_OR_RETURN(req.role, tenancy::ParseRole(role));
    }
    ASSIGN_OR_RETURN(Token t, tenancy_.CreateToken(*c.principal, req));
    WriteJson(c.res, 201, [&](JsonWriter& w) { EncodeToken(w, t); });
    return OkStatus();
  });
  Authed(Method::kGet, "/api/v1/tokens", [this](Call& c) -> Status {
    ASSIGN_OR_RETURN(tenancy::PageRequest page, PageFromQuery(c.req));
    std::string user;
    c.req.QueryParam("user", &user);
    ASSIGN_OR_RETURN(Page<Token> tokens, tenancy_.ListTokens(*c.principal, user, page));
    WritePage(c.res, tokens, &EncodeToken);
    return OkStatus();
  });
  Authed(Method::kDelete, "/api/v1/tokens/{token}", [this](Call& c) -> Status {
    RETURN_IF_ERROR(tenancy_.RevokeToken(*c.principal, c.req.PathParam("token")));
    c.res.status = 204;
    c.res.body.clear();
    return OkStatus();
  });
}

}  // namespace lathe::api
