"""Trains a config and all its sweep members: `train_and_evaluate`, the library's entry point.

    from experiments.five_layer_relu_dropout import CONFIG
    result = mnist_jax.train_and_evaluate(CONFIG, ["model.dropout_rate=0,0.25", "epochs=3"])
    result.runs[1].params, result.runs[1].hparams, result.runs[1].test_accuracy

Members are grouped by what must compile apart (`sweep.groups`); each group trains in chunks
of at most `max_members`, one compiled program each; every member gets its own TensorBoard run
directory. The command line (`mnist_jax.cli`) is a thin layer over this module.
"""

import contextlib
import dataclasses
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils

from mnist_jax import (
    budget,
    conv,
    data,
    datasets,
    devices,
    files,
    holdout,
    init_from,
    interrupt,
    loop,
    metrics,
    models,
    search,
    strategies,
    sweep,
    train,
    writer,
)
from mnist_jax.config import Config, ConfigError
from mnist_jax.distributions import Distribution
from mnist_jax.overrides import Override, OverrideError, parse_all
from mnist_jax.results import (
    TEST,
    Choice,
    ConvChoice,
    Result,
    summary_table,
    write_csv,
    write_json,
)
from mnist_jax.search import Search


@dataclasses.dataclass(frozen=True)
class Options:
    """Where a run reads and writes, and how it reports; not part of what is trained."""

    data_dir: str | None = None
    logdir: str | None = "logs"  # None: no TensorBoard logs
    json_path: str | None = None
    csv_path: str | None = None
    verbose: bool = False  # print the models, progress and the table
    overwrite: bool = False  # replace earlier runs of the same names instead of keeping them
    checkpoint_dir: str | None = None  # where the training state is saved after every epoch
    resume: bool = False  # continue from the latest checkpoint in `checkpoint_dir`
    devices: int | None = None  # local devices to use; all by default
    mesh: dict[str, int] | None = None  # {"data": d, "members": m}; None: members first
    max_members: int = budget.CHUNK  # members in one compiled program; more train in chunks
    search: Search = Search()  # how members are drawn and chosen; `search.*` overrides set it


def train_and_evaluate(config: Config, overrides: Sequence[str] = (), **options) -> Result:
    """Trains every member of `config` with `overrides` (`"KEY=VALUE"` strings, as on the
    command line) applied; `options` are `Options` fields. Returns each member's run, its
    trained `params` included. Training stops early once every member of a chunk has diverged,
    and on SIGINT/SIGTERM after the current epoch (raising `interrupt.Interrupted`)."""
    opts = Options(**options)
    try:
        parsed = parse_all(overrides)
    except OverrideError as error:
        raise ConfigError(str(error)) from None
    sizes = check_size(config, parsed, opts.max_members, opts.search)  # before the grid is built
    if sizes[0].members > opts.max_members and opts.verbose and jax.process_index() == 0:
        print(budget.chunks_line(sizes, opts.max_members))
    return run(config, search.plan(config, parsed, opts.search), opts)


def check_size(
    config: Config, given: Sequence[Override], max_members: int, found: Search | None = None
) -> list[budget.Group]:
    """Refuses a grid too large for this machine's memory before it is built, judged by its
    first point's model (a structural sweep is judged again by each group's, once built);
    returns what the estimate was made of. A single run is not estimated. A search's
    `samples` multiply the grid; its distributions are left out of the first point."""
    grid, found = search.split_overrides(given, found or Search())
    grid = [o for o in grid if not isinstance(o.values[0], Distribution)]
    size = math.prod(len(o.values) for o in grid) * (found.samples or 1)
    if size == 1:
        return [budget.Group(1, 0, 0, 0)]
    first = sweep.expand(config, [Override(o.key, o.values[:1]) for o in grid])[0].config
    sizes = [budget_group(first, size)]
    if why := budget.problem(sizes, max_members):
        raise ConfigError(why)
    return sizes


def budget_group(config: Config, members: int) -> budget.Group:
    """`members` members shaped as `config`'s model, for the memory estimate."""
    rows = models.layer_table(train_spec(config).model(), datasets.get(config.dataset).image_shape)
    return budget.Group(
        members=members,
        params=sum(row[3] for row in rows),
        activations=sum(math.prod(row[2][1:]) for row in rows),
        steps=budget.steps_of(config.epochs, config.steps, config.batch_size),
    )


