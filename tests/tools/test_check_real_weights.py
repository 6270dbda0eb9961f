"""The real-weights checks the public workflow runs, here with the shared EfficientNet-Lite0 standing in
for WRN-50-2 (primary, float) and MobileNetV3 (fallback, int8) and tests/data's photos."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from tests.docker_engine import STAND_IN_IMAGE, docker_engine_or_skip
from tools.check_real_weights import (
    PROCESSED_BATCH_SIZE,
    REPO,
    CheckFailed,
    assert_real_labels,
    batch_sizes,
    check_uid,
    main,
    max_batch_size,
    metric_samples,
    request_count,
)


def test_server_check_passes_on_a_real_weights_server(efficientnet, capsys):
    assert (
        main(
            [
                "server",
                "--rest",
                efficientnet.rest,
                "--model",
                "efficientnet",
                "--input",
                "args_0",
                "--output",
                "output_0",
            ]
        )
        == 0
    ), capsys.readouterr().err
    out = capsys.readouterr().out
    assert "ok: status AVAILABLE" in out and "ok: metadata" in out
    assert "ok: prediction: chelsea -> 28" in out and "coffee -> 967" in out


def test_server_check_fails_when_the_signature_is_not_the_contract(efficientnet, capsys):
    # Our contract names the tensors images/probabilities; the EfficientNet file names them args_0/output_0.
    assert main(["server", "--rest", efficientnet.rest, "--model", "efficientnet"]) == 1
    assert "serving_default inputs are" in capsys.readouterr().err


def gateway_check(primary_target: str, fallback_base: Path) -> list[str]:
    """The gateway check's arguments: the float EfficientNet as the primary, the int8 one as the fallback."""
    return [
        "gateway",
        "--primary-url",
        f"grpc://{primary_target}",
        "--primary-model",
        "efficientnet",
        "--fallback-base",
        str(fallback_base),
        "--fallback-model",
        "efficientnet_int8",
    ]


def test_gateway_check_answers_from_the_primary_and_from_the_fallback(efficientnet, efficientnet_int8_base, capsys):
    assert main(gateway_check(efficientnet.grpc_target, efficientnet_int8_base)) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "ok: gateway via efficientnet (fallback false): chelsea -> 28" in out
    assert "ok: gateway via efficientnet_int8 (fallback true): chelsea -> 28" in out


def test_gateway_check_fails_when_the_fallback_answers_for_the_primary(efficientnet_int8_base, capsys):
    from local_mode.processes import free_port

    assert main(gateway_check(f"127.0.0.1:{free_port()}", efficientnet_int8_base)) == 1
    assert "answered by efficientnet_int8 (fallback True), expected efficientnet" in capsys.readouterr().err


def test_int8_check_passes_when_the_int8_file_keeps_the_answers(efficientnet_float_twice, capsys):
    assert main(["int8", "--model-dir", str(efficientnet_float_twice)]) == 0, capsys.readouterr().err
    assert "ok: int8: efficientnet keeps the float top-1 (chelsea -> 285, coffee -> 967)" in capsys.readouterr().out


def test_int8_check_catches_a_changed_top1(efficientnet_export, capsys):
    # EfficientNet-Lite0's int8 file moves chelsea.jpg from Egyptian cat (285) to tiger cat (282),
    # two cat classes nearly tied in the float model: exactly the change the WRN check must catch.
    assert main(["int8", "--model-dir", str(efficientnet_export)]) == 1
    assert "int8 top-1 [282, 967] differs from float top-1 [285, 967]" in capsys.readouterr().err


@pytest.mark.parametrize(("chelsea", "coffee"), [(967, 967), (281, 281), (280, 967), (288, 967)])
def test_labels_outside_the_expected_classes_fail(chelsea, coffee):
    with pytest.raises(CheckFailed):
        assert_real_labels(chelsea, coffee)


def tfserving_page(batches: list[int], requests: int) -> str:
    """A page as TF-Serving's exporter writes it (prometheus_exporter.cc SerializeHistogram/SerializeScalar:
    `# TYPE` lines, cumulative buckets, then `_sum{}` and `_count{}` with empty braces for no labels)."""
    limits = [2**i for i in range(14)]
    buckets = [f'{PROCESSED_BATCH_SIZE}_bucket{{le="{limit}"}} {sum(b <= limit for b in batches)}' for limit in limits]
    return "\n".join(
        [
            "# TYPE :tensorflow:serving:request_count counter",
            f':tensorflow:serving:request_count{{model_name="m",status="OK"}} {requests}',
            f"# TYPE {PROCESSED_BATCH_SIZE} histogram",
            *buckets,
            f'{PROCESSED_BATCH_SIZE}_bucket{{le="+Inf"}} {len(batches)}',
            f"{PROCESSED_BATCH_SIZE}_sum{{}} {sum(batches)}",
            f"{PROCESSED_BATCH_SIZE}_count{{}} {len(batches)}",
            "",
        ]
    )


def test_batches_are_measured_between_two_scrapes():
    before = metric_samples(tfserving_page([1, 2], requests=3))
    after = metric_samples(tfserving_page([1, 2, 8, 8, 16, 32], requests=67))
    assert batch_sizes(before, after, limit=16) == (4, 64, 3)  # 8, 8, 16 within 16; 32 is not
    assert batch_sizes(before, after, limit=12) == (4, 64, 3)  # buckets are powers of two: 12 reads le="16"
    assert (request_count(before), request_count(after)) == (3, 67)


def test_no_batching_metric_means_no_batches():
    page = metric_samples(
        "# TYPE :tensorflow:serving:request_count counter\n"
        ':tensorflow:serving:request_count{model_name="m",status="OK"} 40\n'
    )
    assert batch_sizes(page, page, limit=16) == (0, 0, 0) and request_count(page) == 40
    assert request_count(metric_samples("")) == 0


def test_the_shipped_batching_config_is_read():
    assert max_batch_size(REPO / "models" / "primary" / "batching.config") == 16


@pytest.mark.docker
@pytest.mark.parametrize(("user", "passes"), [("10001", True), ("0", False), ("10002", False)])
def test_uid_check_reads_the_main_process_of_a_container(user, passes):
    docker_engine_or_skip()
    name = f"uid-check-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["docker", "run", "-d", "--rm", "--name", name, "--user", user, STAND_IN_IMAGE, "sleep", "60"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    try:
        if passes:
            assert check_uid(name) == f"{name}: main process runs as UID 10001"
        else:
            with pytest.raises(CheckFailed, match=f"UIDs \\[{user}, {user}, {user}, {user}\\], not 10001"):
                check_uid(name)
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)
