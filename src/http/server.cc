// The Beast/Asio HTTP/1.1 server. The only translation unit (with client.cc)
// that includes Boost headers: they cost seconds per TU.
//
// Threading: one io_context per I/O thread, each with its own acceptor
// (SO_REUSEPORT) and therefore its own sessions. A session's handlers all run
// on its io_context's single thread, so a session needs no strand or mutex;
// only SseWaker and DeferredState (called from producer threads) and the
// counters are shared.
#include "http/server.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/file_posix.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/http/basic_file_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "base/strings.h"
#include "base/log.h"
#include "http/deferred.h"
#include "http/sse.h"
#include "http/wire.h"

namespace lathe::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using ErrorCode = boost::system::error_code;
using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

constexpr Clock::time_point kNever = Clock::time_point::max();
constexpr int kListenBacklog = 1024;
// After an error answer (400/413/431) the client may still be sending; read
// and drop its bytes for at most this long so the close does not turn into
// an RST that destroys the answer before the client reads it.
constexpr auto kLingerTime = std::chrono::milliseconds(1000);
constexpr size_t kKeepBufferBytes = 256 * 1024;
// Socket reads go through buffer_ in pieces of at most this size, so a
// spooled upload of any size holds about this much in memory.
constexpr size_t kReadChunkBytes = 64 * 1024;
// A Response::body_file is sent in writes of this size; the first carries
// the headers too, so a file up to this size goes out in one write.
constexpr size_t kFileChunkBytes = 256 * 1024;

using SpoolBody = bhttp::basic_file_body<beast::file_posix>;

std::string ErrnoText(int err) { return std::strerror(err); }

// An open file descriptor, closed when reset or destroyed.
class UniqueFd {
 public:
  UniqueFd() = default;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { Reset(); }
  int get() const { return fd_; }
  void Reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

std::string FormatEndpoint(const tcp::endpoint& ep) {
  if (ep.address().is_v6()) return fmt::format("[{}]:{}", ep.address().to_string(), ep.port());
  return fmt::format("{}:{}", ep.address().to_string(), ep.port());
}

class Session;

// One I/O thread: its io_context, acceptor and live sessions. `sessions` is
// touched only on this worker's thread (or after it has been joined). It is
// declared before `ctx` so that it outlives the sessions that the
// io_context's destructor frees.
struct Worker {
  std::unordered_set<Session*> sessions;
  asio::io_context ctx{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard;
  tcp::acceptor acceptor{ctx};
  asio::steady_timer accept_retry{ctx};
  std::thread thread;
};

// The bridge from SSE producer threads to a session: Wake() posts one Pump
// to the session's thread (coalescing wake-ups until it runs). Kill() makes
// later wake-ups no-ops; it runs before the io_context is destroyed.
class SseWaker : public std::enable_shared_from_this<SseWaker> {
 public:
  SseWaker(asio::any_io_executor ex, std::weak_ptr<Session> session)
      : ex_(std::move(ex)), session_(std::move(session)) {}
  void Wake();
  void Kill() {
    std::lock_guard<std::mutex> lock(mu_);
    dead_ = true;
  }

 private:
  std::mutex mu_;
  bool dead_ = false;  // guarded by mu_
  std::atomic<bool> scheduled_{false};
  asio::any_io_executor ex_;
  std::weak_ptr<Session> session_;
};


// What sessions share with the server: options, the handler, counters.
struct ServerCore {
  ServerCore(ServerOptions o, std::function<void(Request&, Response&)> h)
      : options_(std::move(o)), handler_(std::move(h)) {}
  const ServerOptions& options() const { return options_; }
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }
  void Handle(Request& req, Response& res) const { handler_(req, res); }

  const ServerOptions options_;
  const std::function<void(Request&, Response&)> handler_;
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> open_connections_{0};
  std::atomic<int64_t> inflight_{0};
};

// One connection. Lives as long as an asynchronous operation holds it.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(ServerCore* server, Worker* worker, tcp::socket socket)
      : server_(server),
        worker_(worker),
        socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        heartbeat_(socket_.get_executor()) {
    ErrorCode ec;
    tcp::endpoint remote = socket_.remote_endpoint(ec);
    if (!ec) remote_ = FormatEndpoint(remote);
    server_->open_connections_.fetch_add(1, std::memory_order_relaxed);
    worker_->sessions.insert(this);
  }

  ~Session() {
    DiscardSpool();  // a server shut down in the middle of an upload
    if (waker_) waker_->Kill();
    if (deferred_) deferred_->Cancel();
    if (counted_) server_->inflight_.fetch_sub(1, std::memory_order_relaxed);
    worker_->sessions.erase(this);
    server_->open_connections_.fetch_sub(1, std::memory_order_relaxed);
  }

  void Start() { BeginRequest(); }

