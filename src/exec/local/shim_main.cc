// A stand-in for `lathe shim --dir D` in the exec tests.
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
