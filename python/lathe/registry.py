"""The model registry: registered models, their versions and aliases, over
the native routes /models… (docs/registry.md). Models belong to the project
(LATHE_PROJECT); names are unique in it.

Versions come back as the API's dicts: {name, version (int), created_at,
updated_at, user, description, stage, source, run_id, run_link, status,
tags, aliases}; get_model_version() adds "lineage" (the run, experiment,
job, pipeline and code snapshot the version came from).
"""
from typing import Any, Dict, Mapping, Optional, Tuple

from lathe import tracking
from lathe.errors import LatheError


def _model_path(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise LatheError("INVALID_ARGUMENT", "model name must be a non-empty string", field="name")
    return "/models/" + tracking._seg(name)


def _version_number(version: Any) -> int:
    try:
        if isinstance(version, bool) or (isinstance(version, float) and not version.is_integer()):
            raise ValueError
        n = int(version)
    except (TypeError, ValueError):
        n = 0
    if n < 1:
        raise LatheError("INVALID_ARGUMENT",
                         "version {!r} is not a version number (1, 2, ...)".format(version),
                         field="version")
    return n


def parse_runs_uri(uri: str) -> Tuple[str, str]:
    """"runs:/<run_id>/<path>" → (run_id, path); path is "" for the run's
    artifact root. Raises LatheError INVALID_ARGUMENT without a run id."""
    rest = uri[len("runs:/"):].strip("/") if uri.startswith("runs:/") else ""
    run_id, _, path = rest.partition("/")
    if not run_id:
        raise LatheError("INVALID_ARGUMENT",
                         "model_uri {!r}: expected runs:/<run_id>/<path>".format(uri),
                         field="model_uri")
    return run_id, path.strip("/")


def register_model(model_uri: str, name: str, tags: Optional[Mapping[str, Any]] = None,
                   description: Optional[str] = None) -> Dict[str, Any]:
    """Registers a new version of model `name` (created if it does not
    exist) whose files are at `model_uri`, and returns the version.

    model_uri: "runs:/<run_id>/<path>" (the source becomes the run's
    artifact URI + path, and the version is linked to the run), an
    "mlflow-artifacts:/…" URI, or any other URI (kept as given). `tags`
    (values as str()) and `description` go on the version.
    """
    if not isinstance(model_uri, str) or not model_uri:
        raise LatheError("INVALID_ARGUMENT", "model_uri must be a non-empty string",
                         field="model_uri")
    path = _model_path(name)
    source, run_id = model_uri, None
    if model_uri.startswith("runs:/"):
        run_id, rel = parse_runs_uri(model_uri)
        run = tracking._call("GET", "/runs/" + tracking._seg(run_id))
        artifact_uri = run.get("artifact_uri") or ""
        if not artifact_uri:
            raise LatheError("FAILED_PRECONDITION", "run {} has no artifact URI".format(run_id),
                             field="model_uri")
        source = artifact_uri.rstrip("/") + ("/" + rel if rel else "")
    try:
        tracking._call("POST", "/models", {"name": name})
    except LatheError as e:
        if e.code != "ALREADY_EXISTS":
            raise
    body = {"source": source}  # type: Dict[str, Any]
    if run_id:
        body["run_id"] = run_id
    if description is not None:
        body["description"] = description
    if tags:
        body["tags"] = {str(k): tracking._text(v) for k, v in tags.items()}
    return tracking._call("POST", path + "/versions", body)


def get_registered_model(name: str) -> Dict[str, Any]:
    """The registered model: {name, project, description, created_at,
    updated_at, tags, aliases: {alias: version}, latest_versions}."""
    return tracking._call("GET", _model_path(name))


def get_model_version(name: str, version: Any) -> Dict[str, Any]:
    """One version of a model, with its "lineage"."""
    return tracking._call("GET", "{}/versions/{}".format(_model_path(name), _version_number(version)))


def set_model_alias(name: str, alias: str, version: Any) -> Dict[str, Any]:
    """Points `alias` ("champion") at `version`, moving it if it points
    elsewhere; returns the version."""
    return tracking._call("PUT", _model_path(name) + "/aliases/" + tracking._seg(alias),
                          {"version": _version_number(version)})


def delete_model_alias(name: str, alias: str) -> None:
    """Deletes an alias; deleting one that is not there succeeds (NOT_FOUND
    only for an unknown model)."""
    tracking._call("DELETE", _model_path(name) + "/aliases/" + tracking._seg(alias))


def get_model_version_by_alias(name: str, alias: str) -> Dict[str, Any]:
    """The version `alias` points at."""
    return tracking._call("GET", _model_path(name) + "/aliases/" + tracking._seg(alias))
