// A minimal lathe::http server for load tests with wrk:
//
//   http_echo_server [port] [threads]      (defaults 8080, 2)
//   wrk -t2 -c64 -d10s http://127.0.0.1:8080/ping
//
// GET /ping answers a 41-byte JSON document; POST /echo returns the body.
// Runs until SIGINT or SIGTERM, then shuts down gracefully and prints the
// process CPU time, so CPU per request = cpu_seconds / requests from wrk.
#include <signal.h>
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "http/router.h"
#include "http/server.h"

int main(int argc, char** argv) {
  using lathe::http::Method;
  using lathe::http::Request;
  using lathe::http::Response;

  lathe::http::ServerOptions options;
  options.port = argc > 1 ? std::atoi(argv[1]) : 8080;
  options.threads = argc > 2 ? std::atoi(argv[2]) : 2;

  lathe::http::Router router;
  router.Add(Method::kGet, "/ping", [](Request&, Response& res) {
    res.body = R"({"status":"ok","service":"lathe","v":1})";  // 41 bytes
  });
  router.Add(Method::kPost, "/echo", [](Request& req, Response& res) { res.body = std::move(req.body); });

  // Block the signals before any thread starts so only sigwait sees them.
  // A shell starting us in the background may have set SIGINT to ignored,
  // which would discard it even for sigwait: restore the default first.
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  lathe::http::Server server(options, [&router](Request& req, Response& res) { router.Dispatch(req, res); });
  lathe::Status status = server.Start();
  if (!status.ok()) {
    std::fprintf(stderr, "%s\n", status.ToString().c_str());
    return 1;
  }
  std::printf("listening on 127.0.0.1:%d with %d threads\n", server.port(), options.threads);
  std::fflush(stdout);
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  server.Shutdown();

  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  double cpu = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
               static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  std::printf("cpu_seconds %.3f\n", cpu);
  return 0;
}
