// The small expression language of pipeline `depends` and `when`
// (docs/pipelines.md "Expressions"). Pure: no I/O, no clock.
//
//   expr    := or
//   or      := and ("||" and)*
//   and     := not ("&&" not)*
//   not     := "!" not | cmp
//   cmp     := primary (("==" | "!=" | "<" | "<=" | ">" | ">=") primary)?
//   primary := "(" expr ")" | NUMBER | STRING ('…' or "…") | true | false
//            | REF | "{{" REF "}}"
//   REF     := IDENT ("." IDENT)*     e.g. prep.succeeded, params.threshold,
//                                      steps.eval.outputs.parameters.auc
//   IDENT   := [A-Za-z0-9_][A-Za-z0-9_-]*   (step names contain '-')
//
// Precedence, loosest first: `||`, `&&`, `!`, comparisons. So `!` applies
// to a whole comparison: `!a == b` is `!(a == b)` (as Python's `not`), and
// `!a && b` is `(!a) && b`. Comparisons do not chain (`a < b < c` is an
// error). `&&` and `||` short-circuit: a REF in the branch not taken is not
// resolved.
//
// Literals: NUMBER is a JSON number (-1, 0.5, 1e3); STRING is quoted with '
// or " and knows the escapes \\ \' \" \n \t. `{{REF}}` is sugar for REF, so
// `when: "{{params.threshold}} > 0.5"` and `when: "params.threshold > 0.5"`
// are the same expression; a quoted string holding "{{" is an error rather
// than a silent literal (write the reference without quotes).
//
// `depends` expressions may only use step results: `S.succeeded`,
// `S.failed` (non-zero exit), `S.errored` (anything else went wrong: could
// not start, timed out, cancelled), `S.skipped` (its `when` was false),
// `S.omitted` (its `depends` was false), and a bare `S`, which means
// `S.succeeded || S.skipped`. For a fan-out step, succeeded means every item
// succeeded; `S.any_succeeded` and `S.all_failed` are also accepted.
// `when` expressions compare params and upstream output values.
//
// Evaluation:
//  * Comparisons are numeric when both sides are numbers or numeric strings
//    (a string whose text, without surrounding ASCII whitespace, is a JSON
//    number: output files often end in a newline); otherwise both sides are
//    compared as strings, byte by byte, in their string form: a bool is
//    "true"/"false", a number its shortest JSON text. So `0 == false` is
//    false, `params.flag == "true"` is true for a bool param set to true.
//    Numbers are doubles: integers beyond 2^53 compare approximately.
//  * Truthiness of a lone value: false, 0, "" and strings that read as
//    false (ASCII case-insensitive "false", as Python's str(False) writes
//    it, or a numeric string equal to 0, e.g. "0" or "0.0") are false;
//    everything else is true. `!`, `&&`, `||` and comparisons give bools.
//
// Bounds, so hostile input cannot exhaust the stack or the CPU: at most
// kMaxExprLength bytes of text and kMaxExprDepth levels of nesting (each
// "(" and each "!" is a level). `&&`/`||` chains are flat (n-ary), so a
// fan-in over thousands of steps (`a && b && …`) does not nest.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace lathe::spec {

// Large enough for `depends` over a few thousand steps; bounded so that one
// spec cannot make validation allocate without limit.
inline constexpr size_t kMaxExprLength = 64 * 1024;
inline constexpr int kMaxExprDepth = 64;

struct ExprNode;  // defined in pipeline_expr.cc

// A parsed expression. Immutable; copies share the tree (cheap to copy).
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
  // Every REF in the expression, in order of appearance, duplicates kept,
  // e.g. {"prep.succeeded", "params.threshold"}. `{{REF}}` gives REF.
  const std::vector<std::string>& refs() const { return refs_; }
  // The byte offset in text() of each entry of refs() (for error messages).
  const std::vector<size_t>& ref_offsets() const { return ref_offsets_; }

 private:
  friend StatusOr<Expr> ParseExpr(std::string_view text, const std::string& field);
  friend class ExprEvaluator;
  std::string text_;
  std::vector<std::string> refs_;
  std::vector<size_t> ref_offsets_;
  std::shared_ptr<const ExprNode> root_;
};

// Whether `s` is a REF as the grammar above spells it ("params.x",
// "steps.prep.outputs.parameters.rows"); templates use the same syntax.
bool IsRefText(std::string_view s);

// INVALID_ARGUMENT "FIELD: … at offset N" for syntax errors, e.g.
// "when: unexpected ')' at offset 7"; also for text that is empty, longer
// than kMaxExprLength or nested deeper than kMaxExprDepth.
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

// Resolves one REF to a value, or fails (typically INVALID_ARGUMENT) when
// it cannot. Its message should not name the field: EvalExpr prefixes it.
using RefResolver = std::function<StatusOr<ExprValue>(const std::string& ref)>;

// Evaluates to a boolean (the Truthy() of the result). Errors name `field`
// ("FIELD: <resolver's message>"), keeping the resolver's code. Evaluating
// a default-constructed Expr is INVALID_ARGUMENT. Cost: linear in the
// expression; recursion bounded by kMaxExprDepth.
StatusOr<bool> EvalExpr(const Expr& e, const RefResolver& resolve, const std::string& field);

}  // namespace lathe::spec
