"""Answer formats shared by the tasks: lettered multiple choice and bulleted option lists.

They follow the layout BBH-style prompts use (an "Options:" block, answers like "(B)"), so that
modules trained here practise the answer format the evaluation expects.
"""
import random

LETTERS = "ABCDEFGHIJ"


def letter(index: int) -> str:
    return f"({LETTERS[index]})"


def multiple_choice(rng: random.Random, correct: str, distractors: list[str]) -> tuple[str, str]:
    """Shuffles the correct option among distinct distractors; returns (options block, "(X)")."""
    options = [correct] + [d for d in dict.fromkeys(distractors) if d != correct]
    rng.shuffle(options)
    lines = "\n".join(f"{letter(i)} {o}" for i, o in enumerate(options))
    return "Options:\n" + lines, letter(options.index(correct))


def bullet_options(*choices: str) -> str:
    return "Options:\n" + "\n".join(f"- {c}" for c in choices)


def yes_no(flag: bool) -> str:
    return "Yes" if flag else "No"


def true_false(flag: bool) -> str:
    return "True" if flag else "False"


def valid_invalid(flag: bool) -> str:
    return "valid" if flag else "invalid"
