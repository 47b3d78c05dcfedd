"""Where student models are built: a capped process of their own, never the grader.

Threat: a `.keras` archive from a student (returned by `build_model()`, or handed in
as `model.keras`) can declare weights of any size, and Keras allocates them while
loading. One such archive raised the grader's memory from 0.7 GB to 10 GB. So:

1. the grader reads only the archive's `config.json` (size-capped), vets its classes
   (`modelspec.vet_config`) and refuses a model whose declared parameters or layer
   outputs exceed `[limits]` before any Keras object exists (`modelsize`);
2. the archive is then loaded, once per submission and model, in the *model host*: a
   sandboxed kernel (its own uid, cgroup with `model_memory_mib`, no network; a fork of
   the warm zygote when there is one) in which no student code ever runs, kept warm by
   the grading worker and emptied after each submission (`warm_host`, `reset`);
3. checks get a `StudentModel`: the structure as plain data (`ModelSpec`) and a
   `predict()` that runs in the host and returns a plain array.

A model that kills the host (memory) costs that model's checks, with a message, and
the next request starts a fresh host. `LocalModelHost` does the same in-process, for
trusted instructor code (validate's in-process tests).
"""

from __future__ import annotations

import atexit
import dataclasses
import itertools
import json
import shutil
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from autograder import kernel_side, model_side
from autograder.config import Limits
from autograder.exceptions import AutograderError, BridgeError, SandboxError, UnsafeModel
from autograder.modelsize import check_declared_size
from autograder.modelspec import (
    MAX_MODEL_BYTES,
    Identity,
    ModelSpec,
    compile_config,
    config_identity,
    read_config,
    vet_config,
)
from autograder.safeio import owned_prefix, read_untrusted, sweep_stale_dirs

HOST_MODULE = kernel_side.HOST_MODULE
STORE_PREFIX = "autograder-models-"  # then the grader's pid: see safeio.sweep_stale_dirs
RECYCLE_AFTER = 50  # submissions a warm host serves before a fresh one replaces it
MAX_DESCRIPTION_BYTES = 8 << 20


class ModelHost(Protocol):
    """Loads vetted archives and runs them, somewhere the grader's memory is not."""

    def load(self, key: str, archive: Path, identity: Identity | None = None) -> Any: ...

    def predict(self, key: str, x: np.ndarray) -> Any: ...

    def close(self) -> None: ...


class StudentModel:
    """What a check sees of a student's model: plain data, and predictions by request."""

    def __init__(self, spec: ModelSpec, host: ModelHost, key: str, archive: Path) -> None:
        self.spec, self.host, self.key, self.archive = spec, host, key, archive

    # The names Keras models use, so checks read naturally.
    @property
    def layers(self) -> tuple:
        return self.spec.layers

    @property
    def input_shape(self) -> tuple | None:
        return self.spec.input_shape

    @property
    def output_shape(self) -> tuple | None:
        return self.spec.output_shape

    @property
    def compile_config(self) -> dict[str, Any]:
        return self.spec.compile_config

    def count_params(self) -> int:
        if self.spec.params is None:
            raise AutograderError(
                "the model is not built (it has no weights yet); give it an input shape with "
                "keras.Input(shape=...)"
            )
        return self.spec.params

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The model's outputs on `x`, computed in the host (the model may build itself)."""
        answer = self.host.predict(self.key, np.asarray(x, dtype=np.float32))
        if not isinstance(answer, dict) or type(answer.get("y")) is not np.ndarray:
            raise BridgeError("the model host returned no array")
        if answer.get("model") is not None:  # None: built before, described already
            self.spec = ModelSpec.from_host(answer["model"], self.spec.compile_config)
        return answer["y"]


def _private_dir() -> Path:
    """A 0700 folder for a host's copies of admitted archives, named with this pid so that
    a later grader removes it if this one is killed (SIGKILL, OOM) before its cleanup."""
    root = Path(tempfile.gettempdir())
    sweep_stale_dirs(root, STORE_PREFIX)
    return Path(tempfile.mkdtemp(prefix=owned_prefix(STORE_PREFIX), dir=root))


