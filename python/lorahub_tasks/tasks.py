"""The upstream tasks. Each maker draws one example from `rng` and returns (question, answer).

Every answer is computed from the state the maker drew, never looked up from a list of
question/answer pairs. The wording is this project's own; nothing is taken from BIG-Bench.
"""
import datetime
import itertools
import random

from .formats import bullet_options, multiple_choice, true_false, valid_invalid, yes_no
from .vocab import (ADJECTIVE_NOUNS, ADJECTIVE_SLOTS, ANTONYMS, CATEGORIES, COLORS, DIRECTIONS,
                    HELD_THINGS, MONTHS, NUMBER_WORDS, PEOPLE, PLACES, WEEKDAYS, WORDS)



def article(word):
    return "an" if word[0].lower() in "aeiou" else "a"

# ---------------------------------------------------------------- arithmetic


def add_sub(rng):
    terms = [rng.randint(2, 99) for _ in range(rng.randint(2, 4))]
    signs = [rng.choice("+-") for _ in terms[1:]]
    text = str(terms[0]) + "".join(f" {s} {t}" for s, t in zip(signs, terms[1:]))
    total = terms[0] + sum(t if s == "+" else -t for s, t in zip(signs, terms[1:]))
    return f"What is {text}?", str(total)


def nested_expression(rng):
    """(a op b) op (c op d) with small integers: practises operator precedence via brackets."""
    def pair():
        a, b, op = rng.randint(-9, 9), rng.randint(1, 9), rng.choice("+-*")
        value = {"+": a + b, "-": a - b, "*": a * b}[op]
        return f"({a} {op} {b})", value

    (left, x), (right, y) = pair(), pair()
    op = rng.choice("+-*")
    return f"Compute {left} {op} {right}.", str({"+": x + y, "-": x - y, "*": x * y}[op])


def remainder(rng):
    divisor = rng.randint(2, 12)
    number = rng.randint(divisor + 1, 200)
    return f"What is the remainder when {number} is divided by {divisor}?", str(number % divisor)


def larger_number(rng):
    a = rng.randint(10, 999)
    digits = list(str(a))
    rng.shuffle(digits)  # a digit permutation makes the comparison non-trivial
    b = int("".join(digits)) if int("".join(digits)) != a else a + rng.randint(1, 9)
    return f"Which number is larger, {a} or {b}?", str(max(a, b))


def smallest_mc(rng):
    values = rng.sample(range(1, 500), rng.randint(3, 5))
    options, answer = multiple_choice(rng, str(min(values)), [str(v) for v in values])
    return f"Which of these numbers is the smallest?\n{options}", answer


# ---------------------------------------------------------------- logic and judgements


def boolean_expression(rng, depth=2):
    if depth == 0 or rng.random() < 0.3:
        value = rng.random() < 0.5
        return ("true" if value else "false"), value
    if rng.random() < 0.25:
        text, value = boolean_expression(rng, depth - 1)
        return f"NOT {text}", not value
    (lt, lv), (rt, rv) = boolean_expression(rng, depth - 1), boolean_expression(rng, depth - 1)
    if rng.random() < 0.5:
        return f"({lt} AND {rt})", lv and rv
    return f"({lt} OR {rt})", lv or rv


def boolean_eval(rng):
    text, value = boolean_expression(rng, depth=rng.randint(2, 3))
    return f"Evaluate: {text}", true_false(value)


def parity(rng):
    n = rng.randint(1, 9999)
    return f"Is {n} an even number?\n{bullet_options('Yes', 'No')}", yes_no(n % 2 == 0)


def membership(rng):
    words = rng.sample(WORDS, rng.randint(4, 7))
    probe = rng.choice(words) if rng.random() < 0.5 else rng.choice(WORDS)
    listed = ", ".join(words)
    return (f"Does the list [{listed}] contain the word \"{probe}\"?\n"
            f"{bullet_options('Yes', 'No')}", yes_no(probe in words))


# Categorical statements over three terms, judged on Venn diagrams: a model is the set of
# non-empty regions, a region being one membership pattern (in X?, in Y?, in Z?).
STATEMENT_FORMS = {
    "all": ("All {x} are {y}.", lambda regions, x, y: not any(r[x] and not r[y] for r in regions)),
    "no": ("No {x} are {y}.", lambda regions, x, y: not any(r[x] and r[y] for r in regions)),
    "some": ("Some {x} are {y}.", lambda regions, x, y: any(r[x] and r[y] for r in regions)),
    "some_not": ("Some {x} are not {y}.",
                 lambda regions, x, y: any(r[x] and not r[y] for r in regions)),
}
SYLLOGISM_TERMS = ["painters", "sailors", "bakers", "poets", "runners", "chess players",
                   "gardeners", "pilots", "singers", "farmers"]


