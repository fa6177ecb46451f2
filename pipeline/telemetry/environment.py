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
import sys
from importlib import metadata
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