def admit(archive: Path, root: Path, limits: Limits) -> tuple[bytes, dict[str, Any]]:
    """Read a student's archive with limits and refuse it from its config alone."""
    data = read_untrusted(archive, root, MAX_MODEL_BYTES)
    config = read_config(data)
    vet_config(config)
    check_declared_size(config, limits.model_params_max, limits.model_activation_max)
    return data, config


class _Calls:
    """Numbered request folders under one root."""

    def __init__(self, root: Path) -> None:
        self.root, self.count = root, itertools.count(1)

    def new(self) -> Path:
        path = self.root / f"m{next(self.count)}"
        path.mkdir(parents=True)
        path.chmod(0o777)
        return path


class _HostBase:
    """Admission, one load per archive, and decoding; the transport is the subclass's."""

    limits: Limits
    _calls: _Calls

    def __init__(self) -> None:
        self._models: dict[str, StudentModel] = {}  # by config digest: see `model`
        self._archives: dict[str, Path] = {}
        self._keys = itertools.count(1)
        self._prefix = uuid.uuid4().hex[:8]  # keys stay unique in a process with several hosts

    def _serve(self, calldir: Path, what: str) -> None:
        raise NotImplementedError

    @property
    def _root(self) -> Path:
        """The folder responses are read from (no links followed out of it)."""
        raise NotImplementedError

    @property
    def _store(self) -> Path:
        """Grader-side copies of admitted archives (what gets reloaded and trained)."""
        raise NotImplementedError

    def _request(self, op: str, key: str, what: str, **fields: Any) -> Any:
        calldir = self._calls.new()
        files = {}
        for name, value in list(fields.items()):
            if isinstance(value, np.ndarray):
                files[name] = f"{name}.npy"
                np.save(calldir / files[name], value, allow_pickle=False)
                fields[name] = files[name]
            elif isinstance(value, bytes):
                (calldir / "model.keras").write_bytes(value)
                fields[name] = "model.keras"
        (calldir / "request.json").write_text(json.dumps({"op": op, "key": key, **fields}))
        self._serve(calldir, what)
        from autograder.bridge import decode_response

        try:
            return decode_response(calldir, self._root, what, self.limits.file_size_mib << 20)
        finally:
            shutil.rmtree(calldir, ignore_errors=True)

    def model(self, archive: Path, root: Path, what: str, share: bool = False) -> StudentModel:
        """Admit, load once and describe the archive at `archive` (student bytes).

        With `share`, an archive whose config is that of one loaded before (with `share`,
        for this submission) is that model: its weights, not these. For models a
        function builds (`call_model`), whose weights are a fresh draw each time: they
        travel without them when they can, and only these may be given a model the host
        keeps (`model_side.IDLE`), so no kept model ever holds weights a student handed in.
        """
        data, config = admit(archive, root, self.limits)
        identity = config_identity(config)
        digest = identity[0] if share and identity is not None else None
        if digest is not None and digest in self._models:
            return self._models[digest]
        key = f"{self._prefix}-{next(self._keys)}"
        kept = self._store / f"{key}.keras"
        kept.parent.mkdir(parents=True, exist_ok=True)
        kept.write_bytes(data)
        self._archives[key] = kept
        description = self.load(key, kept, identity if share else None)
        spec = ModelSpec.from_host(description, compile_config(config))
        loaded = StudentModel(spec, self, key, kept)
        if digest is not None:
            self._models[digest] = loaded
        return loaded

    def load(self, key: str, archive: Path, identity: Identity | None = None) -> Any:
        """Load the archive as `key`. `identity` (`modelspec.config_identity` of its vetted
        config) lets the host give it a model it keeps from an archive of that config."""
        digest, names = identity if identity is not None else (None, [])
        try:
            return self._request(
                "load", key, "loading the model", file=archive.read_bytes(), digest=digest,
                names=names,
            )  # fmt: skip
        except BridgeError as exc:
            raise UnsafeModel(f"the model cannot be loaded safely ({_cause(exc)})") from None

    def predict(self, key: str, x: np.ndarray) -> Any:
        return self._request("predict", key, "running the model", x=x)

    def close(self) -> None:
        raise NotImplementedError


