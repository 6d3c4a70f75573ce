"""A model file is untrusted input (issue 30, rows 2, 6, 7, 8, 15, 19): crafted ONNX graphs, built here with
``onnx.helper`` and carrying percept's metadata so they pass the kind check, are refused at load with one line
and exit 2 (wrong output, half-size output, a bad ``percept.min_size``, a huge allocation), and a graph that would
run for ever is stopped by its probe's time budget and by Ctrl-C (a real SIGINT to a real process)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto as T  # noqa: E402
from onnx import helper as h  # noqa: E402
from onnx import numpy_helper as nh  # noqa: E402

from percept.cli import main  # noqa: E402
from percept.errors import PerceptError  # noqa: E402

META = {"percept.kind": "style-transformer", "percept.name": "crafted", "percept.min_size": "8"}
REPO = Path(__file__).resolve().parents[1]


def save(path: Path, nodes, out_type=T.FLOAT, out_shape=("n", 3, "h", "w"), inits=(), meta=None) -> Path:
    graph = h.make_graph(nodes, "crafted", [h.make_tensor_value_info("input", T.FLOAT, ["n", 3, "h", "w"])],
                         [h.make_tensor_value_info("output", out_type, list(out_shape))], initializer=list(inits))
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 18)])
    model.ir_version = 9
    for k, v in {**META, **(meta or {})}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(model, str(path))
    return path


def identity(path: Path, **kw) -> Path:
    return save(path, [h.make_node("Identity", ["input"], ["output"])], **kw)


def one_channel(path: Path) -> Path:
    w = nh.from_array(np.full((1, 3, 1, 1), 1 / 3, np.float32), "w")
    return save(path, [h.make_node("Conv", ["input", "w"], ["output"])], out_shape=("n", 1, "h", "w"), inits=[w])


def one_channel_undeclared(path: Path) -> Path:
    """1 channel out, but the declared output claims 3: only the probe run tells."""
    w = nh.from_array(np.full((1, 3, 1, 1), 1 / 3, np.float32), "w")
    return save(path, [h.make_node("Conv", ["input", "w"], ["output"])], inits=[w])


def int_output(path: Path) -> Path:
    return save(path, [h.make_node("Cast", ["input"], ["output"], to=T.INT32)], out_type=T.INT32)


def wrong_rank(path: Path) -> Path:
    axis = nh.from_array(np.array([0], np.int64), "axis")
    return save(path, [h.make_node("ReduceMean", ["input", "axis"], ["output"], keepdims=0)],
                out_shape=(3, "h", "w"), inits=[axis])


def half_size(path: Path) -> Path:
    w = nh.from_array(np.eye(3, dtype=np.float32).reshape(3, 3, 1, 1), "w")
    return save(path, [h.make_node("Conv", ["input", "w"], ["output"], strides=[2, 2])], inits=[w])


def huge_allocation(path: Path, elements: int = 30_000_000_000) -> Path:
    """A ConstantOfShape of 3e10 floats (120 GB), reduced to a scalar added to the input."""
    shape = nh.from_array(np.array([elements], np.int64), "shape")
    axis = nh.from_array(np.array([0], np.int64), "axis")
    nodes = [h.make_node("ConstantOfShape", ["shape"], ["big"], value=nh.from_array(np.array([0.0], np.float32))),
             h.make_node("ReduceMax", ["big", "axis"], ["m"], keepdims=0),
             h.make_node("Add", ["input", "m"], ["output"])]
    return save(path, nodes, inits=[shape, axis])


def endless_loop(path: Path, trips: int = 10**15) -> Path:
    """A Loop of 10^15 iterations (an add each) whose result, times zero, is added to the input."""
    body = h.make_graph([h.make_node("Identity", ["cond_in"], ["cond_out"]),
                         h.make_node("Add", ["acc_in", "one"], ["acc_out"])], "body",
                        [h.make_tensor_value_info("i", T.INT64, []), h.make_tensor_value_info("cond_in", T.BOOL, []),
                         h.make_tensor_value_info("acc_in", T.FLOAT, [])],
                        [h.make_tensor_value_info("cond_out", T.BOOL, []),
                         h.make_tensor_value_info("acc_out", T.FLOAT, [])],
                        initializer=[nh.from_array(np.array(1.0, np.float32), "one")])
    inits = [nh.from_array(np.array(trips, np.int64), "trips"), nh.from_array(np.array(True), "cond"),
             nh.from_array(np.array(0.0, np.float32), "acc0"), nh.from_array(np.array(0.0, np.float32), "zero")]
    nodes = [h.make_node("Loop", ["trips", "cond", "acc0"], ["acc"], body=body),
             h.make_node("Mul", ["acc", "zero"], ["z"]),
             h.make_node("Add", ["input", "z"], ["output"])]
    return save(path, nodes, inits=inits)


def one_line_error(capsys, argv: list[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("percept: error: "), err
    assert "Traceback" not in err
    return lines[0]


def openvino_backends() -> list[str]:
    from percept.inference.openvino_backend import openvino_installed

    return ["onnx", "openvino"] if openvino_installed() else ["onnx"]


@pytest.mark.parametrize("backend", openvino_backends())
@pytest.mark.parametrize("craft, words", [
    (one_channel, "1 channel"),
    (one_channel_undeclared, "1 channel"),
    (int_output, "int32"),
    (wrong_rank, "3 dimensions"),
    (half_size, "returns 1x3x8x10"),
])
def test_a_model_with_a_wrong_output_is_refused_at_load(capsys, tmp_path, photo_path, backend, craft, words):
    """Rows 6 and 15: one line naming the file and what is wrong with its output, exit 2, nothing written."""
    model = craft(tmp_path / "bad.onnx")
    out = tmp_path / "out.png"
    line = one_line_error(capsys, ["stylize", str(photo_path), "--model", str(model), "--backend", backend,
                                   "-o", str(out)])
    assert str(model) in line and "not a percept style model" in line and words in line, line
    assert not out.exists()


@pytest.mark.parametrize("backend", openvino_backends())
def test_a_huge_allocation_is_one_line(capsys, tmp_path, photo_path, backend):
    """Row 7: onnxruntime's failed 120 GB allocation and OpenVINO's bad_alloc, at the probe run, as one line."""
    model = huge_allocation(tmp_path / "big.onnx")
    line = one_line_error(capsys, ["stylize", str(photo_path), "--model", str(model), "--backend", backend,
                                   "-o", str(tmp_path / "out.png")])
    assert str(model) in line and ("allocate memory" in line or "bad_alloc" in line), line
    assert "Exception from" not in line


@pytest.mark.parametrize("value", ["8.5", "eight", "", "-3", "0", "99999999999999999999"])
def test_a_bad_min_size_in_the_metadata_is_one_line(capsys, tmp_path, photo_path, value):
    """Row 8: a non-integer (or absurd) ``percept.min_size`` is refused with one line."""
    model = identity(tmp_path / "m.onnx", meta={"percept.min_size": value})
    line = one_line_error(capsys, ["stylize", str(photo_path), "--model", str(model), "-o", str(tmp_path / "o.png")])
    assert "percept.min_size" in line and str(model) in line, line


def test_a_well_formed_crafted_model_still_runs(tmp_path):
    """The checks refuse only what is wrong: an identity graph with percept metadata runs and returns its input."""
    from percept.inference.engine import Engine

    engine = Engine(identity(tmp_path / "id.onnx"), backend="onnx", device="cpu")
    x = np.random.default_rng(0).random((2, 3, 17, 23), dtype=np.float32)
    np.testing.assert_array_equal(engine.run(x), x)


def test_the_kind_message_names_the_kind_the_file_has(tmp_path):
    """Row 19: a file with a percept.kind that is not a style model is not told it has none."""
    from percept.inference.runtime import OnnxBackend

    with pytest.raises(PerceptError, match="'some-other-kind'") as info:
        OnnxBackend(identity(tmp_path / "k.onnx", meta={"percept.kind": "some-other-kind"}), "cpu", None)
    assert "no percept.kind" not in str(info.value)


def test_openvino_reasons_are_kept():
    """Row 19: OpenVINO's multi-line error gives its reason, not the "Exception from ...cpp:84:" frame."""
    from percept.inference.runtime import runtime_reason

    text = ("Exception from src/inference/src/cpp/core.cpp:84:\nException from src/frontends/onnx/frontend/src/"
            "frontend.cpp:123:\nCheck 'x' failed at src/frontends/onnx/x.cpp:7:\nunsupported opset 99\n\n")
    assert runtime_reason(RuntimeError(text)) == "unsupported opset 99"
    ort = ("[ONNXRuntimeError] : 1 : FAIL : Non-zero status code returned while running ConstantOfShape node. "
           "Name:'' Status Message: /onnxruntime_src/onnxruntime/core/framework/bfc_arena.cc:360 void* "
           "onnxruntime::BFCArena::AllocateRawInternal(size_t, bool, onnxruntime::Stream*) Failed to allocate memory")
    assert runtime_reason(RuntimeError(ort)) == "Failed to allocate memory"


