"""The reproduction report: `--quick` end to end on tfds mock data, and its pure functions on
hand-made runs."""

import math
import os
from pathlib import Path

import jax
import pytest
import tensorflow_datasets as tfds

from experiments import MNIST_EXPERIMENTS, report
from experiments.report import claims, figures, main, markdown

COLUMNS = [
    "experiment",
    "tutorial's reported `acc`",
    "ours, tutorial's setting: binary accuracy",
    "ours, tutorial's setting: accuracy",
    "ours, corrected: accuracy",
    "lab's reported accuracy",
]
META = {
    "command": "python -m experiments.report",
    "date": "2017-06-01 00:00 UTC",
    "host": "h",
    "device": "1 × cpu",
    "jax": "0",
    "commit": "abc1234",
    "seconds": 60.0,
    "logdir": "logs/report",
    "quick": False,
}


def table_rows(markdown: str) -> list[list[str]]:
    return [
        [c.strip() for c in line.strip("|").split("|")]
        for line in markdown.splitlines()
        if line.startswith("|")
    ]


@pytest.fixture
def fast_compiles():
    """Twelve sweeps, each compiled afresh, cost more in XLA's optimizer than in a few steps;
    the executables it leaves are cleared so no later test runs unoptimized code."""
    flag = "jax_disable_most_optimizations"
    before = jax.config.values[flag]
    if before:  # as the suite runs by default (conftest.py): nothing to undo
        yield
        return
    jax.config.update(flag, True)
    yield
    jax.config.update(flag, before)
    jax.clear_caches()


@pytest.mark.slow  # twelve sweeps, each its own compiled program, as the report runs them
def test_quick_report_has_every_experiment_mock_data(tmp_path, monkeypatch, capsys, fast_compiles):
    monkeypatch.chdir(tmp_path)  # where a quick run without --out writes
    logs, data_dir = tmp_path / "logs", tmp_path / "tfds"
    with tfds.testing.mock_data(num_examples=100):
        main.main(["--quick", "--logdir", str(logs), "--data-dir", str(data_dir)])
    assert not (tmp_path / main.OUT).exists()  # the committed report's place is left alone
    out = tmp_path / main.QUICK_OUT
    assert str(out.resolve()) in capsys.readouterr().out.splitlines()[-1]
    text = out.read_text()
    header, rule, *rows = table_rows(text)
    assert header == COLUMNS
    assert [row[0] for row in rows] == [f"`{name}`" for name in MNIST_EXPERIMENTS]
    assert all(" ± " in c for row in rows for c in row[2:5])
    assert "Quick smoke run" in text and "mean nothing" in text
    for claim in ("Deeper is better", "ReLU beats sigmoid", "Dropout fixes overfitting"):
        assert claim in text
    for setting in report.SETTINGS:
        # Beside the experiments' folders, the log dir's one HParams experiment record.
        folders = {p.name for p in (logs / setting).iterdir() if p.is_dir()}
        assert folders == set(MNIST_EXPERIMENTS)
    # No path of this machine: the data dir is left out, the absolute logdir is LOGDIR.
    for path in (tmp_path, tmp_path.resolve(), Path.cwd(), Path.home()):
        assert str(path) not in text
    assert "Produced by `python -m experiments.report --quick --logdir LOGDIR`" in text
    assert "TensorBoard logs under `LOGDIR/{tutorial,corrected}/`" in text


@pytest.mark.parametrize(
    "argv, expected",
    [
        ([], "python -m experiments.report"),
        (["--data-dir", "/tmp/tfds"], "python -m experiments.report"),
        (["--data=/tmp/tfds", "--quick"], "python -m experiments.report --quick"),
        (
            ["--out", "/home/me/R.md", "--logdir", "/tmp/logs"],
            "python -m experiments.report --out OUT --logdir LOGDIR",
        ),
        (
            ["--out", "reports/R 1.md", "--logdir", "logs/x"],
            "python -m experiments.report --out 'reports/R 1.md' --logdir logs/x",
        ),
        (["--logdir", "logs/report"], "python -m experiments.report"),
        (
            ["--quick", "--logdir", "logs/report"],
            "python -m experiments.report --quick --logdir logs/report",
        ),
    ],
)
def test_command_names_no_absolute_path(argv, expected, monkeypatch, tmp_path):
    seen = {}
    monkeypatch.chdir(tmp_path)  # nothing is written, but never beside the committed REPORT.md
    monkeypatch.setattr(main, "run_all", lambda *args: as_sweeps(fake_results()))
    monkeypatch.setattr(markdown, "render", lambda results, meta: seen.update(meta) or "")
    monkeypatch.setattr(main.files, "write_atomic", lambda path, text: None)
    main.main(argv)
    assert seen["command"] == expected
    assert seen["logdir"] is None or not os.path.isabs(seen["logdir"])


