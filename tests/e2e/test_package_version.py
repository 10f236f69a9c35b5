"""The Python package's version is the engine's: pyproject.toml reads CMakeLists.txt's
project(lorahub VERSION ...) (scikit-build-core's regex provider) instead of a copy of it, and
the built wheel's metadata agrees with lorahub_cpp.__version__ (core/version.h)."""
import json
import shutil
import subprocess
import sys

from conftest import ROOT
from python_package import run_python


def test_pyproject_takes_the_version_from_cmake(tmp_path):
    """A copy of the project files with another CMake version: the package metadata follows."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    cmake = (ROOT / "CMakeLists.txt").read_text()
    assert "project(lorahub VERSION " in cmake
    (tmp_path / "CMakeLists.txt").write_text(
        cmake.replace("project(lorahub VERSION ", "project(lorahub VERSION 9.8.7 #", 1))
    (tmp_path / "python").mkdir()
    shutil.copy(ROOT / "python" / "README.md", tmp_path / "python")
    proc = subprocess.run([sys.executable, "-m", "scikit_build_core.build", "project-table"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(proc.stdout)["version"] == "9.8.7"
    assert "deprecated" not in proc.stderr, proc.stderr


def test_the_wheel_reports_the_engine_version(tmp_path):
    r = run_python("import importlib.metadata as m, lorahub_cpp\n"
                   "print(m.version('lorahub-cpp'), lorahub_cpp.__version__)", cwd=tmp_path)
    wheel, engine = r.stdout.split()
    assert "+numerics." in engine, engine
    assert wheel == engine.split("+")[0]  # "0.1.0" of "0.1.0+numerics.N"
