#include "http/sse.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "http/wire.h"

namespace lathe::http {
namespace {

TEST(Sse, EncodesEventIdAndMultiLineData) {
  EXPECT_EQ(EncodeSseEvent("update", "a\nb", "7"), "event: update\nid: 7\ndata: a\ndata: b\n\n");
  EXPECT_EQ(EncodeSseEvent("", "x", ""), "data: x\n\n");
  EXPECT_EQ(EncodeSseEvent("e", "", ""), "event: e\ndata: \n\n");
  EXPECT_EQ(EncodeSseEvent("e", "a\r\nb\rc", ""), "event: e\ndata: a\ndata: b\ndata: c\n\n");
}

TEST(Sse, StreamQueuesUntilClosedAndNotifies) {
  SseStream stream;
  int ready = 0;
  EXPECT_TRUE(stream.Send("a", "1"));
  stream.SetOnReady([&] { ++ready; });
  EXPECT_EQ(ready, 1);  // data was already waiting
  EXPECT_TRUE(stream.Comment("hb"));
  EXPECT_EQ(ready, 2);
  bool finished = true;
  EXPECT_EQ(stream.Take(&finished), "event: a\ndata: 1\n\n: hb\n\n");
  EXPECT_FALSE(finished);
  stream.Close();
  EXPECT_EQ(ready, 3);
  EXPECT_TRUE(stream.closed());
  EXPECT_FALSE(stream.Send("b", "2"));
  EXPECT_EQ(stream.Take(&finished), "");
  EXPECT_TRUE(finished);
}

TEST(Sse, AbandonDropsEverything) {
  SseStream stream;
  int ready = 0;
  stream.SetOnReady([&] { ++ready; });
  EXPECT_TRUE(stream.Send("a", "1"));
  stream.Abandon();
  EXPECT_FALSE(stream.Send("a", "2"));
  EXPECT_FALSE(stream.Comment("x"));
  bool finished = false;
  EXPECT_EQ(stream.Take(&finished), "");
  EXPECT_TRUE(finished);
  EXPECT_EQ(ready, 1);
}

TEST(SseParser, ParsesAcrossArbitrarySplits) {
  std::string wire = ": heartbeat\n\n" + EncodeSseEvent("one", "a\nb", "1") + "data: plain\r\n\r\n" +
                     EncodeSseEvent("three", "x: y", "");
  for (size_t step = 1; step <= wire.size(); ++step) {
    SseParser parser;
    std::vector<std::pair<std::string, std::string>> got;
    for (size_t i = 0; i < wire.size(); i += step) {
      ASSERT_TRUE(parser.Feed(std::string_view(wire).substr(i, step), [&](std::string_view e, std::string_view d) {
        got.emplace_back(e, d);
        return true;
      }));
    }
    ASSERT_EQ(got.size(), 3u) << "step " << step;
    EXPECT_EQ(got[0], (std::pair<std::string, std::string>("one", "a\nb")));
    EXPECT_EQ(got[1], (std::pair<std::string, std::string>("message", "plain")));
    EXPECT_EQ(got[2], (std::pair<std::string, std::string>("three", "x: y")));
  }
}

TEST(SseParser, StopsWhenTheCallbackSaysSo) {
  SseParser parser;
  int calls = 0;
  EXPECT_FALSE(parser.Feed("data: 1\n\ndata: 2\n\n", [&](std::string_view, std::string_view) {
    ++calls;
    return false;
  }));
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace lathe::http
