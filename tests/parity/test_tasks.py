"""The upstream task generator (python/lorahub_tasks): determinism, answers re-derived from the
question text by independent solvers, and no BIG-Bench Hard text in anything it generates."""
import datetime
import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))

import lorahub_tasks  # noqa: E402
from lorahub_tasks import vocab  # noqa: E402

PER_TASK = 150


@pytest.fixture(scope="module")
def generated():
    return {name: lorahub_tasks.generate(name, PER_TASK, seed=0) for name in lorahub_tasks.TASKS}


def test_task_inventory():
    assert len(lorahub_tasks.TASKS) >= 28
    assert len(lorahub_tasks.HELD_OUT_TASKS) == 4
    assert set(lorahub_tasks.LIBRARY_TASKS).isdisjoint(lorahub_tasks.HELD_OUT_TASKS)


def test_prompt_follows_bbh_convention(generated):
    for name, examples in generated.items():
        instruction = lorahub_tasks.TASKS[name].instruction
        for e in examples:
            assert e["input"] == f"{instruction}\n\nQ: {e['question']}\nA:"
            assert e["target"] and e["target"] == e["target"].strip(), (name, e)


def test_deterministic_across_processes(generated):
    """Same (task, seed) -> same examples, also in a fresh interpreter with another hash seed."""
    for name in ["swap_tracking", "syllogism", "sort_words", "date_mc"]:
        proc = subprocess.run([sys.executable, "-m", "lorahub_tasks", name, "--count", "20"],
                              cwd=ROOT / "python", capture_output=True, text=True, check=True,
                              env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"})
        lines = [json.loads(line) for line in proc.stdout.splitlines()]
        assert lines == [{"input": e["input"], "output": e["target"]} for e in generated[name][:20]]
        assert lorahub_tasks.generate(name, 20, seed=1) != generated[name][:20]


def test_exclude_keeps_sets_disjoint():
    train = lorahub_tasks.generate("parity", 50, seed=0)
    held = lorahub_tasks.generate("parity", 50, seed=1, exclude={e["question"] for e in train})
    assert not {e["question"] for e in train} & {e["question"] for e in held}


def test_answers_are_balanced(generated):
    """No label dominates: a module cannot score well by always giving one answer."""
    for name, examples in generated.items():
        targets = [e["target"] for e in examples]
        top = max(targets.count(t) for t in set(targets))
        assert top / len(targets) <= 0.75, (name, top)


# ---------------------------------------------------------------- independent solvers


def options_of(question):
    return dict(re.findall(r"^(\([A-J]\)) (.+)$", question, re.M))


def option_letter(question, text):
    matches = [k for k, v in options_of(question).items() if v == text]
    assert len(matches) == 1, (question, text)
    return matches[0]


def safe_eval(expression, allowed):
    assert re.fullmatch(allowed, expression), expression
    return eval(expression, {"__builtins__": {}})  # noqa: S307 - checked against `allowed`


def solve_add_sub(q):
    return str(safe_eval(re.fullmatch(r"What is (.+)\?", q)[1], r"[\d +-]+"))


def solve_nested_expression(q):
    return str(safe_eval(re.fullmatch(r"Compute (.+)\.", q)[1], r"[\d ()+*-]+"))


def solve_remainder(q):
    a, b = map(int, re.findall(r"\d+", q))
    return str(a % b)


def solve_larger_number(q):
    return str(max(map(int, re.findall(r"\d+", q))))


def solve_smallest_mc(q):
    opts = options_of(q)
    return min(opts, key=lambda k: int(opts[k]))


def solve_boolean_eval(q):
    expr = q.removeprefix("Evaluate: ")
    for ours, python in [("AND", "and"), ("OR", "or"), ("NOT", "not"), ("true", "True"),
                         ("false", "False")]:
        expr = re.sub(rf"\b{ours}\b", python, expr)
    return str(safe_eval(expr, r"[ ()a-zA-Z]+"))


def solve_parity(q):
    return "Yes" if int(re.search(r"\d+", q)[0]) % 2 == 0 else "No"


def solve_membership(q):
    m = re.match(r'Does the list \[(.+)\] contain the word "(\w+)"\?', q)
    return "Yes" if m[2] in m[1].split(", ") else "No"


def solve_syllogism(q):
    """Brute force over every universe of three individuals (enough for two premises)."""
    statements = re.findall(r"(All|No|Some) ([\w ]+?) are (not )?([\w ]+?)\.", q)
    terms = sorted({s[1] for s in statements} | {s[3] for s in statements})
    assert len(statements) == 3 and len(terms) == 3, q

    def holds(statement, world):
        quantifier, x, negated, y = statement
        pairs = [(x in kinds, y in kinds) for kinds in world]
        if quantifier == "All":
            return all(b for a, b in pairs if a)
        if quantifier == "No":
            return not any(a and b for a, b in pairs)
        return any(a and (b != bool(negated)) for a, b in pairs)

    subsets = [set(c) for n in range(4) for c in itertools.combinations(terms, n)]
    for world in itertools.product(subsets, repeat=3):
        if holds(statements[0], world) and holds(statements[1], world) and not holds(
                statements[2], world):
            return "invalid"
    return "valid"


def solve_sort_words(q):
    return " ".join(sorted(q.split(": ")[1].split()))


def solve_sort_numbers(q):
    return ", ".join(str(n) for n in sorted(map(int, re.findall(r"\d+", q))))


def solve_count_category(q):
    category = re.search(r"How many (\w+) are", q)[1]
    members = {form for single, plural in vocab.CATEGORIES[category] for form in (single, plural)}
    items = re.findall(r"\b(one|two|three|four) (\w+)", q)
    return str(sum(vocab.NUMBER_WORDS.index(n) for n, noun in items if noun in members))


def solve_count_letter(q):
    letter, word = re.findall(r'"(\w+)"', q)
    return str(word.count(letter))


def solve_reverse_word(q):
    return re.search(r'"(\w+)"', q)[1][::-1]


def solve_first_letters(q):
    return "".join(w[0] for w in q.split(": ")[1].split())


def solve_letter_after(q):
    n, way, letter = re.search(r'(\d+) places (after|before) "(\w)"', q).groups()
    alphabet = "abcdefghijklmnopqrstuvwxyz"
    if letter.isupper():
        alphabet = alphabet.upper()
    return alphabet[alphabet.index(letter) + (int(n) if way == "after" else -int(n))]


def solve_date_add_days(q):
    m = re.search(r"The date is (\w+ \d+, \d+)\. What is the date (\d+) days later", q)
    day = datetime.datetime.strptime(m[1], "%B %d, %Y") + datetime.timedelta(days=int(m[2]))
    return day.strftime("%m/%d/%Y")


def solve_date_mc(q):
    m = re.search(r"Today is (\S+)\. What was or will be the date (.+) in MM/DD/YYYY", q)
    offset = {"yesterday": -1, "tomorrow": 1, "one week ago": -7, "one week from today": 7,
              "two days ago": -2}[m[2]]
    day = datetime.datetime.strptime(m[1], "%m/%d/%Y") + datetime.timedelta(days=offset)
    return option_letter(q, day.strftime("%m/%d/%Y"))


def solve_weekday_shift(q):
    day, n = re.search(r"today is (\w+), .* in (\d+) days", q).groups()
    days = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
    return days[(days.index(day) + int(n)) % 7]


def solve_clock_add(q):
    h, m, length = map(int, re.search(r"(\d+):(\d+) and lasts (\d+) minutes", q).groups())
    end = datetime.datetime(2000, 1, 1, h, m) + datetime.timedelta(minutes=length)
    return end.strftime("%H:%M")


def solve_free_slot_mc(q):
    busy = set(re.findall(r"From (\d+:00 to \d+:00), \w+ was at", q))
    free = [k for k, v in options_of(q).items() if v not in busy]
    assert len(free) == 1, q
    return free[0]


def solve_swap_tracking(q):
    thing = re.search(r"each hold one (\w+):", q)[1]
    holding = dict(re.findall(rf"(\w+) holds an? (\w+) {thing}", q))
    for a, b in re.findall(r"(\w+) and (\w+) trade\.", q):
        holding[a], holding[b] = holding[b], holding[a]
    asked = re.search(rf"Which {thing} does (\w+) hold", q)[1]
    return option_letter(q, f"{holding[asked]} {thing}")


def solve_navigation_return(q):
    position = complex(0, 0)
    steps = {"north": 1j, "south": -1j, "east": 1, "west": -1}
    for n, direction in re.findall(r"(\d+) blocks? (\w+)", q):
        position += int(n) * steps[direction]
    return "Yes" if position == 0 else "No"


def solve_height_order_mc(q):
    facts = re.findall(r"(\w+) is taller than (\w+)\.", q)
    taller, shorter = {a for a, _ in facts}, {b for _, b in facts}
    wanted = (taller - shorter) if "tallest" in q else (shorter - taller)
    assert len(wanted) == 1, q
    return option_letter(q, wanted.pop())


def solve_shelf_position_mc(q):
    books = re.findall(r"an? (\w+) book", q.split(". Which")[0])
    ordinal, side = re.search(r"Which book is (\w+) from the (\w+)\?", q).groups()
    index = ["first", "second", "third", "fourth", "fifth"].index(ordinal)
    color = books[index] if side == "left" else books[-1 - index]
    return option_letter(q, f"the {color} book")


def solve_colored_objects_mc(q):
    scene = dict((t, c) for c, t in re.findall(r"an? (\w+) (\w+)", q.split(". What")[0]))
    return option_letter(q, scene[re.search(r"What color is the (\w+)\?", q)[1]])


def solve_antonym_mc(q):
    word = re.search(r'opposite of "(\w+)"', q)[1]
    opposites = {b for a, b in vocab.ANTONYMS if a == word} | {
        a for a, b in vocab.ANTONYMS if b == word}
    answers = [k for k, v in options_of(q).items() if v in opposites]
    assert len(answers) == 1, q
    return answers[0]


def solve_adjective_order_mc(q):
    rank = {adj: i for i, (_, adjs) in enumerate(vocab.ADJECTIVE_SLOTS) for adj in adjs}

    def ordered(phrase):
        ranks = [rank[w] for w in phrase.split()[1:-1]]
        return ranks == sorted(ranks)

    good = [k for k, v in options_of(q).items() if ordered(v)]
    assert len(good) == 1, q
    return good[0]


def reduces_to_empty(tokens):
    """Nesting check by repeatedly deleting adjacent matched pairs (not the generator's stack)."""
    text = "".join(tokens)
    while True:
        shorter = re.sub(r"\(\)|\[\]|\{\}|<>", "", text)
        if shorter == text:
            return text == ""
        text = shorter


def solve_brackets_valid(q):
    sequence = re.search(r"sequence (.+) properly nested", q)[1].split()
    return "valid" if reduces_to_empty(sequence) else "invalid"


def check_dyck_close(q, answer):
    """The answer must be closing brackets only, and complete the prefix to a nested sequence."""
    prefix = q.split(": ")[1].split()
    closing = answer.split()
    assert closing and all(b in ")]}>" for b in closing), (q, answer)
    assert reduces_to_empty(prefix + closing), (q, answer)


SOLVERS = {name.removeprefix("solve_"): fn for name, fn in globals().items()
           if name.startswith("solve_")}


def test_every_task_has_an_independent_check():
    assert set(SOLVERS) | {"dyck_close"} == set(lorahub_tasks.TASKS)


@pytest.mark.parametrize("name", sorted(lorahub_tasks.TASKS))
def test_answers_are_correct(name, generated):
    for e in generated[name]:
        if name == "dyck_close":
            check_dyck_close(e["question"], e["target"])
        else:
            assert SOLVERS[name](e["question"]) == e["target"], e


# ---------------------------------------------------------------- no BBH text


def bbh_texts(bbh_dir):
    """Every BBH input and every question of the prompt files' exemplars."""
    texts = []
    for f in sorted((bbh_dir / "tasks").glob("*.json")):
        texts += [e["input"] for e in json.loads(f.read_text())["examples"]]
    for f in sorted((bbh_dir / "task-prompts").glob("*.txt")):
        texts += [m.strip() for m in re.findall(r"^Q: (.+?)\nA:", f.read_text(), re.M | re.S)]
    return texts


def test_no_bbh_canary_or_examples(generated, bbh_dir):
    canary = json.loads(next((bbh_dir / "tasks").glob("*.json")).read_text())["canary"]
    guid = canary.split()[-1]
    bbh = bbh_texts(bbh_dir)
    assert len(bbh) > 4000
    bbh_blob = "\n\x00".join(bbh)
    ours = [e["input"] + " " + e["target"] for examples in generated.values() for e in examples]
    ours_blob = "\n\x00".join(ours)
    for marker in (guid, "BENCHMARK DATA SHOULD NEVER", "canary"):
        assert marker.lower() not in ours_blob.lower()
    for text in bbh:  # a BBH input inside our data
        assert text not in ours_blob, text
    for examples in generated.values():  # our question inside BBH data
        for e in examples:
            assert e["question"] not in bbh_blob, e["question"]
