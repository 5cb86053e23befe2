"""The convolution's implementations agree, and `auto` takes the choice recorded for the host.

No speed is asserted: which implementation is fastest is what `auto` measures on each host.
"""

import dataclasses
import functools
import json
import os
import signal
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds

from experiments import gorner_cnn
from mnist_jax import cli, conv, conv_timing, devices, experiment, interrupt, models
from mnist_jax.results import ConvChoice

# (H, W, C, F, size, stride): the lab's three layers, and odd sizes and strides.
SHAPES = [
    (28, 28, 1, 6, 6, 1),
    (28, 28, 6, 12, 5, 2),
    (14, 14, 12, 24, 4, 2),
    (7, 9, 3, 5, 3, 2),
    (8, 8, 2, 3, 4, 3),
    (10, 10, 2, 3, 2, 4),  # a stride past the kernel: some rows get no gradient
]
SMALL_LAYER = conv.Layer((2, 6, 6, 1), (3, 3, 1, 2), 2, "float32", train=True)


@pytest.fixture
def choices_file(tmp_path, monkeypatch):
    """An empty compilation-cache folder (where choices are recorded) and no choice in memory."""
    monkeypatch.setenv("MNIST_JAX_COMPILE_CACHE", str(tmp_path))
    monkeypatch.setattr(conv, "_chosen", {})
    return tmp_path / conv.CHOICES_FILE


def test_implementations_agree_on_outputs_and_both_gradients():
    for height, width, channels, features, size, stride in SHAPES:
        keys = jax.random.split(jax.random.key(0), 3)
        x = jax.random.normal(keys[0], (2, height, width, channels))
        kernel = jax.random.normal(keys[1], (size, size, channels, features))
        g = jax.random.normal(keys[2], conv.xla(x, kernel, stride).shape)

        @functools.partial(jax.jit, static_argnames="impl")
        def outputs(x, kernel, g, impl=None, stride=stride):
            y, vjp = jax.vjp(lambda x, k: impl(x, k, stride), x, kernel)
            return (y, *vjp(g))

        expected = outputs(x, kernel, g, impl=conv.xla)
        for name in set(conv.IMPLEMENTATIONS) - {"xla"}:
            got = outputs(x, kernel, g, impl=conv.IMPLEMENTATIONS[name])
            for a, b in zip(got, expected, strict=True):
                np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4, err_msg=f"{name} {stride}")


def test_toeplitz_blocks_divide_the_row_nearest_the_kernel_size():
    assert conv.block_width(28, 6) == 7  # the lab's first layer: 4 blocks
    assert conv.block_width(14, 5) == 7  # 7 is nearer than 2: 2 columns off against 3
    assert conv.block_width(7, 4) == 7  # a tie between 1 and 7: the larger
    assert conv.block_width(12, 3) == 3
    assert conv.block_width(5, 9) == 5


@pytest.mark.slow  # each layer's agreement is the fast test: .ci/run runs it
def test_forced_implementations_give_the_same_network_from_the_same_params():
    x = jax.random.uniform(jax.random.key(1), (4, 28, 28, 1))
    small = {"channels": [2, 3, 4], "dense": 8}
    params = models.build("gorner_cnn", small).init(jax.random.key(0), x)["params"]

    def logits_and_grads(impl):
        model = models.build("gorner_cnn", {**small, "conv": impl})

        @jax.jit
        def run(params):
            loss = lambda p: jnp.sum(model.apply({"params": p}, x) ** 2)  # noqa: E731
            return model.apply({"params": params}, x), jax.grad(loss)(params)

        return run(params)

    expected = logits_and_grads("xla")
    for impl in set(conv.IMPLEMENTATIONS) - {"xla"}:
        for got, want in zip(
            jax.tree.leaves(logits_and_grads(impl)), jax.tree.leaves(expected), strict=True
        ):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=impl)


SMALL_CNN = {"channels": [2, 3, 4], "dense": 8}


def small_cnn_layers(members: int = 1) -> dict[str, conv.Layer]:
    """The training layers of `SMALL_CNN` at batch 5, in a program of `members` members."""
    return {
        name: conv.Layer(shape, kernel, stride, "float32", True, name != "conv_1", members)
        for name, shape, kernel, stride in (
            ("conv_1", (5, 28, 28, 1), (6, 6, 1, 2), 1),
            ("conv_2", (5, 28, 28, 2), (5, 5, 2, 3), 2),
            ("conv_3", (5, 14, 14, 3), (4, 4, 3, 4), 2),
        )
    }


def write_records(choices_file, impls: dict[conv.Layer, str]) -> None:
    """`conv_choices.json` recording `impls`, each made among today's candidates."""
    records = {
        conv.record_key(layer): {"impl": impl, "ms": {c: 1.0 for c in conv.candidates(layer)}}
        for layer, impl in impls.items()
    }
    choices_file.write_text(json.dumps(records))


