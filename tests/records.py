"""Records of fixed runs on tfds mock data, written by one version of the code and compared by
`test_records.py` against every later one: a refactor that changes a number is caught.

    python -m tests.records write   # after a change that is meant to move the numbers

Each case is a command line (or `evaluate` of a checkpoint) whose JSON results are kept without
what varies between runs of the same code: times and absolute paths. Floats are compared bit
for bit on the CPU the records were written on (`cpu_key`), and to `TOLERANCE` on another one,
whose vector units may round differently.
"""

import dataclasses
import importlib
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import jax
import tensorflow_datasets as tfds

from experiments import MNIST_EXPERIMENTS

FOLDER = Path(__file__).resolve().parent / "records"
MOCK_EXAMPLES = 200
TOLERANCE = 1e-3  # another CPU's rounding after 50 steps on mock data
DROPPED = {"seconds", "wall_seconds", "train_seconds", "startup_seconds"}


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    experiment: str
    argv: tuple[str, ...] = ()
    resume_argv: tuple[str, ...] | None = None  # a second command, --resume'd from the first
    evaluate: bool = False  # the checkpoint evaluated after training
    slow: bool = True


STEPS = ("--steps", "50")
EXPERIMENTS = (*MNIST_EXPERIMENTS, "keras_mnist_mlp", "fashion_mnist_mlp")
SEARCH = ("val_split=50", "lr=loguniform(1e-4,1e-2)", "--samples", "4", "--epochs", "3")
CASES = (
    *(Case(f"{e}_steps50", e, STEPS, slow=e != "five_layer_relu_dropout") for e in EXPERIMENTS),
    # The CNN's convolutions forced: `auto` picks by timing, which varies between runs.
    Case("gorner_cnn_xla_steps50", "gorner_cnn", (*STEPS, "model.conv=xla")),
    Case(
        "sweep4",
        "five_layer_relu",
        ("--lr", "0.001,0.003", "--seed", "0,1", "--steps", "20"),
        slow=False,
    ),  # fmt: skip
    Case("halving", "five_layer_relu", (*SEARCH, "--search", "halving", "--eta", "2")),
    Case("pbt", "five_layer_relu", (*SEARCH, "--search", "pbt")),
    Case(
        "resume_evaluate",
        "five_layer_relu",
        ("--epochs", "2", "--seed", "0,1"),
        resume_argv=("--epochs", "4", "--seed", "0,1", "--resume"),
        evaluate=True,
    ),
)


def cpu_key() -> str:
    """What decides float rounding here: the machine, its vector units, and JAX's version."""
    flags = ""
    if os.path.exists("/proc/cpuinfo"):
        text = Path("/proc/cpuinfo").read_text()
        line = next((x for x in text.splitlines() if x.startswith("flags")), "")
        flags = ",".join(f for f in ("avx512f", "avx2", "fma") if f" {f}" in f"{line} ")
    return f"{platform.machine()} {flags} jax {jax.__version__}"


def kept(value):
    """`value` without times, and run folders by name only."""
    if isinstance(value, dict):
        return {k: kept(v) for k, v in value.items() if k not in DROPPED}
    if isinstance(value, list):
        return [kept(v) for v in value]
    if isinstance(value, str) and os.path.isabs(value):
        return os.path.basename(value)
    return value


def run(case: Case, tmp: Path) -> dict:
    """The case's JSON records, in this process."""
    from mnist_jax import cli, evaluate, results

    config = importlib.import_module(f"experiments.{case.experiment}").CONFIG
    common = ["--logdir", str(tmp / "logs"), "--quiet"]
    ckpt = ["--checkpoint-dir", str(tmp / "ckpt")] if case.resume_argv or case.evaluate else []
    records = {}
    with tfds.testing.mock_data(num_examples=MOCK_EXAMPLES):
        cli.main(config, [*common, *ckpt, "--json", str(tmp / "a.json"), *case.argv])
        records["train"] = json.loads((tmp / "a.json").read_text())
        if case.resume_argv:
            argv = [*common, *ckpt, "--json", str(tmp / "b.json"), *case.resume_argv]
            cli.main(config, argv)
            records["resume"] = json.loads((tmp / "b.json").read_text())
        if case.evaluate:
            results.write_json(str(tmp / "c.json"), evaluate.main([str(tmp / "ckpt")]))
            records["evaluate"] = json.loads((tmp / "c.json").read_text())
    return kept(records)


def path(case: Case) -> Path:
    return FOLDER / f"{case.name}.json"


def write(names: list[str]) -> None:
    for case in CASES:
        if names and case.name not in names:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            records = run(case, Path(tmp))
        path(case).write_text(json.dumps({"cpu": cpu_key(), "records": records}, indent=1) + "\n")
        print(f"wrote {path(case)}")


if __name__ == "__main__":
    if sys.argv[1:2] != ["write"]:
        sys.exit("usage: python -m tests.records write [CASE ...]")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import tests.conftest  # noqa: F401  the tests' JAX settings: records as the tests run them

    write(sys.argv[2:])
