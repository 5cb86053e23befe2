"""Trains a config and all its sweep members: `train_and_evaluate`, the library's entry point.

    from experiments.five_layer_relu_dropout import CONFIG
    result = mnist_jax.train_and_evaluate(CONFIG, ["model.dropout_rate=0,0.25", "epochs=3"])
    result.runs[1].params, result.runs[1].hparams, result.runs[1].test_accuracy

The overrides are parsed and the members drawn once (`populate`); members are grouped by what
must compile apart (`sweep.groups`); each group trains in chunks of at most `max_members`, one
compiled program each, through the one epoch loop (`loop.train_chunk`), a search's strategy a
policy of it. Every member gets its own TensorBoard run directory. The command line
(`mnist_jax.cli`) is a thin layer over this module.
"""

import contextlib
import dataclasses
from collections.abc import Callable, Sequence

import jax
import numpy as np

from mnist_jax import (
    budget,
    checkpoint_folder,
    checks,
    datasets,
    devices,
    files,
    init_from,
    inputs,
    interrupt,
    loop,
    models,
    reporting,
    run_record,
    search,
    strategies,
    sweep,
    train,
)
from mnist_jax.config import Config, ConfigError
from mnist_jax.overrides import Override, OverrideError, parse_all
from mnist_jax.progress import Chunk, Context
from mnist_jax.results import TEST, Choice, ConvChoice, Result
from mnist_jax.search import Population, Search
from mnist_jax.spec import train_spec


@dataclasses.dataclass(frozen=True)
class Options:
    """Where a run reads and writes, and how it reports; not part of what is trained."""

    data_dir: str | None = None
    logdir: str | None = "logs"  # None: no TensorBoard logs
    json_path: str | None = None
    csv_path: str | None = None
    verbose: bool = False  # print the models, progress and the table
    overwrite: bool = False  # replace earlier runs of the same names instead of keeping them
    checkpoint_dir: str | None = None  # where the training state is saved
    checkpoint_every: float = 60.0  # seconds between saves at least; 0: after every epoch
    resume: bool = False  # continue from the latest checkpoint in `checkpoint_dir`
    devices: int | None = None  # local devices to use; all by default
    mesh: dict[str, int] | None = None  # {"data": d, "members": m}; None: members first
    max_members: int = budget.CHUNK  # members in one compiled program; more train in chunks
    search: Search = Search()  # how members are drawn and chosen; `search.*` overrides set it

    def say(self, *args) -> None:
        """Prints what a verbose run shows, on process 0."""
        if self.verbose and jax.process_index() == 0:
            print(*args)


def train_and_evaluate(
    config: Config, overrides: Sequence[str | Override] = (), **options
) -> Result:
    """Trains every member of `config` with `overrides` applied (`"KEY=VALUE"` strings as on
    the command line, or parsed `Override`s); `options` are `Options` fields. Returns each
    member's run, its trained `params` included. Training stops early once every member of a
    chunk has diverged, and on SIGINT/SIGTERM after the current epoch (raising
    `interrupt.Interrupted`)."""
    opts = Options(**options)
    try:
        given = [o for o in overrides if isinstance(o, Override)]
        given += parse_all([o for o in overrides if not isinstance(o, Override)])
    except OverrideError as error:
        raise ConfigError(str(error)) from None
    population = populate(config, given, opts)
    announce_chunks(population, opts)
    return run(config, population, opts)


def populate(config: Config, given: Sequence[Override], opts: Options) -> Population:
    """The members `given` asks for over `config`, checked once: the grid's size against
    memory before it is built, then every member as it is drawn."""
    checks.check_size(config, given, opts.max_members, opts.search)
    return search.population(config, given, opts.search)


def announce_chunks(population: Population, opts: Options) -> None:
    """Says how a sweep larger than `max_members` trains, chunk after chunk, and for how long
    (`budget.chunks_line`)."""
    if len(population.members) > opts.max_members:
        first = checks.budget_group(population.members[0].config, len(population.members))
        opts.say(budget.chunks_line([first], opts.max_members))