  // Server shutdown, on this session's thread: idle connections close now, a
  // request in progress finishes (answered with Connection: close), SSE
  // streams are closed and drain. A deferred response may still be
  // completed until the grace period ends.
  void OnShutdown() {
    if (closed_) return;
    switch (phase_) {
      case Phase::kReading:
        if (!request_started_) Close();
        break;
      case Phase::kSse:
        sse_->Close();
        break;
      case Phase::kWriting:
      case Phase::kDeferred:
      case Phase::kLingering:
        break;
    }
  }

  // After the I/O threads are joined: no producer may post to this session
  // any more, and producers must see Send() == false and Complete() ==
  // false.
  void Teardown() {
    if (waker_) waker_->Kill();
    if (sse_) sse_->Abandon();
    if (deferred_) deferred_->Cancel();
  }

  // Writes whatever the SSE producer queued; closes when it is finished.
  void Pump() {
    if (closed_ || phase_ != Phase::kSse || sse_writing_) return;
    bool finished = false;
    std::string more = sse_->Take(&finished);
    if (!more.empty()) {
      out_ = std::move(more);
      WriteSse();
      return;
    }
    if (finished) Close();
  }

 private:
  // kDeferred: the handler returned a Deferred that is not completed yet.
  enum class Phase { kReading, kWriting, kDeferred, kSse, kLingering };

  // ---- deadlines: one timer, re-armed lazily ----
  void SetDeadline(Clock::time_point deadline) {
    deadline_ = deadline;
    if (deadline == kNever) return;
    if (timer_armed_ && deadline >= armed_at_) return;  // the armed wait fires first and re-checks
    timer_armed_ = true;
    armed_at_ = deadline;
    timer_.expires_at(deadline);  // cancels a pending wait (it sees a stale generation)
    uint64_t generation = ++timer_generation_;
    timer_.async_wait([self = shared_from_this(), generation](const ErrorCode&) {
      self->OnTimer(generation);
    });
  }

  void OnTimer(uint64_t generation) {
    if (generation != timer_generation_) return;
    timer_armed_ = false;
    if (closed_ || deadline_ == kNever) return;
    if (Clock::now() >= deadline_) {
      // Idle keep-alive connection, a request too slow to arrive, a client
      // that does not read: close without an answer.
      Close();
      return;
    }
    SetDeadline(deadline_);
  }

  Clock::time_point After(int ms) const { return Clock::now() + std::chrono::milliseconds(ms); }

  // ---- reading a request ----
  void BeginRequest() {
    if (closed_) return;
    if (server_->stopping()) {
      Close();
      return;
    }
    phase_ = Phase::kReading;
    head_parser_.emplace();
    head_parser_->header_limit(static_cast<std::uint32_t>(
        std::min<size_t>(server_->options().max_header_bytes, UINT32_MAX)));
    // OnHeader checks Content-Length against the limit that applies to
    // this request; the body parsers enforce it from there. (Not
    // boost::none: Beast 1.74 compares Content-Length > none as true.)
    head_parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    body_limit_ = server_->options().max_body_bytes;
    expect_continue_ = false;
    continue_sent_ = false;
    // Bytes already buffered (a pipelined request) start the read timeout.
    request_started_ = buffer_.size() > 0;
    SetDeadline(After(request_started_ ? server_->options().read_timeout_ms
                                       : server_->options().idle_timeout_ms));
    if (request_started_) {
      Parse();
    } else {
      ReadSome();
    }
  }

  // Reads more bytes into buffer_. Done by hand rather than with
  // http::async_read_some, which does not complete until the parser makes
  // progress: the first byte of a request must switch the idle deadline to
  // the read deadline.
  void ReadSome() {
    // read_size() grows the buffer from 512 bytes as needed, which keeps an
    // idle connection small; a spooled body reads whole chunks instead
    // (not a read and a file write per 512 bytes).
    auto space = buffer_.prepare(file_parser_ ? kReadChunkBytes
                                              : beast::read_size(buffer_, kReadChunkBytes));
    reading_ = true;
    socket_.async_read_some(space, [self = shared_from_this()](const ErrorCode& ec, size_t n) {
      self->OnRead(ec, n);
    });
  }

  void OnRead(const ErrorCode& ec, size_t n) {
    reading_ = false;
    if (closed_) return;
    buffer_.commit(n);
    if (phase_ == Phase::kDeferred) {
      OnReadWhileDeferred(ec);
      return;
    }
    if (ec) {
      Close();  // the peer went away (or a deadline closed the socket)
      return;
    }
    // A spooled body may take far longer than read_timeout_ms: there the
    // timeout runs from the last bytes received, not from the first.
    if (!request_started_ || file_parser_) {
      request_started_ = true;
      SetDeadline(After(server_->options().read_timeout_ms));
    }
    Parse();
  }

