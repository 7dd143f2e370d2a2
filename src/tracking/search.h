// MLflow's run-search language, parsed into values (pure; no store).
//
//   filter   := ε | clause ("and" clause)*            (case-insensitive AND;
//                                                       OR is an error, as in MLflow)
//   clause   := identifier op value
//   identifier := [type "."] key                        type: metrics|metric,
//                params|param|parameters|parameter, tags|tag,
//                attributes|attribute|attr|run; no type = attribute
//   key      := name chars [A-Za-z0-9_.:/-]… | `any text` | "any text"
//   op       := = != <> < <= > >= LIKE ILIKE IN NOT IN  (keywords case-insensitive)
//   value    := number | 'text' | "text" | "(" text ("," text)* ")"
//
//   order_by := identifier [ASC|DESC]
//
// Which operators each identifier takes (errors otherwise):
//   metrics.k                       = != < <= > >= and a number
//   params.k, tags.k                = != LIKE ILIKE and a string
//   start_time, end_time            = != < <= > >= and a number (ms)
//   status, run_name, run_id, user_id, artifact_uri
//                                   = != LIKE ILIKE and a string; IN / NOT IN a list
// Errors are INVALID_ARGUMENT, field "filter" (or "order_by"), and name the
// 1-based character position: "filter: expected an operator at position 14".
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace lathe::tracking::search {

enum class EntityType { kMetric, kParam, kTag, kAttribute };
enum class Op { kEq, kNe, kLt, kLe, kGt, kGe, kLike, kILike, kIn, kNotIn };

std::string_view OpName(Op op);  // "=", "!=", "LIKE", "NOT IN", …

struct Comparison {
  EntityType type = EntityType::kAttribute;
  // For attributes the canonical name ("start_time", "run_name", …).
  std::string key;
  Op op = Op::kEq;
  // Exactly one of these is meaningful: `number` for metrics and numeric
  // attributes, `text` for = != LIKE ILIKE on strings, `list` for IN/NOT IN.
  double number = 0;
  std::string text;
  std::vector<std::string> list;
};

struct OrderKey {
  EntityType type = EntityType::kAttribute;
  std::string key;
  bool ascending = true;
};

// The attributes a filter may name (lower-case canonical names): those that
// compare as strings and those that compare as numbers. Runs have their own
// (above); other searches (logged models) pass theirs.
struct AttributeSet {
  std::vector<std::string_view> strings;
  std::vector<std::string_view> numbers;
};

// True for "start_time" and "end_time" (run attributes).
bool IsNumericAttribute(std::string_view key);

// Parses a filter; "" and all-blank give no comparisons.
StatusOr<std::vector<Comparison>> ParseFilter(std::string_view filter);
// Parses one order_by entry ("metrics.loss DESC", "attributes.start_time").
StatusOr<OrderKey> ParseOrderBy(std::string_view order_by);

// As above, over another entity's attributes; errors name `field`.
StatusOr<std::vector<Comparison>> ParseFilter(std::string_view filter, const AttributeSet& attrs);
StatusOr<OrderKey> ParseOrderBy(std::string_view order_by, std::string_view field,
                                const AttributeSet& attrs);

}  // namespace lathe::tracking::search
