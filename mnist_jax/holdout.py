"""The validation split: `val_split=N` examples held out of the training set.

The same N examples whatever `data_seed` or `seed` say, so every run, member and search of an
experiment selects on the same held-out images: the first N of a permutation of the training
indices drawn from a fixed seed of its own. The rest keep their order for the batches.
"""

import hashlib

import numpy as np

SEED = 20171206  # the split's own seed, apart from data_seed: the tutorial's date


def indices(num_examples: int, size: int) -> np.ndarray:
    """The validation split's training-set indices `[size]`, ascending."""
    return np.sort(np.random.default_rng(SEED).permutation(num_examples)[:size])


def split(train_xy: tuple[np.ndarray, np.ndarray], size: int):
    """`(train_xy, val_xy)`: `size` examples held out of `train_xy` (None when `size` is 0)."""
    if size == 0:
        return train_xy, None
    held = np.zeros(len(train_xy[0]), bool)
    held[indices(len(train_xy[0]), size)] = True
    return tuple(a[~held] for a in train_xy), tuple(a[held] for a in train_xy)


def record(num_examples: int, size: int) -> dict:
    """What the JSON report says of the split: its size, rule and a digest of its indices."""
    chosen = indices(num_examples, size)
    return {
        "examples": size,
        "of": num_examples,
        "rule": f"numpy default_rng({SEED}).permutation({num_examples})[:{size}], sorted",
        "indices_sha256": hashlib.sha256(chosen.astype(np.int64).tobytes()).hexdigest(),
    }
