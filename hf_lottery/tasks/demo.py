"""The embedded demo task: generated movie-review sentiment, so the main job runs offline with no downloaded data.

Sentences are built from templates and word lists with a seeded `random.Random`. Word counting does not solve
it: negation flips a clause ("the plot is not dull"), and in contrasts the second clause decides ("the cast is
superb, but the script is tedious" is negative; "although the pacing drags, the ending is moving" is positive).
Labels: 0 = negative, 1 = positive; the splits are balanced and share no sentence.
"""

from __future__ import annotations

import random

import datasets

from .dataset import text_classification_dataset


STORY_SUBJECTS = (
    "the plot", "the ending", "the story", "the premise", "the finale", "the first act", "the twist", "the mystery",
    "the screenplay", "the storyline", "the third act", "the narrative",
)  # fmt: skip
CRAFT_SUBJECTS = (
    "the acting", "the soundtrack", "the cast", "the cinematography", "the dialogue", "the lead performance",
    "the direction", "the visual effects", "the editing", "the score", "the camera work", "the costumes",
)  # fmt: skip
SUBJECTS = STORY_SUBJECTS + CRAFT_SUBJECTS
# Adjectives whose sentiment depends on what they describe: positive for the story, negative for the craft
# ("an unpredictable plot" is praise, "unpredictable acting" is not), or the other way round.
STORY_POSITIVE = ("unpredictable", "twisty", "dark", "ambiguous", "bold", "sprawling")
CRAFT_POSITIVE = ("restrained", "understated", "simple", "minimal", "quiet", "plain")
POSITIVE = (
    "brilliant", "moving", "delightful", "gripping", "charming", "superb", "clever", "heartfelt", "stunning",
    "witty", "beautiful", "thrilling", "memorable", "fresh", "powerful", "engaging", "wonderful", "sharp",
    "touching", "inventive", "elegant", "hilarious", "captivating", "graceful",
)  # fmt: skip
NEGATIVE = (
    "dull", "clumsy", "tedious", "shallow", "predictable", "bland", "messy", "lifeless", "forgettable", "painful",
    "boring", "flat", "confusing", "awkward", "lazy", "tiresome", "cheap", "dreary", "stale", "hollow", "sloppy",
    "grating", "joyless", "muddled",
)  # fmt: skip
VERBS = ("is", "was", "feels", "seemed", "turns out to be", "comes across as")
INTENSIFIERS = ("", "", "", "very", "truly", "remarkably", "utterly", "rather", "genuinely", "quite")
NEGATIONS = ("not", "never", "hardly", "by no means")
OPENERS = ("", "", "honestly,", "overall,", "in the end,", "frankly,", "to be fair,")


def _contextual(rng: random.Random, polarity: int) -> tuple[str, str]:
    """A subject and a context-dependent adjective that together carry `polarity`."""
    story = rng.random() < 0.5
    subject = rng.choice(STORY_SUBJECTS if story else CRAFT_SUBJECTS)
    praised = STORY_POSITIVE if story else CRAFT_POSITIVE
    criticised = CRAFT_POSITIVE if story else STORY_POSITIVE
    return subject, rng.choice(praised if polarity else criticised)


def _clause(rng: random.Random, polarity: int) -> str:
    """A clause whose sentiment is `polarity`: plain, negated, or resting on a context-dependent adjective."""
    subject, verb = rng.choice(SUBJECTS), rng.choice(VERBS)
    draw = rng.random()
    if draw < 0.25:
        adjective = rng.choice(NEGATIVE if polarity else POSITIVE)
        return f"{subject} {verb} {rng.choice(NEGATIONS)} {adjective}"
    if draw < 0.5:
        subject, adjective = _contextual(rng, polarity)
    else:
        adjective = rng.choice(POSITIVE if polarity else NEGATIVE)
    return " ".join(w for w in (subject, verb, rng.choice(INTENSIFIERS), adjective) if w)


def make_sentence(rng: random.Random, label: int) -> str:
    """One review sentence of sentiment `label` (1 positive, 0 negative)."""
    template = rng.random()
    if template < 0.4:
        text = _clause(rng, label)
    elif template < 0.9:  # a contrast: the second clause decides
        first = _clause(rng, 1 - label if rng.random() < 0.7 else label)
        second = _clause(rng, label)
        text = f"{first}, but {second}" if template < 0.7 else f"although {first}, {second}"
    else:
        text = f"{_clause(rng, label)} and {_clause(rng, label)}"
    return f"{rng.choice(OPENERS)} {text}.".strip()


def load_demo_task(seed: int = 0, num_train: int = 1600, num_validation: int = 400) -> datasets.DatasetDict:
    """The demo task as a `DatasetDict` with ``sentence`` and ``label`` (balanced, no sentence in two splits).

    Example:

    ```python
    >>> data = load_demo_task()
    >>> data["train"].num_rows, data["validation"].num_rows
    (1600, 400)

    ```
    """
    if num_train < 2 or num_validation < 2:
        raise ValueError(f"Each split needs at least 2 examples; got {num_train} and {num_validation}.")
    rng = random.Random(seed)
    seen: set[str] = set()
    splits = {}
    for split, size in (("train", num_train), ("validation", num_validation)):
        sentences: list[str] = []
        attempts = 0
        while len(sentences) < size:
            attempts += 1
            if attempts > 100 * size:
                raise RuntimeError("The demo generator ran out of distinct sentences; ask for fewer examples.")
            sentence = make_sentence(rng, len(sentences) % 2)  # balanced: labels alternate
            if sentence not in seen:
                seen.add(sentence)
                sentences.append(sentence)
        order = list(range(size))
        rng.shuffle(order)
        labels = [i % 2 for i in order]
        splits[split] = text_classification_dataset(
            {"sentence": [sentences[i] for i in order]}, labels, ("negative", "positive")
        )
    return datasets.DatasetDict(splits)
