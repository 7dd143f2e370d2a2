"""Artifacts through the SDK against the in-memory fake: streamed uploads,
directory walks, listings, downloads of files and directories, retries."""
import errno
import http.client
import io
import os
import time

import pytest

import lathe
from lathe import artifacts


def write(path, data):
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    with open(str(path), "wb") as f:
        f.write(data)


def test_log_artifact_puts_the_file_under_artifact_path(fake, tmp_path):
    write(tmp_path / "weights.bin", b"\x00\x01" * 1000)
    with lathe.start_run() as run:
        answer = lathe.log_artifact(str(tmp_path / "weights.bin"), artifact_path="model/v1/")
        lathe.log_artifact(str(tmp_path / "weights.bin"))
    assert answer == {"path": "model/v1/weights.bin", "file_size": 2000}
    assert fake.artifacts[(run.run_id, "model/v1/weights.bin")] == b"\x00\x01" * 1000
    assert (run.run_id, "weights.bin") in fake.artifacts
    puts = [r for r in fake.requests if r[0] == "PUT"]
    assert puts[0][1].endswith("/runs/{}/artifacts/model/v1/weights.bin".format(run.run_id))


def test_uploads_stream_from_the_file_in_blocks(fake, tmp_path, monkeypatch):
    data = os.urandom(3 << 20)
    write(tmp_path / "big.bin", data)
    sends = []
    real_send = http.client.HTTPConnection.send

    def send(self, chunk):
        sends.append(len(chunk))
        return real_send(self, chunk)

    monkeypatch.setattr(http.client.HTTPConnection, "send", send)
    run = lathe.start_run()
    lathe.log_artifact(str(tmp_path / "big.bin"), run_id=run.run_id)
    lathe.end_run()
    assert fake.artifacts[(run.run_id, "big.bin")] == data
    # Never the whole file in one write: http.client read it in 64 KiB blocks.
    assert max(sends) <= 1 << 16, max(sends)


def test_names_with_spaces_and_percent_signs_are_one_segment_each(fake, tmp_path):
    write(tmp_path / "a b%2F.txt", b"x")
    run = lathe.start_run()
    lathe.log_artifact(str(tmp_path / "a b%2F.txt"), artifact_path="dir #1")
    lathe.end_run()
    assert fake.artifacts[(run.run_id, "dir #1/a b%2F.txt")] == b"x"


def test_log_artifacts_walks_the_directory(fake, tmp_path):
    src = tmp_path / "model"
    write(src / "MLmodel", b"flavors: {}")
    write(src / "data" / "weights.pt", b"w" * 10)
    write(src / "data" / "deep" / "x.json", b"{}")
    os.makedirs(str(src / "empty"))
    run = lathe.start_run()
    answers = lathe.log_artifacts(str(src), artifact_path="model")
    # Top down: a directory's files in name order, then its subdirectories.
    assert [a["path"] for a in answers] == ["model/MLmodel", "model/data/weights.pt",
                                            "model/data/deep/x.json"]
    assert lathe.list_artifacts() == [{"path": "model", "is_dir": True, "file_size": 0}]
    assert lathe.list_artifacts(run.run_id, "model/data") == [
        {"path": "model/data/deep", "is_dir": True, "file_size": 0},
        {"path": "model/data/weights.pt", "is_dir": False, "file_size": 10}]
    lathe.end_run()
    assert sorted(p for (r, p) in fake.artifacts if r == run.run_id) == [
        "model/MLmodel", "model/data/deep/x.json", "model/data/weights.pt"]


