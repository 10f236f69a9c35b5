"""The include layering of src/ (DEVELOPERS.md, "Layers"): a lower layer never includes a higher
one, and each layer includes only the layers its "links" column reaches (transitively); the table
is read from DEVELOPERS.md, so the guide and the code cannot drift apart. The public headers
(include/lorahub/) include nothing from src/, and below src/api only lorahub/check.h and
lorahub/error.h (core's, over {fmt}) are used of them.

The CLI is a client of the public API only (issue 19): a file under src/cli includes headers of
lorahub/ (include/lorahub/, installed), of cli/, and third-party ones, never the engine's layers
under src/ (core/, models/, eval/, hub/, ...). A command still to be ported is listed in
NOT_YET_PORTED; the list may only shrink (a listed file that is clean fails too)."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
CLI = SRC / "cli"
# The engine's own layers: every folder of src/ but cli/ (and lorahub/, which is include/'s).
ENGINE_LAYERS = {p.name for p in SRC.iterdir() if p.is_dir()} - {"cli"}
INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]', re.M)
SOURCE_SUFFIXES = (".h", ".hpp", ".cpp", ".cc", ".inc")
# Public headers that the layers below src/api may include: core/error.h is built on them.
CORE_PUBLIC = {"lorahub/check.h", "lorahub/error.h"}

# Files of commands not yet on the public API (none since session 9: every command is ported;
# the check stays so that a new command cannot reach into the engine's layers).
NOT_YET_PORTED: set[str] = set()


def layer_table(text):
    """(layers bottom to top, {layer: the layers of its "links" column}) from DEVELOPERS.md's
    table rows `| src/<layer> | what | links |`; "all" in links means every lower layer."""
    order, links = [], {}
    for line in text.splitlines():
        if not line.startswith("| src/"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        order.append(cells[0].removeprefix("src/"))
        links[order[-1]] = {w.strip() for w in cells[-1].split(",")}
    deps = {}
    for i, layer in enumerate(order):
        named = links[layer]
        deps[layer] = set(order[:i]) if "all" in named else named & set(order)
    return order, deps


def reachable(deps, layer):
    seen, todo = set(), [layer]
    while todo:
        for d in deps[todo.pop()] - seen:
            seen.add(d)
            todo.append(d)
    return seen


def violations(order, deps, files):
    """[(file, included header, why)] for `files`: {path under src/: text}."""
    rank = {layer: i for i, layer in enumerate(order)}
    api = rank.get("api", len(order))
    out = []
    for path, text in files.items():
        layer = path.split("/")[0]
        allowed = reachable(deps, layer) | {layer}
        for header in INCLUDE.findall(text):
            top = header.split("/")[0]
            if top == "lorahub":
                if rank[layer] < api and header not in CORE_PUBLIC:
                    out.append((path, header, "public API header below src/api"))
            elif top in rank and rank[top] > rank[layer]:
                out.append((path, header, f"{layer} is below {top}"))
            elif top in rank and top not in allowed:
                out.append((path, header, f"{top} is not in {layer}'s links (DEVELOPERS.md)"))
    return out


def src_files():
    return {str(p.relative_to(SRC)): p.read_text() for p in sorted(SRC.rglob("*"))
            if p.suffix in SOURCE_SUFFIXES}


def engine_includes(text):
    """The included paths of `text` that name a header of an engine layer under src/."""
    return [h for h in INCLUDE.findall(text) if h.split("/")[0] in ENGINE_LAYERS]


def cli_files():
    return sorted(p for p in CLI.iterdir() if p.suffix in (".cpp", ".h"))


def test_the_table_covers_every_layer_in_the_readme_order():
    order, _ = layer_table((ROOT / "DEVELOPERS.md").read_text())
    assert set(order) == {p.name for p in SRC.iterdir() if p.is_dir()}, order
    readme = re.search(r"`src/core` -> (.*?); a lower layer", (ROOT / "README.md").read_text(),
                       re.S)
    assert readme, "README.md's Layout section no longer lists the layers"
    assert ["core"] + re.findall(r"`(\w+)`", readme.group(1)) == order


def test_the_scan_sees_a_lower_layer_including_a_higher_one():
    order, deps = layer_table((ROOT / "DEVELOPERS.md").read_text())
    files = {"kernels/x.cpp": '#include "models/model.h"\n#include "core/error.h"\n',
             "http/y.h": '#include <eval/metrics.h>\n',  # higher, and not in http's links
             "hub/z.cpp": '#include "lora/adapter.h"\n',  # lower, but not in hub's links
             "formats/w.cpp": '#include "lorahub/lorahub.h"\n#include "lorahub/check.h"\n',
             "api/v.cpp": '#include "lorahub/lorahub.h"\n#include "hub/client.h"\n'
                          '#include "models/model.h"\n#include <fmt/format.h>\n'}
    found = {(path, header) for path, header, _ in violations(order, deps, files)}
    assert found == {("kernels/x.cpp", "models/model.h"), ("http/y.h", "eval/metrics.h"),
                     ("hub/z.cpp", "lora/adapter.h"), ("formats/w.cpp", "lorahub/lorahub.h")}


def test_no_layer_includes_a_higher_one():
    order, deps = layer_table((ROOT / "DEVELOPERS.md").read_text())
    bad = violations(order, deps, src_files())
    assert not bad, "\n".join(f"src/{p} includes {h}: {why}" for p, h, why in bad)


def test_public_headers_include_nothing_from_src():
    layers = {p.name for p in SRC.iterdir() if p.is_dir()}
    bad = [(p.name, h) for p in sorted((ROOT / "include" / "lorahub").glob("*.h"))
           for h in INCLUDE.findall(p.read_text()) if h.split("/")[0] in layers]
    assert not bad, f"include/lorahub/ includes headers of src/: {bad}"


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
