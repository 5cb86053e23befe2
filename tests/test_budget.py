"""A sweep too large for memory is refused before its grid is built, with the estimate; one that
fits in several chunks says so before it starts (#19). The machine is given 16 GB here, so the
figures do not depend on the one the tests run on."""

import pytest

from experiments import five_layer_relu, softmax
from mnist_jax import budget, checks, cli, experiment, overrides, sweep
from mnist_jax.config import ConfigError
from mnist_jax.results import Result
from mnist_jax.search import Search

RELU = five_layer_relu.CONFIG
MACHINE = 16 * 10**9


@pytest.fixture(autouse=True)
def sixteen_gb(monkeypatch):
    monkeypatch.setattr(budget, "host_memory", lambda: MACHINE)


@pytest.fixture
def grid_points(monkeypatch):
    """How many grid points were completed: a refused grid builds no more than its first."""
    calls = []
    real = sweep.complete
    monkeypatch.setattr(sweep, "complete", lambda config: calls.append(1) or real(config))
    return calls


def test_the_estimate_is_the_measured_figures_or_a_little_above():
    # Peak resident memory measured on five_layer_relu, real MNIST, 10 steps (budget.py).
    for members, measured_gb in [(1, 0.89), (256, 5.81), (1024, 6.28)]:
        estimated = budget.estimate([budget.Group(members, 185_300, 400, 10)], 256) / 1e9
        assert measured_gb <= estimated <= 1.25 * measured_gb


def test_a_range_of_ten_million_values_is_refused_before_numpy_builds_it():
    with pytest.raises(overrides.OverrideError) as error:
        overrides.parse("lr=1e-4:1e-2:1000000000")
    message = str(error.value)
    assert "1,000,000,000 values make at least 1,000,000,000 members" in message
    assert "16,385.1 GB of host memory before any parameter" in message and "16.0 GB" in message


def test_a_grid_too_large_to_keep_is_refused_before_it_is_built(grid_points):
    given = overrides.parse_all(["lr=1e-4:1e-2:100", "seed=" + ",".join(map(str, range(500)))])
    with pytest.raises(ConfigError) as error:
        checks.check_size(RELU, given, 256, Search())
    assert str(error.value).startswith("a sweep of 50,000 members needs about 47.6 GB")
    assert "sweep at most about 11,911 members a run" in str(error.value)
    assert len(grid_points) == 1  # its first point only


def test_a_chunk_too_large_to_train_names_a_max_members_that_fits():
    given = overrides.parse_all(["lr=1e-4:1e-2:2000"])
    with pytest.raises(ConfigError) as error:
        checks.check_size(RELU, given, 2000, Search())
    assert "while 2000 members train at once" in str(error.value)
    assert "give --max-members 673 or fewer" in str(error.value)


def test_a_structural_sweep_is_judged_by_each_group_once_built(tmp_path):
    given = ["model.hidden=[10],[100000,10000]", "lr=1e-3,1e-2"]
    with pytest.raises(ConfigError) as error:
        experiment.train_and_evaluate(RELU, [*given, "steps=1"], logdir=str(tmp_path))
    assert "even for one member" in str(error.value)
    assert not (tmp_path / RELU.name).exists()


def test_a_sweep_too_large_is_one_line_with_status_2_on_the_command_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(RELU, ["lr=1e-4:1e-2:10000000"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "10,000,000 values make at least" in err, err


def test_a_sweep_in_several_chunks_says_so_before_it_starts(monkeypatch, capsys):
    monkeypatch.setattr(
        experiment, "run", lambda config, plan, opts: Result(config, [], None, plan.swept)
    )
    cli.main(softmax.CONFIG, ["lr=1e-4:1e-2:5", "--max-members", "2", "--steps", "1"])
    out = capsys.readouterr().out
    assert out.startswith("5 members train in 3 chunks of up to 2, one after another: about ")
    assert "(this machine has 16.0 GB)" in out.splitlines()[0]
