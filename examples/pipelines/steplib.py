"""What the step scripts of this pipeline share: writing output values and
reaching the Lathe SDK only when the step runs under Lathe.

Inside a pipeline step, Lathe renders `{{outputs.parameters.NAME}}` and
`{{outputs.artifacts.NAME}}` to paths under $LATHE_OUTPUTS; the scripts take
those paths as arguments, so they also run by hand with any paths.
The SDK is on PYTHONPATH in every Lathe job, and a job with `tracking:` has
LATHE_RUN_ID; without both, the scripts only print what they would log.
"""
import json
import os


def write_value(path, value):
    """Writes one output parameter (the controller reads the file's text)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write(value if isinstance(value, str) else json.dumps(value))


def json_list(text, name):
    """A fanned-out upstream output arrives as a JSON array (in item order)."""
    try:
        value = json.loads(text)
    except ValueError as e:
        raise SystemExit(f"--{name}: not JSON ({e}): {text[:200]!r}")
    if not isinstance(value, list) or not value:
        raise SystemExit(f"--{name}: expected a non-empty JSON array, got {text[:200]!r}")
    return value


def tracking():
    """The lathe SDK module when this task has a tracking run, else None."""
    if not (os.environ.get("LATHE_RUN_ID") and os.environ.get("LATHE_SERVER")):
        return None
    import lathe
    return lathe
