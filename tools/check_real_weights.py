"""Real weights, end to end: the photos in tests/data answer the right ImageNet classes.

The public workflow's real-weights job runs each subcommand against the imagenet exports and our
TF-Serving image; the tests run the same code with the shared EfficientNet-Lite0 standing in.

  python -m tools.check_real_weights server --rest URL --model NAME [--manifest FILE]
         [--input images --output probabilities] [--prometheus] [--container NAME]
  python -m tools.check_real_weights gateway --primary-url grpc://HOST:PORT --primary-model NAME
         [--primary-manifest FILE] --fallback-base DIR --fallback-model NAME [--fallback-manifest FILE]
  python -m tools.check_real_weights int8 --model-dir DIR [--model NAME]

Each prints one line per check and exits 1 with the failed check's reason.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import requests
from prometheus_client.parser import text_string_to_metric_families

from gateway.imaging import ResizePolicy, decode, to_tensor
from gateway.settings import Settings
from local_mode.processes import Gateway, ModelServer

REPO = Path(__file__).resolve().parent.parent
PHOTOS = REPO / "tests" / "data"
CAT_CLASSES = range(281, 288)  # tabby .. Egyptian cat
ESPRESSO = 967
SERVING_UID = 10001
TIMEOUT_S = 60
# TF-Serving's Prometheus names: the metric path with every non-word character turned into ":"
# (GetPrometheusMetricName, tensorflow_serving/util/prometheus_exporter.cc:53); the batching
# session records each batch's size (RecordProcessedBatchSize, tensorflow_serving/batching/
# batching_util.h:144, task name "batching_session" from batching_session.h:173). Same lines in
# 2.20.0 and on master after 2.21.0.
REQUEST_COUNT = ":tensorflow:serving:request_count"
PROCESSED_BATCH_SIZE = ":tensorflow:serving:batching_session:processed_batch_size"
BATCHING_REQUESTS = 32  # twice batching.config's max_batch_size: a server ignoring it would batch more


class CheckFailed(AssertionError):
    """One failed check; the CLI prints its message and exits 1."""


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def assert_real_labels(top1_chelsea: int, top1_coffee: int, who: str = "model") -> None:
    expect(top1_chelsea in CAT_CLASSES, f"{who}: chelsea.jpg answered class {top1_chelsea}, not a cat (281-287)")
    expect(top1_coffee == ESPRESSO, f"{who}: coffee.jpg answered class {top1_coffee}, not espresso ({ESPRESSO})")


def policy_of(manifest: Path | None) -> ResizePolicy:
    """The resize policy the gateway would use for an export (its manifest), or the default."""
    env = {"FALLBACK_URL": "grpc://127.0.0.1:1", "FALLBACK_MODEL": "policy"}
    if manifest is not None:
        env["FALLBACK_MANIFEST"] = str(manifest)
    backend = Settings.from_env(env).fallback
    assert backend is not None  # FALLBACK_URL is set above
    return backend.policy


def photo_batch(policy: ResizePolicy) -> np.ndarray:
    """chelsea then coffee, preprocessed exactly as the gateway does: uint8 [2, 224, 224, 3]."""
    tensors = [
        to_tensor(
            decode((PHOTOS / f"{name}.jpg").read_bytes(), max_pixels=50_000_000, min_shorter=policy.resize_shorter),
            policy,
        )
        for name in ("chelsea", "coffee")
    ]
    return np.concatenate(tensors)


def predict(rest: str, model: str, images: np.ndarray, output: str) -> np.ndarray:
    response = requests.post(
        f"{rest}/v1/models/{model}:predict",
        timeout=TIMEOUT_S,
        json={"signature_name": "serving_default", "instances": images.tolist()},
    )
    expect(response.status_code == 200, f"{model}: predict answered {response.status_code}: {response.text[:300]}")
    predictions = response.json()["predictions"]
    if predictions and isinstance(predictions[0], dict):  # several outputs: one object per instance
        predictions = [row[output] for row in predictions]
    return np.asarray(predictions, dtype=np.float32)


def check_status(rest: str, model: str) -> str:
    body = requests.get(f"{rest}/v1/models/{model}", timeout=TIMEOUT_S).json()
    states = [entry["state"] for entry in body.get("model_version_status", [])]
    expect(states == ["AVAILABLE"], f"{model}: status {body}")
    return "status AVAILABLE"


def check_metadata(rest: str, model: str, input_name: str, output_name: str) -> str:
    body = requests.get(f"{rest}/v1/models/{model}/metadata", timeout=TIMEOUT_S).json()
    signature = body["metadata"]["signature_def"]["signature_def"]["serving_default"]

    def described(tensor: dict) -> tuple[str, list[int]]:
        return tensor["dtype"], [int(dim["size"]) for dim in tensor["tensor_shape"]["dim"]]

    inputs, outputs = signature["inputs"], signature["outputs"]
    expect(
        list(inputs) == [input_name] and described(inputs[input_name]) == ("DT_UINT8", [-1, 224, 224, 3]),
        f"{model}: serving_default inputs are {inputs}, not {input_name} uint8 [-1,224,224,3]",
    )
    expect(
        list(outputs) == [output_name] and described(outputs[output_name]) == ("DT_FLOAT", [-1, 1000]),
        f"{model}: serving_default outputs are {outputs}, not {output_name} float [-1,1000]",
    )
    return f"metadata: serving_default {input_name} uint8 [-1,224,224,3] -> {output_name} float [-1,1000]"


def check_prediction(rest: str, model: str, policy: ResizePolicy, output: str) -> str:
    probabilities = predict(rest, model, photo_batch(policy), output)
    expect(probabilities.shape == (2, 1000), f"{model}: predictions have shape {probabilities.shape}")
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-3, err_msg=f"{model}: not a softmax")
    top1 = probabilities.argmax(axis=1)
    assert_real_labels(int(top1[0]), int(top1[1]), model)
    return f"prediction: chelsea -> {top1[0]}, coffee -> {top1[1]}"


def metric_samples(page: str) -> dict[str, float]:
    """Prometheus text -> {sample name: value} summed over label sets, except a histogram bucket's
    upper bound, kept as `name{le="16"}`."""
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            key = f'{sample.name}{{le="{sample.labels["le"]}"}}' if "le" in sample.labels else sample.name
            samples[key] = samples.get(key, 0.0) + sample.value
    return samples


def scrape(rest: str) -> dict[str, float]:
    response = requests.get(f"{rest}/monitoring/prometheus/metrics", timeout=TIMEOUT_S)
    expect(response.status_code == 200, f"Prometheus endpoint answered {response.status_code}")
    return metric_samples(response.text)


def request_count(samples: dict[str, float]) -> float:
    """Requests TF-Serving counted (its counter has no _total suffix; the text parser adds one)."""
    return samples.get(f"{REQUEST_COUNT}_total", samples.get(REQUEST_COUNT, 0.0))


def max_batch_size(config: Path) -> int:
    match = re.search(r"max_batch_size\s*\{\s*value:\s*(\d+)\s*\}", config.read_text())
    if match is None:
        raise CheckFailed(f"{config}: no max_batch_size")
    return int(match.group(1))


def batch_sizes(before: dict[str, float], after: dict[str, float], limit: int) -> tuple[float, float, float]:
    """Between two scrapes: batches processed, images in them, and batches of at most ``limit``
    images (TF-Serving's buckets are powers of two, so the first bound at or above ``limit``)."""

    def delta(key: str) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    bound = 1 << max(limit - 1, 0).bit_length()
    return (
        delta(f"{PROCESSED_BATCH_SIZE}_count"),
        delta(f"{PROCESSED_BATCH_SIZE}_sum"),
        delta(f'{PROCESSED_BATCH_SIZE}_bucket{{le="{bound}"}}'),
    )


def check_prometheus_and_batching(rest: str, model: str, policy: ResizePolicy, output: str, config: Path) -> str:
    before = scrape(rest)
    expect(
        request_count(before) > 0,
        f"{REQUEST_COUNT} is absent or 0 after the prediction (monitoring.config not applied?)",
    )
    single = photo_batch(policy)[:1]
    with ThreadPoolExecutor(max_workers=BATCHING_REQUESTS) as pool:
        list(pool.map(lambda _: predict(rest, model, single, output), range(BATCHING_REQUESTS)))
    limit = max_batch_size(config)
    batches, images, within = batch_sizes(before, scrape(rest), limit)
    expect(
        batches > 0 and images / batches > 1.0,
        f"{BATCHING_REQUESTS} concurrent one-image requests ran as {batches:.0f} batches of {images:.0f} images: "
        "server-side batching has no effect",
    )
    expect(within == batches, f"{batches - within:.0f} batches were larger than {config}'s max_batch_size {limit}")
    return (
        f"Prometheus {REQUEST_COUNT} present; batching: {BATCHING_REQUESTS} concurrent requests in "
        f"{batches:.0f} batches of at most {limit} ({images / batches:.1f} images on average)"
    )


def container_uids(container: str) -> list[int]:
    """Real, effective, saved and filesystem UID of the container's main process."""
    status = subprocess.run(
        ["docker", "exec", container, "cat", "/proc/1/status"], capture_output=True, text=True, timeout=TIMEOUT_S
    )
    expect(status.returncode == 0, f"docker exec {container}: {status.stderr.strip()}")
    line = next(line for line in status.stdout.splitlines() if line.startswith("Uid:"))
    return [int(uid) for uid in line.split()[1:]]


def check_uid(container: str) -> str:
    uids = container_uids(container)
    expect(uids == [SERVING_UID] * 4, f"{container}: main process runs with UIDs {uids}, not {SERVING_UID}")
    return f"{container}: main process runs as UID {SERVING_UID}"


Plan = tuple[list[ModelServer], list[Callable[[], str]]]  # servers to start first, then the checks


def server_checks(args: argparse.Namespace, _scratch: Path) -> Plan:
    policy = policy_of(args.manifest)
    checks = [
        lambda: check_status(args.rest, args.model),
        lambda: check_metadata(args.rest, args.model, args.input, args.output),
        lambda: check_prediction(args.rest, args.model, policy, args.output),
    ]
    if args.prometheus:
        checks.append(
            lambda: check_prometheus_and_batching(args.rest, args.model, policy, args.output, args.batching_config)
        )
    if args.container:
        checks.append(lambda: check_uid(args.container))
    return [], checks


def classify(gateway_url: str, name: str) -> dict:
    data = (PHOTOS / f"{name}.jpg").read_bytes()
    response = requests.post(
        f"{gateway_url}/classify", files={"file": (f"{name}.jpg", data, "image/jpeg")}, timeout=TIMEOUT_S
    )
    expect(response.status_code == 200, f"gateway: {name}.jpg answered {response.status_code}: {response.text[:300]}")
    return response.json()


def check_gateway_answers(gateway_url: str, model: str, fallback: bool) -> str:
    answers = [classify(gateway_url, name) for name in ("chelsea", "coffee")]
    for answer in answers:
        expect(
            (answer["model"], answer["fallback"]) == (model, fallback),
            f"gateway: answered by {answer['model']} (fallback {answer['fallback']}), expected {model} "
            f"(fallback {fallback})",
        )
    top1 = [answer["predictions"][0]["index"] for answer in answers]
    assert_real_labels(top1[0], top1[1], f"gateway via {model}")
    return f"gateway via {model} (fallback {str(fallback).lower()}): chelsea -> {top1[0]}, coffee -> {top1[1]}"


def gateway_checks(args: argparse.Namespace, scratch: Path) -> Plan:
    """The primary answers through a full gateway; the fallback through a fallback-only gateway
    (what the Ingress fails over to), each with the real photos."""
    fallback = ModelServer(
        args.fallback_base, args.fallback_model, scratch / "fallback.log", MODEL_FILE=args.fallback_file
    )
    fallback_env = {"FALLBACK_MODEL": args.fallback_model, "REQUEST_DEADLINE_MS": "30000"}
    if args.fallback_manifest:
        fallback_env["FALLBACK_MANIFEST"] = str(args.fallback_manifest)
    primary_env = {"PRIMARY_URL": args.primary_url, "PRIMARY_MODEL": args.primary_model, "HEDGE": "false"}
    if args.primary_manifest:
        primary_env["PRIMARY_MANIFEST"] = str(args.primary_manifest)

    def through(env: dict[str, str], model: str, is_fallback: bool) -> str:
        gateway = Gateway(
            scratch / f"gateway-{model}.log", FALLBACK_URL=f"grpc://{fallback.grpc_target}", **fallback_env, **env
        )
        with gateway:
            gateway.start(timeout=TIMEOUT_S)
            return check_gateway_answers(gateway.url, model, is_fallback)

    return [fallback], [
        lambda: through(primary_env, args.primary_model, False),
        lambda: through({}, args.fallback_model, True),
    ]


def int8_checks(args: argparse.Namespace, scratch: Path) -> Plan:
    """The dynamic-range int8 file keeps the float file's top-1 on both photos (both served by our server)."""
    manifest = args.model_dir / "manifest.json"
    policy = policy_of(manifest if manifest.exists() else None)
    servers = [
        ModelServer(args.model_dir.parent.parent, args.model, scratch / f"{file}.log", MODEL_FILE=file)
        for file in ("model.tflite", "model_int8.tflite")
    ]

    def top1(server: ModelServer) -> list[int]:
        status = requests.get(f"{server.rest}/v1/models/{args.model}", timeout=TIMEOUT_S).json()
        served = status["model_version_status"][0]["version"]
        expect(served == args.model_dir.name, f"{args.model}: version {served} is served, not {args.model_dir.name}")
        metadata = requests.get(f"{server.rest}/v1/models/{args.model}/metadata", timeout=TIMEOUT_S).json()
        output = next(iter(metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]["outputs"]))
        return predict(server.rest, args.model, photo_batch(policy), output).argmax(axis=1).tolist()

    def compare() -> str:
        float_top1, int8_top1 = (top1(server) for server in servers)
        assert_real_labels(float_top1[0], float_top1[1], f"{args.model} float")
        expect(int8_top1 == float_top1, f"{args.model}: int8 top-1 {int8_top1} differs from float top-1 {float_top1}")
        return f"int8: {args.model} keeps the float top-1 (chelsea -> {int8_top1[0]}, coffee -> {int8_top1[1]})"

    return servers, [compare]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.check_real_weights", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    server = commands.add_parser("server", help="a TF-Serving REST endpoint: status, metadata, labels, metrics")
    server.add_argument("--rest", required=True, help="base URL, e.g. http://127.0.0.1:8501")
    server.add_argument("--model", required=True)
    server.add_argument("--manifest", type=Path, help="the export's manifest.json (resize policy)")
    server.add_argument("--input", default="images")
    server.add_argument("--output", default="probabilities")
    server.add_argument("--prometheus", action="store_true", help="check the metrics endpoint and batching")
    server.add_argument(
        "--batching-config",
        type=Path,
        default=REPO / "models" / "primary" / "batching.config",
        help="the server's batching parameters (max_batch_size is checked)",
    )
    server.add_argument("--container", help="docker container running the server: check its UID")
    gateway = commands.add_parser("gateway", help="through our gateway, from the primary and from the fallback")
    gateway.add_argument("--primary-url", required=True)
    gateway.add_argument("--primary-model", required=True)
    gateway.add_argument("--primary-manifest", type=Path)
    gateway.add_argument("--fallback-base", type=Path, required=True, help="MODEL_BASE_PATH of the fallback export")
    gateway.add_argument("--fallback-model", required=True)
    gateway.add_argument("--fallback-file", default="model.tflite")
    gateway.add_argument("--fallback-manifest", type=Path)
    int8 = commands.add_parser("int8", help="the int8 .tflite keeps the float .tflite's top-1")
    int8.add_argument("--model-dir", type=Path, required=True, help="<base>/<model>/<version> with both files")
    int8.add_argument("--model", help="model name (default: the folder above the version)")
    args = parser.parse_args(argv)
    if args.command == "int8" and not args.model:
        args.model = args.model_dir.parent.name
    return args


PLANS = {"server": server_checks, "gateway": gateway_checks, "int8": int8_checks}


def run(argv: list[str] | None = None) -> None:
    """Run the chosen checks, printing each; raises CheckFailed (an AssertionError) on the first failure."""
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="check_real_weights-") as scratch:
        servers, checks = PLANS[args.command](args, Path(scratch))
        try:
            for server in servers:
                server.start(timeout=180)
            for check in checks:
                print(f"ok: {check()}", flush=True)
        except BaseException:
            for log in sorted(Path(scratch).glob("*.log")):
                print(f"--- {log.name}\n{log.read_text(errors='replace')[-2000:]}", file=sys.stderr)
            raise
        finally:
            for server in servers:
                if server.process is not None:
                    server.stop()


def main(argv: list[str] | None = None) -> int:
    try:
        run(argv)
    except (AssertionError, requests.RequestException, KeyError, ValueError, TimeoutError, RuntimeError) as exc:
        print(f"check_real_weights: FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