def run(config: Config, population: Population, opts: Options) -> Result:
    """Trains the population's members, chunk after chunk through the one epoch loop, then a
    search's choice; see `train_and_evaluate`. A checkpoint that cannot be written, or a stop
    signal, ends the run with what trained up to there reported (table, JSON, CSV) before the
    error goes on. The checkpoint dir is this process's until it returns: another run asking
    for it is refused at once."""
    checks.check_destinations(opts.json_path, opts.csv_path)
    checks.check_checkpoint_every(opts.checkpoint_every)
    checks.check_search(population.search.strategy, len(population.members), opts.max_members)
    with contextlib.ExitStack() as holding:
        stop = holding.enter_context(interrupt.StopOnSignal())
        if opts.checkpoint_dir and jax.process_index() == 0:
            holding.enter_context(checkpoint_folder.locked(opts.checkpoint_dir))
        with stop.at_once("set-up"):
            groups = sweep.groups(init_from.resolve(population.members, model_of))
            placed = prepare(config, groups, population.search, opts)
            convs = [c for g in groups for c in conv_choices(g, placed, opts.max_members)]
            jobs = jobs_of(config.name, groups, placed, population, opts, stop)
        result = Result(config, [], None, population.swept, validation_of(groups, placed), convs)
        try:
            for job in jobs:
                announce(job, placed, convs, opts)
                seed = job.chunk.members[0].config.data_seed
                runs, started, done = loop.train_chunk(job.chunk, job.contexts, seed, job.policy)
                result.runs += runs
                result.startup_seconds = result.startup_seconds or started
                total = job.policy.epochs or len(job.chunk.batches)
                if stop.signum is not None and (done < total or job is not jobs[-1]):
                    raise interrupt.Interrupted(stop.signum, done, total)
        except (files.WriteError, interrupt.Interrupted) as error:
            saving = checkpoint_folder.SaveError if opts.checkpoint_dir else ()
            if isinstance(error, files.WriteError) and not isinstance(error, saving):
                raise
            result.runs += getattr(error, "runs", [])  # the epochs trained up to a failed save
            finish(result, placed, population.search, opts, stop, print_on_process_0(opts))
            raise
        return finish(result, placed, population.search, opts, stop, opts.say)


@dataclasses.dataclass(frozen=True)
class Job:
    """One chunk of a group's members, the policy of the epoch loop that trains it, and where
    it trains (`contexts(n)`: n of its members' mesh and data)."""

    group: sweep.Group
    chunk: Chunk
    policy: loop.Policy
    contexts: Callable[[int], Context]


def jobs_of(name, groups, placed: inputs.Placed, population: Population, opts, stop) -> list[Job]:
    """Every group's chunks in order, each with its policy and its contexts."""
    jobs = []
    for group in groups:
        for chunk, policy in chunks_of(group, population, placed, opts.max_members):
            contexts = context_maker(name, chunk, placed, population.search, opts, stop)
            jobs.append(Job(group, chunk, policy, contexts))
    return jobs


def announce(job: Job, placed: inputs.Placed, convs, opts: Options) -> None:
    """What a job trains, before it does: its group's model and settings before the group's
    first chunk, and which of the group's members a chunk holds."""
    group, chunk = job.group, job.chunk
    if chunk.first == group.first:
        mesh = job.contexts(len(chunk.members)).mesh
        say_group(group, chunk, placed, mesh, convs, opts)
    if chunk.index is not None:
        first = chunk.first - group.first
        opts.say(f"members {first + 1}-{first + len(chunk.members)} of {len(group.members)}")


def validation_of(groups: list[sweep.Group], placed: inputs.Placed) -> dict | None:
    return inputs.validation_record(placed.loaded[inputs.Source.of(groups[0].members[0].config)])


def print_on_process_0(opts: Options):
    """What a run that ends on a fault shows of its results: the table even with --quiet."""
    return print if jax.process_index() == 0 else opts.say


