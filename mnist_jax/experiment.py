"""Runs an experiment's config: data to the devices, the epoch loop, logs, and the report.

Every run is a sweep of one or more members (learning rates x seeds) trained together; each
member gets its own TensorBoard run directory, JSON entry and summary line.
"""

import dataclasses
import itertools
import json
import math
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

import mnist_jax
from mnist_jax import checkpoint, data, interrupt, models, train
from mnist_jax.config import Config, ConfigError
from mnist_jax.writer import EPOCH_TAGS, RunWriter


@dataclasses.dataclass(frozen=True)
class Options:
    """Where a run reads and writes, and how it reports; not part of what is trained."""

    data_dir: str | None = None
    logdir: str = "logs"
    json_path: str | None = None
    quiet: bool = False
    overwrite: bool = False  # replace earlier runs of the same names instead of keeping them
    checkpoint_dir: str | None = None  # where the training state is saved after every epoch
    resume: bool = False  # continue from the latest checkpoint in `checkpoint_dir`
    devices: int | None = None  # local devices to shard the batch over; all by default
    max_members: int = 256  # members in one compiled program; more train in successive chunks


def make_mesh(devices: int | None, batch_size: int) -> Mesh:
    """A 1-D mesh over the data axis: the batch is split across devices, params replicated.

    `devices` counts per process (all local devices by default); with several processes the
    mesh spans the same number of devices on each.
    """
    by_process: dict[int, list] = {}
    for device in jax.devices():
        by_process.setdefault(device.process_index, []).append(device)
    local = len(by_process[jax.process_index()])
    count = local if devices is None else devices
    if not 1 <= count <= local:
        raise ConfigError(f"--devices {devices}: this process sees {local} local device(s)")
    chosen = [d for process_devices in by_process.values() for d in process_devices[:count]]
    if batch_size % len(chosen):
        raise ConfigError(
            f"batch size {batch_size} does not split evenly over {len(chosen)} devices"
        )
    return Mesh(np.array(chosen), (train.DATA_AXIS,))


def to_devices(mesh: Mesh, *arrays: np.ndarray):
    """Each array whole on every device of the mesh, from the copy every process holds."""
    replicated = NamedSharding(mesh, PartitionSpec())
    return tuple(
        jax.make_array_from_callback(a.shape, replicated, lambda index, a=a: a[index])
        for a in arrays
    )


def load_split(split: str, config: Config, data_dir: str | None):
    images, labels = data.load_mnist(split, data_dir=data_dir)
    return data.to_inputs(images, raw_pixels=config.raw_pixels), data.one_hot(labels)


def epoch_plan(config: Config, num_batches: int) -> list[int]:
    """Batches in each epoch: whole epochs, or `steps` ending in a partial one."""
    if config.steps is None:
        return [num_batches] * config.epochs
    full, rest = divmod(config.steps, num_batches)
    return [num_batches] * full + ([rest] if rest else [])


def run_name(learning_rate: float, seed: int) -> str:
    return f"lr_{learning_rate:g}-seed_{seed}"


def fresh_dir(path: str) -> str:
    """`path`, or `path-2`, `path-3`, ... if taken, so a rerun never mixes into earlier logs."""
    for n in itertools.count(1):
        candidate = path if n == 1 else f"{path}-{n}"
        if not os.path.exists(candidate):
            return candidate
    raise AssertionError("unreachable")


def finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def run(config: Config, options: Options) -> dict:
    """Trains every member of `config` and returns the report that `--json` writes.

    Members train together, at most `options.max_members` in one compiled program; more are
    trained in successive chunks of that size. Each run in the report also carries
    `batch_losses`, the loss of every batch in order (the tutorial's LossHistory); the JSON file
    leaves it out, the TensorBoard logs hold it. Training stops early once every member has
    diverged, and on SIGINT/SIGTERM after the current epoch (raising `Interrupted`).
    """
    writing = jax.process_index() == 0
    say = print if writing and not options.quiet else (lambda *a, **k: None)
    record = run_record(config, options.max_members)
    if options.checkpoint_dir:
        checkpoint.check_dir(options.checkpoint_dir, record, options.resume, options.overwrite)
    mesh = make_mesh(options.devices, config.batch_size)
    train_xy = to_devices(mesh, *load_split("train", config, options.data_dir))
    num_examples, input_dim = train_xy[0].shape
    if config.batch_size > num_examples:
        raise ConfigError(
            f"batch size {config.batch_size} is larger than the {num_examples} training examples"
        )
    test_xy = to_devices(mesh, *load_split("test", config, options.data_dir))
    plan = epoch_plan(config, num_examples // config.batch_size)
    spec = train.TrainSpec(
        model=models.with_dtype(config.model, config.dtype),
        optimizer=config.optimizer,
        schedule=config.schedule,
        loss=config.loss,
        batch_size=config.batch_size,
    )
    members = [(lr, seed) for lr in config.learning_rates for seed in config.seeds]
    say(f"{config.name}: {models.describe(config.model)}")
    say(models.summary(config.model, input_dim))
    say(
        f"{len(members)} run(s), {len(plan)} epoch(s), {sum(plan)} steps of {config.batch_size}, "
        f"{config.optimizer} ({config.schedule}), {config.loss} loss, "
        f"{'raw' if config.raw_pixels else 'scaled'} pixels, {config.dtype}, "
        f"{mesh.devices.size} device(s)"
    )
    if options.checkpoint_dir and not options.resume:
        # Only now: a run that failed on its data leaves no checkpoint dir to refuse next time.
        if jax.process_count() > 1:  # every process has checked the dir before it is written
            multihost_utils.sync_global_devices("checkpoint dir checked")
        if writing:
            checkpoint.start_run(options.checkpoint_dir, record)
    runs, startup_seconds = [], None
    with interrupt.StopOnSignal() as stop:
        for first in range(0, len(members), options.max_members):
            chunk = Chunk(first, members[first : first + options.max_members])
            if len(chunk.members) < len(members):
                say(f"members {first + 1}-{first + len(chunk.members)} of {len(members)}")
            chunk_runs, started, epochs_done = train_members(
                spec, mesh, config, options, chunk, plan, (train_xy, test_xy), say, stop
            )
            last_chunk = first + options.max_members >= len(members)
            if stop.signum is not None and (epochs_done < len(plan) or not last_chunk):
                raise interrupt.Interrupted(stop.signum, epochs_done, len(plan))
            runs += chunk_runs
            startup_seconds = startup_seconds or started
    report = {
        "experiment": config.name,
        "config": config.describe(),
        "startup_seconds": startup_seconds,
        "runs": runs,
    }
    if writing:
        print(summary_table(runs, config.loss))
        if options.json_path:
            write_json(options.json_path, report)
    return report


def run_record(config: Config, max_members: int) -> dict:
    """What a checkpoint must match to be resumed: the config, its model in full, the chunks."""
    record = {**config.describe(), "model_spec": models.to_spec(config.model)}
    return json.loads(json.dumps({**record, "max_members": max_members}))


@dataclasses.dataclass(frozen=True)
class Chunk:
    """Members trained together: `members[i]` is member `first + i` of the run."""

    first: int
    members: list[tuple[float, int]]  # (learning rate, seed)


def open_writer(
    logdir: str, config: Config, lr: float, seed: int, mesh: Mesh, overwrite: bool
) -> RunWriter:
    """A writer in a fresh run directory (or the same name emptied, if `overwrite`)."""
    path = os.path.join(logdir, config.name, run_name(lr, seed))
    if overwrite and os.path.isdir(path):
        shutil.rmtree(path)
    run_dir = fresh_dir(path)
    return RunWriter(run_dir, run_config(config, lr, seed, mesh, run_dir))


def run_config(config: Config, lr: float, seed: int, mesh: Mesh, run_dir: str) -> dict:
    """What `config.json` records beside a run's logs."""
    return {
        **config.describe(),
        "experiment": config.name,
        "run": os.path.basename(run_dir),
        "learning_rate": lr,
        "seed": seed,
        "devices": int(mesh.devices.size),
    }


def initial_state(spec, mesh: Mesh, members: list[tuple[float, int]], input_dim: int):
    """The freshly initialised state of `members`, (learning rate, seed) pairs."""
    return train.init_members(
        spec,
        mesh,
        jnp.array([seed for _, seed in members], jnp.int32),
        jnp.array([lr for lr, _ in members], jnp.float32),
        input_dim=input_dim,
    )


def place_state(mesh: Mesh, host_state_M: train.TrainState) -> train.TrainState:
    """A state restored on the host, on every device as `train.init_members` places it."""
    leaves, treedef = jax.tree.flatten(host_state_M)
    state_M = jax.tree.unflatten(treedef, to_devices(mesh, *leaves))
    return state_M.replace(key=jax.random.wrap_key_data(state_M.key))


def check_resumable(saved: checkpoint.Saved, plan: list[int], path: str) -> None:
    if saved.epoch > len(plan):
        raise checkpoint.CheckpointError(
            f"the checkpoint in {path} is after epoch {saved.epoch}, past the {len(plan)} "
            f"epoch(s) asked: --epochs counts from the start, so ask for at least {saved.epoch}"
        )
    if saved.steps != sum(plan[: saved.epoch]):
        raise checkpoint.CheckpointError(
            f"the checkpoint in {path} is after {saved.steps} steps, but epoch {saved.epoch} of "
            f"this run ends after {sum(plan[: saved.epoch])}: resume with the --steps it was "
            "saved with, or more whole epochs of it"
        )


def train_members(spec, mesh, config, options, chunk, plan, data_xy, say, stop):
    """The epoch loop for one compiled group of members.

    Returns their runs, the start-up time to the first step, and the epochs done. Logs are
    written on a background thread while the next epoch computes. With a checkpoint dir, the
    state is saved after every epoch once that epoch's logs are on disk, so a resumed run's logs
    continue where its checkpoint does.
    """
    train_xy, test_xy = data_xy
    members = chunk.members
    writing = jax.process_index() == 0
    state = initial_state(spec, mesh, members, train_xy[0].shape[1])
    store = (
        checkpoint.MemberCheckpoints(options.checkpoint_dir, chunk.first, len(members))
        if options.checkpoint_dir
        else None
    )
    saved = store.latest(state) if store and options.resume else None
    if saved is None:
        done, epochs, batch_losses = 0, [[] for _ in members], [[] for _ in members]
        writers = [
            open_writer(options.logdir, config, lr, seed, mesh, options.overwrite)
            for lr, seed in members
            if writing
        ]
        run_dirs = [os.path.abspath(w.run_dir) for w in writers]  # resumable from elsewhere
        if store:
            store.save(0, 0, state, np.zeros((len(members), 0)), epochs, run_dirs)
    else:
        check_resumable(saved, plan, store.path)
        done, epochs, run_dirs = saved.epoch, saved.history, saved.run_dirs
        state = place_state(mesh, saved.state)
        batch_losses = [[row] for row in saved.batch_losses]
        writers = [
            RunWriter(d, run_config(config, lr, seed, mesh, d), (done + 1, saved.steps + 1))
            for d, (lr, seed) in zip(run_dirs, members, strict=True)
            if writing
        ]
        say(f"resuming after epoch {done} ({saved.steps} steps) from {store.path}")
    order_key = jax.random.key(config.seeds[0])
    first_step, startup_seconds, written = sum(plan[:done]) + 1, None, []
    diverged = jax.device_get(state.diverged)
    with ThreadPoolExecutor(max_workers=1) as log_thread:
        try:
            for epoch in range(done + 1, len(plan) + 1):
                num_batches = plan[epoch - 1]
                start = time.perf_counter()
                startup_seconds = startup_seconds or start - mnist_jax.IMPORT_TIME
                state, batch_metrics = train.train_epoch(
                    spec, mesh, state, train_xy, jax.random.fold_in(order_key, epoch), num_batches
                )
                jax.block_until_ready(state)
                seconds = time.perf_counter() - start
                val = jax.device_get(train.evaluate(spec, mesh, state.params, test_xy))
                batch_metrics = jax.device_get(batch_metrics)
                for m in range(len(members)):
                    batch_losses[m].append(batch_metrics["loss"][m])
                    epochs[m].append(
                        {
                            "epoch": epoch,
                            **{
                                k: float(v[m].mean())
                                for k, v in batch_metrics.items()
                                if k in EPOCH_TAGS
                            },
                            **{f"val_{k}": float(v[m]) for k, v in val.items()},
                            "seconds": seconds,
                        }
                    )
                if writers:
                    logged = log_thread.submit(
                        write_logs, writers, epoch, first_step, batch_metrics, epochs
                    )
                    written.append(logged)
                first_step += num_batches
                done = epoch
                say(progress_line(epoch, len(plan), seconds, epochs))
                if store:
                    if writers:
                        logged.result()  # logs first: a checkpoint never runs ahead of them
                    losses_MxS = np.stack([np.concatenate(b) for b in batch_losses])
                    store.save(epoch, first_step - 1, state, losses_MxS, epochs, run_dirs)
                diverged = report_divergence(state, members, diverged, say)
                if diverged.all() or stop.signum is not None:
                    break
        finally:
            for w in writers:
                written.append(log_thread.submit(w.close))
            if store:
                store.close()
    for future in written:
        future.result()  # a failed write surfaces here
    diverged_at = jax.device_get(state.step) + 1
    runs = [
        {
            "learning_rate": lr,
            "seed": seed,
            "diverged": bool(diverged[m]),
            "diverged_at_step": int(diverged_at[m]) if diverged[m] else None,
            "test_loss": epochs[m][-1]["val_loss"],
            "test_accuracy": epochs[m][-1]["val_accuracy"],
            "test_binary_accuracy": epochs[m][-1]["val_binary_accuracy"],
            "train_seconds": sum(e["seconds"] for e in epochs[m]),
            "epochs": epochs[m],
            "batch_losses": np.concatenate(batch_losses[m]),
        }
        for m, (lr, seed) in enumerate(members)
    ]
    return runs, startup_seconds, done


def report_divergence(state, members, diverged_before, say) -> np.ndarray:
    """Says which members diverged in the last epoch; returns which have by now."""
    diverged, steps = jax.device_get((state.diverged, state.step))
    for m in np.flatnonzero(diverged & ~diverged_before):
        lr, seed = members[m]
        say(
            f"learning rate {lr:g}, seed {seed}: loss not finite at step {steps[m] + 1}; "
            "this run stops there"
        )
    return diverged


def write_logs(writers, epoch, first_step, batch_metrics, epochs) -> None:
    for m, writer in enumerate(writers):
        last = epochs[m][epoch - 1]
        writer.write_batches(first_step, {k: v[m] for k, v in batch_metrics.items()})
        writer.write_epoch(
            epoch,
            {k: last[k] for k in EPOCH_TAGS},
            {k: last[f"val_{k}"] for k in EPOCH_TAGS},
        )
        writer.flush()  # on disk before the epoch's checkpoint, and before a crash


def progress_line(epoch: int, total: int, seconds: float, epochs: list[list[dict]]) -> str:
    line = f"epoch {epoch}/{total}  {seconds:.2f}s"
    if len(epochs) == 1:
        e = epochs[0][-1]
        return (
            f"{line}  loss {e['loss']:.4f}  acc {e['accuracy']:.4f}  "
            f"bin_acc {e['binary_accuracy']:.4f}  val_loss {e['val_loss']:.4f}  "
            f"val_acc {e['val_accuracy']:.4f}  val_bin_acc {e['val_binary_accuracy']:.4f}"
        )
    return f"{line}  val_acc " + " ".join(f"{runs[-1]['val_accuracy']:.4f}" for runs in epochs)


def summary_table(runs: list[dict], loss_name: str) -> str:
    """The tutorial's `evaluate` line for each run, best test accuracy first."""
    lines = [
        f"test ({loss_name} loss), best first:",
        f"{'learning rate':>14} {'seed':>5} {'loss':>9} {'accuracy':>9} {'binary acc':>11}",
    ]
    for r in sorted(runs, key=lambda r: (not r["diverged"], r["test_accuracy"]), reverse=True):
        flag = "  diverged" if r["diverged"] else ""
        lines.append(
            f"{r['learning_rate']:>14g} {r['seed']:>5} {r['test_loss']:>9.4f} "
            f"{r['test_accuracy']:>9.4f} {r['test_binary_accuracy']:>11.4f}{flag}"
        )
    return "\n".join(lines)


def write_json(path: str, report: dict) -> None:
    """Atomically, without the per-batch arrays, with non-finite numbers as null."""

    def clean(value):
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if k != "batch_losses"}
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, float):
            return finite_or_none(value)
        return value

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(clean(report), f, indent=1)
    os.replace(tmp, path)
