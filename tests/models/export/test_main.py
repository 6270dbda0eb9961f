"""Artefacts of `python -m models.export`: signatures, agreement between formats, manifest, CLI errors."""

import hashlib
import json
import socket
import subprocess
import sys

import numpy as np
import pytest

from models.export.weights import synthetic_images
from tests.conftest import REPO

MODELS = ("wide_resnet50_2", "mobilenet_v3_large")


@pytest.fixture(scope="module")
def batch() -> np.ndarray:
    return synthetic_images(np.random.default_rng(123), 6)


def _litert(path, images):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(str(path), num_threads=2)
    signature = interpreter.get_signature_list()
    assert signature == {"serving_default": {"inputs": ["images"], "outputs": ["probabilities"]}}
    detail = interpreter.get_input_details()[0]
    assert detail["dtype"] == np.uint8 and list(detail["shape_signature"]) == [-1, 224, 224, 3]
    return interpreter.get_signature_runner("serving_default")(images=images)["probabilities"]


@pytest.fixture(scope="module")
def outputs(exported_models, batch):
    import tensorflow as tf

    results = {}
    for name in MODELS:
        version_dir = exported_models / name / "1"
        loaded = tf.saved_model.load(str(version_dir))
        signature = loaded.signatures["serving_default"]
        _, inputs = signature.structured_input_signature
        assert set(inputs) == {"images"}
        assert inputs["images"].dtype == tf.uint8 and inputs["images"].shape.as_list() == [None, 224, 224, 3]
        out_spec = signature.structured_outputs["probabilities"]
        assert out_spec.dtype == tf.float32 and out_spec.shape.as_list() == [None, 1000]
        results[name] = {
            "saved_model": signature(images=tf.constant(batch))["probabilities"].numpy(),
            "float32": _litert(version_dir / "model.tflite", batch),
            "int8": _litert(version_dir / "model_int8.tflite", batch),
        }
    return results


@pytest.mark.parametrize("name", MODELS)
def test_outputs_are_softmax_and_not_flat(outputs, name):
    probabilities = outputs[name]["saved_model"]
    assert probabilities.shape == (6, 1000) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
    assert (probabilities >= 0).all()
    # BatchNorm re-estimation makes random models answer differently for different images.
    spread = np.abs(probabilities[0] - probabilities[1:]).max()
    print(f"{name}: max difference between images {spread:.2e}, argmax {probabilities.argmax(axis=1)}")
    assert spread > 1e-4


@pytest.mark.parametrize("name", MODELS)
def test_float32_tflite_agrees_with_saved_model(outputs, name):
    assert np.abs(outputs[name]["float32"] - outputs[name]["saved_model"]).max() < 1e-4


@pytest.mark.parametrize("name", MODELS)
def test_int8_tflite_keeps_the_top5(outputs, name):
    reference, quantised = outputs[name]["float32"], outputs[name]["int8"]
    overlaps = [
        len(set(np.argsort(-r)[:5]) & set(np.argsort(-q)[:5])) / 5 for r, q in zip(reference, quantised, strict=True)
    ]
    print(f"{name}: int8 vs float32 top-5 overlap {np.mean(overlaps):.0%} (per image {overlaps})")
    assert np.mean(overlaps) >= 0.6


@pytest.mark.parametrize("name", MODELS)
def test_manifest_describes_the_files(exported_models, name):
    version_dir = exported_models / name / "1"
    manifest = json.loads((version_dir / "manifest.json").read_text())
    assert manifest["model"] == name and manifest["version"] == 1
    assert manifest["weights"] == {"source": "random", "seed": 0}
    assert manifest["preprocessing"]["crop"] == 224
    assert manifest["preprocessing"]["resize_shorter"] == {"wide_resnet50_2": 232, "mobilenet_v3_large": 256}[name]
    assert manifest["input"]["name"] == "images" and manifest["output"]["name"] == "probabilities"
    assert {"saved_model.pb", "model.tflite", "model_int8.tflite"} <= set(manifest["files"])
    for relative, info in manifest["files"].items():
        data = (version_dir / relative).read_bytes()
        assert hashlib.sha256(data).hexdigest() == info["sha256"] and len(data) == info["bytes"]


