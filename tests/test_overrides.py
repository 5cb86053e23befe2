"""`KEY=VALUE` overrides parse to exact JSON values, and every bad one is refused in one line
that says what to change."""

import numpy as np
import pytest

from mnist_jax import overrides
from mnist_jax.overrides import Override, OverrideError, check_key, coerce, nearest, parse

KEYS = ["batch_size", "lr", "model.dropout_rate", "model.hidden", "optimizer", "seed"]


def refusal(arg: str) -> str:
    """The message `parse(arg)` refuses with, checked to be one line."""
    with pytest.raises(OverrideError) as info:
        parse(arg)
    message = str(info.value)
    assert "\n" not in message
    return message


def coerce_refusal(key: str, value, default) -> str:
    with pytest.raises(OverrideError) as info:
        coerce(key, value, default)
    return str(info.value)


@pytest.mark.parametrize(
    "arg, key, values",
    [
        ("batch_size=64", "batch_size", (64,)),
        ("seed=-3", "seed", (-3,)),
        ("lr=1e-3", "lr", (0.001,)),
        ("model.dropout_rate=0.25", "model.dropout_rate", (0.25,)),
        ("model.dropout_rate=.5", "model.dropout_rate", (0.5,)),
        ("model.dropout_rate=1.", "model.dropout_rate", (1.0,)),
        ("raw_pixels=true", "raw_pixels", (True,)),
        ("raw_pixels=False", "raw_pixels", (False,)),
        ("epochs=null", "epochs", (None,)),
        ("epochs=none", "epochs", (None,)),
        ("optimizer=adamw", "optimizer", ("adamw",)),
        ("dtype=bfloat16", "dtype", ("bfloat16",)),
        ("model.activation=leaky-relu", "model.activation", ("leaky-relu",)),
        ("model.hidden=[512,512]", "model.hidden", ([512, 512],)),
        ("model.hidden=[ 64 , 128 ]", "model.hidden", ([64, 128],)),
        ("mix=[1,0.5,true,null,relu]", "mix", ([1, 0.5, True, None, "relu"],)),
        ("optimizer.weight_decay=1e-4", "optimizer.weight_decay", (1e-4,)),
    ],
)
def test_single_values(arg, key, values):
    override = parse(arg)
    assert override == Override(key, values)
    assert [type(v) for v in override.values] == [type(v) for v in values]


@pytest.mark.parametrize(
    "arg, values",
    [
        ("model.dropout_rate=0,0.1,0.25", (0, 0.1, 0.25)),
        ("model.hidden=[64],[128]", ([64], [128])),
        ("model.hidden=[64,64],[128,128],[256]", ([64, 64], [128, 128], [256])),
        ("optimizer=adam,adamw", ("adam", "adamw")),
        ("raw_pixels=true,false", (True, False)),
    ],
)
def test_sweeps(arg, values):
    assert parse(arg).values == values


def test_int_and_float_keep_their_types():
    assert [type(v) for v in parse("x=0,0.1").values] == [int, float]


def test_range_is_numpys_geomspace_as_python_floats():
    values = parse("lr=1e-4:1e-2:5").values
    assert values == tuple(np.geomspace(1e-4, 1e-2, 5).tolist())
    assert values[0] == 1e-4 and values[2] == pytest.approx(1e-3) and len(values) == 5
    assert all(type(v) is float for v in values)


def test_range_of_one_is_its_start():
    assert parse("lr=3e-4:1e-2:1").values == (3e-4,)


def test_range_joins_a_sweep():
    assert parse("lr=1e-4:1e-2:3,0.5").values == (*np.geomspace(1e-4, 1e-2, 3).tolist(), 0.5)


@pytest.mark.parametrize("arg", ["lr", "=3", " =3", ""])
def test_missing_equals_or_key_names_the_form(arg):
    assert "KEY=VALUE" in refusal(arg)


@pytest.mark.parametrize("arg", ["--lr=3", "model..hidden=3", "1lr=3", "model.hidden.=3"])
def test_bad_key_is_refused(arg):
    message = refusal(arg)
    assert "is not a setting name" in message and "KEY=VALUE" in message


@pytest.mark.parametrize(
    "arg, words",
    [
        ("lr=", "no value after '='"),
        ("lr=1e-3,,3e-3", "an empty value between commas"),
        ("lr=1e-3,", "an empty value between commas"),
        ("model.hidden=[]", "an empty list [] is not supported"),
        ("model.hidden=[64,]", "an empty element in [64,]"),
        ("model.hidden=[[64]]", "lists do not nest"),
        ("model.hidden=[64", "a '[' without its ']'"),
        ("model.hidden=64]", "a ']' without its '['"),
        ("lr=inf", "'inf' is not a finite number"),
        ("lr=-Infinity", "'-Infinity' is not a finite number"),
        ("lr=nan", "'nan' is not a finite number"),
        ("lr=1e999", "'1e999' overflows a float"),
        ("name=a b", "'a b' is not a value"),
        ("name=a*b", "'a*b' is not a value"),  # a path is one (`init_from=/tmp/x`)
        ("model.hidden=[64,1:2:3]", "'1:2:3' is not a value"),
        ("model.hidden=a[64]", "'a[64]' is not a value"),
    ],
)
def test_bad_values_are_refused(arg, words):
    message = refusal(arg)
    assert words in message and repr(arg) in message