def check_builds(group: sweep.Group) -> None:
    """Builds the group's model and optimizer and takes one update, for shapes only (nothing is
    computed): a setting the library refuses only when used (`optimizer.mu_dtype=abc`) is
    named in one line before anything is created, not as a traceback after."""
    config = group.members[0].config
    spec = train_spec(config)
    shape = datasets.get(config.dataset).image_shape
    hparams = {k: jnp.float32(v) for k, v in sweep.float_hparams(config).items()}

    def update():
        state = train.init_state(spec, jax.random.key(0), hparams, shape)
        return spec.tx(hparams).update(state.params, state.opt_state, state.params)

    try:
        with conv.shapes_only():
            jax.eval_shape(update)
    except Exception as error:  # any library's refusal of a value it was handed
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        raise ConfigError(
            f"{config.model_name} with {config.optimizer_name} cannot be built from these "
            f"settings ({type(error).__name__}: {reason}); check the model.* and optimizer.* "
            "values given"
        ) from None


def run(config: Config, plan: search.Plan, opts: Options) -> Result:
    """Trains the plan's members, group after group, and a search's choice; see
    `train_and_evaluate`. The checkpoint dir is this process's until it returns: another run
    asking for it is refused at once."""
    check_destinations(opts)
    strategy, members = plan.search.strategy, plan.members
    if strategy in ("halving", "pbt") and len(members) > opts.max_members:
        raise ConfigError(
            f"--search {strategy} trains its {len(members)} members in one program: raise "
            f"--max-members to {len(members)} or draw fewer --samples"
        )
    with contextlib.ExitStack() as holding:
        if opts.checkpoint_dir and jax.process_index() == 0:
            holding.enter_context(checkpoint_module().locked(opts.checkpoint_dir))
        return train_all(config, plan, opts)


def train_all(config: Config, plan: search.Plan, opts: Options) -> Result:
    """Checks the checkpoint dir, the layouts and the data, then trains group after group."""
    writing = jax.process_index() == 0
    say = print if writing and opts.verbose else (lambda *a, **k: None)
    swept = plan.swept
    plan = dataclasses.replace(plan, members=init_from.resolve(plan.members, train_spec))
    groups = sweep.groups(plan.members)
    if len(groups) > 1:  # a structural sweep: each group's own model, now that they are known
        sizes = [budget_group(g.members[0].config, len(g.members)) for g in groups]
        if why := budget.problem(sizes, opts.max_members):
            raise ConfigError(why)
    for group in groups:
        check_builds(group)
    record = run_record(config, groups, opts.max_members, plan.search)
    if opts.checkpoint_dir:
        checkpoint_module().check_dir(opts.checkpoint_dir, record, opts.resume, opts.overwrite)
    for group in groups:  # every layout is checked before any data is loaded
        for members in chunks(group, opts.max_members):
            chunk_mesh(opts, len(members), group.members[0].config.batch_size)
    inputs = {}  # (train, validation or None, test) by (dataset, raw_pixels, val_split)
    for group in groups:
        config_0 = group.members[0].config
        if data_key(config_0) not in inputs:
            inputs[data_key(config_0)] = load(opts.data_dir, *data_key(config_0))
        (train_x, _), _, _ = inputs[data_key(config_0)]
        check_model(config_0, train_x.shape[1:])
        if config_0.batch_size > len(train_x):  # refused before any log or checkpoint is written
            raise ConfigError(
                f"batch size {config_0.batch_size} is larger than the {len(train_x)} training"
                f" examples of {config_0.dataset}"
            )
    start_checkpoints(opts, record)
    if writing and opts.logdir is not None:
        write_experiment(opts.logdir, groups)
    validation = validation_record(inputs[data_key(groups[0].members[0].config)])
    runs, startup_seconds, convs = [], None, []
    with interrupt.StopOnSignal() as stop:
        try:
            for group in groups:
                last = group is groups[-1]
                convs += conv_choices(group, inputs, opts.max_members)
                started = train_group(
                    config.name, group, inputs, opts, say, stop, last, runs, convs, plan
                )
                startup_seconds = startup_seconds or started
        except files.WriteError as error:
            if not isinstance(error, checkpoint_module().SaveError):
                raise
            runs += error.runs  # the epochs trained up to the failed save are results too
            shown = print if writing else say  # the table even with --quiet: the run ends here
            report(Result(config, runs, startup_seconds, swept, validation, convs), opts, shown)
            raise
    result = Result(config, runs, startup_seconds, swept, validation, convs)
    if plan.search.strategy is not None:
        result.search = choose(result, inputs, opts, plan.search)
    return report(result, opts, say)


