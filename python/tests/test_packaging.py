"""The package itself: Python 3.8 syntax, one version, offline install,
and what happens at interpreter exit."""
import ast
import glob
import json
import os
import re
import subprocess
import sys
import textwrap

import lathe

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(PYTHON_DIR)


def test_modules_parse_as_python_3_8():
    for path in glob.glob(os.path.join(PYTHON_DIR, "lathe", "*.py")):
        with open(path) as f:
            ast.parse(f.read(), path, feature_version=(3, 8))


def test_version_is_the_servers():
    with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
        cmake = re.search(r"project\(lathe VERSION ([0-9.]+)", f.read()).group(1)
    assert lathe.__version__ == cmake


def test_installs_offline_without_build_isolation(tmp_path):
    # A copy, so the build leaves nothing in the checkout.
    src = tmp_path / "src"
    subprocess.run(["cp", "-r", PYTHON_DIR, str(src)], check=True)
    target = tmp_path / "site"
    res = subprocess.run([sys.executable, "-m", "pip", "install", "--no-build-isolation",
                          "--no-deps", "--no-index", "--target", str(target), str(src)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    out = subprocess.run([sys.executable, "-c", "import lathe; print(lathe.__version__, lathe.__file__)"],
                         capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(target)),
                         cwd=str(tmp_path), check=True).stdout.split()
    assert out[0] == lathe.__version__ and out[1].startswith(str(target))


def run_script(fake, body, extra_env=None):
    env = dict(os.environ, PYTHONPATH=PYTHON_DIR, LATHE_SERVER=fake.url, LATHE_TOKEN=fake.token,
               LATHE_PROJECT=fake.project)
    env.pop("LATHE_RUN_ID", None)
    env.update(extra_env or {})
    return subprocess.run([sys.executable, "-c", textwrap.dedent(body)], capture_output=True,
                          text=True, env=env, timeout=60)


def test_exit_sends_queued_points_and_ends_the_run(fake):
    res = run_script(fake, """
        import lathe
        run = lathe.start_run(run_name="no-end")
        print(run.run_id)
        for i in range(3000):
            lathe.log_metric("x", i, step=i)
    """)
    assert res.returncode == 0, res.stderr
    run_id = res.stdout.strip()
    assert len(fake.points(run_id, "x")) == 3000
    assert fake.runs[run_id]["status"] == "FINISHED"


def test_a_script_that_dies_ends_its_run_failed(fake):
    res = run_script(fake, """
        import lathe
        print(lathe.start_run().run_id, flush=True)
        lathe.log_metric("x", 1)
        raise RuntimeError("diverged")
    """)
    assert res.returncode == 1 and "diverged" in res.stderr
    run_id = res.stdout.strip()
    assert fake.runs[run_id]["status"] == "FAILED"
    assert len(fake.points(run_id, "x")) == 1


def test_a_forked_child_does_not_end_the_parents_run(fake):
    res = run_script(fake, """
        import os, lathe
        run = lathe.start_run()
        lathe.log_metric("x", 1)
        pid = os.fork()
        if pid == 0:
            lathe.log_metric("child", 2)
            lathe.flush()
            raise SystemExit(0)
        os.waitpid(pid, 0)
        print(run.run_id, lathe.active_run().run_id == run.run_id)
    """)
    assert res.returncode == 0, res.stderr
    run_id, same = res.stdout.split()
    assert same == "True"
    assert len(fake.points(run_id, "x")) == 1 and len(fake.points(run_id, "child")) == 1
    statuses = [b.get("status") for (m, p, b) in fake.requests if m == "PATCH"]
    assert statuses == ["FINISHED"]  # the parent's, once
