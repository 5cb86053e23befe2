"""The numpy-framed event records: the very bytes protobuf and tensorboardX's framing would
write, read back by TensorBoard's own reader with every tag, step and value."""

import struct

import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator
from tensorboardX.proto.event_pb2 import Event
from tensorboardX.proto.summary_pb2 import Summary

from mnist_jax import events
from mnist_jax.writer import RunWriter


def protobuf_records(wall_time: float, first_step: int, columns: dict[str, np.ndarray]) -> bytes:
    """One protobuf `Event` per step, framed with the standard's CRC-32C check value."""
    out = []
    for i, values in enumerate(zip(*columns.values(), strict=True)):
        summary = Summary(
            value=[
                Summary.Value(tag=t, simple_value=float(v))
                for t, v in zip(columns, values, strict=True)
            ]
        )
        data = Event(wall_time=wall_time, step=first_step + i, summary=summary).SerializeToString()
        out.append(events.frame(data))
    return b"".join(out)


def test_crc32c_matches_the_standard_check_value():
    assert events.crc32c(b"123456789") == 0xE3069283  # RFC 3720's CRC-32C check value
    assert events.crc32c(b"") == 0


def test_masked_checksums_are_tensorboards():
    """TensorBoard's reader checks both checksums of every record against its own."""
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    for data in (b"", b"\x00" * 9, bytes(range(256)) * 3, b"123456789"):
        assert events.masked(events.crc32c(data)) == masked_crc32c(data)


@pytest.mark.parametrize("length", [255, 256, 257, 6_000, 100_003])
def test_long_buffers_checksummed_in_rows_give_the_standards_crc(length):
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import crc32c

    data = np.random.default_rng(length).integers(0, 256, length, dtype=np.uint8).tobytes()
    assert events.crc32c(data) == crc32c(data)


def test_a_record_frames_length_and_masked_checksums():
    record = events.frame(b"abc")
    (length,) = struct.unpack("<Q", record[:8])
    header_crc, data_crc = struct.unpack("<I", record[8:12]), struct.unpack("<I", record[-4:])
    assert length == 3 and record[12:15] == b"abc"
    assert header_crc == (events.masked(events.crc32c(record[:8])),)
    assert data_crc == (events.masked(events.crc32c(b"abc")),)
    masked_N = events.masked(np.array([events.crc32c(b"abc")], np.uint32))
    assert masked_N.tolist() == [events.masked(events.crc32c(b"abc"))]


@pytest.mark.parametrize(
    ("first_step", "n"),
    [(0, 3), (1, 600), (120, 20), (16_000, 900), (2**21 - 2, 5), (2**35, 2)],
)
def test_scalar_events_are_the_bytes_protobuf_writes(first_step, n):
    """Steps across varint widths (1 to 6 bytes, and step 0, which protobuf leaves out), NaN,
    infinities, float64 values rounded to float32, a long tag."""
    rng = np.random.default_rng(first_step)
    columns = {
        "batch_loss": rng.random(n) * 3,
        "batch_accuracy": rng.random(n).astype(np.float32),
        "t" * 200: np.where(rng.random(n) < 0.5, np.nan, -np.inf),
    }
    wall_time = 1_796_600_000.123
    written = events.scalar_events(wall_time, first_step, columns)
    assert written == protobuf_records(wall_time, first_step, columns)


def test_no_columns_is_no_events():
    assert events.scalar_events(1.0, 1, {}) == b""


def test_negative_steps_are_refused():
    with pytest.raises(ValueError, match="non-negative"):
        events.scalar_events(1.0, -1, {"a": np.zeros(2)})


def test_every_batch_reads_back_with_tensorboards_reader(tmp_path):
    """Three epochs of 600 batches through `RunWriter`: every tag, step and value as written."""
    rng = np.random.default_rng(0)
    run = RunWriter(str(tmp_path), {})
    written = {f"batch_{k}": [] for k in ("loss", "accuracy", "binary_accuracy", "rate")}
    for epoch in range(3):
        batches = {k: rng.random(600).astype(np.float32) for k in ("loss", "accuracy")}
        batches |= {"binary_accuracy": rng.random(600), "rate": np.full(600, 0.1 / (epoch + 1))}
        run.write_batches(600 * epoch + 1, batches)
        for k, v in batches.items():
            written[f"batch_{k}"] += [
                (600 * epoch + 1 + i, float(np.float32(x))) for i, x in enumerate(v)
            ]
        run.flush()
    run.close()
    reader = event_accumulator.EventAccumulator(
        str(tmp_path / "train"), size_guidance={event_accumulator.SCALARS: 0}
    )
    reader.Reload()
    assert sorted(reader.Tags()["scalars"]) == sorted(written)
    for tag, points in written.items():
        assert [(e.step, e.value) for e in reader.Scalars(tag)] == points