def syllogism_is_valid(statements):
    """statements: [(form, x, y)] with term indices 0..2; the last one is the conclusion."""
    patterns = list(itertools.product([False, True], repeat=3))
    *premises, conclusion = statements
    for mask in range(1 << len(patterns)):
        regions = [p for i, p in enumerate(patterns) if mask >> i & 1]
        holds = lambda s: STATEMENT_FORMS[s[0]][1](regions, s[1], s[2])
        if all(holds(p) for p in premises) and not holds(conclusion):
            return False
    return True


def syllogism(rng):
    want_valid = rng.random() < 0.5
    for _ in range(500):  # valid arguments are rarer; redraw until the wanted label comes up
        pairs = [(0, 1), (1, 2), (0, 2)]
        statements = [(rng.choice(list(STATEMENT_FORMS)), *rng.sample(p, 2)) for p in pairs]
        if syllogism_is_valid(statements) == want_valid:
            break
    names = rng.sample(SYLLOGISM_TERMS, 3)
    text = [STATEMENT_FORMS[f][0].format(x=names[x], y=names[y]) for f, x, y in statements]
    question = (f"Premise 1: {text[0]}\nPremise 2: {text[1]}\nConclusion: {text[2]}\n"
                f"Does the conclusion follow necessarily from the two premises?\n"
                f"{bullet_options('valid', 'invalid')}")
    return question, valid_invalid(syllogism_is_valid(statements))


# ---------------------------------------------------------------- sorting and counting


def sort_words(rng):
    words = rng.sample(WORDS, rng.randint(3, 7))
    return f"Put these words in alphabetical order: {' '.join(words)}", " ".join(sorted(words))


def sort_numbers(rng):
    values = [rng.randint(0, 99) for _ in range(rng.randint(3, 7))]
    return (f"Arrange from smallest to largest: {', '.join(map(str, values))}",
            ", ".join(map(str, sorted(values))))


def count_category(rng):
    target = rng.choice(list(CATEGORIES))
    others = [c for c in CATEGORIES if c != target]
    pool = [(target, item) for item in CATEGORIES[target]]
    pool += [(c, item) for c in rng.sample(others, 2) for item in CATEGORIES[c]]
    chosen = rng.sample(pool, rng.randint(3, 6))
    counts = [rng.randint(1, 4) for _ in chosen]
    parts = [f"{NUMBER_WORDS[n]} {item[0] if n == 1 else item[1]}"
             for n, (_, item) in zip(counts, chosen)]
    total = sum(n for n, (cat, _) in zip(counts, chosen) if cat == target)
    return (f"A crate contains {', '.join(parts[:-1])} and {parts[-1]}. "
            f"How many {target} are in the crate?", str(total))


def count_letter(rng):
    word = rng.choice(WORDS) if rng.random() < 0.3 else pseudo_word(rng)
    letter = rng.choice(word) if rng.random() < 0.8 else rng.choice("aeiourstn")
    return f"How many times does the letter \"{letter}\" occur in \"{word}\"?", str(word.count(letter))


# ---------------------------------------------------------------- string transforms


def pseudo_word(rng):
    """A pronounceable made-up word: an endless supply of strings for the letter-level tasks."""
    return "".join(rng.choice("bdfgklmnprstvz") + rng.choice("aeiou") for _ in range(rng.randint(2, 4)))


def reverse_word(rng):
    word = rng.choice(WORDS) if rng.random() < 0.3 else pseudo_word(rng)
    return f"Spell the word \"{word}\" backwards.", word[::-1]


def first_letters(rng):
    words = rng.sample(WORDS, rng.randint(3, 6))
    return (f"Join the first letters of these words: {' '.join(words)}",
            "".join(w[0] for w in words))


def letter_after(rng):
    shift = rng.randint(1, 12) * rng.choice([1, -1])
    start = rng.randrange(max(0, -shift), 26 - max(0, shift))
    way = "after" if shift > 0 else "before"
    base = rng.choice([ord("a"), ord("A")])
    return (f"Which letter comes {abs(shift)} places {way} \"{chr(base + start)}\" in the "
            f"alphabet?", chr(base + start + shift))


# ---------------------------------------------------------------- dates and times


def random_date(rng):
    return datetime.date(rng.randint(1950, 2040), 1, 1) + datetime.timedelta(rng.randint(0, 364))


def long_date(d):
    return f"{MONTHS[d.month - 1]} {d.day}, {d.year}"


