"""What the run ran on and with: the `environment` and `code_version` blocks of manifest.json.

Light on purpose: library versions come from package metadata (importlib.metadata), so nothing heavy is
imported here; torch is consulted only when the program has already imported it. GPU facts come from
NVML (`pynvml`, from nvidia-ml-py), imported lazily; on a machine without NVIDIA's driver every GPU field
is None. Nothing in here raises: a fact that cannot be read is None.
"""
from __future__ import annotations

import logging
import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Distribution names as published on PyPI (lookups are case-insensitive).
LIBRARIES = (
    "torch", "transformers", "peft", "bitsandbytes", "accelerate", "datasets", "tokenizers",
    "safetensors", "gguf", "pandas", "pyarrow", "numpy", "jinja2",
)


def library_versions(names: tuple[str, ...] | list[str] = LIBRARIES) -> dict[str, str | None]:
    """Installed version of each distribution, None when it is not installed. Imports none of them."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
        except Exception:  # broken metadata must not break the manifest
            out[name] = None
    return out


# --- NVML -----------------------------------------------------------------------------------------

def nvml_module():
    """pynvml, initialised; None when the package or NVIDIA's driver library is missing.

    nvmlInit is reference-counted, so every successful call here must be paired with nvmlShutdown.
    """
    try:
        import pynvml
    except Exception:
        return None
    try:
        pynvml.nvmlInit()
    except Exception as e:  # NVMLError_LibraryNotFound / DriverNotLoaded on CPU machines
        log.debug("NVML unavailable: %s", e)
        return None
    return pynvml


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def visible_nvml_handles(pynvml) -> list:
    """NVML handles of the GPUs this process can use, in CUDA's order as far as it can be known.

    NVML ignores CUDA_VISIBLE_DEVICES, so it is applied here: integer entries are NVML indices, `GPU-...`
    / `MIG-...` entries are (prefixes of) UUIDs; like CUDA, the list stops at the first entry that matches
    nothing. Unset means every device, in NVML's (PCI bus) order, which is CUDA's order too when
    CUDA_DEVICE_ORDER=PCI_BUS_ID or all GPUs are the same model.
    """
    count = pynvml.nvmlDeviceGetCount()
    every = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
    spec = os.environ.get("CUDA_VISIBLE_DEVICES")
    if spec is None:
        return every
    handles = []
    for token in (t.strip() for t in spec.split(",")):
        if not token:
            break
        if token.lstrip("-").isdigit():
            i = int(token)
            if not 0 <= i < count:
                break
            handles.append(every[i])
            continue
        try:  # a full UUID, MIG instances included
            handles.append(pynvml.nvmlDeviceGetHandleByUUID(token))
            continue
        except Exception:
            pass
        match = [h for h in every if _text(pynvml.nvmlDeviceGetUUID(h)).startswith(token)]
        if len(match) != 1:
            break
        handles.append(match[0])
    return handles


def _cuda_driver_version(pynvml) -> str | None:
    """The CUDA version the driver supports, e.g. '13.0' (what nvidia-smi shows)."""
    for fn in ("nvmlSystemGetCudaDriverVersion_v2", "nvmlSystemGetCudaDriverVersion"):
        try:
            v = int(getattr(pynvml, fn)())
        except Exception:
            continue
        return f"{v // 1000}.{(v % 1000) // 10}"
    return None


def _gpu_facts(pynvml) -> dict | None:
    handles = visible_nvml_handles(pynvml)
    if not handles:
        return None
    devices = []
    for h in handles:
        dev: dict[str, Any] = {"name": None, "memory_total_bytes": None}
        try:
            dev["name"] = _text(pynvml.nvmlDeviceGetName(h))
        except Exception:
            pass
        try:
            dev["memory_total_bytes"] = int(pynvml.nvmlDeviceGetMemoryInfo(h).total)
        except Exception:
            pass
        devices.append(dev)
    try:
        driver = _text(pynvml.nvmlSystemGetDriverVersion())
    except Exception:
        driver = None
    first = devices[0]
    return {"name": first["name"], "count": len(devices), "memory_total_bytes": first["memory_total_bytes"],
            "driver": driver, "devices": devices}


def _torch_cuda_version() -> str | None:
    torch = sys.modules.get("torch")  # only when the program imported it: never import torch here
    if torch is None:
        return None
    try:
        return torch.version.cuda
    except Exception:
        return None


# --- CPU and RAM ----------------------------------------------------------------------------------

def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        text = ""
    for key in ("model name", "Model", "Hardware", "cpu model", "Processor"):  # x86, then ARM / others
        for line in text.splitlines():
            k, sep, v = line.partition(":")
            if sep and k.strip() == key and v.strip():
                return v.strip()
    return platform.processor() or platform.machine() or None


def _usable_cores() -> int | None:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count()


def _ram_total_bytes() -> int | None:
    try:
        import psutil
        return int(psutil.virtual_memory().total)
    except Exception:
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def capture_environment() -> dict:
    """Python, platform, library versions, CUDA and GPUs, CPU, RAM: the manifest's `environment` block.

    `cuda` is the CUDA version the driver supports (NVML), `torch_cuda` the one torch was built with (only
    when torch is already imported). `gpu` is None without a usable NVIDIA GPU; otherwise name and
    memory of the first visible device, the visible count, the driver, and every visible device.
    """
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "libraries": library_versions(),
        "cuda": None,
        "torch_cuda": _torch_cuda_version(),
        "gpu": None,
        "cpu": {"model": _cpu_model(), "logical_cores": os.cpu_count(), "usable_cores": _usable_cores()},
        "ram_total_bytes": _ram_total_bytes(),
    }
    pynvml = nvml_module()
    if pynvml is not None:
        try:
            env["cuda"] = _cuda_driver_version(pynvml)
            env["gpu"] = _gpu_facts(pynvml)
        except Exception as e:
            log.warning("could not read GPU facts from NVML: %s", e)
        finally:
            try:
                pynvml.nvmlShutdown()
            except Exception:
                pass
    return env


# --- code version ---------------------------------------------------------------------------------

def git(root: Path, *args: str) -> str | None:
    """git's output in `root`; None when git is missing, fails or exits non-zero (`pipeline verify` uses it too)."""
    exe = shutil.which("git")
    if exe is None:
        return None
    try:
        r = subprocess.run([exe, *args], cwd=root, capture_output=True, text=True, timeout=20,
                           env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"})
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout if r.returncode == 0 else None


def code_version(root: Path) -> dict:
    """{"git_commit": sha or None, "dirty": bool or None} for the checkout holding `root`.

    dirty: tracked files differ from the commit (staged or not). Untracked files do not count (results and
    caches appear during a run); `untracked` gives their number (a new folder counts once). All None when
    `root` is not in a git checkout, has no commit yet, or git is not installed.
    """
    out: dict[str, Any] = {"git_commit": None, "dirty": None, "untracked": None}
    root = Path(root)
    if not root.is_dir():
        return out
    head = git(root, "rev-parse", "--verify", "HEAD")
    if head is None:
        return out
    out["git_commit"] = head.strip() or None
    status = git(root, "status", "--porcelain", "--untracked-files=normal")
    if status is not None:
        lines = [line for line in status.splitlines() if line.strip()]
        untracked = sum(1 for line in lines if line.startswith("??"))
        out["dirty"] = len(lines) > untracked
        out["untracked"] = untracked
    return out


def run_code_version(root: Path) -> dict:
    """The code a run used, for its manifest: git's view of the checkout, unless the launcher names the commit
    in PIPELINE_GIT_COMMIT (a lent GPU machine runs a copy of the working tree, with no .git or with a stale
    one that would name the wrong commit and call the tree dirty); git's view is then kept beside it."""
    v = code_version(root)
    named = os.environ.get("PIPELINE_GIT_COMMIT", "").strip()
    if not named:
        return v
    out = {"git_commit": named, "dirty": None, "untracked": None, "source": "PIPELINE_GIT_COMMIT (set by the launcher)"}
    if v.get("git_commit") is not None:
        out["checkout_git"] = v  # what the copy's own .git said
    return out