def prepare(config: Config, groups: list[sweep.Group], found: Search, opts: Options):
    """Every check that needs no data, then the data and the checks that need it; only then the
    records (checkpoint dir, HParams). Returns the loaded splits, to be placed per mesh."""
    checks.check_groups_fit(groups, opts.max_members)
    for group in groups:
        first = group.members[0].config
        checks.check_model(first, datasets.get(first.dataset).image_shape)
        checks.check_builds(group)
    record = run_record.run_record(config, groups, opts.max_members, found, opts.data_dir)
    if opts.checkpoint_dir:
        checkpoint_folder.check_dir(opts.checkpoint_dir, record, opts.resume, opts.overwrite)
    for group in groups:  # every layout is checked before any data is loaded
        for members in chunks(group, opts.max_members):
            chunk_mesh(opts, len(members), group.members[0].config.batch_size)
    loaded: dict[inputs.Source, inputs.Splits] = {}
    for group in groups:
        first = group.members[0].config
        source = inputs.Source.of(first)
        if source not in loaded:
            loaded[source] = inputs.load(opts.data_dir, source)
        checks.check_batch(first, len(loaded[source].train[0]))
    run_record.start_checkpoints(opts.checkpoint_dir, opts.resume, record)
    if jax.process_index() == 0 and opts.logdir is not None:
        run_record.write_experiment(opts.logdir, groups, found.strategy is not None)
    return inputs.Placed(loaded)


def finish(result: Result, placed, found: Search, opts: Options, stop, say) -> Result:
    """A search's choice (stopped at once by a signal, or left out after one), then the report
    (`reporting.report`), whose writes a signal lets finish."""
    stopped = None
    if found.strategy is not None and result.runs and stop.signum is None:
        try:
            with stop.at_once("the search's final evaluation"):
                result.search = choose(result, placed, opts, found)
        except interrupt.Interrupted as error:
            stopped = error
    stop.after = "the results are written"
    paths = (opts.json_path, opts.csv_path, opts.logdir, opts.checkpoint_dir)
    reporting.report(result, *paths, say)
    if stopped is None and found.strategy and result.search is None and stop.signum is not None:
        stopped = interrupt.Interrupted(stop.signum, during="the search, before its choice")
    if stopped is not None:
        raise stopped
    return result


def say_group(group, chunk: Chunk, placed: inputs.Placed, mesh, convs, opts: Options) -> None:
    config = group.members[0].config
    input_shape = placed.loaded[inputs.Source.of(config)].train[0].shape[1:]
    chosen = [c for c in convs if c.group == group.index]
    opts.say(reporting.describe_group(group, chunk.spec, chunk.batches, input_shape, mesh, chosen))


