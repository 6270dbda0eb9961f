"""Which versions of the model are served and under which labels, as TF-Serving decides it.

The versions are the numeric folders under the model's base path, filtered by
``model_version_policy`` (``latest`` N, default 1; ``all``; ``specific``). The base path is polled
every FILE_SYSTEM_POLL_WAIT_SECONDS (TF-Serving's --file_system_poll_wait_seconds, default 1; 0 polls
once): a new version is loaded and warmed up before it answers, and a version that leaves the
policy is unloaded only once its successors are available, so no request meets a gap (TF-Serving's
availability-preserving policy). Calls still running on an unloaded version finish on it.

``version_labels`` map a label to a version. As in TF-Serving (server_core.cc,
UpdateModelVersionLabelMap), a label may only name an available version; a config whose labels
name others is refused whole: at start the server exits naming the file, on a reload (MODEL_CONFIG_FILE
re-read when it changes, every MODEL_CONFIG_FILE_POLL_WAIT_SECONDS) the previous config stays.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import text_format

from common.environment import SettingsError
from models.server.errors import NotFound, Unavailable
from models.server.metrics import ServerMetrics
from models.server.model import LiteRTModel, State
from models.server.settings import Settings
from protocol.generated.tfs_model_server_config_pb2 import ModelServerConfig

log = logging.getLogger(__name__)
CONFIG_VARIABLE = "MODEL_CONFIG_FILE"


@dataclass(frozen=True)
class ModelPolicy:
    """One model's entry of the model config: where its versions are and which of them to serve."""

    name: str
    base_path: Path  # the folder holding the numeric version folders
    kind: str = "latest"  # latest / all / specific
    num_versions: int = 1
    specific: frozenset[int] = frozenset()
    labels: Mapping[str, int] = field(default_factory=dict)

    def aspired(self, on_disk: list[int]) -> list[int]:
        """The versions this policy serves out of those on disk, ascending."""
        versions = sorted(on_disk)
        if self.kind == "all":
            return versions
        if self.kind == "specific":
            return [v for v in versions if v in self.specific]
        return versions[-self.num_versions :]


def single_model(settings: Settings) -> ModelPolicy:
    """MODEL_NAME under MODEL_BASE_PATH, the newest version: TF-Serving without a config file."""
    return ModelPolicy(settings.model_name, settings.model_base_path / settings.model_name)


def read_model_config(path: Path) -> ModelPolicy:
    """Parse TF-Serving's text-format ModelServerConfig; a SettingsError names MODEL_CONFIG_FILE."""
    where = f"{CONFIG_VARIABLE}={path}"
    try:
        config = text_format.Parse(path.read_text(), ModelServerConfig())
    except OSError as exc:
        raise SettingsError(f"{where}: cannot read it ({exc.strerror})") from None
    except text_format.ParseError as exc:
        raise SettingsError(
            f"{where}: not a text-format tensorflow.serving.ModelServerConfig we serve ({exc})"
        ) from None
    models = config.model_config_list.config
    if len(models) != 1:
        raise SettingsError(f"{where}: this server serves one model per process; the file lists {len(models)}")
    model = models[0]
    if not model.name or "/" in model.name or not model.base_path:
        raise SettingsError(f"{where}: the model needs a name (no '/') and a base_path")
    if model.model_platform not in ("", "tensorflow", "tflite"):
        raise SettingsError(f"{where}: model_platform {model.model_platform!r} is not served here (tensorflow, tflite)")
    policy = model.model_version_policy
    kind = policy.WhichOneof("policy_choice") or "latest"
    if kind == "specific" and not policy.specific.versions:
        raise SettingsError(f"{where}: model_version_policy specific lists no versions")
    return ModelPolicy(
        name=model.name,
        base_path=Path(model.base_path),
        kind=kind,
        num_versions=policy.latest.num_versions or 1,
        specific=frozenset(policy.specific.versions),
        labels=dict(model.version_labels),
    )


def versions_on_disk(base_path: Path) -> list[int]:
    try:
        return sorted(int(p.name) for p in base_path.iterdir() if p.is_dir() and p.name.isdigit())
    except OSError:
        return []


