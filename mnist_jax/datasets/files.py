"""A dataset's published files: found in a folder, checked against their SHA-256s, read as
arrays. Needs no tensorflow_datasets."""

import gzip
import hashlib
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from mnist_jax.datasets.catalog import Published
from mnist_jax.datasets.errors import DataFileError, DataNotFoundError


def find(published: Published, folder: Path, required: bool, name: str) -> dict[str, Path]:
    """{published file name: path} of the files in `folder`; with checksums of the content
    (MNIST), a .gz file may also be there uncompressed. With `required`, a missing file is an
    error naming it and dataset `name`."""
    found = {}
    for file in published.source_names():
        candidates = [folder / file]
        if published.content_sha256:
            candidates.append(folder / file.removesuffix(".gz"))
        path = next((p for p in candidates if p.is_file()), None)
        if path is not None:
            found[file] = path
    missing = [file for file in published.source_names() if file not in found]
    if required and missing:
        also = " (each may also be uncompressed, without .gz)" if published.content_sha256 else ""
        raise DataNotFoundError(f"{folder}: missing {name}'s {', '.join(missing)}{also}")
    return found


def read_splits(
    published: Published, paths: dict[str, Path], checksums: dict[str, str], image_hw: tuple
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{split: (images uint8 (N, H, W), labels uint8 (N,))} from the checked files `paths`.

    `checksums`: SHA-256 by file name, of the files as published (`find`'s keys), or with
    `published.content_sha256`, of the uncompressed content by uncompressed name.
    """
    if published.archive:
        members = _archive_reader(paths[published.archive], checksums[published.archive])
    splits = {}
    for split, names in published.split_files.items():
        if published.archive:
            images, labels = (members(name) for name in names)
        else:
            images, labels = (_read_idx_file(n, paths[n], published, checksums) for n in names)
        images_path, labels_path = (paths.get(n, n) for n in names)
        if images.shape[1:] != image_hw or labels.shape != images.shape[:1]:
            raise DataFileError(
                f"{images_path}, {labels_path}: shapes {images.shape} and {labels.shape},"
                f" expected (N, {', '.join(map(str, image_hw))}) and (N,)"
            )
        splits[split] = images, labels
    return splits


def _read_idx_file(
    file: str, path: Path, published: Published, checksums: dict[str, str]
) -> np.ndarray:
    """The array in the published IDX file `file`, at `path` gzip-compressed or not, its
    checksum checked."""
    try:
        raw = path.read_bytes()
        content = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except (OSError, EOFError, zlib.error) as err:
        raise DataFileError(f"{path}: cannot be read or decompressed ({err}); truncated?") from err
    if published.content_sha256:
        _check_sha256(path, content, checksums[file.removesuffix(".gz")], "uncompressed ")
    else:
        _check_sha256(path, raw, checksums[file], "")
    return parse_idx(content, path)


def _check_sha256(path: Path, data: bytes, expected: str, what: str) -> None:
    if (digest := hashlib.sha256(data).hexdigest()) != expected:
        raise DataFileError(
            f"{path}: SHA-256 of the {what}{len(data)} bytes is {digest}, expected {expected}:"
            " a wrong or truncated file. Get a fresh copy."
        )


def _archive_reader(path: Path, sha256: str):
    """A function reading one gzip-compressed IDX member of the zip at `path`, whose checksum
    is checked first (tfds registers the archive's, not its members')."""
    try:
        with open(path, "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
    except OSError as err:
        raise DataFileError(f"{path}: cannot be read ({err})") from err
    if digest != sha256:
        raise DataFileError(
            f"{path}: SHA-256 is {digest}, expected {sha256}: a wrong or truncated file. Get a"
            " fresh copy."
        )

    def member(name: str) -> np.ndarray:
        where = f"{path}:{name}"
        try:
            with zipfile.ZipFile(path) as archive:
                content = gzip.decompress(archive.read(name))
        except KeyError as err:
            raise DataFileError(f"{path}: has no {name}") from err
        except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as err:
            raise DataFileError(f"{where}: cannot be read or decompressed ({err})") from err
        return parse_idx(content, where)

    return member


def parse_idx(data: bytes, where) -> np.ndarray:
    """The uint8 array of an IDX file's bytes; `where` names it in errors."""
    ndim = data[3] if len(data) >= 4 else 0
    header = 4 + 4 * ndim
    if data[:3] != b"\x00\x00\x08" or len(data) < header:  # 0x08: unsigned bytes.
        raise DataFileError(f"{where}: not an IDX file of unsigned bytes")
    shape = struct.unpack_from(f">{ndim}I", data, 4)
    if len(data) != header + int(np.prod(shape)):
        raise DataFileError(f"{where}: {len(data) - header} data bytes, header says shape {shape}")
    return np.frombuffer(data, np.uint8, offset=header).reshape(shape)
