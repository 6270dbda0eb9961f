"""k8s/minikube.sh, k8s/e2e.sh and k8s/lib.sh without a cluster: arguments, missing tools, sizing,
the URL, bounded requests and the verdict on a request loop, with fake tools on PATH.
The cluster parts run in the public workflow (`bash k8s/e2e.sh` on a runner with kind)."""

import pytest


def last_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    return lines[-1] if lines else ""


def test_unknown_command_prints_usage(tools):
    result = tools.run("minikube.sh", "start")
    assert result.returncode == 2 and "usage:" in result.stderr


@pytest.mark.parametrize("script, prefix", [("minikube.sh", "minikube.sh: "), ("e2e.sh", "e2e: FAILED: ")])
def test_missing_tools_are_one_clear_line(tools, script, prefix):
    tools.remove("kubectl", "docker")
    result = tools.run(script, *(["up"] if script == "minikube.sh" else []))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [result.stderr.strip()], "one line"
    assert result.stderr.startswith(prefix + "missing tool(s) on PATH: kubectl docker")


def test_the_photo_is_in_the_repository(tools):
    result = tools.run("minikube.sh", "up", PHOTO="/nonexistent.jpg")
    assert result.returncode == 1 and "photo /nonexistent.jpg is not readable" in last_line(result)
    assert tools.run("minikube.sh", "up").returncode == 0, "tests/data/chelsea.jpg is the default"


def test_a_running_cluster_too_small_is_refused_before_anything_is_built(tools):
    result = tools.run("minikube.sh", "up", FAKE_CPUS="2", FAKE_MEMORY="4026532Ki")
    assert result.returncode == 1
    assert "has 2 CPUs and 3932 MiB; the stack needs 4 CPUs and 5800 MiB: minikube delete" in last_line(result)
    assert not [line for line in tools.log if line.startswith(("minikube addons", "docker", "minikube start"))]


def test_the_size_minikube_was_given_counts_not_the_hosts(tools):
    """With the docker driver the node reports the host's CPUs and memory."""
    result = tools.run(
        "minikube.sh", "up", FAKE_CPUS="16", FAKE_MEMORY="32Gi", FAKE_PROFILE_SIZE='"CPUs": 2, "Memory": 4000'
    )
    assert result.returncode == 1 and "has 2 CPUs and 4000 MiB" in last_line(result)
    result = tools.run(
        "minikube.sh", "up", FAKE_CPUS="2", FAKE_MEMORY="2Gi", FAKE_PROFILE_SIZE='"CPUs": 4, "Memory": 6144'
    )
    assert result.returncode == 0 and "cluster size: 4 CPUs, 6144 MiB" in result.stderr, result.stderr


def test_up_enables_ingress_and_metrics_loads_images_applies_and_classifies(tools):
    result = tools.run("minikube.sh", "up", FAKE_CPUS="4", FAKE_MEMORY="8Gi")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "HTTP 200: model wide_resnet50_2, fallback false"
    log = tools.log
    assert "minikube addons enable ingress" in log and "minikube addons enable metrics-server" in log
    assert [line for line in log if line.startswith("minikube image load")] == [
        f"minikube image load classifier/{name}:0.1.0" for name in ("gateway", "primary-litert", "fallback")
    ]
    assert "kubectl apply -k k8s/overlays/minikube" in log
    curl = next(line for line in log if line.startswith("curl"))
    assert "--max-time 15" in curl and "--connect-timeout 5" in curl and "file=@tests/data/chelsea.jpg" in curl
    assert curl.endswith("http://192.168.49.2/classify")


def test_a_stopped_minikube_is_started_big_enough(tools):
    result = tools.run("minikube.sh", "up", FAKE_MINIKUBE_STATUS="7")
    assert result.returncode == 0, result.stderr
    assert "minikube start --cpus=4 --memory=6g" in tools.log


