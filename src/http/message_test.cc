#include "http/message.h"

#include <gtest/gtest.h>

#include "http/wire.h"

namespace lathe::http {
namespace {

TEST(Message, MethodNamesRoundTrip) {
  for (Method m : {Method::kGet, Method::kHead, Method::kPost, Method::kPut, Method::kPatch,
                   Method::kDelete, Method::kOptions}) {
    EXPECT_EQ(ParseMethod(MethodName(m)), m);
  }
  EXPECT_EQ(ParseMethod("get"), Method::kOther);
  EXPECT_EQ(ParseMethod("TRACE"), Method::kOther);
}

TEST(Message, QueryParamsAreDecoded) {
  Request req;
  req.query = "a=1&b=x%20y&c=p+q&flag&empty=&a=2&enc%5Fkey=v";
  std::string value;
  ASSERT_TRUE(req.QueryParam("a", &value));
  EXPECT_EQ(value, "1");  // the first one
  ASSERT_TRUE(req.QueryParam("b", &value));
  EXPECT_EQ(value, "x y");
  ASSERT_TRUE(req.QueryParam("c", &value));
  EXPECT_EQ(value, "p q");
  ASSERT_TRUE(req.QueryParam("flag", &value));
  EXPECT_EQ(value, "");
  ASSERT_TRUE(req.QueryParam("empty", &value));
  EXPECT_EQ(value, "");
  ASSERT_TRUE(req.QueryParam("enc_key", &value));
  EXPECT_EQ(value, "v");
  EXPECT_FALSE(req.QueryParam("missing", &value));
}

TEST(Message, HeadersAndPathParams) {
  Request req;
  req.headers = {{"content-type", "text/plain"}, {"x-a", "1"}, {"x-a", "2"}};
  EXPECT_EQ(req.Header("x-a"), "1");
  EXPECT_EQ(req.Header("nope"), "");
  req.path_params = {{"project", "p1"}};
  EXPECT_EQ(req.PathParam("project"), "p1");
  EXPECT_EQ(req.PathParam("user"), "");
}

TEST(Message, SetHeaderReplacesCaseInsensitively) {
  Response res;
  res.SetHeader("X-Request-Id", "a");
  res.SetHeader("x-request-id", "b");
  ASSERT_EQ(res.headers.size(), 1u);
  EXPECT_EQ(res.headers[0].second, "b");
}

TEST(Message, PercentCoding) {
  std::string out;
  EXPECT_TRUE(PercentDecode("a%2Fb%20c+d", &out, false));
  EXPECT_EQ(out, "a/b c+d");
  out.clear();
  EXPECT_TRUE(PercentDecode("a+b", &out, true));
  EXPECT_EQ(out, "a b");
  out.clear();
  EXPECT_FALSE(PercentDecode("bad%2", &out, false));
  out.clear();
  EXPECT_FALSE(PercentDecode("bad%zz", &out, false));
  out.clear();
  EXPECT_FALSE(PercentDecode("%", &out, false));
  EXPECT_EQ(PercentEncode("a b/c~d_é"), "a%20b%2Fc~d_%C3%A9");
  out.clear();
  EXPECT_TRUE(PercentDecode(PercentEncode("x y/z?&=%"), &out, false));
  EXPECT_EQ(out, "x y/z?&=%");
}

TEST(Message, StatusReasons) {
  EXPECT_EQ(StatusReason(200), "OK");
  EXPECT_EQ(StatusReason(404), "Not Found");
  EXPECT_EQ(StatusReason(405), "Method Not Allowed");
  EXPECT_EQ(StatusReason(413), "Payload Too Large");
  EXPECT_EQ(StatusReason(503), "Service Unavailable");
  EXPECT_EQ(StatusReason(599), "Server Error");
}

TEST(Wire, ResponseIsOneCompleteBuffer) {
  Response res;
  res.status = 201;
  res.body = R"({"ok":true})";
  res.SetHeader("X-Request-Id", "r1");
  res.SetHeader("Content-Length", "999");  // owned by the server: dropped
  EXPECT_EQ(SerializeResponse(res, true, false),
            "HTTP/1.1 201 Created\r\n"
            "Content-Type: application/json\r\n"
            "Content-Length: 11\r\n"
            "Connection: keep-alive\r\n"
            "X-Request-Id: r1\r\n"
            "\r\n"
            R"({"ok":true})");
}

TEST(Wire, HeadKeepsContentLengthWithoutBody) {
  Response res;
  res.content_type = "text/plain";
  res.body = "hello";
  EXPECT_EQ(SerializeResponse(res, false, true),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
            "Connection: close\r\n\r\n");
}

TEST(Wire, NoContentHasNoBodyAndNoLength) {
  Response res;
  res.status = 204;
  res.body = "ignored";
  EXPECT_EQ(SerializeResponse(res, true, false), "HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n");
}

TEST(Wire, HeaderValuesCannotSplitTheResponse) {
  Response res;
  res.SetHeader("X-Evil", "a\r\nSet-Cookie: x");
  std::string wire = SerializeResponse(res, true, false);
  EXPECT_NE(wire.find("X-Evil: a  Set-Cookie: x\r\n"), std::string::npos);
}

TEST(Wire, SseHead) {
  Response res;
  res.SetHeader("X-Request-Id", "r");
  EXPECT_EQ(SerializeSseHead(res),
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            "Connection: close\r\nX-Request-Id: r\r\n\r\n");
}

TEST(Wire, ErrorJson) {
  EXPECT_EQ(ErrorJson("RESOURCE_EXHAUSTED", "request body exceeds 10 bytes", "body"),
            R"({"error":{"code":"RESOURCE_EXHAUSTED","message":"request body exceeds 10 bytes","field":"body"}})");
  EXPECT_EQ(ErrorJson("X", "say \"hi\""), R"({"error":{"code":"X","message":"say \"hi\""}})");
}

}  // namespace
}  // namespace lathe::http
