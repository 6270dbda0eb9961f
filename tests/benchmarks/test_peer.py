"""The harness of benchmarks/peer.py on a trivial server and on made-up figures; the peers themselves
(torch, BentoML) run only in the benchmark."""

from __future__ import annotations

import pytest

from benchmarks import peer
from benchmarks.load_generator import Upload
from benchmarks.peer import Plan, Point
from benchmarks.peer_stacks import Stack


@pytest.mark.slow  # a real process
def test_measure_charges_the_servers_cpu_per_request(trivial_server):
    server = trivial_server(burn_ms=5)
    stack = Stack("trivial", server.port, {"server": server.service})
    uploads = [Upload.multipart(b"x" * 1000, "p.jpg")]
    point = peer.measure(stack, uploads, 2, Plan(rounds=1, requests=60, time_cap_s=20, concurrencies=(2,)))
    assert point.errors == 0
    assert 5 <= point.server_cpu_ms < 12  # the 5 ms burnt per request, plus the HTTP server's own work
    assert point.cpu_by_role_ms == {"server": point.server_cpu_ms}
    assert 0 < point.client_cpu_ms < point.server_cpu_ms
    assert point.throughput > 0 and point.p50_ms <= point.p99_ms
    assert 5 < point.pss_mb <= point.rss_mb < 200


def point(throughput: float, p50: float, rss: float, gateway_cpu: float = 6.0) -> Point:
    roles = {"gateway": gateway_cpu, "model-server": 14.0}
    return Point(throughput, p50, 2 * p50, sum(roles.values()), roles, 0.3, rss, rss / 2, 0)


def test_tables_show_medians_ratios_and_the_cpu_split(capsys):
    plan = Plan(rounds=3, requests=10, time_cap_s=1, concurrencies=(4,))
    points = {
        ("ours", 4): [point(100, 10, 200, 6.0), point(90, 12, 210, 5.0), point(500, 1, 190, 7.0)],
        ("torch", 4): [point(25, 40, 800), point(20, 50, 790), point(30, 45, 805)],
        ("bento", 4): [point(50, 20, 400), point(50, 20, 400), point(50, 20, 400)],
    }
    raw = {4: [(200.0, 12.0), (190.0, 11.0), (210.0, 13.0)]}
    peer.print_tables(plan, points, raw, decode_ms=3.0, stacks=("ours", "torch", "bento"))
    out = capsys.readouterr().out
    assert "| 4 | ours | 100.0 | 10.0 | 20.0 | 20.0 | 210 | 105 | 0 |" in out  # medians; RSS, PSS the largest
    # ours/torch: 100/25 req/s, p50 10/45, p99 20/90, RSS 210/805, PSS 105/402.5; ours/bento: 2x, 0.5x, 0.5x, 0.525x
    assert "| 4 | 4.00x | 0.22x | 0.22x | 0.26x | 0.26x | 2.00x | 0.50x | 0.50x | 0.53x | 0.53x |" in out
    assert "| 4 | 200.0 | 100.0 | 25.0 | 50.0 | 0.50x | 0.30, 0.30, 0.30 |" in out
    # gateway 6, model server 14, inference 12 (median of the raw runs), decode 3: framework 3 + 2
    assert "| 4 | 6.0 | 14.0 | 12.0 | 3.0 | 3.0 | 2.0 | 5.0 | 60% |" in out


def test_a_run_with_the_peers_only_prints_no_split(capsys):
    plan = Plan(rounds=1, requests=10, time_cap_s=1, concurrencies=(1,))
    peer.print_tables(plan, {("torch", 1): [point(25, 40, 800)]}, {1: [(200.0, 12.0)]}, 3.0, ("torch",))
    out = capsys.readouterr().out
    assert "| 1 | torch | 25.0 |" in out
    assert "inference's share" not in out and "Ours / peer" not in out


def test_the_photos_are_the_shared_ones_and_the_test_data():
    found = peer.photos()
    assert {p.name for p in found} >= {"chelsea.jpg", "coffee.jpg"}
    assert all(p.suffix == ".jpg" for p in found)


@pytest.mark.parametrize("argv", [["--models", "/nonexistent"], ["--quick", "--models", "/"]])
def test_refuses_a_missing_export(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        peer.main(argv)
    assert exited.value.code == 2
    assert "no mobilenet_v3_large/1/model.tflite" in capsys.readouterr().err
