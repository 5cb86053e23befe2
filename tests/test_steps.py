"""The training step as a registered component (`mnist_jax.steps`): the shipped steps, float
step settings as data, augmentation inside the compiled epoch, metrics that read inputs and
activations. On small synthetic arrays and tfds mock data, not MNIST."""

import dataclasses
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import tensorflow_datasets as tfds
from jax.sharding import Mesh
from mock_run import ROOT

from experiments import five_layer_relu
from mnist_jax import augment, cli, hparams_logs, metrics, progress, sweep, train
from mnist_jax.config import Config
from mnist_jax.spec import train_spec
from mnist_jax.steps import dp_sgd
from tests.test_experiments import scalars

B, K = 8, 10
IMAGE = (28, 28, 1)
MESH = Mesh(np.array(jax.devices()[:1]), (train.DATA_AXIS,))


def config(**fields) -> Config:
    base = Config("t", "mlp", {"hidden": [16, 8]}, epochs=1, batch_size=B)
    return sweep.complete(dataclasses.replace(base, **fields))


def state_of(cfg: Config, seed: int = 0) -> train.TrainState:
    member = sweep.Member(dataclasses.replace(cfg, seed=seed), {})
    return train.member(progress.initial_state(train_spec(cfg), MESH, [member], IMAGE), 0)


def batch(seed: int = 0):
    x = jax.random.uniform(jax.random.key(seed), (B, *IMAGE))
    y = jax.nn.one_hot(jax.random.randint(jax.random.key(seed + 1), (B,), 0, K), K)
    return x, y


