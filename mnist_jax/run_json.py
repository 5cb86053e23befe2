"""The shape of a checkpoint dir's `run.json`, checked before resuming or evaluating reads it:
valid JSON of another shape (a hand edit, another program's file) is refused in one line, not
met as a traceback deep in a resume."""

import json

from mnist_jax.config import Config

FIELDS = {"name": str, "members": list, "groups": list, "max_members": int, "modules": list}
JSON_NAMES = {str: "string", list: "array", int: "integer"}


def problem(record) -> str | None:
    """What makes `record` no run's record (valid JSON of another shape), or None: the fields
    that resuming and `evaluate` read, each of its type, and every member's config."""
    if not isinstance(record, dict):
        return f"it holds {shown(record)}, not a JSON object"
    for key, kind in FIELDS.items():
        if not isinstance(record.get(key), kind):
            return f"its {key!r} is {shown(record.get(key))}, not a JSON {JSON_NAMES[kind]}"
    if not record["members"]:
        return "it lists no members"
    if not isinstance(record.get("data_dir") or "", str):
        return f"its 'data_dir' is {shown(record['data_dir'])}, not a JSON string"
    for m, member in enumerate(record["members"]):
        if not (isinstance(member, dict) and isinstance(member.get("hparams"), dict)):
            return f"member {m + 1} is {shown(member)}, not a config and its hparams"
        try:
            Config.from_json(member.get("config"))
        except (AttributeError, TypeError, ValueError) as error:
            return f"member {m + 1}'s config cannot be read ({type(error).__name__}: {error})"
    return None


def shown(value, limit: int = 60) -> str:
    """`value` as JSON, cut to `limit` characters: a message line, not the file."""
    text = json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
