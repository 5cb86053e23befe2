"""The benchmark's tables: the variants, the comparisons against their targets, the accelerator
sweeps; and the host they ran on."""

import contextlib
import dataclasses
import importlib.metadata
import platform

from experiments.benchmark.summary import Summary, Target, fmt, ratio

PACKAGES = ("jax", "jaxlib", "flax", "optax", "torch", "keras")
NOISY = 0.1  # others' CPU share above which a variant's figures are flagged

COLUMNS = (  # title, width
    ("variant", 14), ("ok", 5), ("s/epoch", 8), ("range", 13), ("x plain JAX", 11),
    ("x torch eager", 13), ("wall s/ep", 9), ("around", 6), ("test acc", 8),
    ("start-up s", 10), ("process s", 9), ("others", 6),
)  # fmt: skip

ACCELERATOR_COLUMNS = (
    ("members", 8), ("ok", 5), ("s/epoch", 8), ("range", 13), ("examples/s", 11),
    ("x 1 run per member", 18), ("test acc", 8), ("start-up s", 10), ("process s", 9),
    ("others", 6),
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class AcceleratorRow:
    """One sweep size on an accelerator: its epoch, examples per second, and a member's cost
    against a run alone."""

    members: int
    seconds_per_epoch: float | None
    examples_per_second: float | None
    per_member_vs_single: float | None


def row(cells: list[str], columns=COLUMNS) -> str:
    return "  ".join(
        cell.ljust(width) if i == 0 else cell.rjust(width)
        for i, (cell, (_, width)) in enumerate(zip(cells, columns, strict=False))
    ).rstrip()


def spread(s: Summary) -> str:
    return f"{min(s.per_round):.3f}-{max(s.per_round):.3f}" if s.per_round else "-"


def failed(name: str, s: Summary, columns=COLUMNS) -> str:
    ok = f"{s.rounds_ok}/{s.rounds}"
    return row([name, ok], columns) + f"  FAILED: {s.errors[-1] if s.errors else '?'}"


def busy_note(summary: dict[str, Summary]) -> list[str]:
    noisy = [n for n, s in summary.items() if (s.others_cpu or 0) > NOISY]
    if not noisy:
        return []
    return [
        "others: median share of all CPUs that other processes used during a variant's runs;"
        f" above {NOISY:.0%} for {', '.join(noisy)}: those figures are not from a quiet host."
    ]


def variant_table(summary: dict[str, Summary]) -> list[str]:
    lines = [row([title for title, _ in COLUMNS])]
    lines.append("-" * len(lines[0]))
    for name, s in summary.items():
        if s.rounds_ok == 0:
            lines.append(failed(name, s))
            continue
        cells = [
            name,
            f"{s.rounds_ok}/{s.rounds}",
            fmt(s.seconds_per_epoch, ".3f"),
            spread(s),
            fmt(s.vs_plain_jax, ".2f"),
            fmt(s.vs_torch_eager, ".2f"),
            fmt(s.wall_seconds_per_epoch, ".3f"),
            "-" if s.around_epoch is None else f"{100 * s.around_epoch:.1f}%",
            fmt(s.test_accuracy, ".4f"),
            fmt(s.startup_seconds, ".2f"),
            fmt(s.process_seconds, ".2f"),
            fmt(s.others_cpu, ".0%"),
        ]
        lines.append(row(cells))
        lines += [f"{'':<16}failed round: {e}" for e in s.errors]
    return lines + busy_note(summary)


def target_table(goals: list[Target]) -> list[str]:
    header = f"{'comparison':<56}{'figures':>28}{'measured':>10}{'target':>10}  result"
    lines = [header, "-" * (len(header) + 4)]
    verdict = {True: "PASS", False: "FAIL", None: "n/a (variant missing or failed)"}
    for t in goals:
        if t.limit is None:
            goal, result = "", "(information)"
        else:
            goal, result = f"{'<' if t.strict else '<='} {t.limit:g}", verdict[t.passed]
        lines.append(f"{t.what:<56}{t.figures:>28}{fmt(t.measured, '.3f'):>10}{goal:>10}  {result}")
    return lines


def table(summary: dict[str, Summary], goals: list[Target]) -> str:
    lines = variant_table(summary)
    lines += [""] + target_table(goals)
    lines += [
        "s/epoch: the project's compiled epoch, a peer's own epoch time (plain_jax_tbx's with its"
        " logs and test set), the first dropped; wall s/ep: the project's epochs with everything"
        " around them; around: (wall - compiled) / compiled; process s: the whole process.",
        "The accuracy gap is of one seed after --epochs epochs, where seeds alone differ by"
        " tenths of a point: judge it on full runs over several seeds (--seed 0,1,2).",
    ]
    return "\n".join(lines)


def layout_line(summary: dict[str, Summary], devices: int) -> str:
    by_member, by_data = (
        summary[n].seconds_per_epoch if n in summary else None
        for n in ("sweep8_by_members", "sweep8_by_data")
    )
    return (
        f"8-member sweep on {devices} devices: members sharded {fmt(by_member, '.3f')} s/epoch,"
        f" batch split (data parallel) {fmt(by_data, '.3f')} s/epoch, ratio"
        f" {fmt(ratio(by_member, by_data), '.3f')}"
    )


def accelerator_rows(
    summary: dict[str, Summary], members: tuple[int, ...], examples: int
) -> list[AcceleratorRow]:
    """Per sweep size: its figures, examples per second, and a member's cost against a run."""
    single = summary["members_1"].seconds_per_epoch if "members_1" in summary else None
    rows = []
    for n in members:
        seconds = summary[f"members_{n}"].seconds_per_epoch
        rows.append(
            AcceleratorRow(
                members=n,
                seconds_per_epoch=seconds,
                examples_per_second=ratio(n * examples, seconds),
                per_member_vs_single=ratio(seconds, None if single is None else n * single),
            )
        )
    return rows


def accelerator_table(summary: dict[str, Summary], rows: list[AcceleratorRow]) -> str:
    lines = [row([title for title, _ in ACCELERATOR_COLUMNS], ACCELERATOR_COLUMNS)]
    lines.append("-" * len(lines[0]))
    for r in rows:
        name = str(r.members)
        s = summary[f"members_{name}"]
        if s.seconds_per_epoch is None:
            lines.append(failed(name, s, ACCELERATOR_COLUMNS))
            continue
        cells = [
            name,
            f"{s.rounds_ok}/{s.rounds}",
            fmt(s.seconds_per_epoch, ".4f"),
            spread(s),
            fmt(r.examples_per_second, ",.0f"),
            fmt(r.per_member_vs_single, ".3f"),
            fmt(s.test_accuracy, ".4f"),
            fmt(s.startup_seconds, ".2f"),
            fmt(s.process_seconds, ".2f"),
            fmt(s.others_cpu, ".0%"),
        ]
        lines.append(row(cells, ACCELERATOR_COLUMNS))
        lines += [f"{'':<10}failed round: {e}" for e in s.errors]
    return "\n".join(lines + busy_note(summary))


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    except OSError:
        names = []
    return names[0] if names else platform.processor() or "unknown CPU"


def versions() -> dict[str, str]:
    found = {}
    for package in PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[package] = importlib.metadata.version(package)
    return found
