"""The Python package lorahub_cpp as a user gets it: `pip wheel .` of the repository (scikit-build-
core + pybind11, with pip's build isolation), the wheel installed with pip into a folder of its
own, and scripts run against it in fresh interpreters of .venv (which also holds the reference
`lorahub`, torch, peft). Built once per pytest run (its xdist workers share it) into
scripts/test.sh's release tree (build/), so only the extension compiles.

    site = package_site()                 # the folder holding lorahub_cpp (built on first use)
    run_python(code, cwd=...)             # runs `code` with lorahub_cpp importable; a Result

LORAHUB_PYTHON_SANITIZE=1 builds the extension with ASan + UBSan (Debug, in build-asan/) instead
and preloads the ASan runtime into the interpreters (scripts/test.sh does so for the malformed
tests).
"""
import functools
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from conftest import ROOT, Result, build_tree_lock

SANITIZE = os.environ.get("LORAHUB_PYTHON_SANITIZE") == "1"


def _pip(*args, timeout=1800):
    cmd = [sys.executable, "-m", "pip", *map(str, args)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-4000:]}\n"
                             f"{proc.stderr[-8000:]}")
    return proc


@functools.lru_cache(maxsize=None)
def package_site() -> Path:
    """Builds the wheel and installs it (pip, no dependencies: numpy is in .venv) into a
    temporary folder; returns that folder."""
    build_dir = ROOT / ("build-asan" if SANITIZE else "build")
    # pytest-xdist's workers of one run share one build (PYTEST_XDIST_TESTRUNUID is the run's id):
    # the first builds under the tree's lock, the others find its finished site.
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run_id is None:
        out = Path(tempfile.mkdtemp(prefix="lorahub_cpp_"))
    else:
        out = Path(tempfile.gettempdir()) / f"lorahub_cpp_{run_id}_{build_dir.name}"
    with build_tree_lock(build_dir):
        if not (out / "site.done").exists():
            _build_site(out, build_dir)
            (out / "site.done").touch()
    return out / "site"


def _build_site(out: Path, build_dir: Path):
    if SANITIZE:
        # Into scripts/test.sh's sanitizer tree (same options, tests kept on): only the
        # extension compiles. Without build isolation: the CMake cache then names the venv's
        # pybind11, which stays (an isolated build's temporary one would not).
        config = [f"-Cbuild-dir={build_dir}", "--no-build-isolation",
                  "-Ccmake.build-type=Debug", "-Ccmake.define.LORAHUB_SANITIZE=ON",
                  "-Ccmake.define.LORAHUB_TESTS=ON"]
    else:
        # Into scripts/test.sh's release tree (same options): only the extension compiles.
        config = [f"-Cbuild-dir={build_dir}", "--no-build-isolation",
                  "-Ccmake.define.LORAHUB_TESTS=ON", "-Ccmake.define.LORAHUB_BENCH=ON",
                  "-Ccmake.define.LORAHUB_NATIVE=ON"]
    start = time.time()
    _pip("wheel", ".", "--no-deps", "-w", out / "dist", *config)
    print(f"lorahub_cpp: pip wheel . took {time.time() - start:.0f}s")
    wheels = list((out / "dist").glob("lorahub_cpp-*.whl"))
    assert len(wheels) == 1, wheels
    _pip("install", "--no-deps", "--no-index", "--target", out / "site", wheels[0])


def _asan_runtime() -> str:
    """libasan, then libstdc++: the interpreter does not link libstdc++, so without it preloaded
    ASan finds no real __cxa_throw to intercept and aborts at the extension's first throw."""
    def lib(name):
        path = subprocess.run(["gcc", f"-print-file-name={name}"], capture_output=True,
                              text=True, check=True).stdout.strip()
        return os.path.realpath(path)
    return " ".join([lib("libasan.so"), lib("libstdc++.so")])


def python_env(extra=None) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(package_site()),
                                                         str(ROOT / "tests" / "parity"),
                                                         str(ROOT / "python")])}
    if SANITIZE:
        # The interpreter is not instrumented: ASan's runtime must come first; CPython's own
        # allocations look like leaks to LeakSanitizer.
        env["LD_PRELOAD"] = _asan_runtime()
        env["ASAN_OPTIONS"] = "detect_leaks=0"
    return {**env, **(extra or {})}


def run_python(code: str, *args, cwd=None, check=True, timeout=600, env=None) -> Result:
    """Runs `code` in a fresh .venv interpreter that imports lorahub_cpp from the built wheel."""
    cmd = [sys.executable, "-c", code, *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env=python_env(env))
    if check and proc.returncode != 0:
        raise AssertionError(f"python exited {proc.returncode}:\n{proc.stdout[-4000:]}\n"
                             f"{proc.stderr[-8000:]}")
    return Result(proc)

