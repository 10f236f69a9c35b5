"""The demo's HTML report and terminal helpers on made-up results (fast; the full demo runs in
test_demo.py): the few-shot-majority floor beside the accuracy, each prediction marked right or
wrong, a warning when the predictions collapse to one answer, the weights chart sorted by |w|
with labelled axes."""
import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("demo", ROOT / "scripts" / "demo.py")
demo = importlib.util.module_from_spec(spec)
spec.loader.exec_module(demo)

EXAMPLES = [{"input": f"Q: {i}\nA:", "output": o} for i, o in enumerate(["(B)", "(A)", "(B)", "(C)", "(B)"])]
TEST = [{"input": f"Q: t{i}\nA:", "output": o}
        for i, o in enumerate(["(A)", "(B)", "(C)", "(B)", "(D)", "(A)", "(B)", "(C)", "(A)", "(D)"])]
SUMMARY = {"optimizer": "cobyla", "objective": 0.5, "weights": [0.1, -0.9, 0.4],
           "history": [{"objective": 1.0}, {"objective": 0.7}, {"objective": 0.5}]}
NAMES = ["small", "negative_big", "medium"]


def report(tmp_path, preds):
    path = tmp_path / "report.html"
    demo.write_report(path, "t", SUMMARY, NAMES, 0.0, 30.0, EXAMPLES, TEST, preds)
    return path.read_text()


def test_majority_floor():
    answer, floor = demo.majority_floor(EXAMPLES, TEST)
    assert answer == "(B)" and floor == 30.0  # 3 of the 10 test targets are (B)
    assert demo.majority_floor([{"output": "Yes."}, {"output": "no"}, {"output": "yes"}],
                               [{"output": "YES"}, {"output": "no"}]) == ("Yes.", 50.0)


def test_report_shows_floor_marks_and_collapse_warning(tmp_path):
    page = report(tmp_path, ["(B)"] * 10)
    assert 'few-shot\nmajority &#x27;(B)&#x27; scores <b class="floor">30.0%</b>' in page
    assert page.count('<tr class="right">') == 3 and page.count('<tr class="wrong">') == 7
    assert "&#10003; right" in page and "&#10007; wrong" in page
    assert "collapsed to one answer: &#x27;(b)&#x27; for 10 of 10" in page
    varied = report(tmp_path, [t["output"] for t in TEST[:5]] + ["(A)"] * 5)
    assert "collapsed" not in varied
    assert varied.count('<tr class="right">') == 7


def test_weights_chart_sorted_with_axis_labels(tmp_path):
    page = report(tmp_path, ["(A)"] * 10)
    weights_svg = page.split("<h2>Learned weights</h2>")[1].split("</svg>")[0]
    labels = re.findall(r'text-anchor="end">(\w+)</text><rect', weights_svg)
    assert labels == ["negative_big", "medium", "small"]
    assert "learned weight" in weights_svg and ">module</text>" in weights_svg
    assert "evaluation step" in page and "objective (loss + L1)" in page
    chart = demo.bar_chart(NAMES, SUMMARY["weights"]).splitlines()
    assert [line.split()[0] for line in chart] == ["negative_big", "medium", "small"]
