"""What a run prints and writes about itself: each group's description before it trains, and
the results at the end (table, HParams status, JSON, CSV)."""

import jax

from mnist_jax import files, hparams_logs, models, progress, sweep, writer
from mnist_jax.results import Result, write_csv, write_json
from mnist_jax.tables import summary_table


def report(result: Result, json_path, csv_path, logdir, checkpoint_dir, say) -> Result:
    """Writes the results (a search's chosen member's test figures in its TensorBoard run,
    HParams, JSON, CSV) and prints the table and where the logs are. A file that cannot be
    written is named; the others are still written."""
    failed = None
    if jax.process_index() == 0:
        try:
            write_tensorboard(result)
        except writer.LogWriteError as error:  # the logs' disk, not necessarily the results'
            failed = error
    if result.runs:
        say(summary_table(result))  # shown even if a file below cannot be written
    if jax.process_index() == 0 and result.runs:
        for path, write in ((json_path, write_json), (csv_path, write_csv)):
            try:
                if path:
                    write(path, result)
            except files.WriteError as error:  # one output that fails never stops another
                failed = failed or error
    say(progress.where(logdir, [r.run_dir for r in result.runs], checkpoint_dir))
    if failed is not None:
        raise failed
    return result


def write_tensorboard(result: Result) -> None:
    """A search's chosen member's test figures in its `test` run (evaluated after training),
    then every member's HParams session ended."""
    chosen = result.chosen
    if chosen is not None and chosen.run_dir is not None:
        writer.write_chosen(chosen.run_dir, chosen.history[-1], chosen.final)
    for r in result.runs:
        if r.run_dir is not None:
            hparams_logs.end_hparams(r.run_dir, completed=not r.diverged)


def describe_group(group: sweep.Group, spec, batches, input_shape, mesh, convs=()) -> str:
    """The group's model, its summary, and what it trains how: printed before it trains. A
    setting its members differ in shows every value they take (`dropout_rate={0, 0.25}`)."""
    config, members = group.members[0].config, group.members
    head = f"group {group.index}" if group.index else config.name
    model = ", ".join(settings_text(members, "model"))
    built = spec.model(sweep.float_hparams(config))
    lines = [f"{head}: {config.model_name}({model})", models.summary(built, input_shape)]
    lr, seed = (shared_value(members, lambda c, k=k: getattr(c, k)) for k in ("lr", "seed"))
    optimizer = [f"lr={lr}", *settings_text(members, "optimizer")]
    schedule = ", ".join(settings_text(members, "schedule"))
    layout = " x ".join(f"{axis}={size}" for axis, size in mesh.shape.items())
    lines.append(
        f"{len(members)} run(s) on {config.dataset}, seed={seed}, "
        f"{len(batches)} epoch(s), {sum(batches)} steps of {config.batch_size}, "
        f"{config.optimizer_name}({', '.join(optimizer)}) "
        f"({config.schedule_name}{f'({schedule})' if schedule else ''}), "
        f"{config.loss_name} loss({', '.join(settings_text(members, 'loss'))}), "
        f"{'raw' if config.raw_pixels else 'scaled'} pixels, "
        f"{config.dtype}, {mesh.devices.size} device(s) as {layout}"
    )
    for kind, plain in (("train_step", "standard"), ("augment", "none")):
        name = getattr(config, f"{kind}_name")
        if name != plain:
            lines[-1] += f", {kind}={name}({', '.join(settings_text(members, kind))})"
    lines += [f"{c.layer} ({c.mode}): {c.describe()}" for c in convs]
    return "\n".join(lines)


def settings_text(members, kind: str) -> list[str]:
    """`kind`'s settings as `key=value`, each the members' one value or the set of them;
    settings that are None (not used) left out."""
    keys = [k for k, v in getattr(members[0].config, kind).items() if v is not None]
    return [f"{k}={shared_value(members, lambda c, k=k: getattr(c, kind)[k])}" for k in keys]


def shared_value(members, value_of) -> str:
    """The one value the members share, or the set they take: `0.001` or `{0.001, 0.003}`."""
    shown = list(dict.fromkeys(sweep.show_value(value_of(m.config)) for m in members))
    return shown[0] if len(shown) == 1 else "{" + ", ".join(shown) + "}"