  // Feeds buffered bytes to the parser: first the header (head_parser_),
  // then, once OnHeader has chosen where the body goes, the body
  // (string_parser_ or file_parser_). Handles the request once complete.
  void Parse() {
    while (true) {
      if (head_parser_) {
        if (buffer_.size() == 0) break;
        ErrorCode ec;
        size_t used = head_parser_->put(buffer_.data(), ec);
        buffer_.consume(used);
        if (ec == bhttp::error::need_more) break;
        if (ec) {
          OnParseError(ec);
          return;
        }
        // Not eager: put() returns right after the header, before any body
        // byte, so the parser can still change its body type.
        if (!head_parser_->is_header_done()) {
          if (used == 0) break;
          continue;
        }
        if (!OnHeader()) return;
        continue;
      }
      if (BodyDone()) {
        HandleRequest();
        return;
      }
      if (buffer_.size() == 0) break;
      ErrorCode ec;
      size_t used = string_parser_ ? string_parser_->put(buffer_.data(), ec)
                                   : file_parser_->put(buffer_.data(), ec);
      buffer_.consume(used);
      if (ec == bhttp::error::need_more) break;
      if (ec) {
        OnParseError(ec);
        return;
      }
      if (used == 0 && !BodyDone()) break;
    }
    if (!head_parser_ && expect_continue_ && !continue_sent_) {
      continue_sent_ = true;
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      asio::async_write(socket_, asio::buffer(kContinue.data(), kContinue.size()),
                        [self = shared_from_this()](const ErrorCode& wec, size_t) {
                          if (self->closed_) return;
                          if (wec) {
                            self->Close();
                            return;
                          }
                          self->ReadSome();
                        });
      return;
    }
    ReadSome();
  }

  bool BodyDone() const {
    return string_parser_ ? string_parser_->is_done() : file_parser_->is_done();
  }

  // The header is complete: builds pending_, asks spool_body where the body
  // goes and moves the parser on to a string or a file body. A body that is
  // known to be too big (Content-Length) is refused here, before any of it
  // is read and before 100 Continue. False when the request was rejected.
  bool OnHeader() {
    const ServerOptions& opt = server_->options();
    auto& msg = head_parser_->get();
    Request req;
    req.method = ParseMethod(std::string_view(msg.method_string().data(), msg.method_string().size()));
    req.target.assign(msg.target().data(), msg.target().size());
    std::string_view target = req.target;
    size_t q = target.find('?');
    std::string_view raw_path = target.substr(0, q);
    if (q != std::string_view::npos) req.query.assign(target.substr(q + 1));
    size_t hash = req.query.find('#');
    if (hash != std::string::npos) req.query.resize(hash);
    if (!PercentDecode(raw_path, &req.path, false)) {
      Reject(400, "INVALID_ARGUMENT", "malformed percent-escape in the request path", "path");
      return false;
    }
    req.headers.reserve(std::distance(msg.begin(), msg.end()));
    for (const auto& field : msg) {
      std::string name(field.name_string().data(), field.name_string().size());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      req.headers.emplace_back(std::move(name), std::string(field.value().data(), field.value().size()));
    }
    req.remote_addr = remote_;
    pending_keep_alive_ = msg.keep_alive();
    auto expect = msg[bhttp::field::expect];
    expect_continue_ =
        EqualsIgnoreCaseAscii(std::string_view(expect.data(), expect.size()), "100-continue");

    uint64_t spool_limit = 0;
    if (opt.spool_body) {
      try {
        spool_limit = opt.spool_body(req);
      } catch (const std::exception& e) {
        LOG_ERROR("http: spool_body for {} {} threw: {}", MethodName(req.method), req.target,
                  e.what());
        Reject(500, "INTERNAL", "internal error", "");
        return false;
      }
    }
    body_limit_ = spool_limit > 0 ? spool_limit : static_cast<uint64_t>(opt.max_body_bytes);
    boost::optional<std::uint64_t> length = head_parser_->content_length();
    if (length && *length > body_limit_) {
      RejectTooLarge();
      return false;
    }
    if (spool_limit == 0) {
      string_parser_.emplace(std::move(*head_parser_));
      string_parser_->body_limit(body_limit_);
    } else {
      beast::file_posix file;
      if (!CreateSpoolFile(req.target, &file)) return false;
      file_parser_.emplace(std::move(*head_parser_));
      ErrorCode ec;
      file_parser_->get().body().reset(std::move(file), ec);
      if (ec) {
        LOG_ERROR("http: cannot use spool file \"{}\": {}", spool_path_, ec.message());
        Reject(500, "INTERNAL", "cannot store the request body", "");
        return false;
      }
      file_parser_->body_limit(body_limit_);
      // The header may have used up most of the read timeout: the body's
      // timeout counts from progress (see OnRead).
      SetDeadline(After(opt.read_timeout_ms));
    }
    head_parser_.reset();
    pending_ = std::move(req);
    return true;
  }

