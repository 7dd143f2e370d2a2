// Server-sent events (text/event-stream). A handler creates an SseStream,
// puts it in Response::sse, and hands it to a producer (a thread, a
// watcher) which calls Send() until it is done or the client goes away.
#pragma once

#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

namespace lathe::http {

class SseStream {
 public:
  // Queues one event. `data` may span lines (each becomes a "data:" line).
  // Returns false once the stream is closed (by Close() or by the client
  // disconnecting): the producer should stop. Thread-safe; never blocks.
  bool Send(std::string_view event, std::string_view data, std::string_view id = {});
  // Queues a comment line, used as a heartbeat.
  bool Comment(std::string_view text);
  // Ends the stream after the queued events are written. Thread-safe.
  void Close();
  bool closed() const;

  // For the server: takes everything queued (as wire bytes) and whether the
  // stream is finished (closed and, after this Take, drained).
  // `on_ready` is called (from the producer's thread, without the lock held)
  // whenever new data or a close arrives; it stays set until replaced or
  // Abandon(). SetOnReady calls it at once when data or a close is already
  // waiting. It must be cheap and must not call back into the stream's
  // producer side synchronously (the server's posts to its I/O thread).
  std::string Take(bool* finished);
  void SetOnReady(std::function<void()> on_ready);
  // For the server: the client went away. Drops queued data, clears
  // on_ready and makes every later Send()/Comment() return false.
  void Abandon();

 private:
  void Push(std::string frame);
  mutable std::mutex mu_;
  std::string pending_;            // guarded by mu_
  bool closed_ = false;            // guarded by mu_
  std::function<void()> on_ready_; // guarded by mu_
};

// Wire encoding of one event: "event: x\nid: y\ndata: a\ndata: b\n\n".
std::string EncodeSseEvent(std::string_view event, std::string_view data, std::string_view id);

}  // namespace lathe::http
