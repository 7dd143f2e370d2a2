// `lathe-shim shim --dir TASKDIR`: the task supervisor as a small binary of
// its own. The server starts one per task, so its start-up cost matters: it
// links only src/exec and src/base (with --as-needed), not the HTTP stack,
// the store drivers and their libraries, which made each `lathe shim` start
// cost about 8 ms of CPU on dynamic linking. `lathe shim --dir` does the same
// thing and is the fallback when this binary is not beside `lathe`.
#include <cstdio>
#include <cstring>

#include "exec/local/shim.h"

int main(int argc, char** argv) {
  if (argc != 4 || std::strcmp(argv[1], "shim") != 0 || std::strcmp(argv[2], "--dir") != 0) {
    std::fprintf(stderr, "usage: %s shim --dir TASKDIR\n", argv[0]);
    return 2;
  }
  return lathe::exec::RunShim(argv[3]);
}