  // A new file in spool_dir (unique name, mode 0600) for the body; its path
  // goes to spool_path_ and its identity to spool_id_. False when the
  // request was rejected (the file could not be created).
  bool CreateSpoolFile(std::string_view target, beast::file_posix* file) {
    const std::string& dir = server_->options().spool_dir;
    if (dir.empty()) {
      LOG_ERROR("http: spool_body asked to spool {} but ServerOptions::spool_dir is empty", target);
      Reject(500, "INTERNAL", "cannot store the request body", "");
      return false;
    }
    std::string path = dir;
    if (path.back() != '/') path.push_back('/');
    path.append("lathe-body-XXXXXX");
    int fd = ::mkostemp(path.data(), O_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      LOG_ERROR("http: cannot create a spool file in \"{}\": {}", dir, ErrnoText(err));
      Reject(500, "INTERNAL", "cannot store the request body", "");
      return false;
    }
    file->native_handle(fd);  // owns fd from here
    struct stat st {};
    if (::fchmod(fd, 0600) != 0 || ::fstat(fd, &st) != 0) {
      int err = errno;
      ::unlink(path.c_str());
      LOG_ERROR("http: cannot set up spool file \"{}\": {}", path, ErrnoText(err));
      Reject(500, "INTERNAL", "cannot store the request body", "");
      return false;
    }
    spool_path_ = std::move(path);
    spool_id_ = {st.st_dev, st.st_ino};
    return true;
  }

  // Closes and removes the spool file of a request that did not reach its
  // handler (error, timeout, disconnect, shutdown).
  void DiscardSpool() {
    file_parser_.reset();  // closes the file
    if (spool_path_.empty()) return;
    ::unlink(spool_path_.c_str());
    spool_path_.clear();
  }

  void ResetParsers() {
    head_parser_.reset();
    string_parser_.reset();
    DiscardSpool();
  }

  void RejectTooLarge() {
    Reject(413, "RESOURCE_EXHAUSTED", fmt::format("request body exceeds {} bytes", body_limit_),
           "body");
  }

  void OnParseError(const ErrorCode& ec) {
    const ServerOptions& opt = server_->options();
    if (ec == bhttp::error::body_limit) {
      RejectTooLarge();
    } else if (ec == bhttp::error::header_limit) {
      Reject(431, "RESOURCE_EXHAUSTED",
             fmt::format("request headers exceed {} bytes", opt.max_header_bytes), "headers");
    } else if (ec.category() != bhttp::make_error_code(bhttp::error::need_more).category()) {
      // Not a parse error: writing the spool file failed (errno).
      LOG_ERROR("http: cannot write the request body to \"{}\": {}", spool_path_, ec.message());
      if (ec == boost::system::errc::no_space_on_device || ec.value() == EDQUOT) {
        Reject(507, "RESOURCE_EXHAUSTED", "no space left to store the request body", "body");
      } else {
        Reject(500, "INTERNAL", "cannot store the request body", "");
      }
    } else {
      Reject(400, "INVALID_ARGUMENT", "malformed HTTP request: " + ec.message(), "");
    }
  }

  // ---- handling ----
  void HandleRequest() {
    Request req = std::move(pending_);
    pending_ = Request();
    // The spool file, now the handler's; removed after it unless moved away.
    std::string spooled;
    if (string_parser_) {
      req.body = std::move(string_parser_->get().body());
      string_parser_.reset();
    } else {
      ErrorCode ec;
      req.body_file_size = file_parser_->get().body().file().size(ec);
      file_parser_.reset();  // closes the file: all of it is written
      if (ec) {
        LOG_ERROR("http: cannot stat spool file \"{}\": {}", spool_path_, ec.message());
        Reject(500, "INTERNAL", "cannot store the request body", "");
        return;
      }
      spooled = std::move(spool_path_);
      spool_path_.clear();
      req.body_file = spooled;
      buffer_.shrink_to_fit();  // back from kReadChunkBytes for the next request
    }
    const bool keep_alive = pending_keep_alive_;

    counted_ = true;
    server_->inflight_.fetch_add(1, std::memory_order_relaxed);
    Response res;
    try {
      server_->Handle(req, res);
    } catch (const std::exception& e) {
      LOG_ERROR("http: handler for {} {} threw: {}", MethodName(req.method), req.target, e.what());
      ResetToInternalError(&res);
    } catch (...) {
      LOG_ERROR("http: handler for {} {} threw a non-std exception", MethodName(req.method), req.target);
      ResetToInternalError(&res);
    }
    if (!spooled.empty()) RemoveUnlessMoved(spooled, spool_id_);
    Respond(res, keep_alive, req.method == Method::kHead);
  }

