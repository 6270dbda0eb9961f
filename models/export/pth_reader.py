"""Read a torch ``.pth`` state_dict into numpy arrays without importing torch.

torch.save (zip format, torch >= 1.6) writes ``<root>/data.pkl`` plus one raw little-endian
file per storage under ``<root>/data/<key>``. The pickle only rebuilds tensors from those
storages, so a restricted unpickler that knows a handful of globals is enough, and it refuses
anything else: loading a weights file must never execute code from it.
"""

from __future__ import annotations

import collections
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

_STORAGE_DTYPES: dict[str, np.dtype] = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class PthFormatError(ValueError):
    """The file is not a torch zip checkpoint this reader understands."""


class _StorageType:
    def __init__(self, name: str):
        self.dtype = _STORAGE_DTYPES[name]


def _rebuild_tensor(storage: np.ndarray, offset: int, size: tuple, stride: tuple, *_unused: Any) -> np.ndarray:
    itemsize = storage.dtype.itemsize
    if not size:
        return storage[offset : offset + 1].reshape(()).copy()
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=tuple(size), strides=tuple(s * itemsize for s in stride)
    )
    return np.ascontiguousarray(view)


def _rebuild_parameter(data: np.ndarray, *_unused: Any) -> np.ndarray:
    return data


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, archive: zipfile.ZipFile, root: str):
        super().__init__(file)
        self._archive = archive
        self._root = root

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("torch._utils", "_rebuild_parameter"):
            return _rebuild_parameter
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name} from a weights file")

    def persistent_load(self, pid: Any) -> np.ndarray:
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        _, storage_type, key, _location, numel = pid
        raw = self._archive.read(f"{self._root}/data/{key}")
        return np.frombuffer(raw, dtype=storage_type.dtype, count=numel)


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Return {key: array} from a torch zip checkpoint holding a (possibly nested) state_dict."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise PthFormatError(f"{path}: not a torch zip checkpoint (legacy pre-1.6 format?)") from exc
    with archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise PthFormatError(f"{path}: expected one data.pkl, found {len(pickles)}")
        root = pickles[0].rsplit("/", 1)[0]
        byteorder = f"{root}/byteorder"
        if byteorder in archive.namelist() and archive.read(byteorder).strip() != b"little":
            raise PthFormatError(f"{path}: only little-endian checkpoints are supported")
        with archive.open(pickles[0]) as handle:
            state = _RestrictedUnpickler(handle, archive, root).load()
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise PthFormatError(f"{path}: holds a {type(state).__name__}, not a state_dict")
    return dict(state)
