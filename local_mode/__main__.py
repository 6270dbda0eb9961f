"""Run the stack on this machine without Docker: ``python -m local_mode``.

Starts a LiteRT model server for the primary (WRN-50-2 int8 export: the fast CPU variant) and one
for the fallback (MobileNetV3-Large export), then the gateway on 127.0.0.1:8080, and prints a curl
line. Exports are made first when ``--models`` holds none: with random weights (offline, about
90 s; labels are arbitrary) or, with ``--weights imagenet``, with the real ImageNet weights
(downloaded once; needs internet). Any single-input, single-output classifier
``.tflite`` can replace either model. Ctrl-C or SIGTERM (``timeout``, ``kill``, a process manager)
stops everything.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from local_mode.processes import REPO, Gateway, ModelServer, Service, serve_tflite
from models.export.progress import Progress

WRN, MOBILENET = "wide_resnet50_2", "mobilenet_v3_large"


class _Stop(Exception):
    """SIGTERM arrived: leave what main() is doing and stop the children."""


def _stop(_signum: int, _frame: object) -> None:
    raise _Stop


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local_mode", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--weights",
        choices=("random", "imagenet"),
        default="random",
        help="weights of the exports made when --models has none: random (offline, default) or "
        "imagenet (real labels; downloads the weights once)",
    )
    parser.add_argument(
        "--models",
        type=Path,
        help="export folder (TF-Serving layout); default build/models, or build/models-imagenet "
        "with --weights imagenet",
    )
    parser.add_argument("--primary-tflite", type=Path, help="serve this .tflite as the primary instead")
    parser.add_argument("--fallback-tflite", type=Path, help="serve this .tflite as the fallback instead")
    parser.add_argument("--no-primary", action="store_true", help="fallback only (what the ingress fails over to)")
    parser.add_argument(
        "--primary-file",
        default="model_int8.tflite",
        help="which WRN export file to serve: model_int8.tflite (default) or model.tflite",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    if args.models is None:
        args.models = REPO / "build" / ("models-imagenet" if args.weights == "imagenet" else "models")
    for option in ("primary_tflite", "fallback_tflite"):
        path = getattr(args, option)
        if path is not None and not path.is_file():
            parser.error(f"--{option.replace('_', '-')} {path}: no such file")
    return args


class LocalModeError(RuntimeError):
    """Reported as one line, exit status 1."""


def _ensure_exports(models: Path, names: list[str], weights: str) -> int:
    """Export what ``models`` lacks; the export's exit status (its failure is one line on stderr)."""
    missing = []
    for name in names:
        manifest = models / name / "1" / "manifest.json"
        if not manifest.exists():
            missing.append(name)
        elif (source := json.loads(manifest.read_text())["weights"]["source"]) != weights:
            raise LocalModeError(f"{manifest.parent} has {source} weights, not {weights}; choose another --models")
    if not missing:
        return 0
    took = "about 90 s" if weights == "random" else "the weights are downloaded once"
    print(f"local_mode: exporting {', '.join(missing)} with {weights} weights into {models} ({took})...", flush=True)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "models.export",
            "--weights",
            weights,
            "--out",
            str(models),
            *[arg for name in missing for arg in ("--model", name)],
        ],
        cwd=REPO,
    ).returncode


def _backend(
    role: str, tflite: Path | None, models: Path, export: str, model_file: str, scratch: Path
) -> tuple[ModelServer, dict[str, str]]:
    prefix = role.upper()
    if tflite is not None:
        name = tflite.stem.replace(".", "_") or role
        server = ModelServer(serve_tflite(scratch / role, name, tflite), name, None)
        return server, {f"{prefix}_MODEL": name}
    server = ModelServer(
        models,
        export,
        None,
        MODEL_FILE=model_file,
        INTERPRETERS="1" if role == "primary" else "2",
        INTERPRETER_THREADS="2" if role == "primary" else "1",
    )
    return server, {f"{prefix}_MODEL": export, f"{prefix}_MANIFEST": str(models / export / "1" / "manifest.json")}


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    needed = [
        name
        for name, custom in ((WRN, args.primary_tflite or args.no_primary), (MOBILENET, args.fallback_tflite))
        if not custom
    ]
    try:
        if status := _ensure_exports(args.models, needed, args.weights):
            return status
    except LocalModeError as exc:
        print(f"local_mode: {exc}", file=sys.stderr)
        return 1
    progress = Progress()
    running: list[Service] = []
    signal.signal(signal.SIGTERM, _stop)  # by default SIGTERM kills this process and orphans its children
    with tempfile.TemporaryDirectory(prefix="local_mode-") as scratch:
        try:
            env: dict[str, str] = {}
            roles = [("fallback", args.fallback_tflite, MOBILENET, "model.tflite")]
            if not args.no_primary:
                roles.insert(0, ("primary", args.primary_tflite, WRN, args.primary_file))
            for role, tflite, export, model_file in roles:
                server, backend_env = _backend(role, tflite, args.models, export, model_file, Path(scratch))
                running.append(server)
                progress.update(f"local_mode: starting the {role} model server ({server.name})...")
                server.start(timeout=180)
                progress.end(f"local_mode: {role} {server.name} ready on grpc://{server.grpc_target}")
                env.update(backend_env, **{f"{role.upper()}_URL": f"grpc://{server.grpc_target}"})
            gateway = Gateway(None, **env)
            gateway.port = args.port
            gateway.env.update(HOST=args.host, PORT=str(args.port))
            running.append(gateway)
            progress.update("local_mode: starting the gateway...")
            gateway.start()
            progress.end()
            print(
                f"\nlocal_mode: ready on http://{args.host}:{args.port}\n"
                f"  open http://{args.host}:{args.port}/ in a browser (API docs: /docs/)\n"
                f"  curl -F file=@photo.jpg http://{args.host}:{args.port}/classify\n"
                f"  curl http://{args.host}:{args.port}/readyz\nCtrl-C stops.\n",
                flush=True,
            )
            assert gateway.process is not None
            gateway.process.wait()
        except (KeyboardInterrupt, _Stop):
            pass
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the clean-up short
            for service in reversed(running):
                service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