def test_download_a_file_and_a_directory(fake, tmp_path):
    src = tmp_path / "src"
    write(src / "a.txt", b"alpha")
    write(src / "sub" / "b.bin", os.urandom(200000))
    run = lathe.start_run()
    lathe.log_artifacts(str(src), artifact_path="out")
    lathe.end_run()
    # A file to a new name, and into an existing directory.
    got = lathe.download_artifact(run.run_id, "out/a.txt", str(tmp_path / "dl" / "renamed.txt"))
    assert got == str(tmp_path / "dl" / "renamed.txt")
    assert open(got, "rb").read() == b"alpha"
    got = lathe.download_artifact(run.run_id, "out/a.txt", str(tmp_path / "dl"))
    assert got == str(tmp_path / "dl" / "a.txt") and open(got, "rb").read() == b"alpha"
    # A directory, recursively, like cp -r.
    got = lathe.download_artifact(run.run_id, "out", str(tmp_path / "copy"))
    assert got == str(tmp_path / "copy")
    assert open(str(tmp_path / "copy" / "sub" / "b.bin"), "rb").read() == \
        open(str(src / "sub" / "b.bin"), "rb").read()
    got = lathe.download_artifact(run.run_id, "out", str(tmp_path / "copy"))
    assert got == str(tmp_path / "copy" / "out")
    # The whole root.
    lathe.download_artifact(run.run_id, "", str(tmp_path / "root"))
    assert open(str(tmp_path / "root" / "out" / "a.txt"), "rb").read() == b"alpha"
    # No temporary files are left behind.
    assert sorted(os.listdir(str(tmp_path / "dl"))) == ["a.txt", "renamed.txt"]
    with pytest.raises(lathe.LatheError) as e:
        lathe.download_artifact(run.run_id, "out/missing", str(tmp_path / "x"))
    assert e.value.code == "NOT_FOUND"
    assert not os.path.exists(str(tmp_path / "x"))


def test_uploads_and_downloads_are_retried(fake, tmp_path):
    write(tmp_path / "f.bin", b"payload" * 1000)
    run = lathe.start_run()
    fake.fail = [(503, {}, {"error": {"code": "UNAVAILABLE", "message": "draining"}}), "drop"]
    lathe.log_artifact(str(tmp_path / "f.bin"))
    assert fake.artifacts[(run.run_id, "f.bin")] == b"payload" * 1000
    fake.fail = [(502, {}, None)]
    got = lathe.download_artifact(run.run_id, "f.bin", str(tmp_path / "back.bin"))
    assert open(got, "rb").read() == b"payload" * 1000
    lathe.end_run()


def test_bad_input_is_refused_before_sending(fake, tmp_path):
    write(tmp_path / "f", b"x")
    run = lathe.start_run()
    for bad in ("../up", "a/./b", "a/.."):
        with pytest.raises(lathe.LatheError) as e:
            lathe.log_artifact(str(tmp_path / "f"), artifact_path=bad)
        assert e.value.code == "INVALID_ARGUMENT" and e.value.field == "artifact_path"
    with pytest.raises(lathe.LatheError) as e:
        lathe.log_artifact(str(tmp_path / "missing"))
    assert e.value.field == "local_path"
    with pytest.raises(lathe.LatheError) as e:
        lathe.log_artifacts(str(tmp_path / "f"))
    assert e.value.field == "local_dir"
    assert not [r for r in fake.requests if r[0] == "PUT"]
    with pytest.raises(lathe.LatheError) as e:
        lathe.list_artifacts("0" * 32)
    assert e.value.code == "NOT_FOUND"
    lathe.end_run()
    with pytest.raises(lathe.LatheError) as e:
        lathe.list_artifacts()  # no active run
    assert e.value.field == "run_id"
    assert lathe.list_artifacts(run.run_id) == []


def test_a_failing_local_write_is_not_retried(fake, tmp_path, monkeypatch):
    write(tmp_path / "f", b"x" * 100)
    run = lathe.start_run()
    lathe.log_artifact(str(tmp_path / "f"))
    lathe.end_run()
    monkeypatch.setenv("LATHE_RETRY_TIMEOUT", "30")

    class FullDisk(io.BytesIO):
        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    real_open = open
    monkeypatch.setattr(artifacts, "open",
                        lambda path, mode: FullDisk() if mode == "xb" else real_open(path, mode),
                        raising=False)
    started = time.monotonic()
    with pytest.raises(OSError) as e:
        lathe.download_artifact(run.run_id, "f", str(tmp_path / "out"))
    assert e.value.errno == errno.ENOSPC and time.monotonic() - started < 5
    gets = [r for r in fake.requests if r[0] == "GET" and r[1].endswith("/artifacts/f")]
    assert len(gets) == 1
    assert not os.path.exists(str(tmp_path / "out"))
