"""The shared command line refuses every bad flag, combination and path before any work starts:
one line on stderr, exit status 2, nothing created."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import tensorflow_datasets as tfds

from experiments import MNIST_EXPERIMENTS, find_experiments, five_layer_relu, softmax
from mnist_jax import cli, data, experiment, flags
from mnist_jax.datasets import loading
from mnist_jax.results import Result

ROOT = Path(__file__).resolve().parents[1]
RELU, SOFTMAX = five_layer_relu.CONFIG, softmax.CONFIG


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def one_line_error(config, argv, capsys) -> str:
    """The message `cli.main` exits with, after checking it is one line with status 2."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main(config, argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert err.startswith(f"python -m experiments.{config.name}: error: "), err
    return err


@pytest.fixture
def no_run(monkeypatch):
    """`experiment.run` replaced by a recorder: the checks alone are under test, nothing trains."""
    calls = []

    def record(config, plan, options):
        calls.append((config, plan.members, plan.swept, options))
        return Result(config, [], None, plan.swept)

    monkeypatch.setattr(experiment, "run", record)
    return calls


@pytest.fixture
def paths(tmp_path, monkeypatch):
    """Placeholders in the cases: {tmp} this test's folder (also the working directory), {file} a
    regular file in it, {dir} an existing folder."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("not a folder")
    (tmp_path / "a_dir").mkdir()
    places = {"{tmp}": tmp_path, "{file}": tmp_path / "a_file", "{dir}": tmp_path / "a_dir"}

    def fill(text: str) -> str:
        for placeholder, path in places.items():
            text = text.replace(placeholder, str(path))
        return text

    return fill


WHOLE_NUMBER_FLAGS = [
    pytest.param(
        RELU,
        [flag, value],
        [f"argument {flag}", "expected a whole number of at least 1", f"got {value!r}"],
        id=f"{flag[2:]}-{value}",
    )
    for flag in ("--devices", "--max-members")
    for value in ("0", "-2", "two", "1.5")
]
# A short form's value is the key's: refused in the key's words.
WHOLE_NUMBER_KEYS = [
    pytest.param(RELU, [flag, value], [words], id=f"{flag[2:]}-{value}")
    for flag, key in (("--epochs", "epochs"), ("--steps", "steps"), ("--batch-size", "batch_size"))
    for value, words in (
        ("0", f"{key} takes a whole number of at least 1, got 0"),
        ("-2", f"{key} takes a whole number of at least 1, got -2"),
        ("two", f"{key} takes a whole number, got 'two'"),
        ("1.5", f"{key} takes a whole number, got 1.5"),
    )
]

RANGE = "start:stop:count, e.g. 1e-4:1e-2:5"
CASES = [
    # Learning rates: --lr V is lr=V, the same grammar and the same refusals.
    pytest.param(RELU, ["--lr", "0"], ["lr takes a positive number, got 0.0"], id="lr-0"),
    pytest.param(RELU, ["--lr=-1e-3"], ["lr takes a positive number, got -0.001"], id="lr-neg"),
    pytest.param(RELU, ["--lr", "-0.5"], ["positive number, got -0.5"], id="lr-negative-2"),
    pytest.param(RELU, ["--lr", "nan"], ["--lr nan: 'nan' is not a finite number"], id="lr-nan"),
    pytest.param(RELU, ["--lr", "inf"], ["--lr inf: 'inf' is not a finite number"], id="lr-inf"),
    pytest.param(RELU, ["--lr", "abc"], ["lr takes a number, got 'abc'"], id="lr-abc"),
    pytest.param(RELU, ["--lr", "1e-3,-1"], ["positive number, got -1.0"], id="lr-list-negative"),
    pytest.param(RELU, ["--lr", "1e-3,x"], ["lr takes a number, got 'x'"], id="lr-list-word"),
    pytest.param(
        RELU,
        ["--lr", "1e-3,,2e-3"],
        ["--lr 1e-3,,2e-3: an empty value between commas; write KEY=VALUE"],
        id="lr-list-gap",
    ),
    pytest.param(RELU, ["--lr", "1e-3,"], ["--lr 1e-3,: an empty value"], id="lr-list-trailing"),
    pytest.param(
        RELU,
        ["--lr", "1e-4:1e-2"],
        [f"--lr 1e-4:1e-2: a range has 3 parts, {RANGE}, not 2"],
        id="lr-range-2-parts",
    ),
    pytest.param(RELU, ["--lr", "1e-4:1e-2:5:1"], ["3 parts", "not 4"], id="lr-range-4-parts"),
    pytest.param(
        RELU,
        ["--lr", "1e-4:1e-2:x"],
        [f"the range's count 'x' is not a whole number of at least 1; {RANGE}"],
        id="lr-range-count-word",
    ),
    pytest.param(RELU, ["--lr", "1e-4:1e-2:0"], ["count '0'"], id="lr-range-count-0"),
    pytest.param(RELU, ["--lr", "1e-4:1e-2:2.5"], ["count '2.5'"], id="lr-range-count-2.5"),
    pytest.param(RELU, ["--lr", "1e-4:1e-2:"], ["count ''"], id="lr-range-no-count"),
    pytest.param(
        RELU,
        ["--lr", "0:1e-2:5"],
        ["--lr 0:1e-2:5: the range's start '0' is not a positive finite number"],
        id="lr-range-start-0",
    ),
    pytest.param(RELU, ["--lr=-1e-4:1e-2:5"], ["start '-1e-4'"], id="lr-range-start-negative"),
    pytest.param(RELU, ["--lr", "1e-4:inf:5"], ["stop 'inf'"], id="lr-range-stop-inf"),
    pytest.param(RELU, ["--lr", "1e-4:nan:5"], ["stop 'nan'"], id="lr-range-stop-nan"),
    pytest.param(RELU, ["--lr", ":1e-2:5"], ["start ''"], id="lr-range-no-start"),
    pytest.param(RELU, ["--lr"], ["argument --lr: expected one argument"], id="lr-no-value"),
    # Whole numbers.
    *WHOLE_NUMBER_FLAGS,
    *WHOLE_NUMBER_KEYS,
    pytest.param(
        RELU,
        ["--seed", "-1"],
        ["seed takes a whole number from 0 to 2147483647, got -1"],
        id="seed-negative",
    ),
    pytest.param(RELU, ["--seed", "x"], ["seed takes a whole number, got 'x'"], id="seed-word"),
    pytest.param(RELU, ["--seed", "2147483648"], ["from 0 to 2147483647"], id="seed-beyond-int32"),
    pytest.param(RELU, ["seed=2147483648"], ["from 0 to 2147483647"], id="seed-key-beyond-int32"),
    pytest.param(RELU, ["--seed", "0,-1"], ["from 0 to 2147483647, got -1"], id="seeds-negative"),
    pytest.param(RELU, ["--seed", "0,,1"], ["--seed 0,,1: an empty value"], id="seeds-gap"),
    pytest.param(RELU, ["--seed", "0,1,"], ["--seed 0,1,: an empty value"], id="seeds-trailing"),
    pytest.param(RELU, ["--seed", "0,0"], ["--seed 0,0: 0 appears twice"], id="seeds-twice"),
    pytest.param(
        RELU, ["--process-id", "-1"], ["argument --process-id", "at least 0"], id="process-id"
    ),
    # Choices and unknown flags.
    pytest.param(
        RELU,
        ["--activation", "swish"],
        ["model.activation takes one of relu, sigmoid, tanh, gelu, elu, silu, got 'swish'"],
        id="activation-unknown",
    ),
    pytest.param(
        SOFTMAX,
        ["--activation", "tanh"],
        ["model.activation: model softmax has no such setting; mlp has it"],
        id="activation-without-hidden-layers",
    ),
    pytest.param(
        RELU, ["--loss", "mse"], ["unknown loss 'mse'; registered: binary, categorical"], id="loss"
    ),
    # A flag that does not exist: the nearest one, or the key it meant; no abbreviations.
    *[
        pytest.param(
            RELU,
            [*flag, "3"],
            [f"unknown flag {flag[0].partition('=')[0]}; {words}"],
            id=flag[0][2:],
        )
        for flag, words in [
            (["--epohcs"], "did you mean --epochs?"),
            (["--epoch"], "did you mean --epochs?"),  # not taken as an abbreviation
            (["--learning-rate"], "did you mean --lr?"),
            (["--seeds"], "did you mean --seed?"),
            (["--batch_size"], "did you mean --batch-size?"),
            (["--quie"], "did you mean --quiet?"),
            (["--optimizer"], "settings are KEY=VALUE, without dashes: optimizer=..."),
            (["--dropout-rate"], "settings are KEY=VALUE, without dashes: model.dropout_rate=..."),
            (["--b1"], "settings are KEY=VALUE, without dashes: optimizer.b1=..."),
            (["--model.hidden=[3]"], "settings are KEY=VALUE, without dashes: model.hidden=..."),
            (["--frobnicate"], "see --help for the flags, and any setting is KEY=VALUE"),
        ]
    ],
    # KEY=VALUE overrides.
    pytest.param(
        RELU,
        ["model.hiden=[1]"],
        ["unknown key 'model.hiden'; did you mean 'model.hidden'?"],
        id="key-typo",
    ),
    pytest.param(
        RELU,
        ["model.hidden=64,128"],
        ["model.hidden takes a bracketed list", "model.hidden=[64,128]"],
        id="list-without-brackets",
    ),
    pytest.param(
        RELU,
        ["optimizer=adam", "optimizer.weight_decay=1e-3"],
        ["optimizer.weight_decay: optimizer adam has no such setting; adamw has it"],
        id="setting-the-optimizer-lacks",
    ),
    pytest.param(
        RELU,
        ["model.activation=swish"],
        ["model.activation takes one of", "'swish'"],
        id="key-activation-unknown",
    ),
    pytest.param(RELU, ["lr=1e-3", "lr=1e-2"], ["'lr' is set 2 times"], id="key-twice"),
    pytest.param(RELU, ["hidden"], ["'hidden' is not an override"], id="not-key-value"),
    pytest.param(RELU, ["model.hidden=[]"], ["an empty list"], id="empty-list"),
    pytest.param(
        RELU, ["epochs=1", "--steps", "3"], ["give epochs= or --steps, not both"], id="e+steps"
    ),
    pytest.param(RELU, ["model.hidden=[0]"], ["hidden takes widths of at least 1"], id="width-0"),
    pytest.param(
        SOFTMAX,
        ["optimizer=sgd", "optimizer.momentum=abc"],
        ["optimizer.momentum takes a number, got 'abc'"],
        id="momentum-word",
    ),
    # A flag and the key it stands for.
    pytest.param(RELU, ["--lr", "1e-3", "lr=1e-3"], ["give --lr or lr=, not both"], id="lr+key"),
    pytest.param(RELU, ["seed=2", "--seed", "0,1"], ["give --seed or seed="], id="seed+key"),
    pytest.param(
        RELU,
        ["--activation", "gelu", "model.activation=relu"],
        ["give --activation or model.activation=, not both"],
        id="activation+key",
    ),
    pytest.param(
        RELU,
        ["--batch-size", "20", "batch_size=10"],
        ["give --batch-size or batch_size="],
        id="batch-size+key",
    ),
    # Flags that conflict.
    pytest.param(
        RELU, ["--epochs", "1", "--steps", "2"], ["give --epochs or --steps, not both"], id="e+s"
    ),
    pytest.param(
        RELU, ["--resume"], ["--resume needs --checkpoint-dir"], id="resume-without-checkpoints"
    ),
    pytest.param(
        RELU,
        ["--resume", "--overwrite", "--checkpoint-dir", "{tmp}/checkpoints"],
        ["give --resume or --overwrite, not both"],
        id="resume+overwrite",
    ),
    pytest.param(
        RELU,
        ["--checkpoint-every", "5"],
        ["--checkpoint-every needs --checkpoint-dir"],
        id="checkpoint-every-without-checkpoints",
    ),
    pytest.param(
        RELU,
        ["--checkpoint-every", "-1", "--checkpoint-dir", "{tmp}/checkpoints"],
        ["--checkpoint-every: expected a number of seconds, 0 or more, got '-1'"],
        id="checkpoint-every-negative",
    ),
    # Folders that cannot be written.
    pytest.param(
        RELU, ["--logdir", "{file}"], ["--logdir {file}: {file} is not a directory"], id="logdir"
    ),
    pytest.param(
        RELU,
        ["--logdir", "{file}/logs"],
        ["--logdir {file}/logs: {file} is not a directory"],
        id="logdir-under-file",
    ),
    pytest.param(
        RELU,
        ["--json", "{file}/out/results.json"],
        ["--json {file}/out/results.json: {file} is not a directory"],
        id="json-under-file",
    ),
    pytest.param(
        RELU,
        ["--json", "{dir}"],
        ["--json {dir}: is a directory, expected a file name"],
        id="json-is-dir",
    ),
    pytest.param(
        RELU,
        ["--checkpoint-dir", "{file}"],
        ["--checkpoint-dir {file}: {file} is not a directory"],
        id="checkpoint-dir",
    ),
    pytest.param(
        RELU,
        ["--checkpoint-dir", "{file}/checkpoints"],
        ["--checkpoint-dir {file}/checkpoints: {file} is not a directory"],
        id="checkpoint-dir-under-file",
    ),
    pytest.param(
        SOFTMAX,
        ["--data-dir", "{file}/tfds"],
        ["--data-dir {file}/tfds: holds no prepared mnist to read and {file} is not a directory"],
        id="data-dir-under-file",
    ),
    pytest.param(
        SOFTMAX,
        ["--data-dir", "{file}"],
        ["--data-dir {file}: holds no prepared mnist", "{file} is not a directory"],
        id="data-dir",
    ),
]


@pytest.mark.parametrize(("config", "flags", "words"), CASES)
def test_bad_flag_is_one_line_with_status_2_and_creates_nothing(
    config, flags, words, paths, tmp_path, no_run, capsys
):
    before = listing(tmp_path)
    defaults = {"--logdir": f"{tmp_path}/logs", "--json": f"{tmp_path}/out/results.json"}
    argv = [w for flag, path in defaults.items() if flag not in flags for w in (flag, path)]
    message = one_line_error(config, [*argv, "--quiet", *map(paths, flags)], capsys)
    for words_ in words:
        assert paths(words_) in message
    assert not no_run
    assert listing(tmp_path) == before


@pytest.fixture
def read_only(tmp_path, monkeypatch):
    """A folder that `os.access` calls unwritable: tests run as root, whom chmod does not stop."""
    folder = tmp_path / "read_only"
    folder.mkdir()
    access = os.access

    def no_writes_in_folder(path, mode, **kwargs):
        if mode & os.W_OK and Path(path).resolve().is_relative_to(folder.resolve()):
            return False
        return access(path, mode, **kwargs)

    monkeypatch.setattr(os, "access", no_writes_in_folder)
    return folder


@pytest.mark.parametrize(
    ("flag", "path"),
    [
        ("--logdir", "logs"),
        ("--logdir", "."),
        ("--json", "out/results.json"),
        ("--checkpoint-dir", "checkpoints"),
        ("--data-dir", "."),
        ("--data-dir", "tfds"),
    ],
)
def test_a_folder_that_cannot_be_written_is_refused(
    flag, path, read_only, tmp_path, no_run, capsys
):
    before = listing(tmp_path)
    target = os.path.normpath(read_only / path)
    logs = [] if flag == "--logdir" else ["--logdir", str(tmp_path / "logs")]
    message = one_line_error(RELU, [*logs, flag, target], capsys)
    assert f"{flag} {target}: " in message and f"{read_only} is not writable" in message
    assert listing(tmp_path) == before and not no_run


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_logdir_is_refused_chmod(tmp_path, no_run, capsys):
    folder = tmp_path / "read_only"
    folder.mkdir(mode=0o555)
    try:
        message = one_line_error(RELU, ["--logdir", str(folder / "logs")], capsys)
    finally:
        folder.chmod(0o755)
    assert f"{folder} is not writable" in message
    assert not (folder / "logs").exists()


def test_a_read_only_data_dir_holding_prepared_mnist_is_fine(read_only, tmp_path, no_run):
    info = read_only / "mnist" / "3.0.1" / "dataset_info.json"  # What marks it prepared.
    info.parent.mkdir(parents=True)
    info.write_text('{"name": "mnist", "version": "3.0.1"}')
    assert data.is_prepared(str(read_only))
    cli.main(SOFTMAX, ["--data-dir", str(read_only), "--logdir", str(tmp_path / "logs")])
    ((_, _, _, options),) = no_run
    assert options.data_dir == str(read_only)


def test_good_flags_reach_the_run_and_create_nothing(tmp_path, no_run):
    flags = [
        "--activation", "gelu", "--lr", "1e-4:1e-2:3", "--seed", "0,1", "--epochs", "2",
        "--logdir", f"{tmp_path}/new/logs", "--json", f"{tmp_path}/new/out/results.json",
        "--checkpoint-dir", f"{tmp_path}/new/checkpoints", "--resume",
        "--data-dir", f"{tmp_path}/new/tfds",
    ]  # fmt: skip
    cli.main(RELU, flags)
    ((config, members, swept, options),) = no_run
    assert config == RELU and RELU.model["activation"] == "relu"
    assert {m.config.model["activation"] for m in members} == {"gelu"}
    assert [m.learning_rate for m in members] == pytest.approx([1e-4] * 2 + [1e-3] * 2 + [1e-2] * 2)
    assert [m.seed for m in members] == [0, 1] * 3
    assert {m.config.epochs for m in members} == {2} and options.resume
    assert swept == ["lr", "seed"]
    assert listing(tmp_path) == []


def test_overrides_and_flags_make_the_same_members(no_run):
    cli.main(RELU, ["--lr", "1e-3,1e-2", "--seed", "0,1", "--epochs", "3", "--batch-size", "50"])
    cli.main(RELU, ["lr=1e-3,1e-2", "seed=0,1", "epochs=3", "batch_size=50"])
    (_, flags, swept_flags, _), (_, keys, swept_keys, _) = no_run
    assert flags == keys and swept_flags == swept_keys == ["lr", "seed"]


def test_overrides_before_between_and_after_flags_are_all_taken(no_run):
    cli.main(RELU, ["lr=1e-3,1e-2", "--epochs", "3", "seed=0,1", "--overwrite", "batch_size=50"])
    cli.main(RELU, ["--epochs", "3", "--overwrite", "lr=1e-3,1e-2", "seed=0,1", "batch_size=50"])
    (_, between, swept, options), (_, after, _, _) = no_run
    assert between == after and len(between) == 4 and swept == ["lr", "seed"]
    assert {m.config.batch_size for m in between} == {50} and options.overwrite


SHORT_FORM_VALUES = {
    "lr": "1e-4,1e-2",
    "seed": "3,4",
    "epochs": "2",
    "steps": "5",
    "batch_size": "50",
    "loss": "binary",
    "raw_pixels": "true",
    "dtype": "bfloat16",
    "model.activation": "gelu,tanh",
    "init_from": "runs/mnist_ckpt",
}


SETTING_FORMS = [form for form in flags.SHORT_FORMS if not form.key.startswith("search")]


@pytest.mark.parametrize("form", SETTING_FORMS, ids=lambda form: form.flag)
def test_a_short_form_makes_the_same_members_as_its_key(form, no_run):
    value = SHORT_FORM_VALUES[form.key]
    cli.main(RELU, [form.flag] if form.switch else [form.flag, value])
    cli.main(RELU, [f"{form.key}={value}"])
    cli.main(RELU, [])
    (_, by_flag, _, _), (_, by_key, _, _), (_, default, _, _) = no_run
    assert by_flag == by_key != default


def test_keys_reach_the_members_typed(no_run):
    cli.main(
        RELU,
        ["model.hidden=[512,512]", "model.dropout_rate=0.2", "model.dropout_after=[1,2]",
         "optimizer=adamw", "batch_size=128"],
    )  # fmt: skip
    ((_, (member,), swept, _),) = no_run
    assert member.config.model["hidden"] == [512, 512]
    assert member.config.model["dropout_rate"] == 0.2
    assert (member.config.optimizer_name, member.config.batch_size) == ("adamw", 128)
    assert member.config.optimizer["weight_decay"] == 0.0001  # adamw's own default
    assert swept == [] and member.hparams == {}


# --- Through the whole run: data problems and a batch larger than the data ----------------------


def test_an_empty_data_dir_without_network_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(loading, "network_error", lambda url: "offline (test)")
    argv = ["--data-dir", str(tmp_path / "tfds"), "--logdir", str(tmp_path / "logs"), "--quiet"]
    with pytest.raises(SystemExit) as exit_info:
        cli.main(SOFTMAX, argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err  # The data module's message names three ways out, one a line.
    assert err.startswith(
        f"python -m experiments.softmax: error: dataset mnist is not in {tmp_path}/tfds"
    )
    assert "offline (test)" in err and "Traceback" not in err
    assert not (tmp_path / "logs").exists()


def test_corrupted_files_in_the_manual_folder_are_a_clear_error(tmp_path, capsys):
    manual = tmp_path / "tfds" / "downloads" / "manual"
    manual.mkdir(parents=True)
    for name in data.MNIST_SHA256:
        (manual / name).write_bytes(b"\x00\x00\x08\x03 not MNIST")
    argv = ["--data-dir", str(tmp_path / "tfds"), "--logdir", str(tmp_path / "logs"), "--quiet"]
    message = one_line_error(SOFTMAX, argv, capsys)
    assert f"{manual}/train-images-idx3-ubyte: SHA-256" in message
    assert not data.is_prepared(str(tmp_path / "tfds"))
    assert not (tmp_path / "logs").exists()


def test_a_batch_larger_than_the_training_set_is_a_clear_error_mock_data(tmp_path, capsys):
    argv = ["--batch-size", "1000", "--steps", "2", "--logdir", str(tmp_path / "logs"), "--quiet"]
    with tfds.testing.mock_data(num_examples=120):
        message = one_line_error(RELU, argv, capsys)
    assert "batch" in message.lower() and "1000" in message and "120" in message
    assert not (tmp_path / "logs").exists()


# --- python -m experiments NAME ------------------------------------------------------------------


def run_experiments(*args) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "experiments", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120)


@pytest.mark.parametrize(
    ("args", "problem"),
    [(["nope", "--lr", "1"], "unknown experiment 'nope'"), ([], "name an experiment")],
)
def test_experiments_without_a_known_name_is_one_line_with_status_2(args, problem):
    result = run_experiments(*args)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (
        f"python -m experiments: error: {problem}; choose from {', '.join(find_experiments())}\n"
    )


def test_every_module_with_a_config_is_an_experiment():
    names = find_experiments()
    assert set(MNIST_EXPERIMENTS) <= set(names)
    assert {"gorner_cnn", "keras_mnist_mlp"} <= set(names)  # not only the tutorial's six
    assert not {"report", "benchmark", "activations"} & set(names)  # no CONFIG: not experiments


def test_experiments_name_runs_that_experiment():
    result = run_experiments("five_layer_relu", "--help")
    assert result.returncode == 0
    assert "usage: python -m experiments.five_layer_relu" in result.stdout
    assert five_layer_relu.__doc__.splitlines()[0] in result.stdout  # Its docstring, not ours.


def test_experiments_name_passes_on_the_flags_after_it():
    result = run_experiments("softmax", "--lr", "0")
    assert result.returncode == 2
    assert result.stderr.startswith(
        "python -m experiments.softmax: error: lr takes a positive number"
    )
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--steps", "50", "--steps", "60"], "--steps is given 2 times; give it once"),
        (["--json", "a.json", "--json=b.json"], "--json is given 2 times; give it once"),
        (["--logdir", "x", "--no-logs"], "give --logdir or --no-logs, not both"),
    ],
)
def test_a_flag_given_twice_is_refused_as_a_key_given_twice_is(argv, message, capsys):
    config = softmax.CONFIG
    with pytest.raises(SystemExit) as exit_info:
        cli.parse(cli.parser(config), argv)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == f"python -m experiments.softmax: error: {message}\n"


def test_after_a_double_dash_every_word_is_a_setting(capsys):
    args = cli.parse(cli.parser(softmax.CONFIG), ["lr=0.1", "--", "--steps", "5"])
    assert args.steps is None and args.overrides == ["lr=0.1", "--steps", "5"]