def test_saved_model_stores_the_weights_once(exported_models):
    variables = exported_models / "wide_resnet50_2" / "1" / "variables"
    stored = sum(f.stat().st_size for f in variables.iterdir())
    assert stored < 1.05 * (68_883_240 + 2 * 34_112) * 4  # parameters + BN statistics, float32


def _export(*args, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "models.export", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


def _one_line_error(result, pattern):
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert pattern in lines[0]


def test_cli_rejects_an_unknown_model(tmp_path):
    _one_line_error(_export("--model", "resnet9000", "--out", str(tmp_path)), "unknown model 'resnet9000'")


def test_cli_rejects_an_unwritable_output(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    _one_line_error(
        _export("--model", "mobilenet_v3_large", "--weights", "random", "--out", str(blocker / "x")), "is not writable"
    )


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _export_imagenet_wrn(tmp_path, weights_url: str):
    out, cache = str(tmp_path / "out"), str(tmp_path / "cache")
    return _export(
        "--model",
        "wide_resnet50_2",
        "--weights",
        "imagenet",
        "--out",
        out,
        "--cache-dir",
        cache,
        "--weights-url",
        weights_url,
    )


def test_cli_fails_fast_when_imagenet_weights_cannot_be_downloaded(tmp_path):
    _one_line_error(
        _export_imagenet_wrn(tmp_path, f"http://127.0.0.1:{_closed_port()}/wide_resnet50_2-9ba9bcbe.pth"),
        "cannot download ImageNet weights",
    )


def test_cli_rejects_weights_with_a_wrong_checksum(tmp_path, weights_server):
    folder, base = weights_server
    (folder / "wide_resnet50_2-9ba9bcbe.pth").write_bytes(b"tampered")
    _one_line_error(_export_imagenet_wrn(tmp_path, f"{base}/wide_resnet50_2-9ba9bcbe.pth"), "checksum mismatch")
    assert not (tmp_path / "cache" / "wide_resnet50_2-9ba9bcbe.pth").exists()


def test_int8_keeps_the_float_top1_with_real_weights(shared_dir):
    """The pattern our own int8 exports must meet once real weights exist (random weights cannot show it)."""
    from ai_edge_litert.interpreter import Interpreter

    from tests.real_weights import assert_real_labels, photo_tensor

    photos = [photo_tensor(shared_dir, name) for name in ("chelsea", "coffee")]
    top1 = {}
    for variant in ("model.tflite", "model_int8.tflite"):
        runner = Interpreter(str(shared_dir / "models" / "efficientnet-lite0" / variant)).get_signature_runner()
        top1[variant] = [int(runner(args_0=photo)["output_0"].argmax()) for photo in photos]
    assert top1["model_int8.tflite"] == top1["model.tflite"]
    assert_real_labels(*top1["model_int8.tflite"])


def test_a_download_shows_progress_on_a_terminal_only(tmp_path, weights_server):
    from models.export.catalog import WeightsFile
    from models.export.progress import Progress
    from models.export.weights import fetch
    from tests.models.export.test_progress import Terminal

    folder, base = weights_server
    payload = bytes(range(256)) * 12_000  # 3 MB: several 1 MiB reads
    (folder / "weights-0123.pth").write_bytes(payload)
    entry = WeightsFile(f"{base}/weights-0123.pth", hashlib.sha256(payload).hexdigest()[:8])
    screen, log = Terminal(), Terminal()
    log.isatty = lambda: False
    fetch(entry, tmp_path / "screen", progress=Progress(screen))
    fetch(entry, tmp_path / "log", progress=Progress(log))
    assert "downloading weights-0123.pth: 1.0 of 3.1 MB (34%)" in screen.getvalue()
    assert screen.getvalue().endswith("downloaded weights-0123.pth (3.1 MB)\n")
    assert log.getvalue() == ""