  // A response that will not be sent becomes a 500. A Deferred in it is
  // cancelled, so its producer's Complete() returns false.
  static void ResetToInternalError(Response* res) {
    if (res->deferred) res->deferred->state()->Cancel();
    *res = Response();
    res->status = 500;
    res->body = ErrorJson("INTERNAL", "internal error");
  }

  // Sends a handler's response, or a Deferred's once completed.
  void Respond(Response& res, bool keep_alive, bool head) {
    if (res.deferred) {
      AwaitDeferred(res, keep_alive, head);
      return;
    }
    if (res.sse) {
      StartSse(res);
      return;
    }
    keep_alive_ = keep_alive && !server_->stopping();
    out_.clear();
    phase_ = Phase::kWriting;
    if (!res.body_file.empty() && !StatusHasNoBody(res.status)) {
      if (StartFileResponse(res, head)) return;
      res = Response();
      res.status = 404;
      res.body = ErrorJson("NOT_FOUND", "file not found");
    }
    AppendResponse(res, keep_alive_, head, &out_);
    SetDeadline(After(server_->options().read_timeout_ms));
    asio::async_write(socket_, asio::buffer(out_),
                      [self = shared_from_this()](const ErrorCode& ec, size_t) { self->OnWrite(ec); });
  }

  // ---- a deferred response (Response::deferred) ----
  // The handler returned a promise. Unless it is already kept, waits without
  // a deadline (the producer owns the timeout: it completes with an error)
  // and without reading the next request, keeping a read pending that
  // notices the client leaving.
  void AwaitDeferred(Response& res, bool keep_alive, bool head) {
    deferred_ = res.deferred->state();
    // If the handler kept no reference, the Deferred answers 500 here.
    res.deferred.reset();
    deferred_keep_alive_ = keep_alive;
    deferred_head_ = head;
    phase_ = Phase::kDeferred;
    // Completed by the handler itself: written now, like a synchronous answer.
    if (FinishDeferred()) return;
    SetDeadline(kNever);
    // Complete() runs this on the producer's thread (under the state's lock,
    // which Close() and Teardown() take to cancel it before the io_context
    // goes away); the session is reached through a weak pointer.
    deferred_->OnComplete([ex = socket_.get_executor(), weak = weak_from_this()] {
      asio::post(ex, [weak] {
        if (auto self = weak.lock()) self->OnDeferredReady();
      });
    });
    WatchClient();
  }

  // On this session's thread, once the Deferred has its response.
  void OnDeferredReady() {
    if (closed_ || phase_ != Phase::kDeferred) return;
    if (reading_) {
      // One read at a time, and it may carry bytes of the next request:
      // let the watching read return (OnReadWhileDeferred finishes).
      ErrorCode ignored;
      socket_.cancel(ignored);
      return;
    }
    FinishDeferred();
  }

  // Writes the Deferred's response if it has come; false if not yet.
  bool FinishDeferred() {
    Response res;
    if (!deferred_->Take(&res)) return false;
    deferred_.reset();
    if (res.deferred) {
      LOG_ERROR("http: a Deferred was completed with a deferred response; answering 500");
      ResetToInternalError(&res);
    }
    Respond(res, deferred_keep_alive_, deferred_head_);
    return true;
  }

  // A read while a deferred response is pending. The client may pipeline
  // its next request: those bytes stay in buffer_ for after the answer.
  // Past kReadChunkBytes of them it stops reading (TCP pushes back), and a
  // client that leaves is then noticed when the answer is written.
  void WatchClient() {
    if (buffer_.size() >= kReadChunkBytes) return;
    ReadSome();
  }

  void OnReadWhileDeferred(const ErrorCode& ec) {
    if (ec && ec != asio::error::operation_aborted) {
      Close();  // the client left (EOF or reset): the producer sees cancelled()
      return;
    }
    if (!FinishDeferred()) WatchClient();
  }

