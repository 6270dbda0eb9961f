"""A soak with faults: load at concurrency 4 while the primary is killed and restarted every 30 s
and hung once. Every request is answered (200 from the primary, a labelled fallback, or a counted
503), the gateway's RSS (its floor) grows under 10 % after warm-up and its open descriptors do not grow.

SOAK_SECONDS sets the length: 60 in the normal suite, 600 for the nightly run in the README."""

from __future__ import annotations

import os
import signal
import threading

import psutil

from tests.chaos.conftest import FALLBACK, PRIMARY, run_load, start_primary
from tests.fault_proxy import FaultProxy

SOAK_S = float(os.environ.get("SOAK_SECONDS", "60"))
KILL_EVERY_S, WARM_UP_S = 30.0, 10.0
HANG_AT_S, HANG_FOR_S = 20.0, 3.0


def test_soak_with_primary_kills_and_a_hang(exported_models, fallback, start_gateway, photo, tmp_path):
    primary = start_primary(exported_models, tmp_path / "primary.log")
    proxy = FaultProxy(primary.grpc_port)
    servers = [primary]
    gateway = start_gateway(proxy.target, fallback.grpc_target)
    process = psutil.Process(gateway.process.pid)
    samples: dict[str, tuple[int, int]] = {}
    rss_each_second: list[int] = []  # after warm-up
    events: list[str] = []

    def restart() -> None:
        old = servers[-1]
        old.process.send_signal(signal.SIGKILL)
        old.process.wait()
        servers.append(
            start_primary(exported_models, tmp_path / f"primary{len(servers)}.log", (old.grpc_port, old.rest_port))
        )

    def control(elapsed: float) -> None:
        if elapsed >= WARM_UP_S and "warm" not in samples:
            samples["warm"] = (process.memory_info().rss, process.num_fds())
        if elapsed >= WARM_UP_S + len(rss_each_second):
            rss_each_second.append(process.memory_info().rss)
        kills = int(elapsed // KILL_EVERY_S)
        if kills > events.count("kill"):
            events.append("kill")
            threading.Thread(target=restart, daemon=True).start()
        if HANG_AT_S <= elapsed < HANG_AT_S + HANG_FOR_S and proxy.mode == "pass" and "hang" not in events:
            events.append("hang")
            proxy.set_mode("hang")
        elif elapsed >= HANG_AT_S + HANG_FOR_S and proxy.mode == "hang":
            proxy.set_mode("pass")

    try:
        answers, sent = run_load(gateway.url, photo, clients=4, duration_s=SOAK_S, max_requests=10**7, during=control)
        samples["end"] = (process.memory_info().rss, process.num_fds())
    finally:
        proxy.close()
        for server in servers:
            server.stop()
    lost = [a for a in answers if a.status not in (200, 503)]
    assert len(answers) == sent and not lost, f"{sent - len(answers)} unanswered, {len(lost)} bad: {lost[:3]}"
    ok = [a for a in answers if a.status == 200]
    assert all(a.model == PRIMARY or (a.model == FALLBACK and a.body["fallback_reason"]) for a in ok)
    shed = sum(a.status == 503 for a in answers)
    primary_share = sum(a.model == PRIMARY for a in ok) / max(1, len(ok))
    # RSS at one instant swings with the allocator (a fuzz test comparing two instants failed at
    # +29 MiB with no leak, docs/reliability.md); growth is the lowest RSS over the last fifth of the
    # run against the lowest over the first fifth after warm-up, which a leak lifts.
    window = max(3, len(rss_each_second) // 5)
    floors = (min(rss_each_second[:window]), min(rss_each_second[-window:]))
    print(
        f"soak {SOAK_S:.0f} s: {sent} requests, {len(ok)} answered 200 ({primary_share:.0%} by the primary), "
        f"{shed} shed with 503, events {events}, RSS {samples['warm'][0] >> 20} -> {samples['end'][0] >> 20} MiB "
        f"(lowest over the first and last fifth: {floors[0] >> 20} -> {floors[1] >> 20}), "
        f"fds {samples['warm'][1]} -> {samples['end'][1]}"
    )
    assert primary_share > 0.25, "the primary carries traffic between kills"
    assert floors[1] < floors[0] * 1.10, [rss >> 20 for rss in rss_each_second]
    # Equal in a steady state; two spare for a reconnect or keep-alive socket caught mid-swap.
    assert samples["end"][1] <= samples["warm"][1] + 2, samples