def test_auto_takes_the_recorded_choice_and_compiles_it(choices_file):
    model = models.build("gorner_cnn", SMALL_CNN)
    layers = small_cnn_layers()
    recorded = {"conv_1": "patches", "conv_2": "xla_canonical", "conv_3": "patches"}
    write_records(choices_file, {layers[name]: impl for name, impl in recorded.items()})
    chosen = models.conv_choices(model, (5, 28, 28, 1), train=True)
    assert {name: (c.impl, c.source) for name, c in chosen.items()} == {
        name: (impl, "recorded") for name, impl in recorded.items()
    }
    x = jnp.zeros((5, 28, 28, 1))
    params = model.init(jax.random.key(0), x)["params"]
    rngs = {"dropout": jax.random.key(1)}
    apply = lambda p: model.apply({"params": p}, x, train=True, rngs=rngs)  # noqa: E731
    jaxpr = str(jax.make_jaxpr(apply)(params))
    assert jaxpr.count("conv_general_dilated") == 1  # conv_2 only; the others are products


def test_auto_measures_once_records_and_reads_it_back(choices_file):
    first = conv.choice_for(SMALL_LAYER, conv.AUTO)
    assert first.source == "measured"
    assert set(first.ms) == set(conv.IMPLEMENTATIONS) and first.impl == min(
        first.ms, key=first.ms.get
    )
    assert conv.choice_for(SMALL_LAYER, conv.AUTO) is first  # remembered in this process
    record = json.loads(choices_file.read_text())
    assert record == {conv.record_key(SMALL_LAYER): {"impl": first.impl, "ms": first.ms}}
    conv._chosen.clear()  # as a later process finds it
    again = conv.choice_for(SMALL_LAYER, conv.AUTO)
    assert (again.impl, again.source, again.ms) == (first.impl, "recorded", first.ms)


def test_a_sweep_chooses_for_its_members_mapped_over_not_for_one(choices_file):
    # The mapped layer is measured as the sweep runs it and recorded apart from the lone one.
    mapped_layer = dataclasses.replace(SMALL_LAYER, members=2)
    swept = conv.choice_for(mapped_layer, conv.AUTO)
    assert swept.source == "measured" and swept.layer.endswith(" 2 members")
    assert list(json.loads(choices_file.read_text())) == [conv.record_key(mapped_layer)]
    # Inside train's vmap over 3 members the model asks for its layers mapped over 3: with
    # those recorded as `patches` and the lone ones as `xla`, the program has no convolution.
    model = models.build("gorner_cnn", SMALL_CNN)
    mapped = dict.fromkeys(small_cnn_layers(members=3).values(), "patches")
    write_records(choices_file, mapped | dict.fromkeys(small_cnn_layers().values(), "xla"))
    conv._chosen.clear()
    chosen = models.conv_choices(model, (5, 28, 28, 1), train=True, members=3)
    assert {(c.impl, c.source) for c in chosen.values()} == {("patches", "recorded")}
    x = jnp.zeros((5, 28, 28, 1))
    with conv.shapes_only():
        params = model.init(jax.random.key(0), x)["params"]
    params_M = jax.tree.map(lambda a: jnp.stack([a] * 3), params)

    def loss(params):
        logits = model.apply({"params": params}, x, train=True, rngs={"dropout": jax.random.key(1)})
        return jnp.sum(logits)

    jaxpr = str(jax.make_jaxpr(jax.vmap(jax.grad(loss), axis_name=devices.MEMBERS_AXIS))(params_M))
    assert "conv_general_dilated" not in jaxpr
    assert devices.members_mapped() == 1  # outside any vmap


def test_a_choice_recorded_before_a_candidate_was_added_is_measured_again(choices_file):
    older = [c for c in conv.candidates(SMALL_LAYER) if c != "toeplitz"]
    key = conv.record_key(SMALL_LAYER)
    choices_file.write_text(json.dumps({key: {"impl": "patches", "ms": {c: 1.0 for c in older}}}))
    again = conv.choice_for(SMALL_LAYER, conv.AUTO)
    assert again.source == "measured" and set(again.ms) == set(conv.candidates(SMALL_LAYER))
    assert set(json.loads(choices_file.read_text())[key]["ms"]) == set(again.ms)
    conv._chosen.clear()
    choices_file.write_text(json.dumps({key: {"impl": "patches", "ms": 5}}))  # edited by hand
    assert conv.choice_for(SMALL_LAYER, conv.AUTO).source == "measured"


