// The small expression language of pipeline `depends` and `when`
// (docs/pipelines.md "Expressions"). Pure.
//
//   expr    := or
//   or      := and ("||" and)*
//   and     := not ("&&" not)*
//   not     := "!" not | cmp
//   cmp     := primary (("==" | "!=" | "<" | "<=" | ">" | ">=") primary)?
//   primary := "(" expr ")" | NUMBER | STRING ('…' or "…") | true | false
//            | REF
//   REF     := IDENT ("." IDENT)*     e.g. prep.succeeded, params.threshold,
//                                      steps.eval.outputs.parameters.auc
//
// `depends` expressions may only use step results: `S.succeeded`,
// `S.failed` (non-zero exit), `S.errored` (anything else went wrong: could
// not start, timed out, cancelled), `S.skipped` (its `when` was false),
// `S.omitted` (its `depends` was false), and a bare `S`, which means
// `S.succeeded || S.skipped`. For a fan-out step, succeeded means every item
// succeeded; `S.any_succeeded` and `S.all_failed` are also accepted.
// `when` expressions compare params and upstream output values: both sides
// numbers → numeric comparison; otherwise string comparison; a lone value
// is true unless it is false, "false", 0, "" or "0".
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace lathe::spec {

struct ExprNode;  // defined in pipeline_expr.cc

class Expr {
 public:
  Expr();
  ~Expr();
  Expr(const Expr&);
  Expr& operator=(const Expr&);
  Expr(Expr&&) noexcept;
  Expr& operator=(Expr&&) noexcept;

  // The source text, as parsed.
  const std::string& text() const { return text_; }
  // Every REF in the expression, in order of appearance, e.g.
  // {"prep.succeeded", "params.threshold"}.
  const std::vector<std::string>& refs() const { return refs_; }

 private:
  friend StatusOr<Expr> ParseExpr(std::string_view text, const std::string& field);
  friend class ExprEvaluator;
  std::string text_;
  std::vector<std::string> refs_;
  std::shared_ptr<const ExprNode> root_;
};

// INVALID_ARGUMENT "FIELD: … at offset N" for syntax errors.
StatusOr<Expr> ParseExpr(std::string_view text, const std::string& field);

// A value during evaluation.
struct ExprValue {
  enum class Kind { kBool, kNumber, kString } kind = Kind::kBool;
  bool b = false;
  double n = 0;
  std::string s;
  static ExprValue Bool(bool v);
  static ExprValue Number(double v);
  static ExprValue String(std::string v);
  bool Truthy() const;
};

// Resolves one REF to a value, or INVALID_ARGUMENT when it cannot.
using RefResolver = std::function<StatusOr<ExprValue>(const std::string& ref)>;

// Evaluates to a boolean (the Truthy() of the result). Errors name `field`.
StatusOr<bool> EvalExpr(const Expr& e, const RefResolver& resolve, const std::string& field);

}  // namespace lathe::spec
