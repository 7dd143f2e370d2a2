"""Shared by the train_*.py scripts: where a model goes in the repository,
and how its config.yaml and reference.json are written.

reference.json holds a few inputs and the outputs Python computed for them,
so a server (or serving_backend_test) can check it answers the same:

  {"model": "mlp", "rtol": 1e-4, "atol": 1e-5,
   "cases": [{"inputs":  [{"name", "datatype", "shape", "data"}],
              "outputs": [{"name", "datatype", "shape", "data"}]}]}

`data` is the tensor flattened row-major; NaN is written as null.
"""
import argparse
import json
import math
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--repository", default=os.path.join(HERE, "repository"),
                   help="model repository to write into (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


def version_dir(repository, model, version=1):
    d = os.path.join(repository, model, str(version))
    os.makedirs(d, exist_ok=True)
    return d


def write_config(repository, model, text):
    path = os.path.join(repository, model, "config.yaml")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def _flat(values):
    return [None if isinstance(v, float) and math.isnan(v) else v for v in values]


def tensor(name, datatype, array):
    """A reference tensor from a numpy array."""
    return {"name": name, "datatype": datatype, "shape": list(array.shape),
            "data": _flat(array.reshape(-1).tolist())}


def write_reference(repository, model, cases, rtol, atol):
    path = os.path.join(repository, model, "reference.json")
    with open(path, "w") as f:
        json.dump({"model": model, "rtol": rtol, "atol": atol, "cases": cases}, f)
        f.write("\n")