def chunks_of(group: sweep.Group, population: Population, placed: inputs.Placed, max_members: int):
    """The group's chunks, each with the policy of the epoch loop that trains it: a search's
    (halving, PBT) over the whole group, else plain chunks of at most `max_members`."""
    config, found = group.members[0].config, population.search
    spec = train_spec(config, [m.config for m in group.members])
    num_examples = len(placed.loaded[inputs.Source.of(config)].train[0])
    batches = batches_per_epoch(config, num_examples // config.batch_size)
    whole = Chunk(group.index, None, group.first, group.members, spec, batches)
    if found.strategy == "halving":
        rungs = search.rungs(len(group.members), found.eta, found.rung_epochs, len(batches))
        return [(whole, strategies.halving(rungs))]
    if found.strategy == "pbt":
        explore = strategies.explore_spec(population.distributions, spec.float_keys)
        policy = strategies.pbt(explore, found.pbt_interval, len(batches), found.seed)
        return [(dataclasses.replace(whole, traced=explore.keys), policy)]
    parts = chunks(group, max_members)
    return [
        (
            Chunk(
                group.index,
                i if len(parts) > 1 else None,
                group.first + sum(map(len, parts[:i])),
                members,
                spec,
                batches,
            ),
            loop.Policy(),
        )  # fmt: skip
        for i, members in enumerate(parts)
    ]


def context_maker(name: str, chunk: Chunk, placed: inputs.Placed, found: Search, opts, stop):
    """`contexts(n)`: where n of the chunk's members train, their mesh and the data on it. A
    search reads the test set only for its choice, at the end."""
    source = inputs.Source.of(chunk.members[0].config)

    def contexts(num_members: int) -> Context:
        mesh = chunk_mesh(opts, num_members, chunk.spec.batch_size)
        train_xy, val_xy, test_xy = placed.on(mesh, source)
        test_xy = test_xy if found.strategy is None else None
        return Context(
            name, mesh, train_xy, test_xy, val_xy, opts.logdir, opts.overwrite,
            opts.checkpoint_dir, opts.checkpoint_every, opts.resume, opts.say, stop,
        )  # fmt: skip

    return contexts


def conv_choices(group: sweep.Group, placed: inputs.Placed, max_members: int) -> list[ConvChoice]:
    """How the group's convolutions are computed in training (a batch) and in evaluation (the
    whole test set, or validation split, at once), in a program of its first chunk's members:
    `auto` ones chosen now, before anything compiles."""
    config, members = group.members[0].config, min(len(group.members), max_members)
    splits = placed.loaded[inputs.Source.of(config)]
    model = train_spec(config).model(sweep.float_hparams(config))
    shapes = {
        "train": (config.batch_size, *splits.train[0].shape[1:]),
        "evaluate": splits.test[0].shape,
    }
    if splits.validation is not None:
        shapes["validate"] = splits.validation[0].shape
    return [
        ConvChoice(group.index, name, mode, c.impl, c.source, c.ms, members)
        for mode, shape in shapes.items()
        for name, c in models.conv_choices(model, shape, mode == "train", members).items()
    ]


def choose(result: Result, placed: inputs.Placed, opts: Options, found: Search) -> Choice:
    """A search's choice: among the members that trained longest, the best by validation
    accuracy; only it is evaluated on the test set (its last epoch's `test_` figures)."""
    runs = result.runs
    longest = max(len(r.history) for r in runs)
    candidates = [i for i, r in enumerate(runs) if len(r.history) == longest]
    scores = [runs[i].history[-1].values.get("val_accuracy") for i in candidates]
    best = candidates[search.ranking(scores)[0]]
    chosen = runs[best]
    last = chosen.history[-1]
    config = sweep.with_floats(chosen.member.config, last.hparams or {})
    if config.steps is None:  # the length it trained, as the search was given it
        config = dataclasses.replace(config, epochs=longest)
    else:
        config = dataclasses.replace(config, steps=len(chosen.batch_losses))
    members = max((c.members for c in result.convs if c.group == chosen.group), default=1)
    figures, chosen.final = evaluate_test(config, chosen.params, placed, opts, members)
    values = last.values | {f"{TEST}{k}": v for k, v in figures.items()}
    chosen.history[-1] = dataclasses.replace(last, values=values)
    flags = ("--data-dir", opts.data_dir) if opts.data_dir else ()
    command = search.command_line(result.config.name, result.config, config, flags)
    return Choice(found.strategy, dataclasses.asdict(found), best, command)


def evaluate_test(config: Config, params, placed: inputs.Placed, opts: Options, members: int):
    """One member's `TEST` metrics on the test set, and its `END` ones, its convolutions those
    chosen for its sweep of `members` (measuring its own would cost seconds to minutes)."""
    spec = train_spec(config)
    mesh = chunk_mesh(opts, 1, config.batch_size)
    test_xy = placed.on(mesh, inputs.Source.of(config))[2]
    hparams_M = {k: np.array([v], np.float32) for k, v in sweep.float_hparams(config).items()}
    params_M = jax.tree.map(lambda a: np.asarray(a)[None], params)
    evaluated = train.evaluate(spec, mesh, params_M, hparams_M, test_xy, members)
    figures, final = devices.to_host(evaluated)
    return {k: float(v[0]) for k, v in figures.items()}, {k: v[0] for k, v in final.items()}


def model_of(config: Config):
    """The model `config` trains, its float settings its own."""
    return train_spec(config).model(sweep.float_hparams(config))


def chunks(group: sweep.Group, size: int) -> list[tuple[sweep.Member, ...]]:
    """The group's members in compiled programs of at most `size`."""
    return [group.members[i : i + size] for i in range(0, len(group.members), size)]


def chunk_mesh(opts: Options, num_members: int, batch_size: int):
    """The mesh a chunk of `num_members` trains on: `opts.mesh`, or members first."""
    local = devices.local_devices(opts.devices)
    layout = devices.choose_layout(len(local), num_members, opts.mesh)
    return devices.make_mesh(local, layout, batch_size)


def batches_per_epoch(config: Config, num_batches: int) -> tuple[int, ...]:
    """Batches in each epoch: whole epochs, or `steps` ending in a partial one."""
    if config.steps is None:
        return (num_batches,) * config.epochs
    full, rest = divmod(config.steps, num_batches)
    return (num_batches,) * full + ((rest,) if rest else ())
