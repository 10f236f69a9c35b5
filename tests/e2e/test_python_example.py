"""examples/python/lorahub_quickstart.py (the README's Python example, notebook-style) runs as it
is against the built wheel, with a short search (EXAMPLE_STEPS) to keep the suite quick."""
from conftest import ROOT
from python_package import run_python


def test_quickstart_example_runs(tmp_path):
    example = ROOT / "examples" / "python" / "lorahub_quickstart.py"
    code = f"import runpy; runpy.run_path({str(example)!r}, run_name='__main__')"
    res = run_python(code, cwd=tmp_path, env={"EXAMPLE_STEPS": "5",
                                              "EXAMPLE_OUT": str(tmp_path / "adapter")})
    print(res.stdout)
    assert "module weights:" in res.stdout and "task accuracy:" in res.stdout
    assert "saved to" in res.stdout
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