def run(acc, binary=0.99, losses=((0.1, 0.2),), diverged=False, seed=0):
    """A hand-made run: `losses` is (train loss, test_loss) per epoch."""
    return {
        "seed": seed,
        "test_accuracy": acc,
        "test_binary_accuracy": binary,
        "diverged": diverged,
        "train_seconds": 10.0,
        "epochs": [{"loss": loss, "test_loss": val} for loss, val in losses],
    }


def sweep(accs, binaries=(0.99, 0.99, 0.99), lr=0.001, **kwargs):
    config = {
        "lr": lr,
        "schedule_name": "constant",
        "optimizer_name": "adam",
        "epochs": 30,
        "steps": None,
        "loss": "binary",
    }
    runs = [
        run(a, b, seed=seed, **kwargs)
        for seed, (a, b) in enumerate(zip(accs, binaries, strict=True))
    ]
    return {"config": config, "runs": runs}


def fake_results(overrides=None):
    """Every experiment in both settings at accuracy 0.9 ± 0.01, unless overridden."""
    results = {
        name: {setting: sweep([0.89, 0.90, 0.91]) for setting in report.SETTINGS}
        for name in MNIST_EXPERIMENTS
    }
    for (name, setting), value in (overrides or {}).items():
        results[name][setting] = value
    return results


def as_sweeps(results):
    """`results` as `main.run_all` yields them, sweep by sweep."""
    return iter([(n, s, r) for n, by_setting in results.items() for s, r in by_setting.items()])


def test_mean_std_is_the_sample_spread():
    assert figures.mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert figures.pm([0.89, 0.90, 0.91]) == "0.9000 ± 0.0100"


def test_table_cells_reported_numbers_and_footnote():
    results = fake_results(
        {
            ("softmax", "tutorial"): sweep([0.8, 0.8, 0.8], binaries=[0.96, 0.96, 0.96]),
            ("five_layer_relu", "corrected"): sweep([0.97, 0.98, 0.99], diverged=True),
        }
    )
    header, rule, *rows = table_rows(markdown.results_table(results))
    assert header == COLUMNS
    by_name = {row[0].strip("`"): row for row in rows}
    assert by_name["softmax"] == [
        "`softmax`",
        "0.9439",
        "0.9600 ± 0.0000",
        "0.8000 ± 0.0000",
        "0.9000 ± 0.0100",
        "0.9268",
    ]
    assert by_name["five_layer_relu"][4] == "0.9800 ± 0.0100 (3/3 diverged)"
    assert by_name["five_layer_relu"][5] == "0.9825 ¹"
    assert by_name["five_layer_relu_dropout"][5] == "—"
    assert by_name["five_layer_relu_lrdecay"][1] == "—"
    text = markdown.render(results, META)
    assert "Adam 0.003; ours uses the tutorial's 0.001" in text
    assert "Quick smoke run" not in text


def test_binary_accuracy_arithmetic():
    # 92 % right, each error costing 2 of 10 outputs: 1 - 2 * 0.08 / 10.
    assert figures.predicted_binary_accuracy(0.92) == pytest.approx(0.984)
    assert figures.outputs_wrong_per_error(0.92, 0.984) == pytest.approx(2.0)
    assert figures.outputs_wrong_per_error(0.92, 0.992) == pytest.approx(1.0)
    assert figures.accuracy_from_binary(0.944) == pytest.approx(0.72)
    line = markdown.inflation_lines(
        fake_results({("softmax", "tutorial"): sweep([0.92] * 3, binaries=[0.984] * 3)})
    )[0]
    assert line == (
        "- `softmax`: accuracy 0.9200, so 1 − 2·0.0800/10 = 0.9840 predicted; measured 0.9840 "
        "(2.00 wrong outputs per misclassified image)."
    )


@pytest.mark.parametrize(
    "favoured, other, higher, expected",
    [
        ([0.98, 0.99], [0.96, 0.97], True, "holds"),
        ([0.96, 0.97], [0.98, 0.99], True, "fails"),
        ([0.96, 0.99], [0.97, 0.98], True, "within seed noise"),
        ([0.1, 0.2], [0.3, 0.4], False, "holds"),
    ],
)
def test_verdict(favoured, other, higher, expected):
    assert claims.verdict(favoured, other, higher) == expected


def test_overfitting_measures():
    measured = claims.overfitting(run(0.97, losses=[(0.3, 0.2), (0.1, 0.15), (0.05, 0.25)]))
    assert measured == pytest.approx({"gap": 0.2, "rise": 0.1, "test_accuracy": 0.97})


def test_accuracy_claims_from_the_runs():
    results = fake_results({("softmax", setting): sweep([0.8] * 3) for setting in report.SETTINGS})
    lines = claims.accuracy_claim_lines(results)
    deeper = [line for line in lines if line.startswith("- tutorial (`five_layer_sigmoid`")]
    assert deeper == [
        "- tutorial (`five_layer_sigmoid` adam 0.001, 30 epochs; `softmax` adam 0.001, 30 epochs): "
        "0.9000 ± 0.0100 vs 0.8000 ± 0.0000 (+0.1000, **holds**)"
    ]
    assert "within seed noise" in "".join(lines)  # ReLU vs sigmoid: the same numbers


