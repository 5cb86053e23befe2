"""`python tests/mock_run.py EXPERIMENT [flags]`: an experiment's command line on tfds mock data
(random images), for tests that need a fresh process: several devices, several processes; and
`train_then_evaluate`, a user's module trained and then evaluated in processes of their own."""

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import tensorflow_datasets as tfds

from mnist_jax import cli

ROOT = Path(__file__).resolve().parents[1]

EVALUATE = """
import sys
import tensorflow_datasets as tfds
from mnist_jax import evaluate, results

assert sys.argv[3] not in sys.modules
with tfds.testing.mock_data(num_examples=200):
    results.write_json(sys.argv[2], evaluate.main([sys.argv[1]]))
"""


def train_then_evaluate(tmp_path: Path, module: str, source: str, *overrides: str):
    """Trains `source`, saved as `module`.py, in a fresh process with a checkpoint, then evaluates
    that checkpoint in another process that never imported the module; returns the runs of
    both, as their JSON records."""
    (tmp_path / f"{module}.py").write_text(source)
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    ckpt, trained, evaluated = tmp_path / "ckpt", tmp_path / "trained.json", tmp_path / "eval.json"
    args = ["--logdir", str(tmp_path / "logs"), "--checkpoint-dir", str(ckpt), "--quiet"]
    subprocess.run(
        [sys.executable, "-m", module, *args, "--json", str(trained), *overrides],
        env=env, cwd=tmp_path, check=True, timeout=300,
    )  # fmt: skip
    assert json.loads((ckpt / "run.json").read_text())["modules"] == [module]
    subprocess.run(
        [sys.executable, "-c", EVALUATE, str(ckpt), str(evaluated), module],
        env=env, cwd=ROOT, check=True, timeout=300,
    )  # fmt: skip
    return tuple(json.loads(p.read_text())["runs"] for p in (trained, evaluated))


if __name__ == "__main__":
    config = importlib.import_module(f"experiments.{sys.argv[1]}").CONFIG
    with tfds.testing.mock_data(num_examples=200):
        cli.main(config, sys.argv[2:])


def argv_with(defaults: list[str], flags) -> list[str]:
    """`defaults` (flags and their values) without those `flags` gives again, then `flags`: a
    test's own flag replaces the helper's, as the command line refuses a flag given twice."""
    given = {f.partition("=")[0] for f in flags if f.startswith("--")}
    given |= {"--logdir"} if "--no-logs" in given else set()  # both set where logs go
    kept, skip = [], False
    for i, word in enumerate(defaults):
        if skip:
            skip = False
            continue
        if word.partition("=")[0] in given:
            takes_value = i + 1 < len(defaults) and not defaults[i + 1].startswith("--")
            skip = takes_value and "=" not in word
            continue
        kept.append(word)
    return [*kept, *flags]