  // Deletes the handler's spool file unless the handler renamed it away
  // (then `path` is absent, or is some other upload's new file: compared by
  // device and inode).
  static void RemoveUnlessMoved(const std::string& path, std::pair<dev_t, ino_t> id) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return;
    if (st.st_dev == id.first && st.st_ino == id.second) ::unlink(path.c_str());
  }

  // ---- a Response::body_file ----
  // Opens the file and writes the headers with its first chunk; false
  // (nothing written) when it cannot be opened or is not a regular file.
  bool StartFileResponse(const Response& res, bool head) {
    int fd = ::open(res.body_file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      LOG_WARN("http: cannot open response file \"{}\": {}", res.body_file, ErrnoText(err));
      return false;
    }
    file_.Reset(fd);
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      LOG_WARN("http: response file \"{}\" is not a regular file", res.body_file);
      file_.Reset();
      return false;
    }
    file_path_ = res.body_file;
    const auto size = static_cast<uint64_t>(st.st_size);
    file_left_ = head ? 0 : size;
    AppendResponseHead(res, size, keep_alive_, &out_);
    WriteFileChunk();
    return true;
  }

  // Appends the next chunk of the file to out_ (after the headers, for the
  // first) and writes out_. The file is read on this I/O thread: a local
  // disk read of one chunk is as brief as a handler's work.
  void WriteFileChunk() {
    if (file_left_ > 0) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(file_left_, kFileChunkBytes));
      const size_t at = out_.size();
      out_.resize(at + n);
      size_t got = 0;
      while (got < n) {
        ssize_t r = ::read(file_.get(), out_.data() + at + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
          // Shrunk or unreadable since it was opened: the promised
          // Content-Length cannot be met, so the client must see the close.
          LOG_WARN("http: response file \"{}\" ended early: {}", file_path_,
                   r == 0 ? std::string("end of file") : ErrnoText(errno));
          file_.Reset();
          Close();
          return;
        }
        got += static_cast<size_t>(r);
      }
      file_left_ -= n;
    }
    if (file_left_ == 0) file_.Reset();
    SetDeadline(After(server_->options().read_timeout_ms));
    asio::async_write(socket_, asio::buffer(out_),
                      [self = shared_from_this()](const ErrorCode& ec, size_t) {
                        if (ec || self->closed_ || self->file_left_ == 0) {
                          self->OnWrite(ec);
                          return;
                        }
                        self->out_.clear();
                        self->WriteFileChunk();
                      });
  }

  void OnWrite(const ErrorCode& ec) {
    if (counted_) {
      counted_ = false;
      server_->inflight_.fetch_sub(1, std::memory_order_relaxed);
    }
    if (closed_) return;
    if (ec || !keep_alive_ || server_->stopping()) {
      Close();
      return;
    }
    // Keep a small buffer for the next answer, not the capacity of a huge one.
    if (out_.capacity() > kKeepBufferBytes) std::string().swap(out_);
    BeginRequest();
  }

  // Answers an unreadable request with a JSON error and closes, lingering
  // so the client can finish sending and still read the answer.
  void Reject(int status, std::string_view code, const std::string& message, std::string_view field) {
    Response res;
    res.status = status;
    res.body = ErrorJson(code, message, field);
    out_ = SerializeResponse(res, /*keep_alive=*/false, /*head=*/false);
    ResetParsers();
    phase_ = Phase::kLingering;
    SetDeadline(After(server_->options().read_timeout_ms));
    asio::async_write(socket_, asio::buffer(out_), [self = shared_from_this()](const ErrorCode& ec, size_t) {
      if (self->closed_) return;
      if (ec) {
        self->Close();
        return;
      }
      ErrorCode ignored;
      self->socket_.shutdown(tcp::socket::shutdown_send, ignored);
      self->SetDeadline(Clock::now() + kLingerTime);
      self->Drain();
    });
  }

  void Drain() {
    socket_.async_read_some(asio::buffer(scratch_), [self = shared_from_this()](const ErrorCode& ec, size_t) {
      if (self->closed_) return;
      if (ec) {
        self->Close();
        return;
      }
      self->Drain();
    });
  }

  // ---- server-sent events ----
  void StartSse(const Response& res) {
    phase_ = Phase::kSse;
    sse_ = res.sse;
    if (counted_) {
      // A stream is not a request in flight: it may last for hours.
      counted_ = false;
      server_->inflight_.fetch_sub(1, std::memory_order_relaxed);
    }
    out_ = SerializeSseHead(res);
    bool finished = false;
    out_.append(sse_->Take(&finished));
    waker_ = std::make_shared<SseWaker>(socket_.get_executor(), weak_from_this());
    WriteSse();
    sse_->SetOnReady([waker = waker_] { waker->Wake(); });
    WatchSseClient();
    ArmHeartbeat();
    if (server_->stopping()) sse_->Close();
  }

  void WriteSse() {
    sse_writing_ = true;
    SetDeadline(After(server_->options().read_timeout_ms));
    asio::async_write(socket_, asio::buffer(out_), [self = shared_from_this()](const ErrorCode& ec, size_t) {
      self->sse_writing_ = false;
      if (self->closed_) return;
      if (ec) {
        self->Close();  // abandons the stream: the producer sees Send() == false
        return;
      }
      self->SetDeadline(kNever);
      self->Pump();
    });
  }

  // A read that only completes when the client closes (or sends junk, which
  // is dropped): that is how a producer learns the client went away.
  void WatchSseClient() {
    socket_.async_read_some(asio::buffer(scratch_), [self = shared_from_this()](const ErrorCode& ec, size_t) {
      if (self->closed_) return;
      if (ec) {
        self->Close();
        return;
      }
      self->WatchSseClient();
    });
  }

  void ArmHeartbeat() {
    heartbeat_.expires_after(std::chrono::milliseconds(std::max(1, server_->options().sse_heartbeat_ms)));
    heartbeat_.async_wait([self = shared_from_this()](const ErrorCode& ec) {
      if (ec || self->closed_) return;
      if (self->sse_->Comment("heartbeat")) self->ArmHeartbeat();
    });
  }

  // ---- closing ----
  void Close() {
    if (closed_) return;
    closed_ = true;
    ErrorCode ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    timer_.cancel();
    heartbeat_.cancel();
    ResetParsers();
    file_.Reset();
    if (waker_) waker_->Kill();
    if (sse_) sse_->Abandon();
    if (deferred_) {
      deferred_->Cancel();
      deferred_.reset();
    }
  }

  ServerCore* const server_;
  Worker* const worker_;
  tcp::socket socket_;
  asio::steady_timer timer_;
  asio::steady_timer heartbeat_;
  std::string remote_;
  beast::flat_buffer buffer_;
  // A request is parsed by exactly one of these at a time: head_parser_
  // until the header is complete, then string_parser_ (body in memory) or
  // file_parser_ (body spooled to spool_path_).
  std::optional<bhttp::request_parser<bhttp::empty_body>> head_parser_;
  std::optional<bhttp::request_parser<bhttp::string_body>> string_parser_;
  std::optional<bhttp::request_parser<SpoolBody>> file_parser_;
  Request pending_;  // the request whose body is being read (no body yet)
  bool pending_keep_alive_ = false;
  bool expect_continue_ = false;
  uint64_t body_limit_ = 0;  // for the request being read
  std::string spool_path_;   // the spool file being written; removed on any failure
  std::pair<dev_t, ino_t> spool_id_{};
  UniqueFd file_;  // a Response::body_file being sent
  std::string file_path_;
  uint64_t file_left_ = 0;  // bytes of file_ still to send
  std::string out_;         // the buffer each response (or file chunk) is written from
  char scratch_[512];
  Phase phase_ = Phase::kReading;
  bool closed_ = false;
  bool request_started_ = false;
  bool continue_sent_ = false;
  bool keep_alive_ = false;
  bool counted_ = false;  // counted in inflight_
  Clock::time_point deadline_ = kNever;
  Clock::time_point armed_at_ = kNever;
  bool timer_armed_ = false;
  uint64_t timer_generation_ = 0;
  std::shared_ptr<SseStream> sse_;
  std::shared_ptr<SseWaker> waker_;
  bool sse_writing_ = false;
  bool reading_ = false;  // a ReadSome() is outstanding
  std::shared_ptr<DeferredState> deferred_;  // set while phase_ == kDeferred
  bool deferred_keep_alive_ = false;
  bool deferred_head_ = false;
};