class ModelVersions:
    """The served versions of one model, keyed by version number, and its labels."""

    def __init__(self, settings: Settings, policy: ModelPolicy):
        self.settings = settings
        self.policy = policy
        self.name = policy.name
        self._versions: dict[int, LiteRTModel] = {}
        self._labels: dict[str, int] = {}
        self._lock = threading.Lock()  # guards _versions and _labels; polling holds _poll_lock
        self._poll_lock = threading.Lock()
        # Like TF-Serving, which opens its ports only once the first config is loaded, nothing is
        # served before the first poll has loaded every aspired version and set the labels.
        self._started = threading.Event()
        # One set of metrics per served model name, as TF-Serving labels them by model_name only.
        self.metrics = ServerMetrics(self.name)
        self.metrics.watch(self.state, lambda: settings.interpreters * len(self._listed()))

    def _listed(self) -> list[LiteRTModel]:
        with self._lock:
            return [self._versions[v] for v in sorted(self._versions)]

    def state(self) -> str:
        """The model's load state: AVAILABLE while any version serves, else its newest version's."""
        models = self._listed()
        if any(m.ready for m in models):
            return State.AVAILABLE.value
        return models[-1].state.value if models else State.START.value

    @property
    def ready(self) -> bool:
        with self._lock:
            return self._started.is_set() and any(m.ready for m in self._versions.values())

    def poll(self, policy: ModelPolicy | None = None) -> None:
        """Load what the policy (or a new ``policy``) aspires to, then unload the rest and set labels.

        Raises SettingsError when the new policy's labels name versions that are not available;
        then nothing of it applies beyond the versions it loaded."""
        with self._poll_lock:
            policy = policy or self.policy
            aspired = policy.aspired(versions_on_disk(policy.base_path))
            new = [
                LiteRTModel(self.settings, self.name, v, policy.base_path / str(v), self.metrics)
                for v in aspired
                if v not in self._versions
            ]
            with self._lock:
                self._versions.update((m.version, m) for m in new)  # listed as START/LOADING meanwhile
            for model in new:
                with contextlib.suppress(Exception):  # logged by load(); listed as END with its error
                    model.load()
            available = {v for v, m in self._versions.items() if m.ready}
            missing = {label: v for label, v in policy.labels.items() if v not in available}
            if missing:
                raise SettingsError(
                    f"{CONFIG_VARIABLE}: version_labels {missing} name versions of {self.name} that are not available "
                    f"(available: {sorted(available)})"
                )
            keep = set(aspired) | set(policy.labels.values())
            if not any(v in available for v in aspired):
                keep |= available  # availability-preserving: nothing new answers yet, keep the old
            with self._lock:
                unloaded = [self._versions.pop(v) for v in sorted(set(self._versions) - keep)]
                if self._labels != dict(policy.labels):
                    log.info("%s version labels: %s", self.name, dict(policy.labels) or "none")
                self._labels = dict(policy.labels)
            for model in unloaded:
                log.info("unloading %s version %d (no longer in the version policy)", self.name, model.version)
                model.close()  # its queued requests still run
            self.policy = policy
            self._started.set()

    def resolve(self, name: str, version: int | None = None, label: str | None = None) -> LiteRTModel:
        """The version a request names (number, label or neither: the newest available)."""
        if name != self.name:
            raise NotFound(f"Servable not found for request: Latest({name})")
        if not self._started.is_set():
            raise Unavailable(f"Servable {name} is not available yet (loading its versions)")
        with self._lock:
            if label is not None:
                if label not in self._labels:
                    raise NotFound(f"Unrecognized servable version label: {label}")
                version = self._labels[label]
            if version is None:
                ready = [v for v, m in self._versions.items() if m.ready]
                if not ready:
                    states = ", ".join(m.state.value for m in self._versions.values()) or State.START.value
                    raise Unavailable(f"Servable {name} is not available yet (state {states})")
                return self._versions[max(ready)]
            model = self._versions.get(version)
        if model is None:
            raise NotFound(f"Servable not found for request: Specific({name}, {version})")
        if not model.ready:
            raise Unavailable(f"Servable {name} version {version} is not available yet (state {model.state.value})")
        return model

    def statuses(self, version: int | None = None, label: str | None = None) -> list[LiteRTModel]:
        """Every listed version (or the one named), for status answers."""
        if version is None and label is None:
            with self._lock:
                if not self._versions:
                    raise NotFound(f"Could not find any versions of model {self.name}")
                return [self._versions[v] for v in sorted(self._versions)]
        if label is not None:
            with self._lock:
                if label not in self._labels:
                    raise NotFound(f"Unrecognized servable version label: {label}")
                version = self._labels[label]
        with self._lock:
            model = self._versions.get(version)  # type: ignore[arg-type]
        if model is None:
            raise NotFound(f"Could not find version {version} of model {self.name}")
        return [model]

    @property
    def error(self) -> str | None:
        """Why the server cannot serve at all: no version loaded, only failed ones."""
        with self._lock:
            models = list(self._versions.values())
        if any(m.ready for m in models):
            return None
        failed = [f"version {m.version}: {m.error}" for m in models if m.error]
        return "; ".join(failed) or None


def watch(versions: ModelVersions, settings: Settings, stop: threading.Event) -> None:
    """Poll the base path, and MODEL_CONFIG_FILE for a different policy, until ``stop``; errors are
    logged once each, never fatal."""
    intervals = [s for s in (settings.file_system_poll_wait_s, settings.model_config_poll_wait_s) if s > 0]
    config = settings.model_config_file if settings.model_config_poll_wait_s > 0 else None
    refused: str | None = None
    while intervals and not stop.wait(min(intervals)):
        policy = None
        try:
            if config is not None and (fresh := read_model_config(config)) != versions.policy:
                policy = fresh
            if policy is not None or settings.file_system_poll_wait_s > 0:
                versions.poll(policy)
            refused = None
        except SettingsError as exc:
            if str(exc) != refused:
                log.error("keeping the previous model config: %s", exc)
            refused = str(exc)
