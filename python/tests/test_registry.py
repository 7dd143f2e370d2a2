"""The model registry through the SDK against the in-memory fake."""
import pytest

import lathe
from lathe.registry import parse_runs_uri


def test_register_model_from_a_runs_uri_resolves_the_source_and_links_the_run(fake):
    with lathe.start_run() as run:
        pass
    v1 = lathe.register_model("runs:/{}/model".format(run.run_id), "fraud",
                              tags={"framework": "torch", "epochs": 3}, description="first")
    art = fake.runs[run.run_id]["artifact_uri"]
    assert v1["version"] == 1 and v1["source"] == art + "/model"
    assert v1["run_id"] == run.run_id
    assert v1["tags"] == {"framework": "torch", "epochs": "3"} and v1["description"] == "first"
    # The model exists now: the second registration tolerates ALREADY_EXISTS.
    v2 = lathe.register_model("mlflow-artifacts:/9/abc/artifacts/m", "fraud")
    assert v2["version"] == 2 and v2["source"] == "mlflow-artifacts:/9/abc/artifacts/m"
    assert v2["run_id"] is None
    v3 = lathe.register_model("s3://bucket/key", "fraud")
    assert v3["source"] == "s3://bucket/key"
    root = lathe.register_model("runs:/{}".format(run.run_id), "other")
    assert root["source"] == art
    assert lathe.get_registered_model("fraud")["latest_versions"][0]["version"] == 3


def test_aliases_and_version_reads(fake):
    with lathe.start_run(run_name="trainer") as run:
        pass
    lathe.register_model("runs:/{}/m".format(run.run_id), "fraud")
    lathe.register_model("runs:/{}/m".format(run.run_id), "fraud")
    v = lathe.set_model_alias("fraud", "champion", 1)
    assert v["version"] == 1 and v["aliases"] == ["champion"]
    assert lathe.get_model_version_by_alias("fraud", "champion")["version"] == 1
    lathe.set_model_alias("fraud", "champion", "2")  # moved; a numeric string is fine
    assert lathe.get_model_version_by_alias("fraud", "champion")["version"] == 2
    got = lathe.get_model_version("fraud", 2)
    assert got["aliases"] == ["champion"] and got["lineage"]["run_name"] == "trainer"
    assert lathe.get_registered_model("fraud")["aliases"] == {"champion": 2}
    lathe.delete_model_alias("fraud", "champion")
    lathe.delete_model_alias("fraud", "champion")  # already gone: fine
    with pytest.raises(lathe.LatheError) as e:
        lathe.get_model_version_by_alias("fraud", "champion")
    assert e.value.code == "NOT_FOUND"


def test_bad_input_and_missing_things(fake):
    for bad in (0, -1, "x", 1.5, True, None):
        with pytest.raises(lathe.LatheError) as e:
            lathe.get_model_version("fraud", bad)
        assert e.value.field == "version"
    with pytest.raises(lathe.LatheError) as e:
        lathe.register_model("runs:/", "fraud")
    assert e.value.field == "model_uri"
    with pytest.raises(lathe.LatheError) as e:
        lathe.register_model("", "fraud")
    assert e.value.field == "model_uri"
    with pytest.raises(lathe.LatheError) as e:
        lathe.register_model("s3://b/k", "")
    assert e.value.field == "name"
    with pytest.raises(lathe.LatheError) as e:
        lathe.register_model("runs:/{}/m".format("0" * 32), "fraud")
    assert e.value.code == "NOT_FOUND"
    assert "fraud" not in fake.models  # nothing registered for an unknown run
    with pytest.raises(lathe.LatheError) as e:
        lathe.get_model_version("nope", 1)
    assert e.value.code == "NOT_FOUND"


def test_parse_runs_uri():
    assert parse_runs_uri("runs:/abc/model/data") == ("abc", "model/data")
    assert parse_runs_uri("runs:/abc/") == ("abc", "")
    assert parse_runs_uri("runs:///abc/m/") == ("abc", "m")
    with pytest.raises(lathe.LatheError):
        parse_runs_uri("s3://x")