def report(result: Result, opts: Options, say) -> Result:
    """Writes the results (HParams, JSON, CSV) and prints the table."""
    if jax.process_index() == 0:
        for r in result.runs:
            if r.run_dir is not None:
                writer.end_hparams(r.run_dir, completed=not r.diverged)
    if result.runs:
        say(summary_table(result))  # shown even if a file below cannot be written
    if jax.process_index() == 0 and result.runs:
        if opts.json_path:
            write_json(opts.json_path, result)
        if opts.csv_path:
            write_csv(opts.csv_path, result)
    say(loop.where(opts.logdir, [r.run_dir for r in result.runs], opts.checkpoint_dir))
    return result


def check_destinations(opts: Options) -> None:
    """Refuses a results file that could not be written, before any work: not after training."""
    for what, path in [("the JSON results", opts.json_path), ("the CSV", opts.csv_path)]:
        if path is not None and (why := files.destination_problem(path)):
            raise ConfigError(f"cannot write {what} to {path}: {why}")


def validation_record(inputs) -> dict | None:
    """The validation split as the JSON report records it; None without one."""
    train_xy, val_xy, _ = inputs
    if val_xy is None:
        return None
    return holdout.record(len(train_xy[0]) + len(val_xy[0]), len(val_xy[0]))


def data_key(config: Config) -> tuple[str, bool, int]:
    """What decides the arrays a member trains and is evaluated on."""
    return config.dataset, config.raw_pixels, config.val_split


def load(data_dir: str | None, name: str, raw_pixels: bool, val_split: int = 0):
    """`(train, validation or None, test)` of dataset `name` as model inputs: images
    (N, H, W, C) float32, labels one-hot (N, num_classes); the validation split held out of
    the training set (`holdout`)."""
    num_classes = datasets.get(name).num_classes
    splits = []
    for split in ("train", "test"):
        images, labels = datasets.load(name, split, data_dir=data_dir)
        if raw_pixels and images.dtype != np.uint8:
            raise ConfigError(
                f"raw_pixels=true: dataset {name}'s images are {images.dtype} values, not pixels"
                " to leave unscaled; leave raw_pixels out"
            )
        splits.append((data.to_inputs(images, raw_pixels), data.one_hot(labels, num_classes)))
    if val_split >= len(splits[0][0]):
        raise ConfigError(
            f"val_split={val_split} holds out every one of the {len(splits[0][0])} training "
            f"examples of {name}; hold out fewer"
        )
    return (*holdout.split(splits[0], val_split), splits[1])


def check_model(config: Config, input_shape: tuple[int, ...]) -> None:
    """Refuses a model whose outputs do not match the dataset's classes (a registered model
    without a `num_classes` field), before anything is written."""
    spec = train_spec(config)
    x = jax.ShapeDtypeStruct((1, *input_shape), np.float32)
    with conv.shapes_only():  # shapes only: an `auto` convolution measures nothing here
        logits = jax.eval_shape(lambda x: spec.model().init_with_output(jax.random.key(0), x)[0], x)
    num_classes = datasets.get(config.dataset).num_classes
    if logits.shape != (1, num_classes):
        raise ConfigError(
            f"model {config.model_name} gives outputs of shape {logits.shape[1:]} for dataset"
            f" {config.dataset}'s {num_classes} classes; give the model a num_classes field"
            " (set from the dataset)"
        )


def checkpoint_module():
    """`mnist_jax.checkpoint`, imported only by runs that save: orbax is slow to import."""
    from mnist_jax import checkpoint

    return checkpoint


