"""Run artifacts: files logged to a run and read back, over the native
routes /runs/{run_id}/artifacts/{path} (docs/tracking.md "Artifacts").

Files are streamed both ways (Transport.upload / Transport.download): a
file is never read into memory whole. An upload is a PUT of one path, which
is idempotent, so it is retried like every other request; a download goes
to a temporary file beside its destination and is renamed into place when
complete.
"""
import os
import uuid
from typing import Any, Dict, List, Optional

from lathe import tracking
from lathe.errors import LatheError


def _segments(path: Optional[str], field: str, allow_empty: bool) -> List[str]:
    """`path` as artifact path segments ('/' or the OS separator between
    them; empty segments dropped). "." and ".." are refused here, before any
    byte is sent (the server refuses them too)."""
    text = (path or "").replace(os.sep, "/")
    parts = [p for p in text.split("/") if p]
    for p in parts:
        if p in (".", ".."):
            raise LatheError("INVALID_ARGUMENT",
                             "{}: {!r} has a {!r} segment".format(field, path, p), field=field)
    if not parts and not allow_empty:
        raise LatheError("INVALID_ARGUMENT", "{}: empty artifact path".format(field), field=field)
    return parts


def _files_path(run_id: str, parts: List[str]) -> str:
    path = "/runs/" + tracking._seg(run_id) + "/artifacts"
    if parts:
        path += "/" + "/".join(tracking._seg(p) for p in parts)
    return path


def _run_for_logging(run_id: Optional[str]) -> str:
    return run_id if run_id else tracking._active_or_start().run_id


def _run_for_reading(run_id: Optional[str]) -> str:
    if run_id:
        return run_id
    run = tracking.active_run()
    if run is None:
        raise LatheError("INVALID_ARGUMENT", "no run_id given and no active run", field="run_id")
    return run.run_id


def _upload(run_id: str, local_path: str, parts: List[str]) -> Dict[str, Any]:
    transport = tracking._transport()
    return transport.upload("PUT", tracking._project_path() + _files_path(run_id, parts), local_path)


# ---- logging

def log_artifact(local_path: str, artifact_path: Optional[str] = None,
                 run_id: Optional[str] = None) -> Dict[str, Any]:
    """Uploads the file `local_path` to the active run (started if none, as
    log_metric does; or to `run_id`) as `artifact_path`/<file name> (at the
    run's artifact root when artifact_path is None). Replaces a file logged
    at the same path. Returns the server's answer {path, file_size}.
    """
    if not os.path.isfile(local_path):
        raise LatheError("INVALID_ARGUMENT", "{!r} is not a file".format(local_path),
                         field="local_path")
    parts = _segments(artifact_path, "artifact_path", allow_empty=True)
    parts.append(os.path.basename(local_path))
    return _upload(_run_for_logging(run_id), local_path, parts)


def log_artifacts(local_dir: str, artifact_path: Optional[str] = None,
                  run_id: Optional[str] = None) -> List[Dict[str, Any]]:
    """Uploads every file under `local_dir` (walked top down, each
    directory's files in name order before its subdirectories; links to
    files are followed, links to directories are not) to
    `artifact_path`/<path relative to local_dir>. Empty directories are not
    recorded. Returns the server's answers, one per file.
    """
    if not os.path.isdir(local_dir):
        raise LatheError("INVALID_ARGUMENT", "{!r} is not a directory".format(local_dir),
                         field="local_dir")
    base = _segments(artifact_path, "artifact_path", allow_empty=True)
    rid = _run_for_logging(run_id)
    answers = []  # type: List[Dict[str, Any]]
    for root, dirs, files in os.walk(local_dir):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            if not os.path.isfile(full):  # a socket, a dangling link
                continue
            rel = os.path.relpath(full, local_dir)
            answers.append(_upload(rid, full, base + _segments(rel, "local_dir", allow_empty=False)))
    return answers


# ---- reading

def list_artifacts(run_id: Optional[str] = None, path: Optional[str] = None) -> List[Dict[str, Any]]:
    """The direct entries of the directory `path` (default: the artifact
    root) of run `run_id` (default: the active run), ordered by name, as
    dicts {path, is_dir, file_size}; `path` of each is relative to the run's
    artifact root, as MLflow lists them."""
    rid = _run_for_reading(run_id)
    parts = _segments(path, "path", allow_empty=True)
    answer = tracking._call("GET", _files_path(rid, []),
                            query={"path": "/".join(parts) if parts else None})
    return list(answer.get("files") or [])


def download_artifact(run_id: str, path: str, dst: str) -> str:
    """Downloads the artifact `path` of run `run_id` (a file, or a directory
    with everything under it; "" = the whole artifact root) and returns the
    local path written. Like `cp -r`: when `dst` is an existing directory
    the artifact lands inside it under its own name, otherwise it becomes
    `dst` (parent directories are created). Each file is written to a
    temporary file and renamed into place once complete.
    """
    if not run_id:
        raise LatheError("INVALID_ARGUMENT", "run_id is required", field="run_id")
    parts = _segments(path, "path", allow_empty=True)
    if not parts:
        os.makedirs(dst, exist_ok=True)
        _download_dir(run_id, "", dst)
        return dst
    target = os.path.join(dst, parts[-1]) if os.path.isdir(dst) else dst
    try:
        _download_file(run_id, parts, target)
        return target
    except LatheError as e:
        if e.code != "NOT_FOUND":
            raise
        # Not a file: a directory if it lists anything.
        listed = list_artifacts(run_id, "/".join(parts))
        if not listed:
            raise
    os.makedirs(target, exist_ok=True)
    _download_dir(run_id, "/".join(parts), target)
    return target


def _download_dir(run_id: str, path: str, target: str) -> None:
    for entry in list_artifacts(run_id, path or None):
        entry_parts = _segments(entry.get("path"), "path", allow_empty=False)
        local = os.path.join(target, entry_parts[-1])
        if entry.get("is_dir"):
            os.makedirs(local, exist_ok=True)
            _download_dir(run_id, "/".join(entry_parts), local)
        else:
            _download_file(run_id, entry_parts, local)


def _download_file(run_id: str, parts: List[str], target: str) -> None:
    directory = os.path.dirname(os.path.abspath(target))
    os.makedirs(directory, exist_ok=True)
    # Not mkstemp: its 0600 would stick to the file; open() applies the umask.
    tmp = os.path.join(directory, ".lathe-download-" + uuid.uuid4().hex)
    try:
        with open(tmp, "xb") as f:
            tracking._transport().download(tracking._project_path() + _files_path(run_id, parts), f)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
