"""Word lists the task generators draw from. Hand-written for this project (no benchmark text)."""

PEOPLE = [
    "Ana", "Ben", "Cora", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jin", "Kai", "Lena",
    "Milo", "Nia", "Omar", "Pia", "Quin", "Rosa", "Sami", "Tess", "Ugo", "Vera", "Wes", "Yara",
]

COLORS = ["red", "blue", "green", "yellow", "purple", "orange", "pink", "brown", "black", "white",
          "gray", "teal"]

# Things a person can hold in the swap-tracking task (singular nouns).
HELD_THINGS = ["hat", "scarf", "kite", "lamp", "mug", "book", "coin", "ring", "shell", "key"]

# Counting task: plural nouns grouped by category, with their singular forms.
CATEGORIES = {
    "fruits": [("apple", "apples"), ("pear", "pears"), ("plum", "plums"), ("mango", "mangoes"),
               ("lemon", "lemons"), ("cherry", "cherries"), ("kiwi", "kiwis"), ("fig", "figs")],
    "vegetables": [("carrot", "carrots"), ("onion", "onions"), ("leek", "leeks"),
                   ("potato", "potatoes"), ("turnip", "turnips"), ("radish", "radishes")],
    "tools": [("hammer", "hammers"), ("wrench", "wrenches"), ("saw", "saws"),
              ("drill", "drills"), ("chisel", "chisels"), ("shovel", "shovels")],
    "animals": [("goat", "goats"), ("duck", "ducks"), ("horse", "horses"), ("rabbit", "rabbits"),
                ("hen", "hens"), ("sheep", "sheep"), ("pig", "pigs")],
}

# Common lowercase words for sorting, string transforms and membership questions.
WORDS = [
    "amber", "basket", "candle", "dragon", "engine", "forest", "garden", "harbor", "island",
    "jacket", "kettle", "ladder", "marble", "needle", "orbit", "pencil", "quartz", "river",
    "saddle", "timber", "umbrella", "velvet", "window", "yogurt", "zephyr", "anchor", "bridge",
    "cactus", "desert", "falcon", "glacier", "hollow", "meadow", "nectar", "oyster", "puzzle",
    "rocket", "silver", "tunnel", "violet", "walnut", "butter", "copper", "mirror", "planet",
]

ANTONYMS = [
    ("hot", "cold"), ("tall", "short"), ("fast", "slow"), ("happy", "sad"), ("early", "late"),
    ("heavy", "light"), ("wide", "narrow"), ("loud", "quiet"), ("rich", "poor"),
    ("open", "closed"), ("young", "old"), ("wet", "dry"), ("strong", "weak"), ("near", "far"),
    ("full", "empty"), ("hard", "soft"), ("clean", "dirty"), ("bright", "dark"),
]

# Adjectives by their slot in the conventional English order (opinion before size before age ...).
ADJECTIVE_SLOTS = [
    ("opinion", ["lovely", "ugly", "nice", "awful", "charming"]),
    ("size", ["big", "small", "tiny", "huge", "little"]),
    ("age", ["old", "new", "ancient", "modern"]),
    ("shape", ["round", "square", "flat", "oval"]),
    ("color", ["red", "blue", "green", "gray", "white"]),
    ("origin", ["French", "Thai", "Greek", "Peruvian", "Nordic"]),
    ("material", ["wooden", "glass", "paper", "steel", "wool"]),
    ("purpose", ["drinking", "hiking", "sleeping", "writing"]),
]
ADJECTIVE_NOUNS = ["chair", "box", "cup", "bag", "table", "lamp", "coat", "boat"]

DIRECTIONS = {"north": (0, 1), "south": (0, -1), "east": (1, 0), "west": (-1, 0)}

WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]

PLACES = ["the library", "the bakery", "the gym", "the museum", "the park", "the pool",
          "the market", "the cinema", "the office", "the garage"]

NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
