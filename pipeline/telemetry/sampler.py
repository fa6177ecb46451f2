"""Background resource sampling: the rows of the `resources` table, tagged with the running stage.

(Longer than the project's ~300-line guide on purpose: it is one thread-safe object, and its two locks,
the probes they guard and the peak bookkeeping have to be read together to be trusted.)

    sampler = ResourceSampler(interval_s=0.5, disk_path=Path("checkpoints"))
    with sampler.stage("train", spool=part.append, attempt=2):
        ...
    store.replace_rows("resources", sampler.frame("train"), ["train"])
    sampler.peaks("train")["torch_max_allocated_bytes"]
    sampler.close()

One daemon thread samples every `interval_s` while a stage is open; one more sample is taken at stage
entry and one at exit (in the caller's thread), so every stage has at least two rows. A probe that fails
gives None (logged once per probe) and the run goes on; nothing here raises into the caller except a
wrong argument. With `spool`, each row is also handed to it as it is taken (the runner appends it to the
stage's part file, records/store.py), so a killed stage keeps what was measured up to the kill; `attempt`
numbers the stage's attempts (a resumed stage keeps the earlier ones' rows).

What each column measures:
- gpu_util_pct, gpu_mem_used_bytes: NVML, the whole device (every process on it). The device is the one
  torch uses (its current device in the thread that opens the stage, matched to NVML by UUID) once torch
  has initialised CUDA; before that, the first device CUDA_VISIBLE_DEVICES exposes.
- torch_allocated_bytes, torch_reserved_bytes: torch.cuda's caching allocator, only once the program has
  imported torch and initialised CUDA (this module never imports torch or initialises CUDA); None before.
- process_rss_bytes: resident set of this process plus its children (DataLoader workers; pages shared
  with the parent are counted in each process, so with workers this is an upper bound).
- system_ram_used_bytes: total - available (memory that cannot be reclaimed without swapping).
- cpu_pct: whole machine, 0-100, busy share of all cores between this sample and the previous one
  (psutil.cpu_percent's formula, over the sampler's own window, so other callers of
  psutil.cpu_percent do not disturb it). None when the window is under `MIN_CPU_WINDOW_S`.
- disk_used_bytes: used bytes of the filesystem holding `disk_path` (its nearest existing parent when
  it does not exist yet).

Short peaks of torch memory fall between samples; torch's own peak counter catches them: it is reset at
stage entry (when CUDA is initialised) and read at every sample and at exit, so `peaks(stage)` has
`torch_max_allocated_bytes` / `torch_max_reserved_bytes`, correct even if other code (per-epoch
accounting) resets the counter in between, as long as a sample falls between a peak and that reset.
"""
from __future__ import annotations

import contextlib
import logging
import math
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
import pyarrow as pa

from pipeline.telemetry.environment import nvml_module, visible_nvml_handles
from records.schema import TABLES

log = logging.getLogger(__name__)

SCHEMA: pa.Schema = TABLES["resources"]
COLUMNS: tuple[str, ...] = tuple(SCHEMA.names)
TAGS: tuple[str, ...] = ("rank", "gpu_index", "attempt")  # who sampled, and when: set per row, not measured
MEASURES: tuple[str, ...] = COLUMNS[3:-len(TAGS)]  # everything between stage, time, elapsed_s and the tags
assert COLUMNS[:3] == ("stage", "time", "elapsed_s") and COLUMNS[-len(TAGS):] == TAGS, COLUMNS
CUDA_PEAK_KEYS = ("torch_max_allocated_bytes", "torch_max_reserved_bytes")
MIN_CPU_WINDOW_S = 0.05  # below this the kernel's tick-based CPU times are mostly noise
_LOCK_TIMEOUT_S = 5.0    # the caller's thread never waits longer than this on a stuck probe
_NAN = float("nan")


