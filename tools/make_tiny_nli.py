"""Writes data/tiny-nli/: a small, rule-made NLI set for the tiny CPU run and the tests.

Not SNLI: sentences are built from a few subjects, places and paired actions, so a tiny model can
learn the three labels in a minute. Same columns as ../shared/data/snli (idx, premise, hypothesis,
label; -1 = no gold label, a few on purpose so dropping them is exercised).
Run: python tools/make_tiny_nli.py
"""
import random
from pathlib import Path

import pandas as pd

SUBJECTS = ["A man", "A woman", "A child", "A dog", "An old man", "A girl", "A boy", "A teenager",
            "A cyclist", "A chef", "A musician", "A young woman"]
# (action, a more general action it entails, an action it contradicts)
ACTIONS = [
    ("is running along the beach", "is moving", "is sleeping"),
    ("is playing a guitar on stage", "is making music", "is sitting silently"),
    ("is eating a sandwich in a cafe", "is having food", "is starving"),
    ("is swimming in a lake", "is in the water", "is completely dry"),
    ("is riding a bike downhill", "is on a bike", "is walking"),
    ("is reading a book in the park", "is outside", "is asleep indoors"),
    ("is laughing with a friend", "is happy", "is crying alone"),
    ("is climbing a tall rock", "is outdoors", "is lying in bed"),
]
EXTRAS = ["to win a prize", "for the first time", "with a brother", "before going home", "on a birthday"]


def make(n: int, seed: int) -> pd.DataFrame:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        subj = rng.choice(SUBJECTS)
        act, general, opposite = rng.choice(ACTIONS)
        label = i % 3 if i % 29 != 28 else -1
        premise = f"{subj} {act}."
        if label == 0:
            hyp = f"{subj} {general}."
        elif label == 1:
            hyp = f"{subj} {general} {rng.choice(EXTRAS)}."
        elif label == 2:
            hyp = f"{subj} {opposite}."
        else:  # annotators disagreed: no gold label
            hyp = f"{subj} {rng.choice(ACTIONS)[1]}."
        rows.append({"idx": i, "premise": premise, "hypothesis": hyp, "label": label})
    return pd.DataFrame(rows).astype({"idx": "int64", "label": "int64"})


if __name__ == "__main__":
    out = Path(__file__).resolve().parent.parent / "data" / "tiny-nli"
    out.mkdir(parents=True, exist_ok=True)
    for split, n, seed in (("train", 320, 1), ("validation", 120, 2), ("test", 120, 3)):
        make(n, seed).to_parquet(out / f"full_{split}.parquet", index=False)
        print(split, n)
