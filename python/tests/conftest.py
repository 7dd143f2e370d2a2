import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # python/, for `import lathe`
sys.path.insert(0, HERE)

import lathe  # noqa: E402
from lathe import tracking  # noqa: E402
from fake_server import FakeLathe  # noqa: E402


@pytest.fixture
def fake(monkeypatch):
    """A fake server, the SDK configured for it through the environment and
    starting from a clean state."""
    server = FakeLathe()
    monkeypatch.setenv("LATHE_SERVER", server.url)
    monkeypatch.setenv("LATHE_TOKEN", server.token)
    monkeypatch.setenv("LATHE_PROJECT", server.project)
    monkeypatch.setenv("LATHE_RETRY_TIMEOUT", "10")
    monkeypatch.delenv("LATHE_RUN_ID", raising=False)
    monkeypatch.setattr(tracking, "_state", tracking._State())
    yield server
    try:
        tracking._state.active = None
        if tracking._state.batcher is not None:
            tracking._state.batcher.wait(5)
    finally:
        server.stop()