def test_a_pickle_given_as_a_decoder_is_not_a_none_model(tmp_path, capsys, photo_path, painting_path):
    """Row 19: a ``.pt`` that is not a percept model, given to ``--decoder``, is "not a percept model file"."""
    import pickle

    bad = tmp_path / "evil.pt"
    bad.write_bytes(pickle.dumps({"hello": 1}))
    code = main(["stylize", str(photo_path), "--style", str(painting_path), "--method", "adain",
                 "--decoder", str(bad), "-o", str(tmp_path / "o.png")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "'None'" not in err and "percept" in err, err


def test_an_endless_graph_is_stopped_by_the_probe_budget(tmp_path, monkeypatch):
    """Row 2: the load's probe run has a time budget; a Loop of 10^15 iterations is terminated through
    onnxruntime's RunOptions and refused with one error."""
    from percept.inference import runtime

    monkeypatch.setattr(runtime, "PROBE_SECONDS", 1.0)
    model = endless_loop(tmp_path / "loop.onnx")
    start = time.monotonic()
    with pytest.raises(PerceptError, match="ran longer than 1 s"):
        runtime.OnnxBackend(model, "cpu", 1)
    assert time.monotonic() - start < 15


@pytest.mark.parametrize("backend", openvino_backends())
def test_ctrl_c_stops_an_endless_model(tmp_path, photo_path, backend):
    """Row 2: a real SIGINT to a real `percept stylize` busy in a crafted endless Loop ends it with one line
    and exit 130, well within the probe's budget (it does not wait for the budget)."""
    model = endless_loop(tmp_path / "loop.onnx")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "percept", "stylize", str(photo_path), "--model", str(model),
                             "--backend", backend, "-o", str(tmp_path / "o.png")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    # SIGINT once the runtime is loaded (a Ctrl-C inside torch's import is another matter), then into the Loop
    library = "onnxruntime_pybind11_state" if backend == "onnx" else "libopenvino"
    deadline = time.monotonic() + 90
    while proc.poll() is None and time.monotonic() < deadline and library not in Path(f"/proc/{proc.pid}/maps").read_text():
        time.sleep(0.2)
    time.sleep(2)
    assert proc.poll() is None, proc.communicate()
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("Ctrl-C did not stop percept within 60 s")
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["percept: interrupted"], err
    assert time.monotonic() - sent < 8
    assert not (tmp_path / "o.png").exists()


def test_an_error_caused_by_ctrl_c_is_the_ctrl_c():
    """Row 10: torch.onnx's exporter turns a KeyboardInterrupt that lands inside it into its own error (three
    tracebacks, exit 1); the exporter's functions give the Ctrl-C back."""
    from percept.inference.export import keep_interrupts

    @keep_interrupts
    def export_like_torch():
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            try:
                raise AttributeError("module 'torch._dynamo' has no attribute 'exc'")
            except AttributeError as inner:
                raise RuntimeError("Failed to export the model with torch.export") from inner

    with pytest.raises(KeyboardInterrupt):
        export_like_torch()

    @keep_interrupts
    def plain_failure():
        raise ValueError("no Ctrl-C here")

    with pytest.raises(ValueError):
        plain_failure()


@pytest.mark.parametrize("delay", [4.5, 6.5])
def test_ctrl_c_during_export_is_one_line_and_writes_nothing(tmp_path, delay):
    """Row 10: a real SIGINT some seconds into `percept export` (inside torch.onnx's exporter, the onnxruntime
    comparison or the OpenVINO check, depending on the machine): "percept: interrupted", exit 130, no file;
    or, on a machine fast enough to finish first, the finished file and exit 0. Never a traceback."""
    out = tmp_path / "x.onnx"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "percept", "export", "starry_night", "-o", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    time.sleep(delay)
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        assert out.is_file() and not err.strip(), err
    else:
        assert proc.returncode == 130, err
        assert err.strip().splitlines() == ["percept: interrupted"], err
        assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == (["x.onnx"] if proc.returncode == 0 else [])


def test_a_one_channel_model_in_video_is_refused_at_load_not_a_full_disk(capsys, tmp_path):
    """Row 19: `video` with a 1-channel model said "is the disk full?"; the model is now refused at load."""
    cv2 = pytest.importorskip("cv2")
    clip = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    for i in range(5):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    model = one_channel(tmp_path / "one.onnx")
    line = one_line_error(capsys, ["video", str(clip), "--model", str(model), "-o", str(tmp_path / "v.mp4")])
    assert "1 channel" in line and "disk" not in line, line
    assert not (tmp_path / "v.mp4").exists()


# ------------------------------------------------------------------ the probe's held cases, kept as regressions

class _Payload:
    """A pickle that would write a file when unpickled (a hostile ``.pt``)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "ran"))


@pytest.mark.parametrize("argv", [
    ["stylize", "PHOTO", "--model", "EVIL", "-o", "OUT/o.png"],
    ["stylize", "PHOTO", "--style", "PAINTING", "--decoder", "EVIL", "-o", "OUT/o.png"],
    ["export", "EVIL", "-o", "OUT/evil.onnx"],
], ids=["model", "decoder", "export"])
def test_a_pickle_payload_in_a_pt_file_never_runs(tmp_path, capsys, photo_path, painting_path, argv):
    """torch.load with weights_only=True refuses the payload: one line, exit 2, and the payload's file is never
    written (the class of the probe's 13 pickle entry points that held)."""
    import torch

    marker = tmp_path / "pwned.txt"
    evil = tmp_path / "evil.pt"
    torch.save({"kind": "style-transformer", "config": {}, "state_dict": {}, "card": _Payload(marker)}, evil)
    (tmp_path / "out").mkdir()
    subs = {"PHOTO": str(photo_path), "PAINTING": str(painting_path), "EVIL": str(evil)}
    args = [subs.get(a, a.replace("OUT", str(tmp_path / "out"))) for a in argv]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("percept: error: ") and "Traceback" not in err
    assert not marker.exists() and not any((tmp_path / "out").iterdir())


def test_external_data_outside_the_models_folder_is_refused(tmp_path, capsys, photo_path):
    """An initializer stored as external data whose location leaves the model's folder (``../secret.bin``) is not
    read: one line, exit 2, no traceback (the class of the probe's external-data cases that held)."""
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.full(9, 1 / 3, np.float32).tobytes())
    inside = tmp_path / "models" / "inside.bin"  # the same file inside the folder is read: the model then runs
    folder = tmp_path / "models"
    folder.mkdir()
    w = nh.from_array(np.full((3, 3, 1, 1), 1 / 3, np.float32), "w")  # a valid 3-channel model if it were read
    model = save(folder / "ext.onnx", [h.make_node("Conv", ["input", "w"], ["output"])], inits=[w])
    proto = onnx.load(str(model))
    init = proto.graph.initializer[0]
    init.ClearField("float_data")
    init.ClearField("raw_data")
    init.data_location = T.EXTERNAL
    for k, v in (("location", "../secret.bin"), ("offset", "0"), ("length", str(secret.stat().st_size))):
        entry = init.external_data.add()
        entry.key, entry.value = k, v
    onnx.save(proto, str(model))
    ok = onnx.load(str(model), load_external_data=False)
    ok.graph.initializer[0].external_data[0].value = "inside.bin"
    onnx.save(ok, str(folder / "ok.onnx"))
    inside.write_bytes(secret.read_bytes())
    assert main(["stylize", str(photo_path), "--model", str(folder / "ok.onnx"), "-o", str(tmp_path / "ok.png")]) == 0
    capsys.readouterr()
    for backend in ("onnx", "openvino"):
        assert main(["stylize", str(photo_path), "--model", str(model), "--backend", backend,
                     "-o", str(tmp_path / "o.png")]) == 2, backend
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("percept: error: ") and "Traceback" not in err, (backend, err)
        assert not (tmp_path / "o.png").exists()
