"""The logs-and-floor benchmark's pieces on fixed figures (no timing here), and the floor's
program: the epoch's matrix products and nothing else."""

import sys

import jax
import numpy as np
import pytest

from experiments import benchmark_logs, gemm_floor
from experiments.benchmark_logs import Figures, Row


def test_verdict_allows_the_ratio_or_the_seconds_whichever_is_larger():
    row = Row("checkpoint", "", 1.03, 0.2, command=("m",))
    assert "PASS" in benchmark_logs.verdict(row, 5.0, 5.19)  # +0.19 s: 1.038 x, within 0.2 s
    assert "FAIL" in benchmark_logs.verdict(row, 5.0, 5.25)
    assert "PASS" in benchmark_logs.verdict(row, 10.0, 10.29)  # 1.029 x: more than 0.2 s
    assert "FAIL" in benchmark_logs.verdict(Row("floor", "", 1.25), 0.4, 0.51)


def test_line_gives_medians_ratio_and_each_rounds_ratio():
    row = Row("floor", "epoch / floor", 1.25)
    figures = Figures(plain=[0.30, 0.31, 0.29], extra=[0.36, 0.40, 0.35])
    text = benchmark_logs.line(row, figures)
    assert "0.36 s / 0.3 s = 1.200 x" in text and "PASS" in text
    assert "[1.2, 1.29, 1.207]" in text


@pytest.mark.parametrize(
    "argv, message",
    [(["--rows", "logs1,bogus"], "unknown rows ['bogus']"), (["--rounds", "0"], "at least 1")],
)
def test_bad_flags_are_refused(monkeypatch, capsys, argv, message):
    monkeypatch.setattr(sys, "argv", ["benchmark_logs", *argv])
    with pytest.raises(SystemExit) as exit_info:
        benchmark_logs.parse_args()
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_accelerator_rows_only_with_the_flag(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["benchmark_logs"])
    assert "logs256" not in [r.name for r in benchmark_logs.parse_args().rows]
    monkeypatch.setattr(sys, "argv", ["benchmark_logs", "--accelerator"])
    assert "logs256" in [r.name for r in benchmark_logs.parse_args().rows]


def test_the_floor_is_the_epochs_fourteen_products_per_step():
    rng = np.random.default_rng(0)
    pairs = list(zip(gemm_floor.LAYERS[:-1], gemm_floor.LAYERS[1:], strict=True))
    weights = [rng.standard_normal((i, o), np.float32) for i, o in pairs]
    inputs = [rng.standard_normal((gemm_floor.BATCH, i), np.float32) for i, _ in pairs]
    grads = [rng.standard_normal((gemm_floor.BATCH, o), np.float32) for _, o in pairs]
    jaxpr = jax.make_jaxpr(gemm_floor.products)(weights, inputs, grads)
    (loop,) = [e for e in jaxpr.eqns if e.primitive.name == "scan"]  # fori_loop's, 600 steps
    assert loop.params["length"] == gemm_floor.STEPS == 600
    body = loop.params["jaxpr"].jaxpr
    shapes = sorted(
        tuple(e.outvars[0].aval.shape) for e in body.eqns if e.primitive.name == "dot_general"
    )
    forward = [(gemm_floor.BATCH, o) for _, o in pairs]
    weight_grads = [(i, o) for i, o in pairs]
    input_grads = [(gemm_floor.BATCH, i) for i, _ in pairs[1:]]
    assert shapes == sorted(forward + weight_grads + input_grads)