def date_add_days(rng):
    start, days = random_date(rng), rng.randint(1, 40)
    later = start + datetime.timedelta(days)
    return (f"The date is {long_date(start)}. What is the date {days} days later, "
            f"written as MM/DD/YYYY?", later.strftime("%m/%d/%Y"))


def date_mc(rng):
    today = random_date(rng)
    offset_days, phrase = rng.choice([(-1, "yesterday"), (1, "tomorrow"), (-7, "one week ago"),
                                      (7, "one week from today"), (-2, "two days ago")])
    target = today + datetime.timedelta(offset_days)
    wrong = [target + datetime.timedelta(d) for d in (-1, 1, 30, -365)]
    options, answer = multiple_choice(rng, target.strftime("%m/%d/%Y"),
                                      [w.strftime("%m/%d/%Y") for w in wrong[:3]])
    return (f"Today is {today.strftime('%m/%d/%Y')}. What was or will be the date {phrase} "
            f"in MM/DD/YYYY?\n{options}", answer)


def weekday_shift(rng):
    today, days = rng.randrange(7), rng.randint(1, 100)
    return (f"If today is {WEEKDAYS[today]}, which day of the week will it be in {days} days?",
            WEEKDAYS[(today + days) % 7])


def clock_add(rng):
    start = rng.randint(6 * 60, 20 * 60)
    length = rng.randint(10, 180)
    end = (start + length) % (24 * 60)
    return (f"A class begins at {start // 60:02d}:{start % 60:02d} and lasts {length} minutes. "
            f"At what time does it end (HH:MM)?", f"{end // 60:02d}:{end % 60:02d}")


def free_slot_mc(rng):
    """The person was seen somewhere in every slot but one; the free slot is the answer."""
    person, place = rng.choice(PEOPLE), rng.choice(PLACES)
    cuts = sorted(rng.sample(range(7, 18), rng.randint(3, 4)))
    slots = list(zip([6] + cuts, cuts + [19]))
    free = rng.randrange(len(slots))
    seen = [(s, p) for s, p in zip(slots, rng.sample([x for x in PLACES if x != place], len(slots)))
            if s != slots[free]]
    rng.shuffle(seen)
    lines = " ".join(f"From {a}:00 to {b}:00, {person} was at {p}." for (a, b), p in seen)
    options, answer = multiple_choice(rng, f"{slots[free][0]}:00 to {slots[free][1]}:00",
                                      [f"{a}:00 to {b}:00" for a, b in slots])
    return (f"{person} spent the day between 6:00 and 19:00 as follows. {lines} "
            f"In which period could {person} have visited {place}?\n{options}", answer)


# ---------------------------------------------------------------- tracking and navigation


def swap_tracking(rng):
    n = rng.randint(3, 5)
    people, thing = rng.sample(PEOPLE, n), rng.choice(HELD_THINGS)
    colors = rng.sample(COLORS, n)
    holding = dict(zip(people, colors))
    start = ", ".join(f"{p} holds {article(c)} {c} {thing}" for p, c in holding.items())
    trades = []
    for _ in range(rng.randint(2, 5)):
        a, b = rng.sample(people, 2)
        holding[a], holding[b] = holding[b], holding[a]
        trades.append(f"{a} and {b} trade.")
    asked = rng.choice(people)
    options, answer = multiple_choice(rng, f"{holding[asked]} {thing}",
                                      [f"{c} {thing}" for c in colors])
    return (f"{', '.join(people[:-1])} and {people[-1]} each hold one {thing}: {start}. "
            f"Then they trade {thing}s in turn: {' '.join(trades)} "
            f"Which {thing} does {asked} hold at the end?\n{options}", answer)


def navigation_return(rng):
    legs = [(rng.choice(list(DIRECTIONS)), rng.randint(1, 9)) for _ in range(rng.randint(2, 5))]
    if rng.random() < 0.5:  # close the loop, so that both answers are common
        x = sum(DIRECTIONS[d][0] * n for d, n in legs)
        y = sum(DIRECTIONS[d][1] * n for d, n in legs)
        legs += [("west" if x > 0 else "east", abs(x))] if x else []
        legs += [("south" if y > 0 else "north", abs(y))] if y else []
        rng.shuffle(legs)
    x = sum(DIRECTIONS[d][0] * n for d, n in legs)
    y = sum(DIRECTIONS[d][1] * n for d, n in legs)
    walk = ", then ".join(f"{n} block{'s' if n > 1 else ''} {d}" for d, n in legs)
    return (f"You leave a fountain and walk {walk}. Are you back at the fountain?\n"
            f"{bullet_options('Yes', 'No')}", yes_no(x == 0 and y == 0))


# ---------------------------------------------------------------- facts and multiple choice