def start_checkpoints(opts: Options, record: dict) -> None:
    """Writes the checkpoint dir's record, only now: a run that failed on its data leaves no
    checkpoint dir to refuse next time."""
    if not opts.checkpoint_dir or opts.resume:
        return
    if jax.process_count() > 1:  # every process has checked the dir before it is written
        multihost_utils.sync_global_devices("checkpoint dir checked")
    if jax.process_index() == 0:
        checkpoint_module().start_run(opts.checkpoint_dir, record)


def train_spec(config: Config, group: Sequence[Config] = ()) -> train.TrainSpec:
    """The static part of a group's members (`config` the first, `group` them all; a config
    alone by default). Float hyperparameters are data, except the loss settings that every
    member shares: those are constants, so a term they zero is left out (`losses.is_zero`)."""
    floats = sweep.float_hparams(config)
    values = [sweep.float_hparams(c) for c in (config, *group)]
    shared = {k for k in floats if k.startswith("loss.") and len({v[k] for v in values}) == 1}
    loss = {k: v for k, v in config.loss.items() if f"loss.{k}" in shared}
    takes_classes = models.MODELS.takes(config.model_name, "num_classes")
    return train.TrainSpec(
        model_name=config.model_name,
        model_settings=train.hashable(config.model),
        optimizer_name=config.optimizer_name,
        optimizer_settings=train.hashable(config.optimizer),
        schedule_name=config.schedule_name,
        schedule_settings=train.hashable(config.schedule),
        loss_name=config.loss_name,
        loss_settings=train.hashable(config.loss) + tuple(sorted(loss.items())),
        float_keys=tuple(k for k in floats if k not in shared),
        metric_names=metrics.active(config.metrics),
        batch_size=config.batch_size,
        dtype=config.dtype,
        num_classes=datasets.get(config.dataset).num_classes if takes_classes else None,
    )


def epoch_plan(config: Config, num_batches: int) -> tuple[int, ...]:
    """Batches in each epoch: whole epochs, or `steps` ending in a partial one."""
    if config.steps is None:
        return (num_batches,) * config.epochs
    full, rest = divmod(config.steps, num_batches)
    return (num_batches,) * full + ((rest,) if rest else ())