def _torch_cuda():
    """torch.cuda when the program has imported torch and initialised CUDA; else None. Never imports."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        cuda = torch.cuda
        return cuda if cuda.is_initialized() else None
    except Exception:
        return None


class _Stage:
    __slots__ = ("name", "start", "token", "spool", "attempt")

    def __init__(self, name: str, start: float, token: object, spool=None, attempt: int = 1):
        self.name, self.start, self.token, self.spool, self.attempt = name, start, token, spool, attempt


class ResourceSampler:
    """Samples the `resources` columns in a daemon thread, tagged with the innermost open stage."""

    def __init__(self, interval_s: float = 0.5, disk_path: Path | str | None = None, *,
                 include_children: bool = True, gpu: bool = True, rank: int = 0):
        interval_s = float(interval_s)
        if not (interval_s > 0 and math.isfinite(interval_s)):
            raise ValueError(f"interval_s must be a positive number, got {interval_s!r}")
        self.interval_s = interval_s
        self.disk_path = (Path(disk_path) if disk_path is not None else Path.cwd()).absolute()
        self.include_children = include_children
        self._gpu_wanted = gpu
        self.rank = int(rank)  # one sampler per process; a multi-process run merges them by this tag

        self._state = threading.Lock()      # stack, rows, peaks: held only briefly, never around probes
        self._probe = threading.Lock()      # serialises sampling (probe state, row order)
        self._stack: list[_Stage] = []
        self._first_start: dict[str, float] = {}   # perf_counter of each stage's first entry
        self._rows: list[tuple] = []
        self._cuda_peaks: dict[str, list[float | None]] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._warned: set[str] = set()

        self._psutil = None
        self._proc = None
        try:
            import psutil
            self._psutil = psutil
            self._proc = psutil.Process()
        except Exception as e:
            self._warn_once("psutil", e)
        self._cpu_last: tuple[float, Any] | None = None
        self._cpu_sample()  # prime: the first window starts now

        self._nvml = None          # pynvml module once initialised
        self._nvml_tried = False
        self._nvml_handle = None
        self._nvml_match: str | None = None  # None, "position" (provisional) or "uuid" (settled)
        self._cuda_index = 0       # torch's current device in the thread that opened the stage

    # --- public API -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def stage(self, name: str, spool=None, attempt: int = 1) -> Iterator[ResourceSampler]:
        """Tag samples with `name` while the body runs; sample at entry and exit; start the thread.

        Stages may nest (rows go to the innermost). Entering a name again appends rows; elapsed_s counts
        from its first entry. An exception in the body is recorded (exit sample) and re-raised.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"stage name must be a non-empty string, got {name!r}")
        token = object()
        try:
            self._enter(name, token, spool, attempt)
        except Exception as e:  # never let profiling break the stage
            self._warn_once("stage-enter", e)
        try:
            yield self
        finally:
            try:
                self._exit(token)
            except Exception as e:
                self._warn_once("stage-exit", e)

    def frame(self, stage: str | None = None) -> pd.DataFrame:
        """The rows of one stage (all stages when None) with exactly the `resources` schema's columns."""
        with self._state:
            rows = [r for r in self._rows if stage is None or r[0] == stage]
        columns = list(zip(*rows, strict=True)) if rows else [[] for _ in COLUMNS]
        arrays = [pa.array(list(col), type=field.type) for col, field in zip(columns, SCHEMA, strict=True)]
        return pa.Table.from_arrays(arrays, schema=SCHEMA).to_pandas()

    def peaks(self, stage: str) -> dict[str, float | None]:
        """Highest value of each measured column in the stage (None when never measured), elapsed_s
        (the sampled duration) and torch's own peak counters (torch_max_allocated/reserved_bytes)."""
        with self._state:
            rows = [r for r in self._rows if r[0] == stage]
            cuda = list(self._cuda_peaks.get(stage, [None, None]))
        out: dict[str, float | None] = {}
        for i, col in enumerate(COLUMNS):
            if col in ("stage", "time") or col in TAGS:
                continue
            values = [r[i] for r in rows if r[i] is not None and not math.isnan(r[i])]
            out[col] = max(values) if values else None
        for key, value in zip(CUDA_PEAK_KEYS, cuda, strict=True):
            out[key] = value
        return out

    @property
    def running(self) -> bool:
        t = self._thread
        return t is not None and t.is_alive()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread and release NVML. Idempotent; the recorded rows stay readable.
        A later stage() starts a new thread."""
        self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout)
        self._thread = None
        acquired = self._probe.acquire(timeout=timeout)
        try:
            if self._nvml is not None:
                try:
                    self._nvml.nvmlShutdown()
                except Exception:
                    pass
            self._nvml, self._nvml_handle, self._nvml_tried, self._nvml_match = None, None, False, None
        finally:
            if acquired:
                self._probe.release()

    def __enter__(self) -> ResourceSampler:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- stage bookkeeping --------------------------------------------------------------------------

    def _enter(self, name: str, token: object, spool, attempt: int) -> None:
        self._refresh_cuda_device()
        cuda = _torch_cuda()
        if cuda is not None:
            # Credit the peak so far to the open stages before resetting the counter for this one.
            self._read_cuda(cuda, update_peaks=True)
            try:
                cuda.reset_peak_memory_stats(self._cuda_index)
            except Exception as e:
                self._warn_once("cuda-reset-peak", e)
        with self._state:
            now = time.perf_counter()
            self._first_start.setdefault(name, now)
            self._cuda_peaks.setdefault(name, [None, None])
            self._stack.append(_Stage(name, self._first_start[name], token, spool, attempt))
        self._ensure_thread()
        self._sample(blocking=True)

    def _exit(self, token: object) -> None:
        self._refresh_cuda_device()
        self._sample(blocking=True)
        with self._state:
            for i in range(len(self._stack) - 1, -1, -1):
                if self._stack[i].token is token:
                    del self._stack[i]
                    break

    def _ensure_thread(self) -> None:
        if self.running:
            return
        self._stop = threading.Event()
        t = threading.Thread(target=self._loop, args=(self._stop,), name="ResourceSampler", daemon=True)
        self._thread = t
        t.start()

    def _loop(self, stop: threading.Event) -> None:
        next_at = time.monotonic() + self.interval_s
        while not stop.wait(max(0.0, next_at - time.monotonic())):
            next_at += self.interval_s
            now = time.monotonic()
            if next_at < now:  # fell behind (slow probe, suspended process): don't burst to catch up
                next_at = now + self.interval_s
            try:
                with self._state:
                    idle = not self._stack
                if idle:
                    if self._probe.acquire(timeout=self.interval_s):
                        try:
                            self._cpu_sample()  # keep the CPU window short for the next stage's entry row
                        finally:
                            self._probe.release()
                else:
                    self._sample(blocking=False)
            except Exception as e:  # the thread must outlive any probe failure
                self._warn_once("sampler-loop", e)

    # --- sampling --------------------------------------------------------------------------------

    def _sample(self, blocking: bool) -> None:
        if not self._probe.acquire(timeout=_LOCK_TIMEOUT_S if blocking else self.interval_s):
            self._warn_once("probe-lock", TimeoutError("a probe is stuck; sample skipped"))
            return
        try:
            with self._state:
                if not self._stack:
                    return
                current = self._stack[-1]
            t_perf = time.perf_counter()
            t_wall = time.time()
            values = self._measure()
            row = None
            with self._state:
                if any(s.token is current.token for s in self._stack):  # still open: keep the row
                    gpu_index = self._cuda_index if _torch_cuda() is not None else None
                    row = (current.name, t_wall, max(0.0, t_perf - current.start), *values, self.rank, gpu_index,
                           current.attempt)
                    self._rows.append(row)
            if row is not None and current.spool is not None:
                self._try("spool", lambda: current.spool(row))  # a full disk loses the part file, not the run
        finally:
            self._probe.release()

    def _measure(self) -> tuple:
        m: dict[str, float | None] = dict.fromkeys(MEASURES)
        gpu = self._nvml_probe()
        if gpu is not None:
            m["gpu_util_pct"], m["gpu_mem_used_bytes"] = gpu
        cuda = _torch_cuda()
        if cuda is not None:
            got = self._read_cuda(cuda, update_peaks=True)
            if got is not None:
                m["torch_allocated_bytes"], m["torch_reserved_bytes"] = got
        if self._proc is not None:
            m["process_rss_bytes"] = self._try("process_rss", self._rss)
            m["system_ram_used_bytes"] = self._try("system_ram", self._ram_used)
        m["cpu_pct"] = self._try("cpu_pct", self._cpu_sample)
        m["disk_used_bytes"] = self._try("disk", self._disk_used)
        return tuple(None if m[c] is None else float(m[c]) for c in MEASURES)

    def _try(self, name: str, fn) -> float | None:
        try:
            return fn()
        except Exception as e:
            self._warn_once(name, e)
            return None

    def _rss(self) -> float:
        psutil = self._psutil
        rss = self._proc.memory_info().rss
        if self.include_children:
            try:
                children = self._proc.children(recursive=True)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                children = []
            for child in children:
                try:
                    rss += child.memory_info().rss
                except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    pass  # exited between listing and reading
        return float(rss)

    def _ram_used(self) -> float:
        vm = self._psutil.virtual_memory()
        return float(vm.total - vm.available)

    def _cpu_sample(self) -> float | None:
        """Busy % of all cores since the previous call (the first call only starts the window)."""
        psutil = self._psutil
        if psutil is None:
            return None
        now, times = time.perf_counter(), psutil.cpu_times()
        last = self._cpu_last
        if last is not None and now - last[0] < MIN_CPU_WINDOW_S:
            return None  # too short to mean anything; keep the window open
        self._cpu_last = (now, times)
        if last is None:
            return None
        total = _cpu_total(times) - _cpu_total(last[1])
        busy = _cpu_busy(times) - _cpu_busy(last[1])
        if total <= 0:
            return None
        return min(100.0, max(0.0, 100.0 * busy / total))

    def _disk_used(self) -> float:
        path = self.disk_path
        while not path.exists() and path != path.parent:
            path = path.parent
        return float(shutil.disk_usage(path).used)

    # --- NVML and torch.cuda ------------------------------------------------------------------------

    def _refresh_cuda_device(self) -> None:
        """In the caller's thread: note torch's current device (per-thread in CUDA) for later samples."""
        cuda = _torch_cuda()
        if cuda is None:
            return
        try:
            index = int(cuda.current_device())
        except Exception as e:
            self._warn_once("cuda-device", e)
            return
        if index != self._cuda_index:
            self._cuda_index = index
            self._nvml_match = None

    def _nvml_probe(self) -> tuple[float | None, float | None] | None:
        if not self._gpu_wanted:
            return None
        if not self._nvml_tried:
            self._nvml_tried = True
            self._nvml = nvml_module()
            if self._nvml is None:
                return None
        if self._nvml is None:
            return None
        if self._nvml_match != "uuid":
            self._match_nvml_device()
        h = self._nvml_handle
        if h is None:
            return None
        util = mem = None
        try:
            util = float(self._nvml.nvmlDeviceGetUtilizationRates(h).gpu)
        except Exception as e:  # e.g. NotSupported on MIG instances
            self._warn_once("nvml-util", e)
        try:
            mem = float(self._nvml.nvmlDeviceGetMemoryInfo(h).used)
        except Exception as e:
            self._warn_once("nvml-memory", e)
        return util, mem

    def _match_nvml_device(self) -> None:
        """NVML handle of torch's device: by UUID once torch has initialised CUDA; until then the
        device at torch's index among those CUDA_VISIBLE_DEVICES exposes (re-matched later)."""
        pynvml = self._nvml
        cuda = _torch_cuda()
        if cuda is not None:
            self._nvml_match = "uuid"  # settled now, whichever way it goes
            try:
                uuid = str(cuda.get_device_properties(self._cuda_index).uuid)
                if not uuid.startswith(("GPU-", "MIG-")):
                    uuid = "GPU-" + uuid
                self._nvml_handle = pynvml.nvmlDeviceGetHandleByUUID(uuid)
                return
            except Exception as e:  # torch without .uuid, odd setups: fall back to the position
                self._warn_once("nvml-uuid", e)
        elif self._nvml_match == "position":
            return
        else:
            self._nvml_match = "position"
        try:
            handles = visible_nvml_handles(pynvml)
            self._nvml_handle = handles[self._cuda_index] if self._cuda_index < len(handles) else None
        except Exception as e:
            self._warn_once("nvml-device", e)
            self._nvml_handle = None

    def _read_cuda(self, cuda, update_peaks: bool) -> tuple[float, float] | None:
        """(allocated, reserved) now; folds the allocator's peak counters into every open stage."""
        try:
            stats = cuda.memory_stats(self._cuda_index)
        except Exception as e:
            self._warn_once("torch-cuda", e)
            return None
        allocated = float(stats.get("allocated_bytes.all.current", 0))
        reserved = float(stats.get("reserved_bytes.all.current", 0))
        if update_peaks:
            peak = (float(stats.get("allocated_bytes.all.peak", allocated)),
                    float(stats.get("reserved_bytes.all.peak", reserved)))
            with self._state:
                for name in {s.name for s in self._stack}:
                    slot = self._cuda_peaks.setdefault(name, [None, None])
                    for i, v in enumerate(peak):
                        slot[i] = v if slot[i] is None else max(slot[i], v)
        return allocated, reserved

    def _warn_once(self, key: str, err: BaseException) -> None:
        if key in self._warned:
            return
        self._warned.add(key)
        log.warning("resource probe %s failed, recorded as missing while it fails (logged once): %s: %s",
                    key, type(err).__name__, err)


def _cpu_total(t) -> float:
    total = sum(t)
    # Linux accounts guest time inside user/nice already (as psutil and htop do).
    return total - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)


def _cpu_busy(t) -> float:
    return _cpu_total(t) - t.idle - getattr(t, "iowait", 0.0)
