"""`python -m mnist_jax.evaluate CHECKPOINT_DIR`: a saved run's latest state on the test set.

Rebuilds every member from the checkpoint's own record (`run.json`: each member's whole config,
and the modules that registered its dataset, model or optimizer, imported by name or else from
the file they were loaded from), so it needs neither the experiment's flags nor its command line;
every member of a sweep gets its line. Each model is evaluated on the test set of the dataset it
trained on, never another unless `--dataset` names one of the same image shape and classes (a
transfer test; `--import MODULE` imports a module that registers it).

`--ensemble` adds each member's accuracy, `nll` and `ece` and those of the members' mean
probability; `--attack fgsm|pgd --epsilon 0.05,0.1,0.2` each member's accuracy on adversarial
test images (epsilon in the pixel scale the model sees); `--json PATH` writes all of it.
"""

import argparse
import dataclasses
import json

import numpy as np

from mnist_jax import (
    attacks,
    checkpoint_folder,
    data,
    datasets,
    devices,
    files,
    locations,
    robustness,
    train,
    trained,
)
from mnist_jax.cli import Parser
from mnist_jax.config import Config, ConfigError
from mnist_jax.results import TEST, Epoch, Result, Run
from mnist_jax.tables import summary_table


@dataclasses.dataclass
class Evaluated:
    """What `evaluate` found: the runs, and the members with their parameters."""

    result: Result
    members: list[trained.Member]
    test_sets: dict[tuple[str, bool], tuple[np.ndarray, np.ndarray]]  # (dataset, raw) -> x, y

    def test_set(self, member: trained.Member, dataset: str | None):
        return self.test_sets[(dataset or member.config.dataset, member.config.raw_pixels)]


def evaluate_checkpoint(
    directory: str, data_dir: str | None = None, dataset: str | None = None, say=None
) -> Result:
    """Each saved member's run, its history ending in a test-set evaluation of its latest state
    and its `params` set: on the test set of the dataset it trained on, or of `dataset` (of the
    same image shape and classes: a transfer test)."""
    return evaluate_members(directory, data_dir, dataset, say).result


def evaluate_members(
    directory: str, data_dir: str | None = None, dataset: str | None = None, say=None
) -> Evaluated:
    record = trained.read_record(directory, say)
    data_dir = data_dir or record.get("data_dir")  # the one the run trained from
    members = trained.members_of(record)
    mesh = trained.one_device_mesh()  # 10,000 images: one device
    if dataset is not None:
        for name in sorted({m.config.dataset for m in members}):
            check_transfer(name, dataset)
    test_sets, runs, loaded = {}, [], []
    for chunk in trained.saved_chunks(directory, record, mesh):
        config = chunk.members[0].config
        key = (dataset or config.dataset, config.raw_pixels)
        if key not in test_sets:
            test_sets[key] = test_inputs(*key, data_dir)
        test_xy = devices.to_devices(mesh, *test_sets[key])
        runs += evaluate_chunk(chunk, mesh, test_xy)
        loaded += trained.members_of_chunk(chunk)
    if not runs:
        raise checkpoint_folder.CheckpointError(f"{directory} holds no saved epoch yet")
    swept = list(record["members"][0]["hparams"])
    result = Result(Config.from_json(record["members"][0]["config"]), runs, None, swept)
    return Evaluated(result, loaded, test_sets)


def test_inputs(name: str, raw_pixels: bool, data_dir: str | None):
    """Dataset `name`'s test split as model inputs and one-hot labels."""
    images, labels = datasets.load(name, "test", data_dir=data_dir)
    num_classes = datasets.get(name).num_classes
    return data.to_inputs(images, raw_pixels=raw_pixels), data.one_hot(labels, num_classes)


def check_transfer(trained_on: str, other: str) -> None:
    """Refuses to evaluate a model of dataset `trained_on` on `other` unless their images and
    classes have the same shape."""
    a, b = datasets.get(trained_on), datasets.get(other)
    if (a.image_shape, a.num_classes) != (b.image_shape, b.num_classes):
        raise ConfigError(
            f"--dataset {other}: its images are {b.image_shape} in {b.num_classes} classes, but"
            f" the checkpoint's models trained on {trained_on}, {a.image_shape} in"
            f" {a.num_classes} classes; name a dataset of the same shape and classes, or leave"
            " --dataset out"
        )


