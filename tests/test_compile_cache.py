"""Tests of mnist_jax.compile_cache: where the cache lives, opting out, and a real hit."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import pytest

from mnist_jax import compile_cache

REPO = Path(__file__).resolve().parents[1]

# A fresh process: enable the cache, compile one tiny program, report JAX's cache events.
PROBE = """
import json, jax, jax.numpy as jnp
from mnist_jax import compile_cache
events = []
jax.monitoring.register_event_listener(lambda event, **_: events.append(event))
used = compile_cache.enable()
jax.jit(lambda x_N: jnp.tanh(x_N) * 3.0 + 1.0)(jnp.ones((7,))).block_until_ready()
print(json.dumps({
    "dir": used,
    "hits": events.count("/jax/compilation_cache/cache_hits"),
    "writes": events.count("/jax/compilation_cache/cache_misses"),
}))
"""


@pytest.fixture
def jax_cache_config():
    """The cache options as they were, restored after the test."""
    names = (
        "jax_compilation_cache_dir",
        "jax_persistent_cache_min_compile_time_secs",
        "jax_persistent_cache_min_entry_size_bytes",
    )
    before = {name: getattr(jax.config, name) for name in names}
    yield before
    for name, value in before.items():
        jax.config.update(name, value)


def _probe(cache_env: str) -> dict:
    env = {**os.environ, compile_cache.ENV_VAR: cache_env, "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_cache_dir_precedence(tmp_path):
    home = str(Path("~").expanduser())
    assert compile_cache.cache_dir({}) == Path(home, ".cache", "mnist_jax", "jax")
    assert compile_cache.cache_dir({"XDG_CACHE_HOME": "/xdg"}) == Path("/xdg/mnist_jax/jax")
    chosen = {"XDG_CACHE_HOME": "/xdg", compile_cache.ENV_VAR: str(tmp_path)}
    assert compile_cache.cache_dir(chosen) == tmp_path
    assert compile_cache.cache_dir({compile_cache.ENV_VAR: "~/cc"}) == Path(home, "cc")


@pytest.mark.parametrize("value", ["off", "OFF", " off "])
def test_opt_out(monkeypatch, capsys, jax_cache_config, value):
    monkeypatch.setenv(compile_cache.ENV_VAR, value)
    assert compile_cache.cache_dir() is None
    assert compile_cache.enable() is None
    assert jax.config.jax_compilation_cache_dir == jax_cache_config["jax_compilation_cache_dir"]
    assert capsys.readouterr().err == ""


def test_unwritable_dir_is_a_note_not_a_failure(tmp_path, monkeypatch, capsys, jax_cache_config):
    (tmp_path / "file").write_text("a regular file cannot hold a folder")
    wanted = tmp_path / "file" / "cache"  # cannot be created, even as root
    monkeypatch.setenv(compile_cache.ENV_VAR, str(wanted))
    assert compile_cache.enable() is None
    err = capsys.readouterr().err
    assert err.startswith(f"note: JAX compilation cache off: {wanted} is not writable (")
    assert err.count("\n") == 1
    assert jax.config.jax_compilation_cache_dir == jax_cache_config["jax_compilation_cache_dir"]


def test_second_process_loads_from_cache(tmp_path):
    cache = tmp_path / "nested" / "cache"  # created by enable()
    first = _probe(str(cache))
    assert first["dir"] == str(cache)
    assert first["hits"] == 0 and first["writes"] >= 1
    entries = sorted(p.name for p in cache.iterdir() if p.name.endswith("-cache"))
    assert len(entries) == first["writes"]

    second = _probe(str(cache))
    assert second["hits"] == first["writes"] and second["writes"] == 0
    assert sorted(p.name for p in cache.iterdir() if p.name.endswith("-cache")) == entries


def test_opted_out_process_writes_nothing(tmp_path):
    probe = _probe("off")
    assert probe == {"dir": None, "hits": 0, "writes": 0}