def _cause(exc: Exception) -> str:
    text = str(exc)
    for prefix in ("loading the model raised ", "running the model raised "):
        text = text.removeprefix(prefix)
    return text[:400]


class LocalModelHost(_HostBase):
    """In-process host for trusted instructor code (no sandbox, same data path)."""

    def __init__(self, limits: Limits | None = None) -> None:
        super().__init__()
        self.limits = limits or Limits()
        self._dir = _private_dir()
        self._calls = _Calls(self._dir / "calls")

    @property
    def _root(self) -> Path:
        return self._dir

    @property
    def _store(self) -> Path:
        path = self._dir / "archives"
        path.mkdir(exist_ok=True)
        return path

    def _serve(self, calldir: Path, what: str) -> None:
        model_side.serve(str(calldir))

    def close(self) -> None:
        for key in self._archives:
            model_side.release(key)
        shutil.rmtree(self._dir, ignore_errors=True)


class KernelModelHost(_HostBase):
    """A sandboxed kernel that builds and runs student models.

    Started on the first model request; after a crash (the memory cap, say) the next
    request starts a new one and reloads the models it needs. A grading worker keeps one
    warm from one submission to the next (`warm_host`): `reset` then forgets every model
    of the submission just graded, in the host and here, so the next one starts empty.
    """

    def __init__(
        self,
        limits: Limits,
        env: dict[str, str],
        readonly: list[Path],
        zygote: Any = None,
        deadline: Any = None,
    ) -> None:
        super().__init__()
        self.limits = dataclasses.replace(limits, memory_mib=limits.model_memory_mib)
        self.env, self.readonly, self.zygote = env, readonly, zygote
        self.deadline = deadline  # a callable giving the submission's seconds left, or None
        self._sandbox: Any = None
        self._kernel: Any = None
        self._loaded: set[str] = set()
        self._served = 0  # submissions since this host's kernel started
        self._tmp = _private_dir()

    @property
    def _root(self) -> Path:
        return self._sandbox.scratch

    @property
    def _store(self) -> Path:
        path = self._tmp / "archives"
        path.mkdir(exist_ok=True)
        return path

    def _start(self) -> None:
        from autograder.kernel import SandboxedKernel
        from autograder.sandbox import Sandbox

        zygote = self.zygote if self.zygote is not None and self.zygote.alive() else None
        scratch = zygote.new_scratch() if zygote else self._tmp / f"host-{next(self._keys)}"
        self._sandbox = Sandbox(
            scratch,
            self.limits,
            readonly=self.readonly,
            cgroup_parent=zygote.cgroup_name if zygote else "",
        )
        self._kernel = SandboxedKernel(self._sandbox, env=dict(self.env), zygote=zygote)
        try:
            self._kernel.start()
        except SandboxError:
            if zygote is None:
                raise
            self._kernel.shutdown()
            self._kernel = SandboxedKernel(self._sandbox, env=dict(self.env))
            self._kernel.start()
        source = Path(model_side.__file__).read_text()
        outcome = self._kernel.execute(_install_code(source), timeout=self.limits.call_timeout_s)
        if outcome.kind != "ok":
            raise SandboxError(f"could not start the model host: {outcome.error}")
        self._calls = _Calls(self._sandbox.scratch / "work" / "models")
        self._loaded = set()

    def _stop(self) -> None:
        self._served = 0
        if self._kernel is not None:
            self._kernel.shutdown()
        if self._sandbox is not None:
            scratch = self._sandbox.scratch
            self._sandbox.close()
            shutil.rmtree(scratch, ignore_errors=True)
        self._kernel = self._sandbox = None

    def _serve(self, calldir: Path, what: str) -> None:
        timeout = self.limits.call_timeout_s
        if self.deadline is not None:
            timeout = min(timeout, max(self.deadline(), 1.0))
        outcome = self._kernel.request({"op": "models", "dir": str(calldir)}, timeout=timeout)
        if outcome.kind in ("ok", "error"):
            return
        memory = self._sandbox.memory_exceeded()
        self._stop()
        if memory:
            raise UnsafeModel(
                f"{what} needed more than the {self.limits.memory_mib} MiB the grader gives a "
                "model; use fewer filters or smaller layers"
            )
        reason = f"took longer than {timeout:g} s" if outcome.kind == "timeout" else "crashed"
        raise UnsafeModel(f"{what} {reason}")

    def _request(self, op: str, key: str, what: str, **fields: Any) -> Any:
        if self._kernel is None or not self._kernel.is_alive():
            self._stop()
            self._start()
        if op != "load" and key not in self._archives:
            raise BridgeError(f"{what}: the model belongs to a submission already graded")
        if op != "load" and key not in self._loaded:
            super()._request(
                "load", key, "loading the model", file=self._archives[key].read_bytes()
            )
            self._loaded.add(key)
        answer = super()._request(op, key, what, **fields)
        if op == "load":
            self._loaded.add(key)
        return answer

    def reset(self) -> None:
        """Forget every model (end of a submission); a host that will not is stopped.

        So is one that served `RECYCLE_AFTER` submissions or spent half its CPU-time
        rlimit: what Keras leaks slowly, or the rlimit, never fails a later student.
        """
        self._served += 1
        if self._kernel is not None and self._kernel.is_alive() and self._loaded:
            try:
                super()._request("reset", "", "forgetting the models")
            except AutograderError:
                self._stop()
        if self._sandbox is not None and (
            self._served >= RECYCLE_AFTER or self._sandbox.usage()[0] > self.limits.cpu_time_s / 2
        ):
            self._stop()
        self._models.clear()
        self._archives.clear()
        self._loaded = set()
        shutil.rmtree(self._tmp / "archives", ignore_errors=True)
        self.deadline = None

    def close(self) -> None:
        self._stop()
        shutil.rmtree(self._tmp, ignore_errors=True)