def train_group(
    name, group: sweep.Group, inputs, opts: Options, say, stop, last, runs, convs, plan
):
    """Trains one group's chunks (or its search: `plan.search`), appending each chunk's runs to
    `runs` as it ends (so a fault later keeps them); returns the start-up time to the first
    step. A stop signal raises `Interrupted` unless this was the last chunk of the `last`
    group. `convs`: how the run's convolutions are computed, printed with the group's
    summary."""
    config = group.members[0].config
    spec = train_spec(config, [m.config for m in group.members])
    placed = {}

    def contexts(num_members: int) -> loop.Context:
        """Where `num_members` members train: their mesh, the data on it. A search reads the
        test set only for its choice, at the end."""
        mesh = chunk_mesh(opts, num_members, config.batch_size)
        key = (tuple(mesh.shape.items()), data_key(config))
        if key not in placed:  # the data whole on every device of this layout
            placed[key] = [
                None if xy is None else devices.to_devices(mesh, *xy)
                for xy in inputs[data_key(config)]
            ]
        train_xy, val_xy, test_xy = placed[key]
        test_xy = test_xy if plan.search.strategy is None else None
        return loop.Context(
            name, mesh, train_xy, test_xy, val_xy, opts.logdir, opts.overwrite,
            opts.checkpoint_dir, opts.resume, say, stop,
        )  # fmt: skip

    num_examples, *input_shape = inputs[data_key(config)][0][0].shape
    epochs = epoch_plan(config, num_examples // config.batch_size)
    chosen = [c for c in convs if c.group == group.index]
    if plan.search.strategy in ("halving", "pbt"):
        mesh = contexts(len(group.members)).mesh
        say(describe_group(group, spec, epochs, tuple(input_shape), mesh, chosen))
        return train_search(group, spec, epochs, contexts, plan, stop, runs)
    startup_seconds = None
    for index, members in enumerate(chunks(group, opts.max_members)):
        ctx = contexts(len(members))
        if index == 0:
            say(describe_group(group, spec, epochs, tuple(input_shape), ctx.mesh, chosen))
        chunk_index = index if len(members) < len(group.members) else None
        first = index * opts.max_members
        if chunk_index is not None:
            say(f"members {first + 1}-{first + len(members)} of {len(group.members)}")
        chunk = loop.Chunk(group.index, chunk_index, group.first + first, members, spec, epochs)
        chunk_runs, started, epochs_done = loop.train_chunk(chunk, ctx, config.data_seed)
        runs += chunk_runs
        startup_seconds = startup_seconds or started
        more = first + len(members) < len(group.members) or not last
        if stop.signum is not None and (epochs_done < len(epochs) or more):
            raise interrupt.Interrupted(stop.signum, epochs_done, len(epochs))
    return startup_seconds


def conv_choices(group: sweep.Group, inputs, max_members: int) -> list[ConvChoice]:
    """How the group's convolutions are computed in training (a batch) and in evaluation (the
    whole test set, or validation split, at once), in a program of its first chunk's members:
    `auto` ones chosen now, before anything compiles."""
    config, members = group.members[0].config, min(len(group.members), max_members)
    (train_x, _), validation, (test_x, _) = inputs[data_key(config)]
    model = train_spec(config).model()
    shapes = {"train": (config.batch_size, *train_x.shape[1:]), "evaluate": test_x.shape}
    if validation is not None:
        shapes["validate"] = validation[0].shape
    return [
        ConvChoice(group.index, name, mode, c.impl, c.source, c.ms, members)
        for mode, shape in shapes.items()
        for name, c in models.conv_choices(model, shape, mode == "train", members).items()
    ]


def train_search(group: sweep.Group, spec, epochs, contexts, plan: search.Plan, stop, runs):
    """Successive halving or PBT over the group's members, in one chunk; appends its runs to
    `runs` and returns the start-up time to the first step."""
    config, found = group.members[0].config, plan.search
    chunk = loop.Chunk(group.index, None, group.first, group.members, spec, epochs)
    if found.strategy == "halving":
        rungs = search.rungs(len(group.members), found.eta, found.rung_epochs, len(epochs))
        trained, started, done = strategies.train_halving(chunk, contexts, config.data_seed, rungs)
        total = rungs[-1][1]
    else:
        explore = strategies.explore_spec(plan.distributions, spec.float_keys)
        chunk = dataclasses.replace(chunk, traced=explore.keys)
        between = strategies.pbt_between(explore, found.pbt_interval, len(epochs), found.seed)
        ctx = contexts(len(group.members))
        trained, started, done = loop.train_chunk(chunk, ctx, config.data_seed, between)
        total = len(epochs)
    runs += trained
    if stop.signum is not None and done < total:
        raise interrupt.Interrupted(stop.signum, done, total)
    return started


def choose(result: Result, inputs, opts: Options, found: Search) -> Choice:
    """A search's choice: among the members that trained longest, the best by validation
    accuracy; only it is evaluated on the test set (its last epoch's `test_` figures)."""
    runs = result.runs
    longest = max(len(r.history) for r in runs)
    candidates = [i for i, r in enumerate(runs) if len(r.history) == longest]
    scores = [runs[i].history[-1].values.get("val_accuracy") for i in candidates]
    best = candidates[search.ranking(scores)[0]]
    chosen = runs[best]
    last = chosen.history[-1]
    config = dataclasses.replace(
        sweep.with_floats(chosen.member.config, last.hparams or {}), epochs=longest, steps=None
    )
    figures, chosen.final = evaluate_test(config, chosen.params, inputs, opts)
    values = last.values | {f"{TEST}{k}": v for k, v in figures.items()}
    chosen.history[-1] = dataclasses.replace(last, values=values)
    command = search.command_line(result.config.name, result.config, config)
    return Choice(found.strategy, dataclasses.asdict(found), best, command)


def evaluate_test(config: Config, params, inputs, opts: Options) -> tuple[dict, dict]:
    """One member's `TEST` metrics on the test set, and its `END` ones."""
    spec = train_spec(config)
    mesh = chunk_mesh(opts, 1, config.batch_size)
    test_xy = devices.to_devices(mesh, *inputs[data_key(config)][2])
    hparams_M = loop.hparams_of([sweep.Member(config, {})])
    params_M = jax.tree.map(lambda a: np.asarray(a)[None], params)
    figures, final = devices.to_host(train.evaluate(spec, mesh, params_M, hparams_M, test_xy))
    return {k: float(v[0]) for k, v in figures.items()}, {k: v[0] for k, v in final.items()}


def chunks(group: sweep.Group, size: int) -> list[tuple[sweep.Member, ...]]:
    """The group's members in compiled programs of at most `size`."""
    return [group.members[i : i + size] for i in range(0, len(group.members), size)]


def chunk_mesh(opts: Options, num_members: int, batch_size: int):
    """The mesh a chunk of `num_members` trains on: `opts.mesh`, or members first."""
    local = devices.local_devices(opts.devices)
    layout = devices.choose_layout(len(local), num_members, opts.mesh)
    return devices.make_mesh(local, layout, batch_size)


def describe_group(group: sweep.Group, spec, plan, input_shape, mesh, convs=()) -> str:
    """The group's model, its summary, and what it trains how: printed before it trains. A
    setting its members differ in shows every value they take (`dropout_rate={0, 0.25}`)."""
    config, members = group.members[0].config, group.members
    head = f"group {group.index}" if group.index else config.name
    model = ", ".join(settings_text(members, "model"))
    lines = [f"{head}: {config.model_name}({model})", models.summary(spec.model(), input_shape)]
    lr, seed = (shared_value(members, lambda c, k=k: getattr(c, k)) for k in ("lr", "seed"))
    optimizer = [f"lr={lr}", *settings_text(members, "optimizer")]
    schedule = ", ".join(settings_text(members, "schedule"))
    layout = " x ".join(f"{axis}={size}" for axis, size in mesh.shape.items())
    lines.append(
        f"{len(members)} run(s) on {config.dataset}, seed={seed}, "
        f"{len(plan)} epoch(s), {sum(plan)} steps of {config.batch_size}, "
        f"{config.optimizer_name}({', '.join(optimizer)}) "
        f"({config.schedule_name}{f'({schedule})' if schedule else ''}), "
        f"{config.loss_name} loss({', '.join(settings_text(members, 'loss'))}), "
        f"{'raw' if config.raw_pixels else 'scaled'} pixels, "
        f"{config.dtype}, {mesh.devices.size} device(s) as {layout}"
    )
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


def run_record(
    config: Config, groups: list[sweep.Group], max_members: int, found: Search | None = None
) -> dict:
    """What a checkpoint dir records: every member's whole config, the groups, the chunk size,
    the modules that registered what the run uses (so `evaluate` can import them), and each
    dataset with the module that registered it."""
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
    ours = {"mnist_jax.models", "mnist_jax.optim", "mnist_jax.datasets", "mnist_jax.losses"}
    ours.add("mnist_jax.metrics")
    modules = sorted(parts - ours)
    return {
        "name": config.name,
        "datasets": by_dataset,
        "members": [{"config": m.config.to_json(), "hparams": m.hparams} for m in members],
        "groups": [[g.first, len(g.members)] for g in groups],
        "max_members": max_members,
        "modules": modules,
        **({"search": dataclasses.asdict(found)} if found and found.strategy else {}),
    }


def write_experiment(logdir: str, groups: list[sweep.Group]) -> None:
    """The HParams experiment record: every member's keys; the metrics of the test set, the
    validation split (when a member has one) and training, as `(run, tag)`."""
    names = dict.fromkeys(n for g in groups for n in metrics.active(g.members[0].config.metrics))
    runs = [writer.TEST]
    runs += [writer.VALIDATION] if any(g.members[0].config.val_split for g in groups) else []
    named = [(run, f"epoch_{m}") for run in runs for m in metrics.at(names, metrics.TEST)]
    named += [(writer.TRAIN, f"epoch_{m}") for m in metrics.at(names, metrics.BATCH)]
    writer.write_experiment(logdir, [m.shown() for g in groups for m in g.members], named)