@pytest.mark.parametrize(
    "os_name, driver, url",
    [
        ("Linux", "docker", "http://192.168.49.2"),
        ("Darwin", "docker", "http://127.0.0.1"),
        ("MINGW64_NT-10.0", "docker", "http://127.0.0.1"),
        ("Darwin", "hyperkit", "http://192.168.49.2"),
    ],
)
def test_the_url_follows_os_and_driver(tools, os_name, driver, url):
    result = tools.run("minikube.sh", "url", FAKE_OS=os_name, FAKE_DRIVER=driver)
    assert result.returncode == 0 and result.stdout.strip() == url, result.stderr


def test_without_a_tunnel_the_url_says_to_start_one(tools):
    result = tools.run("minikube.sh", "url", FAKE_OS="Darwin", FAKE_DRIVER="docker", FAKE_CURL_FAIL="1")
    assert result.returncode == 1 and "run `minikube tunnel` in another terminal" in last_line(result)


@pytest.mark.parametrize("cpus, memory, fits", [(4, 5800, True), (8, 16000, True), (3, 16000, False), (4, 5799, False)])
def test_sizing(tools, cpus, memory, fits):
    assert (tools.bash(f"fits {cpus} {memory}").returncode == 0) is fits


@pytest.mark.parametrize("memory, mib", [("8141440Ki", 7950), ("6144Mi", 6144), ("6Gi", 6144), ("6442450944", 6144)])
def test_node_memory_units(tools, memory, mib):
    result = tools.run("minikube.sh", "up", FAKE_MEMORY=memory)
    assert f"cluster size: 4 CPUs, {mib} MiB" in result.stderr, result.stderr


@pytest.mark.parametrize(
    "lines, expect, verdict",
    [
        (["200 wide_resnet50_2 false None"] * 3, "primary", None),
        (["200 mobilenet_v3_large true timeout"] * 3, "primary", "no answer came from the primary"),
        (["200 mobilenet_v3_large true unavailable", "502 - - -", "000 - - -"], "any", "2 of 3 requests failed"),
        (
            ["200 mobilenet_v3_large true unavailable", "200 wide_resnet50_2 false None"],
            "fallback",
            "1 answers were not labelled fallback",
        ),
        ([], "any", "0 of 0 requests failed"),
    ],
)
def test_a_request_loop_is_judged_strictly(tools, tmp_path, lines, expect, verdict):
    answers = tmp_path / "answers"
    answers.write_text("".join(f"{line}\n" for line in lines))
    result = tools.bash(f"judge {answers} {expect} step")
    assert (result.returncode == 0) is (verdict is None), result.stderr
    if verdict:
        assert verdict in last_line(result)


def test_classify_reports_a_dead_edge_as_000(tools):
    result = tools.bash("classify http://127.0.0.1:9")
    assert result.stdout.split()[0] == "200"  # the fake curl answers
    result = tools.bash("FAKE_CURL_FAIL=1 classify http://127.0.0.1:9")
    assert result.stdout.split() == ["000", "-", "-", "-"]


def test_e2e_failure_is_one_line_and_the_cluster_is_deleted(tools):
    result = tools.run("e2e.sh", FAKE_KIND_CREATE="1")
    assert result.returncode == 1 and last_line(result) == "e2e: FAILED: kind create cluster failed"
    assert "kind delete cluster --name classifier-e2e" in tools.log


def test_e2e_keeps_the_cluster_when_asked(tools):
    result = tools.run("e2e.sh", FAKE_KIND_CREATE="1", KEEP_CLUSTER="1")
    assert result.returncode == 1 and not [line for line in tools.log if line.startswith("kind delete")]


def test_e2e_refuses_an_existing_cluster_of_its_name(tools):
    result = tools.run("e2e.sh", FAKE_KIND_CLUSTERS="classifier-e2e")
    assert result.returncode == 1 and "a kind cluster named classifier-e2e exists" in last_line(result)
    assert not [line for line in tools.log if line.startswith(("kind create", "kind delete"))]