def test_auto_is_xla_off_a_cpu_and_forced_is_as_asked(choices_file, monkeypatch):
    assert conv.choice_for(SMALL_LAYER, "patches") == conv.Choice(
        SMALL_LAYER.key(), "patches", "forced"
    )
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert conv.choice_for(SMALL_LAYER, conv.AUTO).impl == "xla"
    assert not choices_file.exists()


def test_an_unknown_implementation_is_one_line_with_status_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(gorner_cnn.CONFIG, ["model.conv=fast", "--steps", "1"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "conv takes one of auto, xla, xla_canonical, patches, toeplitz, got 'fast'" in err


def test_the_choices_are_printed_before_training_and_in_the_json_mock_data(tmp_path, capsys):
    flags = ["model.channels=[2,3,4]", "model.dense=8", "model.conv=patches", "--steps", "2"]
    json_path = tmp_path / "out.json"
    with tfds.testing.mock_data(num_examples=200):
        cli.main(gorner_cnn.CONFIG, [*flags, "--no-logs", "--json", str(json_path)])
    out = capsys.readouterr().out
    assert "conv_1 (train): patches (forced)" in out
    assert "conv_3 (evaluate): patches (forced)" in out
    records = json.loads(json_path.read_text())["conv"]
    assert len(records) == 6  # three layers, trained and evaluated
    assert records[1] == {
        "group": 0, "layer": "conv_2", "mode": "train", "impl": "patches", "source": "forced",
        "ms": {}, "members": 1,
    }  # fmt: skip


def test_a_sweeps_choice_says_its_times_are_of_all_its_members():
    timed = {"toeplitz": 1.0, "patches": 2.5}
    swept = ConvChoice(0, "conv_1", "train", "toeplitz", "measured", timed, members=4)
    assert (
        swept.describe()
        == "toeplitz (measured; ms per step of 4 members: toeplitz 1.00, patches 2.50)"
    )
    alone = dataclasses.replace(swept, members=1)
    assert alone.describe() == "toeplitz (measured; ms per step: toeplitz 1.00, patches 2.50)"


def test_a_searchs_final_evaluation_takes_its_sweeps_convolutions_measuring_none_mock_data(
    choices_file, monkeypatch, tmp_path
):
    # The chosen member's lone test program would otherwise measure its own layers at the end
    # (seconds to minutes, which a stop signal waits for). Measurements are faked: `patches`.
    measured, choosing = [], []

    def measure(layer):
        measured.append((layer.key(), bool(choosing)))
        return conv.Choice(
            layer.key(), "patches", "measured", dict.fromkeys(conv.candidates(layer), 1.0)
        )

    def choose(*args):
        choosing.append(True)
        return real_choose(*args)

    real_choose = experiment.choose
    monkeypatch.setattr(conv, "_measure", measure)
    monkeypatch.setattr(experiment, "choose", choose)
    flags = ["model.channels=[2,3,4]", "model.dense=8", "--steps", "2", "--batch-size", "20"]
    flags += ["val_split=40", "lr=loguniform(1e-4,1e-2)", "--samples", "2", "--quiet"]
    json_path = tmp_path / "out.json"
    with tfds.testing.mock_data(num_examples=200):
        cli.main(gorner_cnn.CONFIG, [*flags, "--no-logs", "--json", str(json_path)])
    assert choosing and measured
    assert not [key for key, during in measured if during]
    assert all(key.endswith(" 2 members") for key, _ in measured)
    assert json.loads(json_path.read_text())["search"]["test_accuracy"] is not None


def test_shapes_only_holds_when_entered_again_inside_it(choices_file):
    # train.init_state enters it inside checks.check_builds': leaving the inner one must not
    # end the outer, or the step traced after it measures lone layers no program runs.
    with conv.shapes_only():
        with conv.shapes_only():
            pass
        assert conv.choose(SMALL_LAYER, conv.AUTO) == "xla"
    assert not choices_file.exists() and not conv.chosen()


def test_a_stop_signal_during_a_measurement_waits_for_one_call_not_all_faked_calls(monkeypatch):
    # Each compiled call faked as 0.5 s: the whole measurement (3 candidates, a warm call and
    # 3 rounds each) would take 6 s; a SIGTERM at 0.6 s waits only for the call in flight.
    monkeypatch.setattr(conv_timing, "_timed_program", lambda *_: lambda x, k: time.sleep(0.5) or x)
    layer = dataclasses.replace(SMALL_LAYER, train=False)
    stop = interrupt.StopOnSignal()
    with stop, stop.at_once("set-up"), pytest.raises(interrupt.Interrupted):
        threading.Timer(0.6, os.kill, (os.getpid(), signal.SIGTERM)).start()
        start = time.perf_counter()
        conv_timing.in_thread(layer, {n: conv.IMPLEMENTATIONS[n] for n in conv.candidates(layer)})
    assert time.perf_counter() - start < 2.5
