"""bench/run.py's W3 programs: bench_forward is not in the default build (EXCLUDE_FROM_ALL), so
the harness builds both of W3's programs in the CMake tree of --bench-bin before anything runs,
and stops with a one-line message naming the build command where it cannot (rather than
reporting W3 missing at the end of the run). A fake `cmake` on PATH stands for the build."""
import importlib.util
import os
import stat
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
bench_run = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench_run)

COMMAND = "cmake --build {} --target bench_forward bench_matmul_peak"


def fake_cmake(tmp_path, monkeypatch, body):
    """A `cmake` first on PATH that appends its arguments to calls.txt, then runs `body`."""
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    calls = tmp_path / "calls.txt"
    script = bindir / "cmake"
    script.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n{body}\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return calls


def cmake_tree(tmp_path):
    build = tmp_path / "build"
    (build / "bin").mkdir(parents=True)
    (build / "CMakeCache.txt").write_text("")
    return build


def test_builds_both_programs_in_the_tree_of_bench_bin(tmp_path, monkeypatch):
    build = cmake_tree(tmp_path)
    calls = fake_cmake(tmp_path, monkeypatch,
                       'touch "$2/bin/bench_forward" "$2/bin/bench_matmul_peak"')
    bench_run.build_w3_programs(build / "bin")
    assert calls.read_text().split() == COMMAND.format(build).split()[1:]


def test_built_even_when_present_so_they_are_up_to_date(tmp_path, monkeypatch):
    build = cmake_tree(tmp_path)
    for t in bench_run.W3_TARGETS:
        (build / "bin" / t).write_text("old")
    calls = fake_cmake(tmp_path, monkeypatch, "true")
    bench_run.build_w3_programs(build / "bin")
    assert calls.read_text().split() == COMMAND.format(build).split()[1:]


def test_a_failed_build_stops_with_the_command(tmp_path, monkeypatch, capsys):
    build = cmake_tree(tmp_path)
    fake_cmake(tmp_path, monkeypatch, 'echo "forward.cpp:1: error: boom"; exit 1')
    with pytest.raises(SystemExit) as e:
        bench_run.build_w3_programs(build / "bin")
    message = str(e.value.code)
    assert "\n" not in message and message.endswith(COMMAND.format(build))
    assert "boom" in capsys.readouterr().err  # the build's own errors, above the line


def test_a_build_without_the_programs_stops_with_the_command(tmp_path, monkeypatch):
    build = cmake_tree(tmp_path)
    fake_cmake(tmp_path, monkeypatch, 'touch "$2/bin/bench_matmul_peak"')
    with pytest.raises(SystemExit) as e:
        bench_run.build_w3_programs(build / "bin")
    message = str(e.value.code)
    assert "bench_forward" in message and "bench_matmul_peak in" not in message
    assert message.endswith(COMMAND.format(build))


def test_outside_a_cmake_tree_present_programs_are_used_as_they_are(tmp_path, monkeypatch):
    bindir = tmp_path / "installed"
    bindir.mkdir()
    for t in bench_run.W3_TARGETS:
        (bindir / t).write_text("")
    calls = fake_cmake(tmp_path, monkeypatch, "exit 1")
    bench_run.build_w3_programs(bindir)
    assert not calls.exists()


def test_outside_a_cmake_tree_missing_programs_stop_with_the_command(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    calls = fake_cmake(tmp_path, monkeypatch, "exit 1")
    with pytest.raises(SystemExit) as e:
        bench_run.build_w3_programs(bindir)
    assert not calls.exists()
    assert str(e.value.code).endswith(COMMAND.format(tmp_path))


def test_the_harness_builds_the_workload_in_a_child_so_peak_rss_stays_each_sides_own(tmp_path):
    """Linux reports as a child's ru_maxrss at least its parent's RSS at fork: a harness that
    imported torch and built the model itself made every measured peak RSS read 3.7 GB (W1's
    0.93x on 2026-12-04, 0.45x when rerun). The harness must stay small while it builds."""
    import json
    import subprocess
    import sys
    probe = (
        "import importlib.util, json, sys\n"
        f"spec = importlib.util.spec_from_file_location('bench_run', {str(ROOT / 'bench' / 'run.py')!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "from pathlib import Path\n"
        f"work = m.build_workload(Path({str(tmp_path / 'cache')!r}), 'tiny')\n"
        f"child = m.run_measured(['true'], Path({str(tmp_path / 'true.log')!r}))\n"
        "print(json.dumps({'torch': 'torch' in sys.modules, 'model': work['model'],\n"
        "  'self_mb': int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
        "                 .split()[1]) / 1024,\n"
        "  'child_mb': child['rss_mb']}))\n")
    out = json.loads(subprocess.run([sys.executable, "-c", probe], check=True,
                                    capture_output=True, text=True).stdout)
    assert Path(out["model"], "config.json").exists()
    assert not out["torch"]
    # VmHWM, not ru_maxrss: this probe's own ru_maxrss starts at pytest's RSS (the same rule).
    assert out["self_mb"] < 100, out  # torch alone is several hundred MB
    assert out["child_mb"] < 100, out
