#include "http/sse.h"

#include <utility>

namespace lathe::http {

std::string EncodeSseEvent(std::string_view event, std::string_view data, std::string_view id) {
  std::string out;
  out.reserve(event.size() + id.size() + data.size() + 32);
  // CR/LF inside the event name or id would end the field early.
  auto append_field = [&out](std::string_view name, std::string_view value) {
    out.append(name);
    out.append(": ");
    for (char c : value) out.push_back(c == '\r' || c == '\n' ? ' ' : c);
    out.push_back('\n');
  };
  if (!event.empty()) append_field("event", event);
  if (!id.empty()) append_field("id", id);
  // Every line of data (split on \n, \r\n or \r) becomes a "data:" line.
  size_t start = 0;
  while (true) {
    size_t end = data.find_first_of("\r\n", start);
    out.append("data: ");
    out.append(data.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    out.push_back('\n');
    if (end == std::string_view::npos) break;
    start = end + 1;
    if (data[end] == '\r' && start < data.size() && data[start] == '\n') ++start;
  }
  out.push_back('\n');
  return out;
}

bool SseStream::Send(std::string_view event, std::string_view data, std::string_view id) {
  if (closed()) return false;
  Push(EncodeSseEvent(event, data, id));
  return !closed();
}

bool SseStream::Comment(std::string_view text) {
  if (closed()) return false;
  std::string frame = ":";
  if (!text.empty()) frame.push_back(' ');
  for (char c : text) frame.push_back(c == '\r' || c == '\n' ? ' ' : c);
  frame.append("\n\n");
  Push(std::move(frame));
  return !closed();
}

void SseStream::Push(std::string frame) {
  std::function<void()> notify;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    pending_.append(frame);
    notify = on_ready_;
  }
  if (notify) notify();
}

void SseStream::Close() {
  std::function<void()> notify;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    closed_ = true;
    notify = on_ready_;
  }
  if (notify) notify();
}

bool SseStream::closed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_;
}

std::string SseStream::Take(bool* finished) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out = std::move(pending_);
  pending_.clear();
  *finished = closed_;
  return out;
}

void SseStream::SetOnReady(std::function<void()> on_ready) {
  bool has_work;
  {
    std::lock_guard<std::mutex> lock(mu_);
    on_ready_ = on_ready;
    has_work = !pending_.empty() || closed_;
  }
  if (has_work && on_ready) on_ready();
}

void SseStream::Abandon() {
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
  pending_.clear();
  on_ready_ = nullptr;
}

}  // namespace lathe::http
