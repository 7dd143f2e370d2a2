#include "base/id.h"

#include <gtest/gtest.h>

#include <set>

namespace lathe {
namespace {

TEST(IdGenerator, IdsAreUniqueValidAndSortInCreationOrder) {
  FakeClock clock;
  IdGenerator gen(clock);
  std::vector<std::string> ids;
  for (int i = 0; i < 1000; ++i) {
    ids.push_back(gen.Next());
    if (i % 100 == 0) clock.Advance(1000);
  }
  std::set<std::string> unique(ids.begin(), ids.end());
  EXPECT_EQ(unique.size(), ids.size());
  for (size_t i = 1; i < ids.size(); ++i) EXPECT_LT(ids[i - 1], ids[i]);
  for (const auto& id : ids) EXPECT_TRUE(IsValidId(id)) << id;
}

TEST(IdGenerator, StaysOrderedWhenTheClockStepsBack) {
  FakeClock clock;
  IdGenerator gen(clock);
  std::string a = gen.Next();
  clock.Advance(-5'000'000);
  EXPECT_LT(a, gen.Next());
}

TEST(IsValidId, RejectsWrongShapes) {
  EXPECT_FALSE(IsValidId(""));
  EXPECT_FALSE(IsValidId("01ARZ3NDEKTSV4RRFFQ69G5FA"));    // 25 chars
  EXPECT_FALSE(IsValidId("01ARZ3NDEKTSV4RRFFQ69G5FAI"));   // I is not Crockford
  EXPECT_TRUE(IsValidId("01ARZ3NDEKTSV4RRFFQ69G5FAV"));
}

}  // namespace
}  // namespace lathe
