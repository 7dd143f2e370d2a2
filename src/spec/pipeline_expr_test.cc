#include "spec/pipeline_expr.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <map>

namespace lathe::spec {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

Expr MustParse(const std::string& text) {
  StatusOr<Expr> e = ParseExpr(text, "when");
  EXPECT_TRUE(e.ok()) << text << ": " << e.status().ToString();
  return e.ok() ? *e : Expr();
}

std::string ParseError(const std::string& text) {
  StatusOr<Expr> e = ParseExpr(text, "when");
  EXPECT_FALSE(e.ok()) << text << " parsed";
  if (e.ok()) return "";
  EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(e.status().field(), "when");
  return e.status().message();
}

// Resolves refs from a table; unknown refs fail, and every lookup is
// recorded so tests can see short-circuiting.
struct Table {
  std::map<std::string, ExprValue> values;
  std::vector<std::string> looked_up;
  RefResolver Resolver() {
    return [this](const std::string& ref) -> StatusOr<ExprValue> {
      looked_up.push_back(ref);
      auto it = values.find(ref);
      if (it == values.end()) return InvalidArgumentError("no value for " + ref);
      return it->second;
    };
  }
};

bool Eval(const std::string& text, Table& t) {
  StatusOr<bool> v = EvalExpr(MustParse(text), t.Resolver(), "when");
  EXPECT_TRUE(v.ok()) << text << ": " << v.status().ToString();
  return v.ok() && *v;
}

bool Eval(const std::string& text) {
  Table t;
  return Eval(text, t);
}

TEST(PipelineExpr, CollectsRefsInOrderWithOffsets) {
  Expr e = MustParse("prep.succeeded && (check.failed || check) && !params.x");
  EXPECT_THAT(e.refs(), ElementsAre("prep.succeeded", "check.failed", "check", "params.x"));
  EXPECT_THAT(e.ref_offsets(), ElementsAre(0u, 19u, 35u, 46u));
  EXPECT_EQ(e.text(), "prep.succeeded && (check.failed || check) && !params.x");
}

TEST(PipelineExpr, BracedRefsAreTheSameRefs) {
  Expr e = MustParse("{{params.threshold}} > 0.5 && {{ steps.eval.outputs.parameters.auc }} >= 1");
  EXPECT_THAT(e.refs(), ElementsAre("params.threshold", "steps.eval.outputs.parameters.auc"));
  EXPECT_THAT(e.ref_offsets(), ElementsAre(0u, 30u));
  Table t;
  t.values["params.threshold"] = ExprValue::Number(0.8);
  t.values["steps.eval.outputs.parameters.auc"] = ExprValue::String("1.0\n");
  EXPECT_TRUE(
      Eval("{{params.threshold}} > 0.5 && {{ steps.eval.outputs.parameters.auc }} >= 1", t));
  EXPECT_TRUE(Eval("params.threshold > 0.5", t));
}

TEST(PipelineExpr, StepNamesWithDigitsAndDashesAreRefs) {
  Expr e = MustParse("3d-model.succeeded || data-prep || 2");
  EXPECT_THAT(e.refs(), ElementsAre("3d-model.succeeded", "data-prep"));
}

TEST(PipelineExpr, AndBindsTighterThanOr) {
  Table t;
  t.values = {
      {"a", ExprValue::Bool(true)}, {"b", ExprValue::Bool(false)}, {"c", ExprValue::Bool(false)}};
  // a || (b && c) = true; (a || b) && c would be false.
  EXPECT_TRUE(Eval("a || b && c", t));
  EXPECT_FALSE(Eval("(a || b) && c", t));
  // (b && c) || a
  EXPECT_TRUE(Eval("b && c || a", t));
}

TEST(PipelineExpr, NotAppliesToTheWholeComparison) {
  // For bools !(x == y) and (!x) == y agree, so compare strings: !(x == y)
  // is true, (!x) == y would be false == "b", which is false.
  Table t;
  t.values = {{"x", ExprValue::String("a")}, {"y", ExprValue::String("b")}};
  EXPECT_TRUE(Eval("!x == y", t));
  EXPECT_FALSE(Eval("(!x) == y", t));
  EXPECT_FALSE(Eval("!x != y", t));
}

TEST(PipelineExpr, NotBindsTighterThanAnd) {
  Table t;
  t.values = {{"a", ExprValue::Bool(false)}, {"b", ExprValue::Bool(false)}};
  EXPECT_FALSE(Eval("!a && b", t));  // (!a) && b; !(a && b) would be true
  EXPECT_TRUE(Eval("!!!a", t));
  EXPECT_FALSE(Eval("!!a", t));
}

TEST(PipelineExpr, ComparesNumbersNumerically) {
  EXPECT_TRUE(Eval("10 > 9"));
  EXPECT_TRUE(Eval("'10' > 9"));    // numeric string
  EXPECT_TRUE(Eval("'10' > '9'"));  // both numeric strings: numeric, not "10" < "9"
  EXPECT_TRUE(Eval("1 == 1.0"));
  EXPECT_TRUE(Eval("'1e3' == 1000"));
  EXPECT_TRUE(Eval("-0.5 < 0"));
  EXPECT_TRUE(Eval("0.1 <= 0.1 && 2 >= 2 && 1 != 2"));
  Table t;
  t.values["out"] = ExprValue::String(" 0.93\n");  // output files end in a newline
  EXPECT_TRUE(Eval("out > 0.9", t));
}

TEST(PipelineExpr, ComparesOtherwiseAsStrings) {
  EXPECT_TRUE(Eval("'abc' < 'abd'"));
  EXPECT_TRUE(Eval("'heads' == \"heads\""));
  EXPECT_FALSE(Eval("'10x' > '9'"));  // not numeric: "1" < "9"
  EXPECT_TRUE(Eval("'1.0' != 'one'"));
  EXPECT_FALSE(Eval("'0x10' == 16"));  // hex is not a JSON number
  EXPECT_FALSE(Eval("'' == 0"));
}

TEST(PipelineExpr, BoolsCompareByTheirStringForm) {
  Table t;
  t.values = {{"flag", ExprValue::Bool(true)}};
  EXPECT_TRUE(Eval("flag == true", t));
  EXPECT_TRUE(Eval("flag == 'true'", t));
  EXPECT_FALSE(Eval("flag == 1", t));
  EXPECT_FALSE(Eval("0 == false"));
  EXPECT_TRUE(Eval("false != true"));
  EXPECT_TRUE(Eval("false < true"));  // "false" < "true"
}

TEST(PipelineExpr, Truthiness) {
  EXPECT_FALSE(ExprValue::Bool(false).Truthy());
  EXPECT_TRUE(ExprValue::Bool(true).Truthy());
  EXPECT_FALSE(ExprValue::Number(0).Truthy());
  EXPECT_TRUE(ExprValue::Number(-2).Truthy());
  EXPECT_FALSE(ExprValue::String("").Truthy());
  EXPECT_FALSE(ExprValue::String("0").Truthy());
  EXPECT_FALSE(ExprValue::String("0.0").Truthy());
  EXPECT_FALSE(ExprValue::String("false").Truthy());
  EXPECT_FALSE(ExprValue::String("False\n").Truthy());  // Python's str(False), with a newline
  EXPECT_FALSE(ExprValue::String("FALSE").Truthy());
  EXPECT_TRUE(ExprValue::String("no").Truthy());
  EXPECT_TRUE(ExprValue::String("true").Truthy());
  EXPECT_TRUE(ExprValue::String("1").Truthy());
  EXPECT_TRUE(ExprValue::String("falsey").Truthy());
  EXPECT_TRUE(Eval("'yes'"));
  EXPECT_FALSE(Eval("0"));
  EXPECT_FALSE(Eval("''"));
}

TEST(PipelineExpr, StringEscapes) {
  Table t;
  t.values["v"] = ExprValue::String("it's \"x\"\\\n\t");
  EXPECT_TRUE(Eval(R"(v == 'it\'s "x"\\\n\t')", t));
  EXPECT_TRUE(Eval(R"(v == "it's \"x\"\\\n\t")", t));
}

TEST(PipelineExpr, ShortCircuits) {
  Table t;
  t.values = {{"a", ExprValue::Bool(true)}, {"b", ExprValue::Bool(false)}};
  EXPECT_TRUE(Eval("a || missing", t));
  EXPECT_FALSE(Eval("b && missing", t));
  EXPECT_THAT(t.looked_up, ElementsAre("a", "b"));
}

TEST(PipelineExpr, ResolverErrorsNameTheField) {
  Table t;
  StatusOr<bool> v = EvalExpr(MustParse("x > 1"), t.Resolver(), "steps[1].when");
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(v.status().field(), "steps[1].when");
  EXPECT_EQ(v.status().message(), "steps[1].when: no value for x");
  RefResolver unavailable = [](const std::string&) -> StatusOr<ExprValue> {
    return UnavailableError("store down");
  };
  v = EvalExpr(MustParse("x"), unavailable, "when");
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kUnavailable);
}

TEST(PipelineExpr, DefaultExprDoesNotEvaluate) {
  Table t;
  StatusOr<bool> v = EvalExpr(Expr(), t.Resolver(), "when");
  EXPECT_FALSE(v.ok());
}

TEST(PipelineExpr, CopiesShareTheTree) {
  Expr a = MustParse("x == 1");
  Expr b = a;
  Expr c;
  c = std::move(a);
  Table t;
  t.values["x"] = ExprValue::Number(1);
  EXPECT_TRUE(*EvalExpr(b, t.Resolver(), "when"));
  EXPECT_TRUE(*EvalExpr(c, t.Resolver(), "when"));
  EXPECT_EQ(b.text(), "x == 1");
}

TEST(PipelineExpr, SyntaxErrorsNameTheOffset) {
  EXPECT_EQ(ParseError("(a && b))"), "when: unexpected ')' at offset 8");
  EXPECT_EQ(ParseError("a && )"), "when: unexpected ')' at offset 5");
  EXPECT_EQ(ParseError("(a && b"), "when: unexpected end of expression at offset 7 (expected ')')");
  EXPECT_EQ(ParseError("a &&"),
            "when: unexpected end of expression at offset 4 (expected a value)");
  EXPECT_EQ(ParseError("a & b"), "when: unexpected '&' (did you mean '&&'?) at offset 2");
  EXPECT_EQ(ParseError("a | b"), "when: unexpected '|' (did you mean '||'?) at offset 2");
  EXPECT_EQ(ParseError("a = b"), "when: unexpected '=' (did you mean '=='?) at offset 2");
  EXPECT_EQ(ParseError("a b"),
            "when: unexpected 'b' at offset 2 (expected an operator: &&, ||, ==, !=, <, <=, >, "
            ">=)");
  EXPECT_EQ(ParseError("a < b < c"),
            "when: unexpected '<' at offset 6 (comparisons do not chain; use parentheses and && "
            "or ||)");
  EXPECT_EQ(ParseError("x == 'abc"), "when: unterminated string at offset 5");
  EXPECT_EQ(ParseError("x == 'a\\qb'"),
            "when: invalid escape '\\q' (use \\\\, \\', \\\", \\n or \\t) at offset 7");
  EXPECT_EQ(ParseError("x # y"), "when: unexpected character '#' at offset 2");
  EXPECT_EQ(ParseError("x == \xff"), "when: unexpected character byte 0xff at offset 5");
  EXPECT_EQ(ParseError("a..b"),
            "when: 'a..b' is not a reference (identifiers joined by '.') at offset 0");
  EXPECT_EQ(ParseError("prep."),
            "when: 'prep.' is not a reference (identifiers joined by '.') at offset 0");
  EXPECT_EQ(ParseError("-x"), "when: unexpected character '-' at offset 0");
  EXPECT_EQ(ParseError("{{params.x"), "when: unterminated '{{' at offset 0");
  EXPECT_EQ(ParseError("{{ 'x' }} == 1"), "when: expected a reference inside '{{ }}' at offset 0");
  EXPECT_THAT(ParseError("'{{params.x}}' == 'a'"),
              HasSubstr("templates are not expanded inside quoted strings"));
  EXPECT_EQ(ParseError("1e999 > 1"), "when: number 1e999 is out of range at offset 0");
  EXPECT_EQ(ParseError(""), "when: empty expression");
  EXPECT_EQ(ParseError("  \n"), "when: empty expression");
  EXPECT_EQ(ParseError("()"), "when: unexpected ')' at offset 1");
  EXPECT_EQ(ParseError("{x}"), "when: unexpected '{' at offset 0");
}

TEST(PipelineExpr, NestingIsBounded) {
  std::string ok = std::string(kMaxExprDepth - 1, '(') + "a" + std::string(kMaxExprDepth - 1, ')');
  MustParse(ok);
  std::string deep = std::string(kMaxExprDepth, '(') + "a" + std::string(kMaxExprDepth, ')');
  EXPECT_THAT(ParseError(deep), HasSubstr("nested deeper than 64 levels at offset 63"));
  // A hostile input far deeper than any stack would take.
  EXPECT_THAT(ParseError(std::string(5000, '(') + "a"), HasSubstr("nested deeper than 64"));
  EXPECT_THAT(ParseError(std::string(5000, '!') + "a"), HasSubstr("nested deeper than 64"));
  MustParse(std::string(kMaxExprDepth - 1, '!') + "a");
}

TEST(PipelineExpr, LengthIsBounded) {
  // A flat chain as long as the limit allows parses and evaluates without
  // nesting (a fan-in over thousands of steps).
  std::string chain;
  int n = 0;
  while (chain.size() + 16 < kMaxExprLength) {
    if (!chain.empty()) chain += " && ";
    chain += fmt::format("s{}", n++);
  }
  Expr e = MustParse(chain);
  EXPECT_EQ(e.refs().size(), static_cast<size_t>(n));
  RefResolver all_true = [](const std::string&) -> StatusOr<ExprValue> {
    return ExprValue::Bool(true);
  };
  EXPECT_TRUE(*EvalExpr(e, all_true, "depends"));
  std::string too_long(kMaxExprLength + 1, 'a');
  EXPECT_EQ(ParseError(too_long), "when: expression is longer than 65536 bytes");
}

TEST(PipelineExpr, RefSyntax) {
  EXPECT_TRUE(IsRefText("params.x"));
  EXPECT_TRUE(IsRefText("steps.data-prep.outputs.parameters.rows"));
  EXPECT_TRUE(IsRefText("item"));
  EXPECT_TRUE(IsRefText("_a.b_c"));
  EXPECT_FALSE(IsRefText(""));
  EXPECT_FALSE(IsRefText("a."));
  EXPECT_FALSE(IsRefText(".a"));
  EXPECT_FALSE(IsRefText("a.-b"));
  EXPECT_FALSE(IsRefText("a b"));
  EXPECT_FALSE(IsRefText("a[0]"));
}

}  // namespace
}  // namespace lathe::spec
