"""The shared EfficientNet-Lite0 laid out as the real-weights checks expect an export."""

from __future__ import annotations

from pathlib import Path

import pytest

from local_mode.processes import serve_tflite


@pytest.fixture(scope="session")
def efficientnet_int8_base(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A MODEL_BASE_PATH serving the int8 EfficientNet as "efficientnet_int8" (the fallback's stand-in)."""
    return serve_tflite(
        tmp_path_factory.mktemp("int8"),
        "efficientnet_int8",
        shared_dir / "models" / "efficientnet-lite0" / "model_int8.tflite",
    )


def export_folder(tmp: Path, files: dict[str, Path]) -> Path:
    """<tmp>/efficientnet/1 holding the given files under an export's names."""
    version = tmp / "efficientnet" / "1"
    version.mkdir(parents=True)
    for name, source in files.items():
        (version / name).symlink_to(source)
    return version


@pytest.fixture(scope="session")
def efficientnet_export(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared float and int8 EfficientNet files as an export's version folder holds them."""
    models = shared_dir / "models" / "efficientnet-lite0"
    return export_folder(
        tmp_path_factory.mktemp("export"),
        {"model.tflite": models / "model.tflite", "model_int8.tflite": models / "model_int8.tflite"},
    )


@pytest.fixture(scope="session")
def efficientnet_float_twice(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An export folder whose "int8" file is the float one: an int8 file that keeps every answer."""
    float_file = shared_dir / "models" / "efficientnet-lite0" / "model.tflite"
    return export_folder(
        tmp_path_factory.mktemp("float"), {"model.tflite": float_file, "model_int8.tflite": float_file}
    )
