"""Export the served models: ``python -m models.export --model wide_resnet50_2 --weights random``.

Writes ``<out>/<model>/<version>/`` with a SavedModel (TF-Serving layout), ``model.tflite``
(float32), ``model_int8.tflite`` (dynamic-range int8) and ``manifest.json``.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NoReturn

from models.export.catalog import CATALOG, ModelEntry
from models.export.progress import Progress
from models.export.weights import ExportError


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"export: {message} (see --help)\n")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = _OneLineParser(
        prog="python -m models.export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model",
        action="append",
        required=True,
        metavar="NAME",
        help=f"model to export (repeatable, or 'all'): {', '.join(CATALOG)}",
    )
    parser.add_argument("--weights", choices=("imagenet", "random"), default="imagenet")
    parser.add_argument("--seed", type=int, default=0, help="seed for --weights random")
    parser.add_argument("--out", type=Path, default=Path("build/models"))
    parser.add_argument("--version", type=int, default=1)
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path.home() / ".cache" / "classifier-weights",
        help="where downloaded weight files are kept",
    )
    parser.add_argument("--weights-url", help="download the WRN weights from this mirror instead")
    parser.add_argument("--no-int8", dest="int8", action="store_false", help="skip the int8 .tflite")
    args = parser.parse_args(argv)
    names = list(CATALOG) if "all" in args.model else args.model
    unknown = [name for name in names if name not in CATALOG]
    if unknown:
        parser.error(f"unknown model {unknown[0]!r}; choose from {', '.join(CATALOG)} or all")
    if args.version < 1:
        parser.error("--version must be a positive integer")
    args.model = list(dict.fromkeys(names))
    return args


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise ExportError(f"output directory {out} is not writable: {exc.strerror or exc}") from exc


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def export_one(entry: ModelEntry, args: argparse.Namespace, progress: Progress) -> dict[str, Any]:
    from models.export import weights

    started = time.perf_counter()
    # Download and verify before TensorFlow starts: on CPUs where oneDNN is on, TensorFlow writes
    # start-up lines to stderr whatever TF_CPP_MIN_LOG_LEVEL says, burying a one-line error.
    fetched = None
    if args.weights == "imagenet" and entry.imagenet_weights is not None:
        fetched = weights.fetch(entry.imagenet_weights, args.cache_dir, args.weights_url, progress)

    import keras

    from models.export import archive
    from models.export.pth_reader import read_state_dict
    from models.export.torch_port import load_torch_state_dict

    keras.utils.set_random_seed(args.seed)
    if args.weights == "random":
        core = entry.build_core(None)
        weights.reestimate_batchnorm(core, args.seed)
        source: dict[str, Any] = {"source": "random", "seed": args.seed}
    elif fetched is not None:
        assert entry.imagenet_weights is not None
        path, digest = fetched
        core = entry.build_core(None)
        load_torch_state_dict(core, read_state_dict(path))
        source = {"source": "imagenet", "url": entry.imagenet_weights.url, "sha256": digest}
    else:
        try:
            core = entry.build_core("imagenet")
        except Exception as exc:  # Keras raises plain Exception subclasses for failed downloads
            raise ExportError(
                f"cannot download ImageNet weights for {entry.name} through Keras ({exc}); use --weights random offline"
            ) from exc
        source = {"source": "imagenet", "url": "keras.applications (hash checked by Keras)"}

    from models.export.catalog import build_classifier

    model = build_classifier(entry, core)
    version_dir = args.out / entry.name / str(args.version)
    if version_dir.exists():
        raise ExportError(f"{version_dir} exists; choose another --version or remove it")
    progress.update(f"{entry.name}: writing the SavedModel...")
    archive.write_saved_model(model, version_dir)
    progress.update(f"{entry.name}: converting to model.tflite...")
    archive.write_tflite(version_dir, int8=False)
    if args.int8:
        progress.update(f"{entry.name}: converting to model_int8.tflite...")
        archive.write_tflite(version_dir, int8=True)
    return archive.write_manifest(version_dir, entry, args.version, source, time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    progress = Progress()
    try:
        _check_writable(args.out)
        for name in args.model:
            progress.update(f"{name}: building with {args.weights} weights...")
            manifest = export_one(CATALOG[name], args, progress)
            sizes = ", ".join(
                f"{f} {info['bytes'] / 1e6:.1f} MB"
                for f, info in manifest["files"].items()
                if f.endswith((".tflite", ".pb")) or f.startswith("variables/variables.data")
            )
            progress.end()
            print(f"{name}: {manifest['export_seconds']} s, peak RSS {_peak_rss_mb():.0f} MB; {sizes}")
    except ExportError as exc:
        progress.end()
        print(f"export: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
