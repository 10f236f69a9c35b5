"""The CLI is a client of the public API only (issue 19): a file under src/cli includes headers
of lorahub/ (include/lorahub/, installed), of cli/, and third-party ones, never the engine's
layers under src/ (core/, models/, eval/, hub/, ...). A command still to be ported is listed in
NOT_YET_PORTED; the list may only shrink (a listed file that is clean fails too)."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / "src" / "cli"
# The engine's own layers: every folder of src/ but cli/ (and lorahub/, which is include/'s).
ENGINE_LAYERS = {p.name for p in (ROOT / "src").iterdir() if p.is_dir()} - {"cli"}
INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]', re.M)

# Files of commands not yet on the public API (none since session 9: every command is ported;
# the check stays so that a new command cannot reach into the engine's layers).
NOT_YET_PORTED: set[str] = set()


def engine_includes(text):
    """The included paths of `text` that name a header of an engine layer under src/."""
    return [h for h in INCLUDE.findall(text) if h.split("/")[0] in ENGINE_LAYERS]


def cli_files():
    return sorted(p for p in CLI.iterdir() if p.suffix in (".cpp", ".h"))


def test_the_scan_sees_engine_includes():
    # The check itself: it finds a quoted or angled engine header, lets the public ones pass.
    text = '#include "core/error.h"\n# include <eval/bbh_run.h>\n#include "lorahub/lorahub.h"\n' \
           '#include "cli/command.h"\n#include <CLI/CLI.hpp>\n#include <fmt/format.h>\n'
    assert engine_includes(text) == ["core/error.h", "eval/bbh_run.h"]
    assert {"core", "eval", "models", "hub", "formats", "serve"} <= ENGINE_LAYERS


def test_cli_includes_only_the_public_api():
    files = cli_files()
    assert files, CLI
    offenders = {p.name: engine_includes(p.read_text()) for p in files}
    offenders = {name: found for name, found in offenders.items() if found}
    unexpected = {name: found for name, found in offenders.items() if name not in NOT_YET_PORTED}
    assert not unexpected, f"src/cli includes engine headers (use include/lorahub/): {unexpected}"
    ported = sorted(NOT_YET_PORTED - set(offenders))
    assert not ported, f"ported to the public API, remove from NOT_YET_PORTED: {ported}"
