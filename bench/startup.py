#!/usr/bin/python3
"""Start-to-ready time and idle memory of `lathe server` on an empty store.

    bench/startup.py [runs]     (default 20)

Each run starts the server on a fresh home directory (so the run includes
creating the SQLite database, applying migrations and creating the admin),
polls GET /readyz over loopback every 0.5 ms until it answers 200, and
records the wall time from exec. After the last run the server idles for 2 s
and its resident memory (VmRSS) is read. Targets (issue #2): ready < 200 ms,
idle RSS < 40 MB.
"""
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LATHE = os.environ.get("LATHE_BIN", os.path.join(ROOT, "build", "lathe"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def ready(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as c:
            c.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return c.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def one_run(keep=False):
    home = tempfile.mkdtemp(prefix="lathe-bench-start-")
    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen([LATHE, "server", "--home", home, "--listen", f"127.0.0.1:{port}",
                             "--log-level", "warn"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not ready(port):
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        if time.perf_counter() - t0 > 10:
            raise SystemExit("server not ready after 10 s")
        time.sleep(0.0005)
    elapsed = (time.perf_counter() - t0) * 1000
    if keep:
        return elapsed, proc, home
    proc.terminate()
    proc.wait()
    shutil.rmtree(home)
    return elapsed, None, None


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    times = [one_run()[0] for _ in range(runs - 1)]
    last, proc, home = one_run(keep=True)
    times.append(last)
    time.sleep(2)
    with open(f"/proc/{proc.pid}/status") as f:
        rss_kb = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
    proc.terminate()
    proc.wait()
    shutil.rmtree(home)
    times.sort()
    print(f"start to ready over {runs} runs: p50 {statistics.median(times):.1f} ms, "
          f"max {times[-1]:.1f} ms (target < 200 ms)")
    print(f"idle resident memory: {rss_kb / 1024:.1f} MB (target < 40 MB)")


if __name__ == "__main__":
    main()