def evaluate_chunk(chunk: trained.SavedChunk, mesh, test_xy) -> list[Run]:
    """The chunk's runs, their last epoch's test figures those of the saved parameters."""
    saved = chunk.saved
    state_M = devices.place_state(mesh, saved.state)
    test, final = devices.to_host(
        train.evaluate(chunk.spec, mesh, state_M.params, state_M.hparams, test_xy)
    )
    runs = []
    for m, member in enumerate(chunk.members):
        history = [Epoch.from_json(e) for e in saved.history[m]]
        values = history[-1].values | {f"{TEST}{k}": float(v[m]) for k, v in test.items()}
        history[-1] = dataclasses.replace(history[-1], values=values)
        runs.append(
            Run(
                member=member,
                group=chunk.group.index,
                chunk=None,
                run_dir=saved.run_dirs[m] if saved.run_dirs else None,
                history=history,
                batch_losses=saved.batch_losses[m],
                diverged=bool(saved.state.diverged[m]),
                diverged_at_step=None,
                mesh=dict(mesh.shape),
                final={k: v[m] for k, v in final.items()},
                params=trained.member_params(saved.state.params, m),
            )
        )
    return runs


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m mnist_jax.evaluate", description=__doc__)
    p.add_argument("checkpoint_dir", help="a --checkpoint-dir an experiment wrote")
    p.add_argument(
        "--data-dir",
        help="tfds data dir (default: the one the run trained from, where its checkpoint "
        "records it, else $TFDS_DATA_DIR or tfds' own)",
    )
    p.add_argument(
        "--dataset",
        help="evaluate on this dataset instead of the one each model trained on (same image "
        "shape and classes)",
    )
    p.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import a module (a name, or a .py file) that registers more: a dataset to "
        "evaluate on; repeatable",
    )
    p.add_argument(
        "--ensemble",
        action="store_true",
        help="each member's accuracy, nll and ece, and those of the members' mean probability",
    )
    p.add_argument("--attack", choices=sorted(attacks.ATTACKS), help="adversarial test images")
    p.add_argument(
        "--epsilon",
        type=robustness.epsilons,
        help="the attack's budgets, comma-separated, in the pixel scale the model sees "
        f"(default {','.join(map(str, robustness.EPSILONS))})",
    )
    p.add_argument("--json", dest="json_path", help="write the report as JSON here")
    return p


def main(argv: list[str] | None = None) -> Result:
    p = parser()
    args = p.parse_args(argv)
    if args.epsilon is not None and args.attack is None:
        p.error("--epsilon needs --attack fgsm or --attack pgd")
    if args.json_path and (why := files.destination_problem(args.json_path)):
        p.error(f"cannot write the JSON report to {args.json_path}: {why}")
    try:
        locations.import_modules(args.imports)
        found = evaluate_members(args.checkpoint_dir, args.data_dir, args.dataset)
        report = robustness.Report(found.result.to_json())
        if args.ensemble:
            report.ensemble = robustness.ensemble_figures(found, args.dataset)
        if args.attack:
            eps = args.epsilon or robustness.EPSILONS
            report.attack = robustness.attack_figures(found, args.dataset, args.attack, eps)
    except (ConfigError, datasets.DataError) as error:
        p.exit(2, f"{p.prog}: error: {error}\n")
    result = found.result
    epochs = sorted({len(r.history) for r in result.runs})
    trained_on = ", ".join(sorted({r.member.config.dataset for r in result.runs}))
    on = f"{args.dataset} (trained on {trained_on})" if args.dataset else trained_on
    print(
        f"{result.config.name}, {args.checkpoint_dir}, after epoch {', '.join(map(str, epochs))},"
        f" test set of {on}"
    )
    print(summary_table(result))
    for table in report.tables(found):
        print(table)
    if args.json_path:
        files.write_atomic(args.json_path, json.dumps(report.to_json(), indent=1))
    return result


if __name__ == "__main__":
    main()