def height_order_mc(rng):
    n = rng.randint(3, 5)
    people = rng.sample(PEOPLE, n)  # listed tallest first
    facts = [f"{people[i]} is taller than {people[i + 1]}." for i in range(n - 1)]
    rng.shuffle(facts)
    ask_tallest = rng.random() < 0.5
    target = people[0] if ask_tallest else people[-1]
    options, answer = multiple_choice(rng, target, people)
    return (f"{' '.join(facts)} Who is the {'tallest' if ask_tallest else 'shortest'}?\n{options}",
            answer)


def shelf_position_mc(rng):
    n = rng.randint(3, 5)
    colors = rng.sample(COLORS, n)  # left to right
    books = ", ".join(f"{article(c)} {c} book" for c in colors)
    position = rng.randrange(n)
    ordinal = ["first", "second", "third", "fourth", "fifth"][position]
    side = rng.choice(["left", "right"])
    index = position if side == "left" else n - 1 - position
    options, answer = multiple_choice(rng, f"the {colors[index]} book",
                                      [f"the {c} book" for c in colors])
    return (f"From left to right, a shelf holds {books}. Which book is {ordinal} from the "
            f"{side}?\n{options}", answer)


def colored_objects_mc(rng):
    things = rng.sample(["mug", "pen", "plate", "scarf", "notebook", "candle", "stapler"], 3)
    colors = rng.sample(COLORS, 3)
    scene = ", ".join(f"{article(c)} {c} {t}" for c, t in zip(colors, things))
    asked = rng.randrange(3)
    options, answer = multiple_choice(rng, colors[asked], rng.sample(COLORS, 5))
    return (f"On a desk there are {scene}. What color is the {things[asked]}?\n{options}",
            answer)


def antonym_mc(rng):
    word, opposite = rng.choice(ANTONYMS)
    if rng.random() < 0.5:
        word, opposite = opposite, word
    others = [w for pair in ANTONYMS for w in pair if w not in (word, opposite)]
    options, answer = multiple_choice(rng, opposite, rng.sample(others, 3))
    return f"Which word means the opposite of \"{word}\"?\n{options}", answer


def adjective_phrase(adjectives, noun):
    return f"{article(adjectives[0])} {' '.join(adjectives)} {noun}"


def adjective_order_mc(rng):
    slots = sorted(rng.sample(range(len(ADJECTIVE_SLOTS)), rng.randint(2, 4)))
    adjectives = [rng.choice(ADJECTIVE_SLOTS[s][1]) for s in slots]
    noun = rng.choice(ADJECTIVE_NOUNS)
    scrambled = adjectives[:]
    while scrambled == adjectives:
        rng.shuffle(scrambled)
    options, answer = multiple_choice(rng, adjective_phrase(adjectives, noun),
                                      [adjective_phrase(scrambled, noun)])
    return f"Which phrase puts its adjectives in the usual English order?\n{options}", answer


# ---------------------------------------------------------------- brackets

BRACKETS = {"(": ")", "[": "]", "{": "}", "<": ">"}


def random_brackets(rng, length):
    """A prefix of a well-nested sequence; returns (tokens, stack of still-open brackets)."""
    tokens, stack = [], []
    for _ in range(length):
        if stack and rng.random() < 0.4:
            tokens.append(BRACKETS[stack.pop()])
        else:
            stack.append(rng.choice(list(BRACKETS)))
            tokens.append(stack[-1])
    return tokens, stack


def dyck_close(rng):
    tokens, stack = random_brackets(rng, rng.randint(3, 9))
    if not stack:  # something must remain open, or there is nothing to answer
        stack.append(rng.choice(list(BRACKETS)))
        tokens.append(stack[-1])
    closing = [BRACKETS[b] for b in reversed(stack)]
    return (f"Write the brackets that close this sequence properly: {' '.join(tokens)}",
            " ".join(closing))


def brackets_valid(rng):
    tokens, stack = random_brackets(rng, rng.randint(2, 7))
    tokens += [BRACKETS[b] for b in reversed(stack)]
    if rng.random() < 0.5:  # corrupt one bracket; the label is recomputed below regardless
        i = rng.randrange(len(tokens))
        tokens[i] = rng.choice([b for b in list(BRACKETS) + list(BRACKETS.values()) if b != tokens[i]])
    return (f"Is the bracket sequence {' '.join(tokens)} properly nested?\n"
            f"{bullet_options('valid', 'invalid')}", valid_invalid(is_nested(tokens)))


def is_nested(tokens):
    stack = []
    for t in tokens:
        if t in BRACKETS:
            stack.append(t)
        elif not stack or BRACKETS[stack.pop()] != t:
            return False
    return not stack