@pytest.mark.parametrize(
    "arg, words",
    [
        ("lr=1e-4:1e-2", "a range has 3 parts, start:stop:count, e.g. 1e-4:1e-2:5, not 2"),
        ("lr=1e-4:1e-2:5:1", "not 4"),
        ("lr=0:1e-2:5", "the range's start '0' is not a positive finite number"),
        ("lr=-1:1e-2:5", "the range's start '-1' is not a positive finite number"),
        ("lr=1e-4:inf:5", "the range's stop 'inf' is not a positive finite number"),
        ("lr=1e-4:abc:5", "the range's stop 'abc' is not a positive finite number"),
        ("lr=1e-4:1e-2:0", "the range's count '0' is not a whole number of at least 1"),
        ("lr=1e-4:1e-2:2.5", "the range's count '2.5' is not a whole number of at least 1"),
        ("lr=1e-4:1e-2:", "the range's count '' is not a whole number of at least 1"),
    ],
)
def test_bad_ranges_name_what_is_wrong(arg, words):
    assert words in refusal(arg)


@pytest.mark.parametrize(
    "arg, shown",
    [
        ("lr=1e-3,1e-3", "0.001"),
        ("lr=0.001,1e-3", "0.001"),
        ("x=1,1.0", "1.0"),
        ("optimizer=adam,sgd,adam", "'adam'"),
        ("model.hidden=[64],[64]", "[64]"),
        ("lr=1e-3:1e-3:2", "0.001"),
    ],
)
def test_repeated_sweep_values_are_refused(arg, shown):
    assert f"{shown} appears twice; give each value once" in refusal(arg)


def test_true_and_one_are_different_values():
    assert parse("x=1,true").values == (1, True)


def test_parse_all_keeps_order():
    assert overrides.parse_all(["lr=1e-3", "model.hidden=[64],[128]"]) == [
        Override("lr", (0.001,)),
        Override("model.hidden", ([64], [128])),
    ]


def test_parse_all_refuses_a_key_twice():
    with pytest.raises(OverrideError) as info:
        overrides.parse_all(["lr=1e-3", "seed=0", "lr=3e-3"])
    assert str(info.value) == "'lr' is set 2 times; give it once (a sweep is one override: lr=A,B)"


def test_nearest():
    assert nearest("model.hiden", KEYS) == "model.hidden"
    assert nearest("batchsize", KEYS) == "batch_size"
    assert nearest("hidden", KEYS) == "model.hidden"
    assert nearest("zzz", KEYS) is None


def test_check_key_accepts_a_valid_key():
    assert check_key("model.hidden", KEYS) is None


def test_check_key_names_the_nearest():
    with pytest.raises(OverrideError) as info:
        check_key("model.hiden", KEYS)
    assert str(info.value) == "unknown key 'model.hiden'; did you mean 'model.hidden'?"


def test_check_key_lists_valid_keys_when_none_is_near():
    with pytest.raises(OverrideError) as info:
        check_key("zzz", iter(KEYS))
    assert str(info.value) == (
        "unknown key 'zzz'; valid keys: batch_size, lr, model.dropout_rate, model.hidden, "
        "optimizer, seed"
    )


def test_check_key_lists_only_a_few_of_many():
    with pytest.raises(OverrideError) as info:
        check_key("zzz", [f"key{i:02}" for i in range(20)])
    assert str(info.value).endswith("key06, key07 and 12 more")


@pytest.mark.parametrize(
    "value, default, expected",
    [
        (1, 0.5, 1.0),
        (0.25, 0.5, 0.25),
        (64, 100, 64),
        (True, False, True),
        ("relu", "gelu", "relu"),
        ([64, 128], (512,), [64, 128]),
        ([64, 128], [512], [64, 128]),
        ([1, 0.5], (0.1,), [1.0, 0.5]),
        (["a", 1], (), ["a", 1]),
        ([1, 2], None, [1, 2]),
        ("x", None, "x"),
        (0.5, None, 0.5),
        (None, None, None),
    ],
)
def test_coerce(value, default, expected):
    result = coerce("k", value, default)
    assert result == expected and type(result) is type(expected)
    if isinstance(expected, list):
        assert [type(v) for v in result] == [type(v) for v in expected]


@pytest.mark.parametrize(
    "key, value, default, message",
    [
        ("model.dropout_rate", "abc", 0.1, "model.dropout_rate takes a number, got 'abc'"),
        ("model.dropout_rate", True, 0.1, "model.dropout_rate takes a number, got true"),
        ("model.dropout_rate", [1], 0.1, "model.dropout_rate takes a number, got [1]"),
        ("batch_size", 0.5, 100, "batch_size takes a whole number, got 0.5"),
        ("batch_size", 64.0, 100, "batch_size takes a whole number, got 64.0"),
        ("batch_size", False, 100, "batch_size takes a whole number, got false"),
        ("raw_pixels", 1, False, "raw_pixels takes true or false, got 1"),
        ("raw_pixels", "yes", False, "raw_pixels takes true or false, got 'yes'"),
        ("optimizer", 3, "adam", "optimizer takes a name, got 3"),
        ("optimizer", None, "adam", "optimizer takes a name, got null"),
        ("model.hidden", [64, 0.5], (128,), "model.hidden[1] takes a whole number, got 0.5"),
    ],
)
def test_coerce_refusals(key, value, default, message):
    assert coerce_refusal(key, value, default) == message


def test_coerce_shows_the_bracketed_form_for_a_list_setting():
    assert coerce_refusal("model.hidden", 64, (128,)) == (
        "model.hidden takes a bracketed list: model.hidden=[64] "
        "(several lists sweep: model.hidden=[64],[128])"
    )


def test_coerce_shows_the_default_when_the_value_cannot_be_an_element():
    assert coerce_refusal("model.hidden", "abc", (512, 512)) == (
        "model.hidden takes a bracketed list: model.hidden=[512,512] "
        "(several lists sweep: model.hidden=[512,512],[512,512,512,512])"
    )


def test_coerce_refuses_a_setting_it_cannot_type():
    assert "cannot be set" in coerce_refusal("model", "mlp", {"hidden": 3})