void SseWaker::Wake() {
  if (scheduled_.exchange(true)) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (dead_) return;
  asio::post(ex_, [self = shared_from_this()] {
    self->scheduled_.store(false);
    if (auto session = self->session_.lock()) session->Pump();
  });
}

}  // namespace

class Server::Impl {
 public:
  Impl(ServerOptions options, std::function<void(Request&, Response&)> handler)
      : core_(std::move(options), std::move(handler)) {}
  ~Impl() { Shutdown(); }

  Status Start();
  void Shutdown();
  void Wait();
  int port() const { return port_.load(); }
  int64_t open_connections() const { return core_.open_connections_.load(); }
  int64_t inflight() const { return core_.inflight_.load(); }

 private:
  enum class State { kIdle, kRunning, kStopping, kStopped };
  void Accept(Worker* worker);
  bool stopping() const { return core_.stopping(); }

  ServerCore core_;
  std::atomic<int> port_{0};
  std::vector<std::unique_ptr<Worker>> workers_;  // set in Start, cleared in Shutdown
  std::mutex mu_;
  std::condition_variable cv_;
  State state_ = State::kIdle;  // guarded by mu_
};

Status Server::Impl::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ != State::kIdle) return FailedPreconditionError("http::Server::Start called twice");

  ErrorCode ec;
  asio::ip::address address = asio::ip::make_address(core_.options_.host, ec);
  if (ec) {
    asio::io_context resolver_ctx;
    tcp::resolver resolver(resolver_ctx);
    auto results = resolver.resolve(core_.options_.host, "", ec);
    if (ec || results.empty()) {
      return InvalidArgumentError(fmt::format("cannot resolve listen host \"{}\": {}", core_.options_.host,
                                              ec ? ec.message() : "no address"),
                                  "host");
    }
    address = results.begin()->endpoint().address();
  }
  if (core_.options_.port < 0 || core_.options_.port > 65535) {
    return InvalidArgumentError(fmt::format("port {} out of range", core_.options_.port), "port");
  }
  tcp::endpoint endpoint(address, static_cast<unsigned short>(core_.options_.port));
  const int threads = std::max(1, core_.options_.threads);

  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < threads; ++i) {
    auto worker = std::make_unique<Worker>();
    tcp::acceptor& acceptor = worker->acceptor;
    auto fail = [&](std::string_view what) {
      return UnavailableError(fmt::format("http server: {} {}: {}", what, FormatEndpoint(endpoint), ec.message()));
    };
    acceptor.open(endpoint.protocol(), ec);
    if (ec) return fail("open");
    acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (ec) return fail("SO_REUSEADDR");
    acceptor.set_option(ReusePort(true), ec);
    if (ec) return fail("SO_REUSEPORT");
    acceptor.bind(endpoint, ec);
    if (ec) return fail("bind");
    acceptor.listen(kListenBacklog, ec);
    if (ec) return fail("listen");
    if (i == 0 && endpoint.port() == 0) {
      tcp::endpoint bound = acceptor.local_endpoint(ec);
      if (ec) return fail("local_endpoint");
      endpoint.port(bound.port());
    }
    workers.push_back(std::move(worker));
  }
  port_ = endpoint.port();
  workers_ = std::move(workers);
  for (auto& worker : workers_) {
    Worker* w = worker.get();
    w->guard.emplace(w->ctx.get_executor());
    Accept(w);
    w->thread = std::thread([w] {
      while (true) {
        try {
          w->ctx.run();
          return;
        } catch (const std::exception& e) {
          LOG_ERROR("http: I/O thread caught: {}", e.what());
        }
      }
    });
  }
  state_ = State::kRunning;
  LOG_INFO("http server listening on {} ({} threads)", FormatEndpoint(endpoint), threads);
  return OkStatus();
}

