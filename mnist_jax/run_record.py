"""What a run records before it trains: the checkpoint dir's `run.json` (every member's whole
config and the modules that registered what it uses) and TensorBoard's HParams experiment."""

import dataclasses
import os

import jax
from jax.experimental import multihost_utils

from mnist_jax import checkpoint_folder, datasets, hparams_logs, metrics, sweep, writer
from mnist_jax.config import Config
from mnist_jax.search import Search
from mnist_jax.steps import RUN_FIGURES


def run_record(
    config: Config,
    groups: list[sweep.Group],
    max_members: int,
    found: Search | None = None,
    data_dir: str | None = None,
) -> dict:
    """What a checkpoint dir records: every member's whole config, the groups, the chunk size,
    the modules that registered what the run uses (so `evaluate` can import them), each
    dataset with the module that registered it, and the data dir it read (so `evaluate` and
    `predict` need none)."""
    members = [m for g in groups for m in g.members]
    names = sorted({m.config.dataset for m in members})
    by_dataset = {name: datasets.DATASETS.module_of(name) for name in names}
    parts = set(by_dataset.values()) | {
        registry.module_of(getattr(m.config, f"{kind}_name"))
        for m in members
        for kind, registry in sweep.SETTINGS.items()
    }
    parts |= {
        metrics.METRICS.module_of(name)
        for m in members
        for name in metrics.active(m.config.metrics)
    }
    return {
        "name": config.name,
        "datasets": by_dataset,
        "members": [{"config": m.config.to_json(), "hparams": m.hparams} for m in members],
        "groups": [[g.first, len(g.members)] for g in groups],
        "max_members": max_members,
        "modules": sorted(m for m in parts if not m.startswith("mnist_jax.")),  # ours: imported
        **({"search": dataclasses.asdict(found)} if found and found.strategy else {}),
        **({"data_dir": os.path.abspath(os.path.expanduser(data_dir))} if data_dir else {}),
    }


def start_checkpoints(checkpoint_dir: str | None, resume: bool, record: dict) -> None:
    """Writes the checkpoint dir's record, only now: a run that failed on its data leaves no
    checkpoint dir to refuse next time."""
    if not checkpoint_dir or resume:
        return
    if jax.process_count() > 1:  # every process has checked the dir before it is written
        multihost_utils.sync_global_devices("checkpoint dir checked")
    if jax.process_index() == 0:
        checkpoint_folder.start_run(checkpoint_dir, record)


def write_experiment(logdir: str, groups: list[sweep.Group], searched: bool = False) -> None:
    """The HParams experiment record: every member's keys; the metrics of the test set, the
    validation split (when a member has one) and training, as `(run, tag)`. A search
    (`searched`) evaluates its chosen member alone on the test set."""
    names = dict.fromkeys(n for g in groups for n in metrics.active(g.members[0].config.metrics))
    runs = [writer.TEST]
    runs += [writer.VALIDATION] if any(g.members[0].config.val_split for g in groups) else []
    named = [(run, f"epoch_{m}") for run in runs for m in metrics.at(names, metrics.TEST)]
    named += [(writer.TRAIN, f"epoch_{m}") for m in metrics.at(names, metrics.BATCH)]
    steps_used = {g.members[0].config.train_step_name for g in groups}
    named += [
        (writer.TEST, k) for s in sorted(steps_used & set(RUN_FIGURES)) for k in RUN_FIGURES[s][0]
    ]
    members = [hparams_logs.session_hparams(m.config.name, m) for g in groups for m in g.members]
    tested = [(run, tag) for run, tag in named if run == writer.TEST] if searched else []
    named = [n for n in named if n not in tested]
    hparams_logs.write_experiment(logdir, members, named, tested)