def test_dropout_claim_from_the_runs():
    overfits = [(0.10, 0.20), (0.05, 0.30)]  # gap 0.25, test_loss up 0.10 from its minimum
    fits = [(0.20, 0.21), (0.18, 0.20)]  # gap 0.02, test_loss still falling
    results = fake_results(
        {
            **{("five_layer_relu", s): sweep([0.97] * 3, losses=overfits) for s in report.SETTINGS},
            **{
                ("five_layer_relu_dropout", s): sweep([0.98] * 3, losses=fits)
                for s in report.SETTINGS
            },
        }
    )
    lines = claims.dropout_claim_lines(results)
    tutorial, corrected = [x for x in lines if x.startswith("- `five_layer_relu_dropout`")]
    assert tutorial.startswith("- `five_layer_relu_dropout` vs `five_layer_relu`, tutorial: holds.")
    assert "loss gap 0.0200 ± 0.0000 vs 0.2500 ± 0.0000 (-0.2300, **holds**)" in tutorial
    assert "test_loss rise from its minimum 0.0000 ± 0.0000 vs 0.1000 ± 0.0000" in tutorial
    assert "test accuracy 0.9800 ± 0.0000 vs 0.9700 ± 0.0000 (+0.0100, **holds**)" in tutorial
    assert corrected.startswith("- `five_layer_relu_dropout` vs `five_layer_relu`, corrected")
    decay = [line for line in lines if line.startswith("- `five_layer_relu_lrdecay_dropout`")]
    assert all(": within seed noise." in line for line in decay)  # identical hand-made runs


def test_runs_stuck_at_chance_are_named():
    assert figures.saturated_loss() == pytest.approx(0.9 * 2 * math.log(1e7) / 10)
    stuck = sweep([0.098, 0.97, 0.1], losses=[(2.9, 2.95)])
    results = fake_results({("five_layer_relu_lrdecay", "tutorial"): stuck})
    row = markdown.results_table(results).splitlines()[6]
    assert row.startswith("| `five_layer_relu_lrdecay` | — | 0.9900 ± 0.0000 (2/3 at chance) |")
    assert markdown.stuck_lines(results) == [
        "- `five_layer_relu_lrdecay`, tutorial: seeds 0, 2 of 3 ended at chance, test accuracy "
        "0.0980, 0.1000; binary training loss in the last epoch 2.9000, 2.9000."
    ]
    assert "2 of these runs ended at chance" in "".join(claims.dropout_claim_lines(results))
    assert "## Runs that learned nothing" in markdown.render(results, META)
    assert "## Runs that learned nothing" not in markdown.render(fake_results(), META)


@pytest.mark.parametrize("out", ["{file}/REPORT.md", "{dir}"])
def test_an_out_that_cannot_be_written_is_refused_before_any_run(
    tmp_path, monkeypatch, capsys, out
):
    (tmp_path / "a_file").write_text("")
    (tmp_path / "a_dir").mkdir()
    out = out.format(file=tmp_path / "a_file", dir=tmp_path / "a_dir")
    monkeypatch.setattr(main, "run_all", lambda *a: pytest.fail("trained before --out was checked"))
    with pytest.raises(SystemExit) as exit_info:
        main.main(["--quick", "--out", out])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(
        f"python -m experiments.report: error: --out {out}: "
    )


def test_a_quick_report_keeps_no_logs_unless_asked(tmp_path, monkeypatch, capsys):
    """Its runs of three steps would flood TensorBoard and the plots among real runs."""
    monkeypatch.chdir(tmp_path)
    used = []

    def run_all(quick, data_dir, logdir, stop):
        used.append(Path(logdir))
        (Path(logdir) / "tutorial").mkdir(parents=True)
        return as_sweeps(fake_results())

    monkeypatch.setattr(main, "run_all", run_all)
    main.main(["--quick"])
    (logdir,) = used
    assert not logdir.exists() and not (tmp_path / "logs").exists()
    assert not logdir.is_relative_to(tmp_path)
    assert capsys.readouterr().out.endswith("; its logs were not kept (--logdir DIR keeps them)\n")
    text = (tmp_path / main.QUICK_OUT).read_text()
    assert "its TensorBoard logs were not kept." in text
    main.main(["--quick", "--logdir", "smoke"])
    assert used[1] == Path("smoke") and (tmp_path / "smoke" / "tutorial").is_dir()
    assert capsys.readouterr().out.endswith("; the runs' logs are in smoke\n")


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--data-dir", "{tmp}/a_file/tfds"], "holds no prepared mnist to read and"),
        (["--logdir", "{tmp}/a_file/logs"], "a_file is not a directory"),
    ],
)
def test_the_reports_own_set_up_is_checked_before_its_first_run(flags, message, tmp_path, capsys):
    (tmp_path / "a_file").write_text("")
    argv = ["--quick", "--out", str(tmp_path / "R.md"), *(f.format(tmp=tmp_path) for f in flags)]
    with pytest.raises(SystemExit) as exit_info:
        main.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]
