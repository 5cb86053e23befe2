"""`python -m mnist_jax.evaluate CHECKPOINT_DIR`: a saved run's latest state on the test set.

Rebuilds the model from the checkpoint's own record (`run.json`), so it needs neither the
experiment module nor its flags; every member of a sweep gets its line.
"""

import argparse
import os

from mnist_jax import checkpoint, data, experiment, models, train


def evaluate_checkpoint(directory: str, data_dir: str | None = None) -> list[dict]:
    """One dict per member: its rate, seed, epochs done, and test loss and accuracies."""
    record = checkpoint.read_run(directory)
    spec = train.TrainSpec(
        model=models.with_dtype(models.from_spec(record["model_spec"]), record["dtype"]),
        optimizer=record["optimizer"],
        loss=record["loss"],
    )
    images, labels = data.load_mnist("test", data_dir=data_dir)
    mesh = experiment.make_mesh(1, 1)  # 10,000 images: one device is plenty
    test_xy = experiment.to_devices(
        mesh, data.to_inputs(images, raw_pixels=record["raw_pixels"]), data.one_hot(labels)
    )
    members = [(lr, seed) for lr in record["learning_rates"] for seed in record["seeds"]]
    chunk = record["max_members"]
    results = []
    for first in range(0, len(members), chunk):
        group = members[first : first + chunk]
        like_M = experiment.initial_state(spec, mesh, group, test_xy[0].shape[1])
        if not os.path.isdir(checkpoint.group_path(directory, first, len(group))):
            continue  # this group had not started when the run stopped
        store = checkpoint.MemberCheckpoints(directory, first, len(group))
        saved = store.latest(like_M)
        store.close()
        if saved is None:
            continue
        params_M = experiment.place_state(mesh, saved.state).params
        metrics = train.evaluate(spec, mesh, params_M, test_xy)
        results += [
            {
                "learning_rate": lr,
                "seed": seed,
                "epoch": saved.epoch,
                "diverged": bool(saved.state.diverged[m]),
                **{f"test_{k}": float(v[m]) for k, v in metrics.items()},
            }
            for m, (lr, seed) in enumerate(group)
        ]
    if not results:
        raise checkpoint.CheckpointError(f"{directory} holds no saved epoch yet")
    return results


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(prog="python -m mnist_jax.evaluate", description=__doc__)
    p.add_argument("checkpoint_dir", help="a --checkpoint-dir an experiment wrote")
    p.add_argument("--data-dir", help="tfds data dir (default: $TFDS_DATA_DIR or tfds' own)")
    args = p.parse_args(argv)
    try:
        results = evaluate_checkpoint(args.checkpoint_dir, args.data_dir)
    except (checkpoint.CheckpointError, data.MnistError) as error:
        p.exit(2, f"{p.prog}: error: {error}\n")
    record = checkpoint.read_run(args.checkpoint_dir)
    epochs = sorted({r["epoch"] for r in results})
    print(f"{record['name']}, {args.checkpoint_dir}, after epoch {', '.join(map(str, epochs))}")
    print(experiment.summary_table(results, record["loss"]))
    return results


if __name__ == "__main__":
    main()