_HOSTS: dict[tuple, KernelModelHost] = {}
_HOSTS_LOCK = threading.Lock()


def warm_host(
    limits: Limits, env: dict[str, str], readonly: list[Path], zygote: Any = None
) -> KernelModelHost:
    """This process's model host for these settings, kept warm between submissions.

    Starting a host (a kernel, even forked warm) costs more than most of the checks that
    use it, so a grading worker starts it once. What it keeps between submissions is
    nothing: `reset` forgets the models after each one, no student code ever runs in it,
    and it is capped and sandboxed like any host. A host that crashed is restarted by its
    next request.
    """
    # Per thread too: a Dask worker with several threads grades several submissions at once.
    key = (threading.get_ident(), limits, tuple(sorted(env.items())), tuple(readonly), zygote)
    with _HOSTS_LOCK:
        host = _HOSTS.get(key)
        if host is None:
            host = _HOSTS[key] = KernelModelHost(limits, env, readonly, zygote)
    return host


@atexit.register
def close_warm_hosts() -> None:
    with _HOSTS_LOCK:
        for host in _HOSTS.values():
            host.close()
        _HOSTS.clear()


def _install_code(source: str) -> str:
    return (
        "def __ag_install_models():\n"
        "    import sys, types\n"
        f"    m = types.ModuleType({HOST_MODULE!r})\n"
        f"    exec(compile({source!r}, 'autograder-models', 'exec'), m.__dict__)\n"
        f"    sys.modules[{HOST_MODULE!r}] = m\n"
        "__ag_install_models()\n"
        "del __ag_install_models\n"
    )
