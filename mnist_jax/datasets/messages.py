"""What the data layer tells a user to do: the commands that prepare a dataset, and the
messages naming the dataset, its files and the ways to provide them."""

from pathlib import Path

from mnist_jax import commands
from mnist_jax.datasets.catalog import TfdsSpec

NETWORK_TIMEOUT_S = 5.0  # The no-network answer must come fast (tfds retries for minutes).


def prepare_command(spec: TfdsSpec, source: str = "SOURCE_DIR", data_dir=None, force=False) -> str:
    """`python -m mnist_jax.data prepare SOURCE [--dataset NAME] [--data-dir D] [--force]`."""
    args = ["prepare", str(source)]
    args += [] if spec.name == "mnist" else ["--dataset", spec.name]
    args += [] if data_dir is None else ["--data-dir", str(data_dir)]
    return commands.python_module("mnist_jax.data", *args, *(["--force"] if force else []))


def damaged(spec: TfdsSpec, files: list[Path], data_dir, err: Exception) -> str:
    """One line: which file, what the reader said, and the command that rebuilds the dataset."""
    detail = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
    command = prepare_command(spec, data_dir=data_dir, force=True)
    return (
        f"{', '.join(map(str, files))}: damaged, truncated or unreadable ({detail}). Rebuild"
        f" {spec.name} from its published files: {command}"
    )


def source_files(spec: TfdsSpec) -> str:
    """The files to provide, as a phrase."""
    published = spec.published
    if published.archive:
        return f"{published.archive} (the archive of all {spec.title.split()[0]} variants)"
    also = ", gzip-compressed or uncompressed without .gz" if published.content_sha256 else ""
    return f"the four {spec.title} files{also}: {', '.join(published.source_names())}"


def not_found(
    spec: TfdsSpec, data_dir, network_error: str | None, missing: bool, named: bool
) -> str:
    """The three ways to provide the dataset; `missing`: the data dir named does not exist."""
    manual_dir = Path(data_dir) / "downloads" / "manual"
    network = (
        "answers now"
        if network_error is None
        else f"not reachable within {NETWORK_TIMEOUT_S:g} s: {network_error}"
    )
    connect = f"Create {data_dir} and connect" if missing else "Connect"
    problem = (
        "the folder does not exist (a mistyped path?), and nothing was created"
        if missing
        else "it could not be fetched"
    )
    command = prepare_command(spec, data_dir=data_dir if named else None)
    return (
        f"dataset {spec.name} is not in {data_dir}: {problem}. Any one of these works:\n"
        f"  1. Use a data dir that holds the prepared tfds dataset {spec.name}/{spec.version}"
        f" (array_record): --data-dir DIR, or TFDS_DATA_DIR=DIR.\n"
        f"  2. Put {source_files(spec)} in {manual_dir}/; or import them from any folder"
        f" with: {command}\n"
        f"  3. {connect} to the network: tfds downloads them from {spec.published.url}"
        f" ({network})."
    )


def holds_the_files(spec: TfdsSpec, data_dir: str) -> str:
    """A data dir that holds the published files themselves, not a prepared dataset."""
    return (
        f"--data-dir {data_dir} holds {spec.name}'s published files, not a prepared tfds data"
        f" dir: import them once with: {prepare_command(spec, source=data_dir)} (into"
        " $TFDS_DATA_DIR or ~/tensorflow_datasets; then leave out --data-dir)"
    )


def inside_a_data_dir(spec: TfdsSpec, data_dir: str, root: Path) -> str:
    """A data dir inside the tfds data dir `root` that holds the dataset."""
    return (
        f"--data-dir {data_dir} is inside the tfds data dir that holds {spec.name}: use"
        f" --data-dir {root} (or TFDS_DATA_DIR={root})"
    )
