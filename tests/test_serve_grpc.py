"""`lathe serve --grpc`: the KServe V2 gRPC front end end to end.

Drives the real binary on the example model repository (examples/models,
generated into a temporary directory by make_repository.sh) with Debian's
python3-grpcio and message classes that protoc generates from
src/serving/protocols/grpc_predict_v2.proto at test time (no generated
service code: calls go through channel.unary_unary).

Skips, saying why, when the binary has no --grpc flag, when grpcio, protobuf
or protoc are missing, or when the example models cannot be built.
"""
import concurrent.futures
import importlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

from conftest import LATHE, ROOT

grpc = pytest.importorskip("grpc", reason="python3-grpcio is not installed")
pytest.importorskip("google.protobuf", reason="python3-protobuf is not installed")
np = pytest.importorskip("numpy")

PROTO_DIR = os.path.join(ROOT, "src", "serving", "protocols")
SERVICE = "/inference.GRPCInferenceService/"


def _serve_has_grpc():
    if not os.path.exists(LATHE):
        return False
    out = subprocess.run([LATHE, "serve", "--help"], capture_output=True, text=True)
    return "--grpc" in out.stdout + out.stderr


pytestmark = pytest.mark.skipif(not _serve_has_grpc(),
                                reason="`lathe serve` has no --grpc flag in this build")


@pytest.fixture(scope="module")
def pb(tmp_path_factory):
    protoc = shutil.which("protoc")
    if not protoc:
        pytest.skip("protoc is not installed (make deps)")
    out = tmp_path_factory.mktemp("v2_pb")
    subprocess.run([protoc, "-I", PROTO_DIR, f"--python_out={out}", "grpc_predict_v2.proto"],
                   check=True)
    sys.path.insert(0, str(out))
    try:
        return importlib.import_module("grpc_predict_v2_pb2")
    finally:
        sys.path.remove(str(out))


