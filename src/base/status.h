// Status and StatusOr: the one error type of Lathe.
//
// A Status is a code (gRPC's canonical codes), a human-readable message and,
// for bad input, the name of the offending field ("spec.roles[0].replicas").
// Transport mapping (HTTP status, gRPC code, MLflow error_code) happens in one
// place per protocol, never here. Status is cheap to copy when OK (one
// pointer) and must be used ([[nodiscard]]).
#pragma once

#include <cassert>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace lathe {

enum class StatusCode {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};

// "INVALID_ARGUMENT", "NOT_FOUND", ... as used on the wire.
std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message, std::string field = {});

  bool ok() const { return rep_ == nullptr; }
  StatusCode code() const { return rep_ ? rep_->code : StatusCode::kOk; }
  // Empty when OK.
  const std::string& message() const;
  // The input field the error is about; empty when not about one field.
  const std::string& field() const;

  // Returns a copy whose message is "prefix: message".
  Status WithPrefix(std::string_view prefix) const;
  // Returns a copy naming `field` (replacing any field already named).
  Status WithField(std::string field) const;

  // "NOT_FOUND: project \"x\" not found (field: name)".
  std::string ToString() const;

  void IgnoreError() const {}

  friend bool operator==(const Status& a, const Status& b);

 private:
  struct Rep {
    StatusCode code;
    std::string message;
    std::string field;
  };
  std::shared_ptr<const Rep> rep_;
};

inline Status OkStatus() { return Status(); }

Status CancelledError(std::string message);
Status UnknownError(std::string message);
Status InvalidArgumentError(std::string message, std::string field = {});
Status DeadlineExceededError(std::string message);
Status NotFoundError(std::string message);
Status AlreadyExistsError(std::string message, std::string field = {});
Status PermissionDeniedError(std::string message);
Status ResourceExhaustedError(std::string message);
Status FailedPreconditionError(std::string message, std::string field = {});
Status AbortedError(std::string message);
Status OutOfRangeError(std::string message, std::string field = {});
Status UnimplementedError(std::string message);
Status InternalError(std::string message);
Status UnavailableError(std::string message);
Status DataLossError(std::string message);
Status UnauthenticatedError(std::string message);

// Either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(const Status& status) : data_(status) {  // NOLINT: implicit by design
    assert(!status.ok() && "StatusOr built from an OK status");
    if (status.ok()) data_ = InternalError("StatusOr built from an OK status");
  }
  StatusOr(Status&& status) : data_(std::move(status)) {  // NOLINT
    if (std::get<Status>(data_).ok()) data_ = InternalError("StatusOr built from an OK status");
  }
  StatusOr(const T& value) : data_(value) {}  // NOLINT
  StatusOr(T&& value) : data_(std::move(value)) {}  // NOLINT
  template <typename U,
            typename = std::enable_if_t<std::is_convertible_v<U&&, T> &&
                                        !std::is_same_v<std::decay_t<U>, Status> &&
                                        !std::is_same_v<std::decay_t<U>, StatusOr<T>>>>
  StatusOr(U&& value) : data_(T(std::forward<U>(value))) {}  // NOLINT

  bool ok() const { return std::holds_alternative<T>(data_); }
  Status status() const { return ok() ? OkStatus() : std::get<Status>(data_); }

  // Precondition: ok().
  const T& value() const& { return std::get<T>(data_); }
  T& value() & { return std::get<T>(data_); }
  T&& value() && { return std::get<T>(std::move(data_)); }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

  template <typename U>
  T value_or(U&& fallback) const& {
    return ok() ? value() : T(std::forward<U>(fallback));
  }

 private:
  std::variant<Status, T> data_;
};

namespace internal {
inline const Status& AsStatus(const Status& s) { return s; }
template <typename T>
Status AsStatus(const StatusOr<T>& s) {
  return s.status();
}
}  // namespace internal

}  // namespace lathe

#define LATHE_CONCAT_INNER(a, b) a##b
#define LATHE_CONCAT(a, b) LATHE_CONCAT_INNER(a, b)

// Returns from the enclosing function when `expr` (a Status) is not OK.
#define RETURN_IF_ERROR(expr)                                  \
  do {                                                         \
    ::lathe::Status lathe_status_ = ::lathe::internal::AsStatus(expr); \
    if (!lathe_status_.ok()) return lathe_status_;             \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, Foo());` declares/assigns x from a StatusOr or
// returns its error from the enclosing function.
#define ASSIGN_OR_RETURN(lhs, expr) \
  LATHE_ASSIGN_OR_RETURN_IMPL(LATHE_CONCAT(lathe_statusor_, __LINE__), lhs, expr)
#define LATHE_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(tmp).value()
