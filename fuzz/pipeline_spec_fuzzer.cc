// Fuzzes the parsers of pipeline and schedule documents (issue 7): the same
// bytes go to the YAML/JSON → ParsePipelineSpec / ParseScheduleSpec path,
// to the `depends`/`when` expression parser and evaluator, to template
// rendering, to the cron parser (with a tick search) and to the TZif reader.
// Whatever the bytes: no crash, no sanitizer report, no hang, every error is
// INVALID_ARGUMENT (or NOT_FOUND for a cron that never fires), and a spec
// that parses survives writing and parsing back to the same canonical text.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "base/json.h"
#include "base/timezone.h"
#include "base/yaml.h"
#include "spec/pipeline_expr.h"
#include "spec/pipeline_spec.h"
#include "spec/schedule_spec.h"

namespace {

using lathe::Status;
using lathe::StatusCode;

void Expect(const Status& s, std::string_view what, bool allow_not_found = false) {
  if (s.ok() || s.code() == StatusCode::kInvalidArgument) return;
  if (allow_not_found && s.code() == StatusCode::kNotFound) return;
  std::fprintf(stderr, "%.*s: unexpected error %s\n", static_cast<int>(what.size()), what.data(),
               s.ToString().c_str());
  std::abort();
}

void Same(const std::string& a, const std::string& b, std::string_view what) {
  if (a == b) return;
  std::fprintf(stderr, "%.*s: round trip changed\n%s\n%s\n", static_cast<int>(what.size()),
               what.data(), a.c_str(), b.c_str());
  std::abort();
}

void Documents(std::string_view text) {
  lathe::StatusOr<lathe::JsonValue> tree = lathe::ParseYaml(text);
  if (!tree.ok()) return;  // the YAML reader is fuzzed by request_decode_fuzzer

  auto pipeline = lathe::spec::ParsePipelineSpec(*tree);
  Expect(pipeline.status(), "pipeline spec");
  if (pipeline.ok()) {
    std::string first;
    lathe::JsonWriter w(&first);
    lathe::spec::WritePipelineSpec(w, *pipeline);
    auto again = lathe::spec::ParsePipelineSpec(*lathe::ParseJson(first));
    if (!again.ok()) {
      std::fprintf(stderr, "canonical pipeline does not parse: %s\n%s\n",
                   again.status().ToString().c_str(), first.c_str());
      std::abort();
    }
    std::string second;
    lathe::JsonWriter w2(&second);
    lathe::spec::WritePipelineSpec(w2, *again);
    Same(first, second, "pipeline spec");
    Expect(lathe::spec::ResolveParams(*pipeline, lathe::JsonValue::MakeObject({}), true).status(),
           "resolve params");
  }

  lathe::spec::ZoneLoader utc_only =
      [](const std::string& name) -> lathe::StatusOr<std::shared_ptr<const lathe::TimeZone>> {
    if (name == "UTC") return lathe::TimeZone::Utc();
    return lathe::InvalidArgumentError("unknown time zone", "timezone");
  };
  auto schedule = lathe::spec::ParseScheduleSpec(*tree, utc_only);
  Expect(schedule.status(), "schedule spec");
  if (schedule.ok()) {
    std::string first;
    lathe::JsonWriter w(&first);
    lathe::spec::WriteScheduleSpec(w, *schedule);
    auto again = lathe::spec::ParseScheduleSpec(*lathe::ParseJson(first), utc_only);
    if (!again.ok()) {
      std::fprintf(stderr, "canonical schedule does not parse: %s\n%s\n",
                   again.status().ToString().c_str(), first.c_str());
      std::abort();
    }
    std::string second;
    lathe::JsonWriter w2(&second);
    lathe::spec::WriteScheduleSpec(w2, *again);
    Same(first, second, "schedule spec");
    auto next = lathe::spec::NextTick(*schedule, *lathe::TimeZone::Utc(), 1'700'000'000'000'000);
    Expect(next.status(), "next tick", true);
  }
}

void Expression(std::string_view text) {
  auto expr = lathe::spec::ParseExpr(text, "when");
  Expect(expr.status(), "expression");
  if (!expr.ok()) return;
  auto value = lathe::spec::EvalExpr(
      *expr,
      [](const std::string& ref) -> lathe::StatusOr<lathe::spec::ExprValue> {
        if (ref.size() % 3 == 0) return lathe::spec::ExprValue::Number(static_cast<double>(ref.size()));
        if (ref.size() % 3 == 1) return lathe::spec::ExprValue::String(ref);
        return lathe::InvalidArgumentError("no such ref: " + ref, "when");
      },
      "when");
  Expect(value.status(), "evaluation");
}

void Template(std::string_view text) {
  lathe::JsonValue params = lathe::JsonValue::MakeObject(
      {{"n", lathe::JsonValue::MakeInt(3)}, {"s", lathe::JsonValue::MakeString("{{params.n}}")}});
  lathe::spec::TemplateContext ctx;
  ctx.params = &params;
  ctx.run_id = "r";
  ctx.pipeline_name = "p";
  ctx.outputs_dir = "/o";
  Expect(lathe::spec::RenderTemplate(text, ctx, "command[0]").status(), "template");
}

void Cron(std::string_view text) {
  auto cron = lathe::spec::ParseCron(text, "cron");
  Expect(cron.status(), "cron");
  if (!cron.ok()) return;
  Expect(lathe::spec::NextCronTick(*cron, *lathe::TimeZone::Utc(), 1'700'000'000'000'000).status(),
         "cron tick", true);
}

void Tzif(std::string_view bytes) {
  auto tz = lathe::TimeZone::FromTzif("fuzz", bytes);
  Expect(tz.status(), "tzif");
  if (!tz.ok()) return;
  for (int64_t t : {int64_t{-5'000'000'000}, int64_t{0}, int64_t{1'700'000'000}, int64_t{4'200'000'000}}) {
    (void)(*tz)->OffsetAt(t);
    (void)(*tz)->LocalToUtc(t);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  Documents(bytes);
  Expression(bytes);
  Template(bytes);
  Cron(bytes);
  Tzif(bytes);
  return 0;
}