def test_fgsm_at_epsilon_zero_takes_the_standard_step_synthetic():
    plain, attacked = config(), config(train_step_name="fgsm", train_step={"epsilon": 0.0})
    state, key = state_of(attacked), jax.random.key(3)
    want, _ = train.step_of(train_spec(plain))(state, batch(), key)
    got, _ = train.step_of(train_spec(attacked))(state, batch(), key)
    for a, b in zip(jax.tree.leaves(want.params), jax.tree.leaves(got.params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_dp_sgd_clips_each_example_so_a_planted_outlier_cannot_dominate_synthetic():
    cfg = config(
        train_step_name="dp_sgd",
        train_step={"clip_norm": 0.5, "noise_multiplier": 1e-9},
        optimizer_name="sgd",
        lr=1.0,  # the update is the gradient itself, read back to float32's precision
        metrics=["grad_norm"],
    )
    spec, state = train_spec(cfg), state_of(cfg)
    x, y = batch()
    x = x.at[0].multiply(1e4)  # one example whose gradient would outweigh the others
    stepped, values = train.step_of(spec)(state, (x, y), jax.random.key(0))
    model, loss = spec.model(state.hparams), spec.loss(state.hparams)

    def example_grad(x_i, y_i):
        objective = lambda p: loss(model.apply({"params": p}, x_i[None]), y_i[None], p)  # noqa: E731
        g = jax.grad(objective)(state.params)
        return jax.tree.map(lambda leaf: leaf * jnp.minimum(1.0, 0.5 / optax.tree.norm(g)), g)

    clipped = [example_grad(x[i], y[i]) for i in range(B)]
    want = jax.tree.map(lambda *g: sum(g) / B, *clipped)
    got = jax.tree.map(lambda new, old: (old - new) / cfg.lr, stepped.params, state.params)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-3, atol=1e-5)
    assert float(values["grad_norm"]) <= 0.5 + 1e-4  # a mean of clipped gradients
    unclipped = jax.grad(lambda p: loss(model.apply({"params": p}, x), y, p))(state.params)
    assert float(optax.tree.norm(unclipped)) > 50 * 0.5  # what the outlier does unclipped


def test_dp_sgd_reports_the_privacy_spent_by_the_accountant_mock_data(tmp_path):
    out = tmp_path / "out.json"
    argv = ["train_step=dp_sgd", "--steps", "6", "--batch-size", "20", "--quiet",
            "--json", str(out), "--csv", str(tmp_path / "out.csv"),
            "--logdir", str(tmp_path / "logs")]  # fmt: skip
    with tfds.testing.mock_data(num_examples=120):
        cli.main(five_layer_relu.CONFIG, argv)
    (run,) = json.loads(out.read_text())["runs"]
    assert run["dp_epsilon"] == dp_sgd.privacy(1.1, 20, 120, 6, 1e-5) > 0
    assert run["dp_delta"] == 1e-5
    assert "dp_epsilon" in (tmp_path / "out.csv").read_text().splitlines()[0]
    experiment = hparams_logs.read_experiment(str(tmp_path / "logs" / hparams_logs.EXPERIMENT_FILE))
    assert ("test", "dp_epsilon") in [(m.name.group, m.name.tag) for m in experiment.metric_infos]
    test_events = scalars(tmp_path / "logs" / "five_layer_relu" / "lr_0.001-seed_0" / "test")
    assert test_events["dp_epsilon"] == [(1, np.float32(run["dp_epsilon"]))]


def test_a_swept_step_setting_is_data_one_group_one_compilation_mock_data(tmp_path):
    argv = ["train_step=fgsm", "train_step.epsilon=0.05,0.1", "--steps", "3", "--quiet",
            "--batch-size", "20", "--no-logs"]  # fmt: skip
    before = train.train_epoch._cache_size()
    with tfds.testing.mock_data(num_examples=120):
        result = cli.main(five_layer_relu.CONFIG, argv)
    assert train.train_epoch._cache_size() == before + 1
    assert [r.hparams for r in result.runs] == [
        {"train_step.epsilon": 0.05},
        {"train_step.epsilon": 0.1},
    ]
    assert {r.run_dir for r in result.runs} == {None}


def test_shift_moves_each_image_by_its_own_draw_synthetic():
    x, _ = batch()
    a = augment.shift(jax.random.key(0), x, pixels=2)
    b = augment.shift(jax.random.key(1), x, pixels=2)
    assert a.shape == x.shape and not np.array_equal(a, b)
    assert np.array_equal(augment.shift(jax.random.key(0), x, pixels=0), x)
    moved = [not np.array_equal(a[i], x[i]) for i in range(B)]
    assert sum(moved) >= B // 2  # offsets of (0, 0) leave some as they are


@metrics.register("input_sum", where=(metrics.BATCH,), optional=True)
def input_sum(o: metrics.Observed) -> jax.Array:
    return o.x_BxHxWxC.sum()


def test_augmentation_differs_per_step_and_per_seed_and_never_at_evaluation_synthetic():
    cfg = config(augment_name="shift", augment={"pixels": 2}, metrics=["input_sum"])
    spec = train_spec(cfg)
    x, y = batch()
    data = (jnp.broadcast_to(x[:1], (3 * B, *IMAGE)), y[:1].repeat(3 * B, 0))  # one image
    group = [sweep.Member(dataclasses.replace(cfg, seed=s), {}) for s in (0, 1)]
    state_M = progress.initial_state(spec, MESH, group, IMAGE)
    _, batch_metrics, _ = train.train_epoch(spec, MESH, state_M, data, jax.random.key(0), 3)
    sums_MxS = np.asarray(batch_metrics["input_sum"])
    assert len(set(sums_MxS[0])) == 3  # a fresh draw every step
    assert not np.array_equal(sums_MxS[0], sums_MxS[1])  # and for every seed
    plain = train_spec(dataclasses.replace(cfg, augment_name="none", augment={}))
    state_M = progress.initial_state(spec, MESH, group, IMAGE)
    shifted = train.evaluate(spec, MESH, state_M.params, state_M.hparams, data)[0]
    unshifted = train.evaluate(plain, MESH, state_M.params, state_M.hparams, data)[0]
    for k in shifted:
        np.testing.assert_array_equal(shifted[k], unshifted[k])


def test_dead_units_reads_the_sown_activations_synthetic():
    cfg = config(metrics=["dead_units"])
    spec, state = train_spec(cfg), state_of(cfg)
    dead = state.replace(
        params={**state.params, "dense_1": {**state.params["dense_1"],
                                            "bias": jnp.full((16,), -1e6)}}
    )  # fmt: skip
    _, values = train.step_of(spec)(dead, batch(), jax.random.key(0))
    assert float(values["dead_units/hidden_1"]) == 1.0
    _, values = train.step_of(spec)(state, batch(), jax.random.key(0))
    assert float(values["dead_units/hidden_1"]) < 1.0


OWN_STEP = """
import jax
from experiments.five_layer_relu import CONFIG
from mnist_jax import cli, metrics
from mnist_jax.steps import TRAIN_STEPS, apply_gradients, keep_finite, observe


@TRAIN_STEPS.register("sign_sgd")
def sign_sgd(spec, state, batch, key, *, scale: float = 1.0):
    x, y = batch
    model, loss_fn = spec.model(state.hparams), spec.loss(state.hparams)

    def objective(params):
        logits = model.apply({"params": params}, x, train=True, rngs={"dropout": key})
        return loss_fn(logits, y, params), logits

    (loss, logits), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
    grads = jax.tree.map(lambda g: scale * jax.numpy.sign(g), grads)
    stepped, rate = apply_gradients(spec, state, grads)
    observed = metrics.Observed(logits, y, loss, state.params, grads, rate, x)
    return keep_finite(state, stepped, loss), observe(spec, observed)


if __name__ == "__main__":
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=200):
        cli.main(CONFIG)
"""


@pytest.mark.slow  # four processes
def test_a_step_of_ones_own_trains_resumes_and_is_evaluated_in_fresh_processes_mock_data(
    tmp_path,
):
    (tmp_path / "own_step.py").write_text(OWN_STEP)
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    ckpt = tmp_path / "ckpt"
    common = ["--batch-size", "20", "--logdir", str(tmp_path / "logs"), "--quiet",
              "--checkpoint-dir", str(ckpt),
              "train_step=sign_sgd", "train_step.scale=0.5"]  # fmt: skip

    def command(*flags):
        return subprocess.run(
            [sys.executable, "-m", "own_step", *common, *flags],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
        )  # fmt: skip

    first = command("--epochs", "1")
    assert first.returncode == 0, first.stderr
    assert json.loads((ckpt / "run.json").read_text())["modules"] == ["own_step"]
    resumed = command("--epochs", "2", "--resume", "--json", str(tmp_path / "resumed.json"))
    assert resumed.returncode == 0, resumed.stderr
    (run,) = json.loads((tmp_path / "resumed.json").read_text())["runs"]
    assert len(run["epochs"]) == 2 and run["config"]["train_step_name"] == "sign_sgd"
    other = subprocess.run(
        [sys.executable, "-m", "own_step", *common[:-2], "--epochs", "3", "--resume"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert other.returncode == 2
    assert "train_step is sign_sgd in the checkpoint but standard now" in other.stderr
    evaluate = (
        "import sys, tensorflow_datasets as tfds\n"
        "from mnist_jax import evaluate, results\n"
        "with tfds.testing.mock_data(num_examples=200):\n"
        "    results.write_json(sys.argv[2], evaluate.main([sys.argv[1]]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", evaluate, str(ckpt), str(tmp_path / "eval.json")],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (evaluated,) = json.loads((tmp_path / "eval.json").read_text())["runs"]
    assert evaluated["test_accuracy"] == run["test_accuracy"]
