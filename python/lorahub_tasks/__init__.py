"""Upstream instruction tasks for training a LoRA module library (LoraHub's "upstream tasks").

Each task has an instruction and a maker that draws (question, answer) pairs. Examples are
deterministic in (task, seed, index) and use the BBH prompt convention so that modules transfer:
    input  = "<instruction>\\n\\nQ: <question>\\nA:"
    target = the short answer, e.g. "(B)", "True", "valid", "42".
Four tasks are HELD_OUT: they never get a module, so the demo can compose the library for them.
"""
import random
from dataclasses import dataclass
from typing import Callable

from . import tasks as t


@dataclass(frozen=True)
class Task:
    name: str
    instruction: str
    make: Callable[[random.Random], tuple[str, str]]
    held_out: bool = False


TASKS = {task.name: task for task in [
    Task("add_sub", "Add and subtract the whole numbers.", t.add_sub),
    Task("nested_expression", "Work out the value of the arithmetic expression.",
         t.nested_expression),
    Task("remainder", "Find the remainder of the integer division.", t.remainder),
    Task("larger_number", "Compare the two numbers and give the larger one.", t.larger_number),
    Task("smallest_mc", "Pick the option with the smallest number.", t.smallest_mc,
         held_out=True),
    Task("boolean_eval", "Decide whether the logical expression is true or false.",
         t.boolean_eval),
    Task("parity", "Tell whether the number is even.", t.parity),
    Task("membership", "Check whether the word appears in the list.", t.membership),
    Task("syllogism", "Judge whether the argument is logically valid.", t.syllogism),
    Task("sort_words", "Sort the words alphabetically.", t.sort_words),
    Task("sort_numbers", "Sort the numbers in increasing order.", t.sort_numbers),
    Task("count_category", "Count the items that belong to the asked category.",
         t.count_category),
    Task("count_letter", "Count how often the letter occurs in the word.", t.count_letter),
    Task("reverse_word", "Write the word with its letters in reverse order.", t.reverse_word),
    Task("first_letters", "Concatenate the first letter of each word.", t.first_letters),
    Task("letter_after", "Move through the alphabet.", t.letter_after),
    Task("date_add_days", "Add days to a calendar date.", t.date_add_days),
    Task("date_mc", "Choose the correct date.", t.date_mc),
    Task("weekday_shift", "Work out the day of the week.", t.weekday_shift, held_out=True),
    Task("clock_add", "Add minutes to a time of day.", t.clock_add),
    Task("free_slot_mc", "Find the time when the person was free.", t.free_slot_mc),
    Task("swap_tracking", "Follow the objects as people trade them.", t.swap_tracking),
    Task("navigation_return", "Decide whether the walk returns to its starting point.",
         t.navigation_return),
    Task("height_order_mc", "Order the people by height from the facts.", t.height_order_mc),
    Task("shelf_position_mc", "Find the object at the asked position.", t.shelf_position_mc),
    Task("colored_objects_mc", "Answer the question about the colored objects.",
         t.colored_objects_mc),
    Task("antonym_mc", "Choose the word with the opposite meaning.", t.antonym_mc,
         held_out=True),
    Task("adjective_order_mc", "Choose the phrase with the natural adjective order.",
         t.adjective_order_mc),
    Task("dyck_close", "Close the open brackets in the right order.", t.dyck_close),
    Task("brackets_valid", "Decide whether the brackets are properly nested.",
         t.brackets_valid, held_out=True),
]}

LIBRARY_TASKS = [name for name, task in TASKS.items() if not task.held_out]
HELD_OUT_TASKS = [name for name, task in TASKS.items() if task.held_out]


def prompt(instruction: str, question: str) -> str:
    return f"{instruction}\n\nQ: {question}\nA:"


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; known: {', '.join(TASKS)}")
    return TASKS[name]


def generate(name: str, count: int, seed: int = 0, exclude=()) -> list[dict]:
    """`count` distinct examples {"input", "target", "question"} of task `name`.

    Example i is drawn from its own Random seeded by (task, seed, i), so a set is reproducible
    on any machine and growing `count` keeps the earlier examples. Questions in `exclude` (and
    repeats) are skipped, which keeps an evaluation set disjoint from a training set.
    """
    task = get_task(name)
    seen, examples = set(exclude), []
    for i in range(count * 50):
        if len(examples) == count:
            return examples
        question, answer = task.make(random.Random(f"{name}/{seed}/{i}"))
        if question not in seen:
            seen.add(question)
            examples.append({"input": prompt(task.instruction, question), "target": answer,
                             "question": question})
    raise ValueError(f"task {name}: could not draw {count} distinct examples (seed {seed})")