void Server::Impl::Accept(Worker* worker) {
  worker->acceptor.async_accept([this, worker](const ErrorCode& ec, tcp::socket socket) {
    if (ec) {
      if (ec == asio::error::operation_aborted || stopping() || !worker->acceptor.is_open()) return;
      // EMFILE and friends: back off instead of spinning.
      LOG_WARN("http: accept failed: {}", ec.message());
      worker->accept_retry.expires_after(std::chrono::milliseconds(50));
      worker->accept_retry.async_wait([this, worker](const ErrorCode& wec) {
        if (!wec && !stopping()) Accept(worker);
      });
      return;
    }
    if (stopping()) return;  // the socket closes as it goes out of scope
    ErrorCode ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    std::make_shared<Session>(&core_, worker, std::move(socket))->Start();
    Accept(worker);
  });
}

void Server::Impl::Shutdown() {
  std::unique_lock<std::mutex> lock(mu_);
  switch (state_) {
    case State::kIdle:
      state_ = State::kStopped;
      cv_.notify_all();
      return;
    case State::kStopping:
      cv_.wait(lock, [this] { return state_ == State::kStopped; });
      return;
    case State::kStopped:
      return;
    case State::kRunning:
      break;
  }
  state_ = State::kStopping;
  lock.unlock();

  core_.stopping_.store(true, std::memory_order_release);
  for (auto& worker : workers_) {
    Worker* w = worker.get();
    asio::post(w->ctx, [w] {
      ErrorCode ignored;
      w->acceptor.close(ignored);
      w->accept_retry.cancel();
      std::vector<std::shared_ptr<Session>> live;
      live.reserve(w->sessions.size());
      for (Session* s : w->sessions) {
        if (auto p = s->weak_from_this().lock()) live.push_back(std::move(p));
      }
      for (auto& s : live) s->OnShutdown();
    });
  }
  const auto deadline = Clock::now() + std::chrono::milliseconds(std::max(0, core_.options_.shutdown_grace_ms));
  while (core_.open_connections_.load() > 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (core_.open_connections_.load() > 0) {
    LOG_WARN("http: {} connections still open after the {} ms grace period; closing them",
             core_.open_connections_.load(), core_.options_.shutdown_grace_ms);
  }
  for (auto& worker : workers_) {
    worker->guard.reset();
    worker->ctx.stop();
  }
  for (auto& worker : workers_) {
    if (worker->thread.joinable()) worker->thread.join();
  }
  for (auto& worker : workers_) {
    for (Session* s : worker->sessions) s->Teardown();
  }
  // Destroying each io_context frees the handlers still pending, and with
  // them the remaining sessions and their sockets.
  workers_.clear();

  lock.lock();
  state_ = State::kStopped;
  cv_.notify_all();
}

void Server::Impl::Wait() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return state_ == State::kStopped; });
}

Server::Server(ServerOptions options, std::function<void(Request&, Response&)> handler)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler))) {}

Server::~Server() = default;

Status Server::Start() { return impl_->Start(); }
int Server::port() const { return impl_->port(); }
void Server::Shutdown() { impl_->Shutdown(); }
void Server::Wait() { impl_->Wait(); }
int64_t Server::open_connections() const { return impl_->open_connections(); }
int64_t Server::inflight_requests() const { return impl_->inflight(); }

}  // namespace lathe::http
