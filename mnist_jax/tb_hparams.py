"""What TensorBoard's HParams dashboard reads, as protobuf summaries: each member's session (its
hyperparameters, then its end) and the log dir's experiment record (the dashboard's columns).
`writer` writes them into files; nothing here touches the disk."""

import dataclasses
import json

import numpy as np

# TensorBoard's own hparams protos: tensorboardX's copy lacks `differs`.
from tensorboard.plugins.hparams import api_pb2
from tensorboard.plugins.hparams.plugin_data_pb2 import (
    HParamsPluginData,
    SessionEndInfo,
    SessionStartInfo,
)
from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata

PLUGIN = "hparams"  # TensorBoard's plugin name
EXPERIMENT_TAG, START_TAG, END_TAG = (
    "_hparams_/experiment",
    "_hparams_/session_start_info",
    "_hparams_/session_end_info",
)
SHOWN = 5  # hparams and metrics TensorBoard's dashboard shows (ticks) by default
FIRST_GROUPS = ("test", "validation")  # metric groups (runs) listed first, in this order
_TYPES = {
    "bool_value": api_pb2.DATA_TYPE_BOOL,
    "number_value": api_pb2.DATA_TYPE_FLOAT64,
    "string_value": api_pb2.DATA_TYPE_STRING,
}


def hparam_value(value) -> tuple[str, object]:
    """How the HParams dashboard shows `value`: floats as numbers, whole numbers as the digits
    (the dashboard prints every number to 5 significant digits: a seed would read 0.0000),
    names and booleans as themselves, lists as JSON."""
    if isinstance(value, bool):
        return "bool_value", value
    if isinstance(value, float | np.floating):
        return "number_value", float(value)
    if isinstance(value, str):
        return "string_value", value
    if isinstance(value, int | np.integer):
        return "string_value", str(value)
    return "string_value", json.dumps(value, default=str).replace(" ", "")


def _summary(tag: str, data: HParamsPluginData) -> Summary:
    content = SummaryMetadata.PluginData(plugin_name=PLUGIN, content=data.SerializeToString())
    return Summary(value=[Summary.Value(tag=tag, metadata=SummaryMetadata(plugin_data=content))])


def session_start(trial: str, hparams: dict[str, object], now: float) -> Summary:
    """A session named `trial` with these hyperparameters, started at `now`."""
    start = SessionStartInfo(group_name=trial, start_time_secs=now)
    for name, value in hparams.items():
        field, typed = hparam_value(value)
        setattr(start.hparams[name], field, typed)
    return _summary(START_TAG, HParamsPluginData(session_start_info=start, version=0))


def session_end(completed: bool, now: float) -> Summary:
    """The session's end at `now`: success, or failure (diverged)."""
    status = api_pb2.STATUS_SUCCESS if completed else api_pb2.STATUS_FAILURE
    end = SessionEndInfo(status=status, end_time_secs=now)
    return _summary(END_TAG, HParamsPluginData(session_end_info=end, version=0))


def experiment_summary(experiment: api_pb2.Experiment) -> Summary:
    return _summary(EXPERIMENT_TAG, HParamsPluginData(experiment=experiment, version=0))


def experiment_of(summary: Summary) -> api_pb2.Experiment | None:
    """The experiment record a summary holds, if it holds one."""
    for value in summary.value:
        if value.tag == EXPERIMENT_TAG:
            content = value.metadata.plugin_data.content
            return HParamsPluginData.FromString(content).experiment
    return None


@dataclasses.dataclass
class Coverage:
    """How many members a log dir's commands recorded, how many of them have each hparam and
    each metric (`"run/tag"`), and which hparams' values differ, within a command or between
    commands (`first`: each hparam's first value seen, as JSON). The dashboard shows the first
    `SHOWN` hparams and metrics, and its parallel-coordinates view leaves out every session
    lacking one of the shown columns: so the columns shown by default are ones every session
    has (`add_hparams`, `add_metrics`)."""

    members: int = 0
    hparams: dict[str, int] = dataclasses.field(default_factory=dict)
    metrics: dict[str, int] = dataclasses.field(default_factory=dict)
    differing: list[str] = dataclasses.field(default_factory=list)
    first: dict[str, str] = dataclasses.field(default_factory=dict)

    def add(
        self,
        members: list[dict[str, object]],
        named: list[tuple[str, str]],
        once: list[tuple[str, str]] = (),
    ) -> None:
        """`named`: the metrics every member gets; `once`: those only one of them gets (a
        search's test figures, of its chosen member alone)."""
        self.members += len(members)
        for name in dict.fromkeys(k for m in members for k in m):
            values = [hparam_value(m[name]) for m in members if name in m]
            self.hparams[name] = self.hparams.get(name, 0) + len(values)
            texts = {json.dumps(v, sort_keys=True) for _, v in values}
            self.first.setdefault(name, min(texts))
            if texts != {self.first[name]}:
                self.differing = sorted({*self.differing, name})
        counts = [(named, len(members)), (once, min(1, len(members)))]
        for metrics, count in counts:
            for run, tag in dict.fromkeys(metrics):
                self.metrics[f"{run}/{tag}"] = self.metrics.get(f"{run}/{tag}", 0) + count

    def everywhere(self, count: int | None) -> bool:
        return count == self.members


def add_hparams(
    experiment: api_pb2.Experiment, members: list[dict[str, object]], coverage: Coverage
) -> None:
    """Lists the members' hyperparameters as columns (`coverage` has them already). TensorBoard
    shows the first `SHOWN` of them sorted by `differs` (true first), then by name: so `differs`
    marks `SHOWN` columns that every session has (never one some session lacks): those whose
    values differ, names before settings (`schedule` before `schedule.floor`), then, while
    there is room, those whose values do not; each part in the order first recorded (the
    experiment, the swept keys, the rate, the seed: `hparams_logs.session_hparams`)."""
    infos = {h.name: h for h in experiment.hparam_infos}
    for name in dict.fromkeys(k for m in members for k in m):
        if name not in infos:
            field = hparam_value(next(m[name] for m in members if name in m))[0]
            infos[name] = experiment.hparam_infos.add(name=name, type=_TYPES[field])
    complete = [n for n in infos if coverage.everywhere(coverage.hparams.get(n))]
    differing = sorted((n for n in complete if n in coverage.differing), key=lambda n: "." in n)
    same = [n for n in complete if n not in coverage.differing]
    shown = {*(differing + same)[:SHOWN]}
    for name, info in infos.items():
        info.differs = name in shown


def add_metrics(
    experiment: api_pb2.Experiment, named: list[tuple[str, str]], coverage: Coverage
) -> None:
    """Lists the metrics `named` (run, tag) as columns: those every session has first, each
    part the test set's first, then the validation split's, then training's."""
    have = {(m.name.group, m.name.tag) for m in experiment.metric_infos}
    infos = list(experiment.metric_infos) + [
        api_pb2.MetricInfo(
            name=api_pb2.MetricName(group=run, tag=tag),
            display_name=f"{run} {tag.removeprefix('epoch_')}",
        )
        for run, tag in named
        if (run, tag) not in have
    ]
    rank = {group: i for i, group in enumerate(FIRST_GROUPS)}

    def order(m: api_pb2.MetricInfo) -> tuple[bool, int]:
        count = coverage.metrics.get(f"{m.name.group}/{m.name.tag}")
        return not coverage.everywhere(count), rank.get(m.name.group, len(FIRST_GROUPS))

    del experiment.metric_infos[:]
    experiment.metric_infos.extend(sorted(infos, key=order))