@pytest.fixture(scope="module")
def repository(tmp_path_factory):
    repo = tmp_path_factory.mktemp("models")
    script = os.path.join(ROOT, "examples", "models", "make_repository.sh")
    r = subprocess.run(["bash", script, str(repo)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("cannot build the example models: " + (r.stderr or r.stdout)[-400:])
    return repo


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Serve:
    def __init__(self, repo, workdir, extra=()):
        self.grpc_address = f"127.0.0.1:{_free_port()}"
        self.url_file = os.path.join(workdir, "serve.url")
        self.log_path = os.path.join(workdir, "serve.log")
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [LATHE, "serve", "--repository", str(repo), "--http", "127.0.0.1:0",
             "--grpc", self.grpc_address, "--url-file", self.url_file, *extra],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while not os.path.exists(self.url_file):
            if self.proc.poll() is not None:
                raise RuntimeError(f"lathe serve exited {self.proc.returncode}:\n{self.logs()}")
            if time.time() > deadline:
                raise RuntimeError("lathe serve did not start:\n" + self.logs())
            time.sleep(0.02)
        self.channel = grpc.insecure_channel(self.grpc_address)
        grpc.channel_ready_future(self.channel).result(timeout=10)

    def logs(self):
        with open(self.log_path) as f:
            return f.read()

    def rpc(self, pb, name):
        req = getattr(pb, name + "Request")
        res = getattr(pb, name + "Response")
        return self.channel.unary_unary(SERVICE + name, request_serializer=req.SerializeToString,
                                        response_deserializer=res.FromString)

    def stop(self):
        self.channel.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def serve(repository, tmp_path):
    s = Serve(repository, tmp_path)
    yield s
    assert s.stop() == 0, s.logs()


NP_TYPES = {"FP32": np.float32, "FP64": np.float64, "INT64": np.int64, "INT32": np.int32}


def _input(pb, t):
    data = np.array([math.nan if v is None else v for v in t["data"]],
                    dtype=NP_TYPES[t["datatype"]])
    return (pb.ModelInferRequest.InferInputTensor(name=t["name"], datatype=t["datatype"],
                                                  shape=t["shape"]),
            data.tobytes())


def test_health_and_metadata(serve, pb):
    assert serve.rpc(pb, "ServerLive")(pb.ServerLiveRequest(), timeout=5).live
    assert serve.rpc(pb, "ServerReady")(pb.ServerReadyRequest(), timeout=5).ready
    assert serve.rpc(pb, "ModelReady")(pb.ModelReadyRequest(name="mlp"), timeout=5).ready
    assert not serve.rpc(pb, "ModelReady")(pb.ModelReadyRequest(name="nope"), timeout=5).ready
    meta = serve.rpc(pb, "ServerMetadata")(pb.ServerMetadataRequest(), timeout=5)
    assert meta.name == "lathe"
    m = serve.rpc(pb, "ModelMetadata")(pb.ModelMetadataRequest(name="mlp"), timeout=5)
    assert m.platform == "pytorch_torchscript"
    assert [(t.name, t.datatype, list(t.shape)) for t in m.inputs] == [("x", "FP32", [-1, 256])]
    with pytest.raises(grpc.RpcError) as e:
        serve.rpc(pb, "ModelMetadata")(pb.ModelMetadataRequest(name="nope"), timeout=5)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("model", ["mlp", "dlrm", "fraud_xgb"])
def test_infer_matches_python_reference(serve, pb, repository, model):
    with open(os.path.join(repository, model, "reference.json")) as f:
        ref = json.load(f)
    infer = serve.rpc(pb, "ModelInfer")
    for case in ref["cases"]:
        req = pb.ModelInferRequest(model_name=model, id="ref")
        for t in case["inputs"]:
            tensor, raw = _input(pb, t)
            req.inputs.append(tensor)
            req.raw_input_contents.append(raw)
        res = infer(req, timeout=10)
        assert res.id == "ref" and res.model_version == "1"
        for i, want in enumerate(case["outputs"]):
            out = res.outputs[i]
            assert out.name == want["name"] and list(out.shape) == want["shape"]
            got = np.frombuffer(res.raw_output_contents[i], NP_TYPES[out.datatype])
            np.testing.assert_allclose(got, np.array(want["data"], dtype=got.dtype),
                                       rtol=ref["rtol"], atol=ref["atol"])


def test_typed_contents_both_ways(serve, pb):
    x = np.linspace(-1, 1, 256, dtype=np.float32)
    tensor = pb.ModelInferRequest.InferInputTensor(name="x", datatype="FP32", shape=[1, 256])
    tensor.contents.fp32_contents.extend(x.tolist())
    req = pb.ModelInferRequest(model_name="mlp", inputs=[tensor])
    req.parameters["binary_data_output"].bool_param = False
    res = serve.rpc(pb, "ModelInfer")(req, timeout=10)
    assert len(res.raw_output_contents) == 0
    assert len(res.outputs[0].contents.fp32_contents) == 1

    raw = pb.ModelInferRequest(model_name="mlp", inputs=[
        pb.ModelInferRequest.InferInputTensor(name="x", datatype="FP32", shape=[1, 256])])
    raw.raw_input_contents.append(x.tobytes())
    res_raw = serve.rpc(pb, "ModelInfer")(raw, timeout=10)
    assert np.frombuffer(res_raw.raw_output_contents[0], np.float32)[0] == pytest.approx(
        res.outputs[0].contents.fp32_contents[0], rel=1e-6)


def test_errors_name_the_tensor(serve, pb):
    infer = serve.rpc(pb, "ModelInfer")
    bad = pb.ModelInferRequest(model_name="mlp", inputs=[
        pb.ModelInferRequest.InferInputTensor(name="x", datatype="FP32", shape=[1, 256])])
    bad.raw_input_contents.append(b"\0" * 12)
    with pytest.raises(grpc.RpcError) as e:
        infer(bad, timeout=5)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert 'inputs[0] "x"' in e.value.details()

    wrong = pb.ModelInferRequest(model_name="mlp", inputs=[
        pb.ModelInferRequest.InferInputTensor(name="x", datatype="FP32", shape=[1, 3])])
    wrong.raw_input_contents.append(b"\0" * 12)
    with pytest.raises(grpc.RpcError) as e:
        infer(wrong, timeout=5)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and '"x"' in e.value.details()

    with pytest.raises(grpc.RpcError) as e:
        infer(pb.ModelInferRequest(model_name="nope"), timeout=5)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_concurrent_calls(serve, pb):
    infer = serve.rpc(pb, "ModelInfer")

    def one(i):
        x = np.full((1, 256), i / 64, dtype=np.float32)
        req = pb.ModelInferRequest(model_name="mlp", id=str(i), inputs=[
            pb.ModelInferRequest.InferInputTensor(name="x", datatype="FP32", shape=[1, 256])])
        req.raw_input_contents.append(x.tobytes())
        res = infer(req, timeout=30)
        return res.id, np.frombuffer(res.raw_output_contents[0], np.float32)[0]

    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        results = list(pool.map(one, range(256)))
    assert [r[0] for r in results] == [str(i) for i in range(256)]
    # The same input gives the same output whatever batch it ran in.
    again = dict(pool_result for pool_result in results)
    assert one(10)[1] == pytest.approx(again["10"], rel=1e-5, abs=1e-6)
