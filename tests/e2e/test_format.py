"""The C++ sources are as clang-format leaves them (.clang-format; Debian 12's clang-format 14,
installed by scripts/setup.sh): `clang-format --dry-run --Werror` over src/, include/, tests/,
bench/, python/ and examples/. Fix a failure with `clang-format -i FILE`; generated data that
should stay as written goes between `// clang-format off` and `// clang-format on`."""
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("src", "include", "tests", "bench", "python", "examples")
SUFFIXES = {".h", ".hpp", ".cpp", ".cc", ".c"}


def cpp_files():
    return sorted(p for folder in FOLDERS for p in (ROOT / folder).rglob("*")
                  if p.suffix in SUFFIXES and p.is_file())


def test_sources_are_clang_formatted():
    clang_format = shutil.which("clang-format")
    assert clang_format, "clang-format is missing: scripts/setup.sh installs it"
    files = cpp_files()
    assert len(files) > 100, files
    proc = subprocess.run([clang_format, "--dry-run", "--Werror", *map(str, files)],
                          capture_output=True, text=True, cwd=ROOT)
    unformatted = sorted({line.split(":")[0] for line in proc.stderr.splitlines()
                          if ": error: " in line})
    assert proc.returncode == 0, f"not clang-formatted (clang-format -i them): {unformatted}" \
                                 f"\n{proc.stderr[:2000]}"
