"""The safetensors reader against files written by hand (format edge cases and bad input)."""
import json
import math
import struct

import numpy as np
import pytest

from conftest import write_safetensors
from strata import CheckpointError, read_checkpoint, read_raw


def sample(tmp_path):
    tensors = {
        "conv.weight": np.arange(2 * 3 * 3 * 3, dtype=np.float32).reshape(2, 3, 3, 3) / 7,
        "bn.num_batches_tracked": np.array(41, dtype=np.int64),
        "empty": np.zeros((0, 4), dtype=np.float32),
        "mask": np.array([True, False, True]),
        "pixels": np.arange(6, dtype=np.uint8).reshape(2, 3),
        "half": np.array([1.5, -2.25], dtype=np.float16),
        "optimizer.conv.weight.m": np.ones((2, 3, 3, 3), dtype=np.float32),
        "optimizer.conv.weight.v": np.full((2, 3, 3, 3), 2, dtype=np.float32),
    }
    metadata = {"model": json.dumps({"family": "cnn", "cnn": {"filters": [2]}}),
                "strata": json.dumps({"epoch": 3, "normalizationMean": [0.5, 0.5, 0.5], "bestValidation": "nan"}),
                "note": "plain text", "brace": "{not json"}
    return write_safetensors(str(tmp_path / "c.safetensors"), tensors, metadata), tensors


def test_reads_every_tensor_with_its_dtype_shape_and_values(tmp_path):
    path, tensors = sample(tmp_path)
    ckpt = read_checkpoint(path)
    assert list(ckpt.tensors) == list(tensors)  # file order kept
    for name, expected in tensors.items():
        got = ckpt.tensors[name]
        assert got.dtype == expected.dtype and got.shape == expected.shape, name
        np.testing.assert_array_equal(got, expected)
    assert ckpt.tensors["bn.num_batches_tracked"].shape == ()
    assert int(ckpt.tensors["bn.num_batches_tracked"]) == 41
    ckpt.tensors["conv.weight"][0, 0, 0, 0] = 5  # writable by default
    mapped = read_checkpoint(path, mmap=True)
    np.testing.assert_array_equal(mapped.tensors["half"], tensors["half"])
    assert not mapped.tensors["conv.weight"].flags.writeable


def test_metadata_json_is_parsed_and_strata_fields_exposed(tmp_path):
    ckpt = read_checkpoint(sample(tmp_path)[0])
    assert ckpt.metadata["note"] == "plain text"
    assert ckpt.info["brace"] == "{not json"  # not JSON: kept as the string
    assert ckpt.model == {"family": "cnn", "cnn": {"filters": [2]}}
    assert ckpt.epoch == 3
    assert math.isnan(ckpt.strata["bestValidation"])  # Strata writes non-finite numbers as strings
    assert set(ckpt.state_dict()) == {"conv.weight", "bn.num_batches_tracked", "empty", "mask", "pixels", "half"}
    optimizer = ckpt.optimizer_state()
    assert list(optimizer) == ["conv.weight"] and sorted(optimizer["conv.weight"]) == ["m", "v"]
    assert ckpt.config is None
    assert "epoch 3" in repr(ckpt)


def test_raw_reader_gives_the_same_bytes(tmp_path):
    path, tensors = sample(tmp_path)
    metadata, raw = read_raw(path)
    assert metadata["note"] == "plain text"
    dtype, shape, data = raw["conv.weight"]
    assert dtype == "F32" and shape == (2, 3, 3, 3)
    assert bytes(data) == tensors["conv.weight"].tobytes()
    assert raw["empty"][2].nbytes == 0


def test_bf16_reads_as_float32(tmp_path):
    values = np.array([1.0, -0.5, 3.140625], dtype=np.float32)
    upper = (values.view(np.uint32) >> 16).astype("<u2")
    path = str(tmp_path / "b.safetensors")
    header = json.dumps({"x": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 6]}}).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header + upper.tobytes())
    got = read_checkpoint(path).tensors["x"]
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, values)


def corrupt(tmp_path, raw):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(raw)
    return str(path)


def header_file(tmp_path, header, data=b""):
    text = json.dumps(header).encode()
    return corrupt(tmp_path, struct.pack("<Q", len(text)) + text + data)


@pytest.mark.parametrize("make, words", [
    (lambda t: corrupt(t, b"\x01\x02"), "too short"),
    (lambda t: corrupt(t, struct.pack("<Q", 1 << 40) + b"{}"), "runs past the end"),
    (lambda t: corrupt(t, struct.pack("<Q", 4) + b"{{{{"), "not valid JSON"),
    (lambda t: corrupt(t, struct.pack("<Q", 2) + b"[]"), "expected a JSON object"),
    (lambda t: header_file(t, {"x": {"dtype": "Q9", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4), "'Q9'"),
    (lambda t: header_file(t, {"x": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4), "shape"),
    (lambda t: header_file(t, {"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4), "outside"),
    (lambda t: header_file(t, {"x": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8), "needs 12"),
    (lambda t: header_file(t, {"x": {"dtype": "F32", "shape": [1]}}, b"\0" * 4), "data_offsets"),
    (lambda t: header_file(t, {"__metadata__": {"a": 1}}), "__metadata__"),
])
def test_bad_files_get_one_error_naming_the_file(tmp_path, make, words):
    path = make(tmp_path)
    for reader in (read_checkpoint, read_raw):
        with pytest.raises(CheckpointError) as e:
            reader(path)
        assert str(e.value).startswith(path) and words in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="cannot read"):
        read_checkpoint(tmp_path / "nope.safetensors")
