"""`python -m mnist_jax.evaluate CHECKPOINT_DIR`: a saved run's latest state on the test set.

Rebuilds every member from the checkpoint's own record (`run.json`: each member's whole config,
and the modules that registered its dataset, model or optimizer, imported first), so it needs
neither the experiment's flags nor its command line; every member of a sweep gets its line.
Each model is evaluated on the test set of the dataset it trained on, never another unless
`--dataset` names one of the same image shape and classes (a transfer test).
"""

import argparse
import dataclasses
import os

from mnist_jax import checkpoint, data, datasets, devices, experiment, loop, registry, sweep, train
from mnist_jax.config import Config, ConfigError
from mnist_jax.results import TEST, Epoch, Result, Run, summary_table


def evaluate_checkpoint(
    directory: str, data_dir: str | None = None, dataset: str | None = None
) -> Result:
    """Each saved member's run, its history ending in a test-set evaluation of its latest state:
    on the test set of the dataset it trained on, or of `dataset` (of the same image shape and
    classes: a transfer test). Without `data_dir`, the one the run trained from, where its
    record has it (`data_dir`), else where tfds looks by itself."""
    record = checkpoint.read_run(directory)
    data_dir = data_dir or record.get("data_dir")
    registry.import_modules(record["modules"])
    members = [sweep.Member(Config.from_json(m["config"]), m["hparams"]) for m in record["members"]]
    groups = sweep.groups(members)  # as the checkpoint holds them
    one = {devices.DATA_AXIS: 1, devices.MEMBERS_AXIS: 1}
    mesh = devices.make_mesh(devices.local_devices(1)[:1], one, 1)  # 10,000 images: one device
    if dataset is not None:
        for trained in sorted({m.config.dataset for m in members}):
            check_transfer(trained, dataset)
    test_sets, runs = {}, []
    for group in groups:
        config = group.members[0].config
        key = (dataset or config.dataset, config.raw_pixels)
        if key not in test_sets:
            test_sets[key] = test_inputs(*key, data_dir)
        test_xy = devices.to_devices(mesh, *test_sets[key])
        runs += evaluate_group(directory, group, record["max_members"], mesh, test_xy)
    if not runs:
        raise checkpoint.CheckpointError(f"{directory} holds no saved epoch yet")
    swept = list(record["members"][0]["hparams"])
    return Result(Config.from_json(record["members"][0]["config"]), runs, None, swept)


def test_inputs(name: str, raw_pixels: bool, data_dir: str | None):
    """Dataset `name`'s test split as model inputs and one-hot labels."""
    images, labels = datasets.load(name, "test", data_dir=data_dir)
    num_classes = datasets.get(name).num_classes
    return data.to_inputs(images, raw_pixels=raw_pixels), data.one_hot(labels, num_classes)


def check_transfer(trained: str, other: str) -> None:
    """Refuses to evaluate a model of dataset `trained` on `other` unless their images and
    classes have the same shape."""
    a, b = datasets.get(trained), datasets.get(other)
    if (a.image_shape, a.num_classes) != (b.image_shape, b.num_classes):
        raise ConfigError(
            f"--dataset {other}: its images are {b.image_shape} in {b.num_classes} classes, but"
            f" the checkpoint's models trained on {trained}, {a.image_shape} in {a.num_classes}"
            " classes; name a dataset of the same shape and classes, or leave --dataset out"
        )


def evaluate_group(directory, group: sweep.Group, size: int, mesh, test_xy) -> list[Run]:
    spec = experiment.train_spec(group.members[0].config, [m.config for m in group.members])
    runs = []
    for first in range(0, len(group.members), size):
        members = group.members[first : first + size]
        start = group.first + first
        if not os.path.isdir(checkpoint.group_path(directory, start, len(members))):
            continue  # this chunk had not started when the run stopped
        like_M = loop.initial_state(spec, mesh, members, test_xy[0].shape[1:])
        store = checkpoint.MemberCheckpoints(directory, start, len(members))
        try:
            saved = store.latest(like_M)
        finally:  # a damaged checkpoint too: orbax's threads end now, not at exit
            store.close()
        if saved is None or saved.epoch == 0:
            continue
        state_M = devices.place_state(mesh, saved.state)
        test, final = devices.to_host(
            train.evaluate(spec, mesh, state_M.params, state_M.hparams, test_xy)
        )
        for m, member in enumerate(members):
            history = [Epoch.from_json(e) for e in saved.history[m]]
            values = history[-1].values | {f"{TEST}{k}": float(v[m]) for k, v in test.items()}
            history[-1] = dataclasses.replace(history[-1], values=values)
            runs.append(
                Run(
                    member=member,
                    group=group.index,
                    chunk=None,
                    run_dir=saved.run_dirs[m] if saved.run_dirs else None,
                    history=history,
                    batch_losses=saved.batch_losses[m],
                    diverged=bool(saved.state.diverged[m]),
                    diverged_at_step=None,
                    mesh=dict(mesh.shape),
                    final={k: v[m] for k, v in final.items()},
                )
            )
    return runs


def main(argv: list[str] | None = None) -> Result:
    p = argparse.ArgumentParser(prog="python -m mnist_jax.evaluate", description=__doc__)
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
    args = p.parse_args(argv)
    try:
        result = evaluate_checkpoint(args.checkpoint_dir, args.data_dir, args.dataset)
    except (ConfigError, datasets.DataError) as error:
        p.exit(2, f"{p.prog}: error: {error}\n")
    epochs = sorted({len(r.history) for r in result.runs})
    trained = ", ".join(sorted({r.member.config.dataset for r in result.runs}))
    on = f"{args.dataset} (trained on {trained})" if args.dataset else trained
    print(
        f"{result.config.name}, {args.checkpoint_dir}, after epoch {', '.join(map(str, epochs))},"
        f" test set of {on}"
    )
    print(summary_table(result))
    return result


if __name__ == "__main__":
    main()
