"""Safetensors checkpoints as numpy arrays, without the `safetensors` package.

The format: 8 bytes little-endian header length N, N bytes of JSON
`{"__metadata__": {str: str}, name: {"dtype": "F32", "shape": [...], "data_offsets": [b, e]}, ...}`,
then the data, offsets relative to its start. Strata writes F32 tensors and I64 ones (BatchNorm's
`num_batches_tracked`, step counters); the other safetensors dtypes are read too. The metadata
values are strings; those Strata writes as JSON (`model`, `config`, `strata`, `grow`, ...) are
also parsed into `Checkpoint.info`.
"""
import json
import os

from ._json import StrataFileError, restore_non_finite

# safetensors dtype -> numpy type string (little-endian); BF16 has none in numpy and is read as
# float32. numpy is imported only by `read_checkpoint`: `read_raw` and the PyTorch twin's
# loader need neither numpy nor pandas (a GPU machine's torch venv may have neither).
DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2",
    "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
    "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?",
}
ITEM_SIZE = {k: int(v[-1]) if v[-1].isdigit() else 1 for k, v in DTYPES.items()}
# A header larger than this is not a checkpoint (safetensors itself caps it at 100 MB).
MAX_HEADER = 100 * 1024 * 1024


class CheckpointError(StrataFileError):
    """A file that is not a readable safetensors checkpoint; the message names the file and,
    where it applies, the tensor and the byte offset."""


class Checkpoint:
    """One safetensors file: `tensors` ({name: numpy array}, in file order), `metadata` (the raw
    strings) and `info` (the metadata with JSON values parsed). Strata's own fields are exposed
    as `model` (the model spec), `config` (the training config), `epoch` and `strata` (epoch,
    normalisation, RNG counters)."""

    def __init__(self, path, tensors, metadata):
        self.path = str(path)
        self.tensors = tensors
        self.metadata = metadata
        self.info = {k: _maybe_json(v) for k, v in metadata.items()}

    @property
    def model(self):
        """The model spec (`model` metadata) as a dict, or None."""
        return self.info.get("model")

    @property
    def config(self):
        """The training config (`config` metadata) as a dict, or None."""
        return self.info.get("config")

    @property
    def strata(self):
        """Strata's checkpoint info (`strata` metadata: epoch, normalisation, ...), or {}."""
        value = self.info.get("strata")
        return value if isinstance(value, dict) else {}

    @property
    def epoch(self):
        """The epoch this checkpoint closes, or None when the metadata does not say."""
        return self.strata.get("epoch")

    def state_dict(self):
        """The model's tensors, PyTorch names, without the optimizer state (`optimizer.*`)."""
        return {k: v for k, v in self.tensors.items() if not k.startswith("optimizer.")}

    def optimizer_state(self):
        """{parameter name: {slot: array}} from the `optimizer.<parameter>.<slot>` tensors."""
        out = {}
        for name, value in self.tensors.items():
            if name.startswith("optimizer."):
                parameter, _, slot = name[len("optimizer."):].rpartition(".")
                out.setdefault(parameter, {})[slot] = value
        return out

    def __repr__(self):
        family = (self.model or {}).get("family", "?")
        return f"Checkpoint({self.path!r}, {len(self.tensors)} tensors, model {family}, epoch {self.epoch})"


def _maybe_json(text):
    """Metadata strings holding a JSON object or array, parsed; anything else as it is."""
    if isinstance(text, str) and text[:1] in ("{", "["):
        try:
            return restore_non_finite(json.loads(text))
        except json.JSONDecodeError:
            pass
    return text


def read_header(path):
    """(header dict, data start offset, file size) of a safetensors file, checked."""
    def bad(message):
        return CheckpointError(f"{path}: {message}")

    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise bad(f"{size} bytes: too short for a safetensors file (an 8-byte header length first)")
            n = int.from_bytes(head, "little")
            if n > MAX_HEADER or 8 + n > size:
                raise bad(f"offset 0: header length {n} runs past the end of the file ({size} bytes)")
            raw = f.read(n)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        header = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise bad(f"offset 8: the header is not valid JSON: {e}") from None
    if not isinstance(header, dict):
        raise bad(f"offset 8: the header is {type(header).__name__}, expected a JSON object")
    return header, 8 + n, size


def read_entries(path):
    """(metadata, [(name, dtype, shape, begin, end)], data start, file size) of a safetensors
    file, every entry checked: a known dtype, a shape of non-negative integers, offsets inside
    the data that hold exactly the shape's bytes."""
    path = os.fspath(path)
    header, start, size = read_header(path)
    metadata = header.pop("__metadata__", {}) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CheckpointError(f"{path}: __metadata__ must map strings to strings")
    data_size = size - start
    entries = []
    for name, entry in header.items():
        where = f"{path}: tensor {name!r}"
        if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= entry.keys():
            raise CheckpointError(f"{where}: expected an object with dtype, shape and data_offsets")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype not in DTYPES:
            raise CheckpointError(f"{where}: dtype {dtype!r} is not a safetensors dtype")
        if not (isinstance(shape, list) and all(type(d) is int and d >= 0 for d in shape)):
            raise CheckpointError(f"{where}: shape {shape!r} is not a list of non-negative integers")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)
                and 0 <= offsets[0] <= offsets[1] <= data_size):
            raise CheckpointError(f"{where}: data_offsets {offsets!r} are outside the {data_size} data bytes")
        count = 1
        for d in shape:
            count *= d
        need = count * ITEM_SIZE[dtype]
        if offsets[1] - offsets[0] != need:
            raise CheckpointError(f"{where}: data_offsets {offsets} hold {offsets[1] - offsets[0]} bytes "
                                  f"but shape {shape} of {dtype} needs {need}")
        entries.append((name, dtype, tuple(shape), offsets[0], offsets[1]))
    return metadata, entries, start, size


def _read_data(path, start, size):
    with open(path, "rb") as f:
        f.seek(start)
        data = bytearray(f.read())
    if len(data) != size - start:
        raise CheckpointError(f"{path}: the file changed while it was read")
    return data


def read_raw(path):
    """(metadata, {name: (dtype, shape, bytes)}) in pure Python (no numpy): what the PyTorch
    twin's loader and the bench scripts use. The bytes are memoryviews of one bytearray."""
    path = os.fspath(path)
    metadata, entries, start, size = read_entries(path)
    data = memoryview(_read_data(path, start, size))
    return metadata, {name: (dtype, shape, data[begin:end]) for name, dtype, shape, begin, end in entries}


def read_checkpoint(path, mmap=False):
    """A `Checkpoint` with every tensor as a numpy array of its shape.

    The arrays share one buffer read from the file (writable); `mmap=True` maps the file
    instead (read-only arrays, nothing read until used: for large checkpoints)."""
    import numpy as np

    path = os.fspath(path)
    metadata, entries, start, size = read_entries(path)
    if mmap and size > start:
        data = np.memmap(path, dtype=np.uint8, mode="r", offset=start, shape=(size - start,))
    else:
        data = _read_data(path, start, size)
    tensors = {}
    for name, dtype, shape, begin, end in entries:
        array = np.frombuffer(data, dtype=np.dtype(DTYPES[dtype]), count=(end - begin) // ITEM_SIZE[dtype],
                              offset=begin).reshape(shape)
        if dtype == "BF16":  # the upper half of a float32
            array = (array.astype(np.uint32) << 16).view(np.float32)
        tensors[name] = array
    return Checkpoint(path, tensors, metadata)
