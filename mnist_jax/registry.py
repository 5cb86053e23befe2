"""Named models, optimizers, schedules, losses and metrics: a config is plain data, a checkpoint
rebuilds.

A config names what it uses (`model_name="mlp"`, `optimizer_name="adamw"`) and gives keyword
settings; the registries turn the names back into code. Each entry remembers the module that
registered it, so a process that only has a checkpoint's record (`python -m mnist_jax.evaluate`)
imports an experiment's own models or optimizers before it looks them up.
"""

import dataclasses
import difflib
import importlib
import inspect
import sys
import typing
from collections.abc import Callable
from typing import Any

from mnist_jax.config import ConfigError

# Fields of a Flax module that are not settings a config gives (`num_classes` comes from the
# dataset).
NOT_SETTINGS = ("parent", "name", "dtype", "num_classes")


@dataclasses.dataclass(frozen=True)
class Entry:
    factory: Callable[..., Any]
    module: str  # importable name of the module that registered it
    # What is wrong with a whole set of settings (a width of 0, a rate past 1), or None.
    check: Callable[[dict[str, Any]], str | None] | None = None


class Registry:
    """Names to factories (a Flax module class or a function taking keyword settings)."""

    def __init__(self, kind: str, skip: tuple[str, ...] = (), keyword_only: bool = False):
        self.kind = kind
        self.skip = skip  # parameters that are not settings (an optimizer's learning_rate)
        self.keyword_only = keyword_only  # settings are only the keyword-only ones (a loss's)
        self.entries: dict[str, Entry] = {}

    def register(
        self, name: str, factory: Callable | None = None, check=None, module: str | None = None
    ):
        """`registry.register("mlp", MLP)`, or `@registry.register("mlp")` on a definition.

        `check(settings) -> str | None` says what is wrong with complete settings, in words a
        user can act on; it runs on every member before anything is created. `module` names
        the registering module when a helper registers for it.
        """
        if factory is None:
            return lambda f: self.register(name, f, check, module)
        self.entries[name] = Entry(factory, module or _caller_module(), check)
        return factory

    def __contains__(self, name: str) -> bool:
        return name in self.entries

    def names(self) -> list[str]:
        return sorted(self.entries)

    def get(self, name: str) -> Callable[..., Any]:
        if name not in self.entries:
            near = difflib.get_close_matches(name, self.entries, n=1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            raise ConfigError(
                f"unknown {self.kind} {name!r}; {hint}registered: {', '.join(self.names())}"
            )
        return self.entries[name].factory

    def defaults(self, name: str) -> dict[str, Any]:
        """Every setting of `name` with its default (None where it has no default)."""
        factory = self.get(name)
        if dataclasses.is_dataclass(factory):
            fields = [f for f in dataclasses.fields(factory) if f.name not in NOT_SETTINGS]
            return {f.name: _json(f.default) for f in fields if f.init}
        parameters = inspect.signature(factory).parameters.values()
        return {
            p.name: None if p.default is inspect.Parameter.empty else _json(p.default)
            for p in parameters
            if p.name not in self.skip
            and p.kind is not p.VAR_KEYWORD
            and (p.kind is p.KEYWORD_ONLY or not self.keyword_only)
        }

    def takes_number(self, name: str, setting: str) -> bool:
        """Whether `setting`, whose default is None, is annotated as taking a float (optax's
        `momentum`): such a setting takes a number or null, never a name or a list."""
        factory = self.get(name)
        if dataclasses.is_dataclass(factory):
            fields = {f.name: f.type for f in dataclasses.fields(factory)}
            annotation = fields.get(setting)
        else:
            parameter = inspect.signature(factory).parameters.get(setting)
            annotation = None if parameter is None else parameter.annotation
        return annotation in (float, "float") or float in typing.get_args(annotation)

    def check(self, name: str, settings: dict[str, Any]) -> None:
        """Refuses settings the entry's own check finds wrong, naming the kind and entry."""
        self.get(name)  # an unknown name is refused first
        check = self.entries[name].check
        problem = check(settings) if check else None
        if problem:
            raise ConfigError(f"{self.kind} {name}: {problem}")

    def takes(self, name: str, parameter: str) -> bool:
        """Whether `name`'s factory has the field or keyword `parameter`."""
        factory = self.get(name)
        if dataclasses.is_dataclass(factory):
            return any(f.name == parameter for f in dataclasses.fields(factory))
        return parameter in inspect.signature(factory).parameters

    def module_of(self, name: str) -> str:
        return self.entries[name].module


def _json(value):
    """A default as the config records it: tuples as lists, callables by name."""
    if isinstance(value, tuple):
        return [_json(v) for v in value]
    if callable(value):
        return getattr(value, "__name__", repr(value))
    return value


def _caller_module() -> str:
    """The module that called `register`."""
    frame = sys._getframe(1)
    while frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back
    return importable_name(frame.f_globals)


def importable_name(module_globals: dict[str, Any]) -> str:
    """A module's name as a new process imports it: `python -m NAME` runs a module as
    `__main__`, and its spec gives NAME back."""
    module = module_globals.get("__name__", "__main__")
    if module == "__main__":
        spec = module_globals.get("__spec__")
        module = spec.name if spec is not None else module
    return module


def import_modules(modules: list[str]) -> None:
    """Imports the modules a record names, so what they register can be looked up."""
    for module in modules:
        if module != "__main__" and module not in sys.modules:
            try:
                importlib.import_module(module)
            except ImportError as error:
                raise ConfigError(
                    f"cannot import {module}, which registered part of this run ({error})"
                ) from None
