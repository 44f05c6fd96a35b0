"""Readers for the on-disk event formats, as vectorised numpy over the raw bytes.

Every parser takes the file's bytes and a ``source`` name (used in messages) and either returns
numpy arrays or raises :class:`DatasetError` naming the source and the problem: truncated or
garbage input never surfaces as an unrelated exception.

- AEDAT 3.1 (DVS128 Gesture, IBM release): ``#`` header lines up to ``#!END-HEADER``, then
  packets of a 28-byte little-endian header (type, source, size, ts offset, ts overflow,
  capacity, number, valid) and ``capacity × size`` bytes of events. Polarity events (type 1)
  are 8 bytes: ``uint32`` data (bit 0 valid, bit 1 polarity, bits 2–16 y, bits 17–31 x) and an
  ``int32`` timestamp; the full timestamp is ``overflow << 31 | timestamp`` in µs.
- AEDAT 2.0 (jAER; CIFAR10-DVS): ``#`` header lines, then big-endian ``uint32`` address and
  ``uint32`` timestamp (µs) pairs. DVS128 addresses: bit 0 polarity, bits 1–7 x, bits 8–14 y,
  bit 15 marks external (sync) events.
- Both AEDAT headers may say which sensor recorded the file: jAER's ``# AEChip: <java class>``
  (AEDAT 2.0, e.g. ``...retina.DVS128`` or ``...davis.DAVIS240C``) and ``#Source <id>: <name>``
  (AEDAT 3.1). A loader names the chip its address decoding and sensor size assume; a file
  recorded by another chip is refused (its addresses would decode to meaningless events).
- ATIS 40-bit binary (N-MNIST, N-Caltech101): 5 bytes per event, x (8 bits), y (8 bits),
  polarity (1 bit), timestamp (23 bits, µs); an event with ``y == 240`` is not an event but a
  timestamp overflow marker adding 2^13 µs to everything after it (Orchard's reference reader).
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np

from chipnet.errors import DatasetError

AEDAT31_PACKET = struct.Struct("<hhiiiiii")
POLARITY_EVENT = 1
_POLARITY_DTYPE = np.dtype([("data", "<u4"), ("ts", "<i4")])
_AEDAT2_DTYPE = np.dtype([("addr", ">u4"), ("ts", ">u4")])
ATIS_OVERFLOW_Y = 240
ATIS_OVERFLOW_US = 1 << 13


def read_bytes(path: str | Path) -> bytes:
    """The bytes of ``path``, or a DatasetError naming it."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except OSError as e:
        raise DatasetError(f"{path}: cannot read ({e.strerror or e})") from None


def _header_lines(data: bytes, source: str, end_marker: bytes | None) -> tuple[list[bytes], int]:
    """The ``#`` header lines and the offset just after them.

    With ``end_marker`` the header must end with that line (AEDAT 3.x); without it the header is
    every leading line that starts with ``#`` (AEDAT 2.0).
    """
    lines, pos = [], 0
    while pos < len(data) and data[pos : pos + 1] == b"#":
        nl = data.find(b"\n", pos)
        if nl < 0:
            break
        line = data[pos:nl].rstrip(b"\r")
        lines.append(line)
        pos = nl + 1
        if end_marker is not None and line == end_marker:
            return lines, pos
    if end_marker is not None:
        raise DatasetError(f"{source}: header has no {end_marker.decode()} line (truncated or not an AEDAT 3.1 file)")
    return lines, pos


def _check_version(lines: list[bytes], source: str, prefix: bytes, expected: str) -> None:
    first = lines[0] if lines else b""
    if not first.startswith(prefix):
        found = first[:20].decode("ascii", "replace") if first else "no header"
        raise DatasetError(f"{source}: not an {expected} file (first line {found!r}, expected {prefix.decode()}…)")


def header_chips(lines: list[bytes]) -> list[str]:
    """Sensor names an AEDAT header records: the last part of ``# AEChip:`` classes, ``#Source N:`` names."""
    chips = []
    for line in lines:
        text = line.decode("ascii", "replace").lstrip("#").strip()
        key, sep, value = text.partition(":")
        key = key.strip().lower()
        if sep and (key == "aechip" or (key.startswith("source") and key[6:].strip().isdigit())):
            value = value.strip().removeprefix("class ").strip()
            chips.append(value.rsplit(".", 1)[-1])
    return chips


# jAER's older class for the same 128×128 sensor and address layout.
CHIP_ALIASES = {"dvs128": ("dvs128", "tmpdiff128")}


def _check_chip(lines: list[bytes], source: str, chip: str | None) -> None:
    """Refuse a header that names a sensor other than ``chip`` (a header without one passes)."""
    if chip is None:
        return
    accepted = CHIP_ALIASES.get(chip.lower(), (chip.lower(),))
    for found in header_chips(lines):
        if found.lower() not in accepted:
            raise DatasetError(f"{source}: recorded by a {found}, this loader reads {chip} recordings")


def parse_aedat31(
    data: bytes, source: str = "<bytes>", chip: str | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``x, y, p, t`` (t in µs, int64) of the valid polarity events of an AEDAT 3.1 recording (of ``chip`` if given)."""
    lines, pos = _header_lines(data, source, b"#!END-HEADER")
    _check_version(lines, source, b"#!AER-DAT3", "AEDAT 3.1")
    _check_chip(lines, source, chip)
    chunks: list[np.ndarray] = []
    overflows: list[int] = []
    n = len(data)
    while pos < n:
        if n - pos < AEDAT31_PACKET.size:
            raise DatasetError(f"{source}: truncated packet header at byte {pos} ({n - pos} of 28 bytes)")
        etype, _src, size, _tsoff, overflow, capacity, number, _valid = AEDAT31_PACKET.unpack_from(data, pos)
        if size <= 0 or capacity < 0 or not 0 <= number <= capacity or overflow < 0:
            raise DatasetError(
                f"{source}: bad packet header at byte {pos} (event size {size}, capacity {capacity}, "
                f"number {number}, ts overflow {overflow})"
            )
        start, end = pos + AEDAT31_PACKET.size, pos + AEDAT31_PACKET.size + capacity * size
        if end > n:
            raise DatasetError(
                f"{source}: packet at byte {pos} is truncated ({end - n} of {end - start} bytes missing)"
            )
        if etype == POLARITY_EVENT:
            if size != _POLARITY_DTYPE.itemsize:
                raise DatasetError(f"{source}: polarity packet at byte {pos} has {size}-byte events, expected 8")
            chunks.append(np.frombuffer(data, dtype=_POLARITY_DTYPE, count=number, offset=start))
            overflows.append(overflow)
        pos = end  # packets of other event types (special, frame, IMU) are skipped
    if not chunks:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty, empty
    raw = np.concatenate(chunks)
    high = np.repeat(np.asarray(overflows, dtype=np.int64) << 31, [len(c) for c in chunks])
    if len(raw) and int(raw["ts"].min()) < 0:
        raise DatasetError(f"{source}: negative polarity event timestamp (garbage data?)")
    valid = (raw["data"] & 1).astype(bool)
    d = raw["data"][valid].astype(np.int64)
    t = high[valid] | raw["ts"][valid].astype(np.int64)
    return (d >> 17) & 0x7FFF, (d >> 2) & 0x7FFF, (d >> 1) & 1, t


def parse_aedat2(data: bytes, source: str = "<bytes>", chip: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``address, t`` (uint32 address, int64 µs) of an AEDAT 2.0 recording (of ``chip`` if given); 32-bit wraps undone."""
    lines, pos = _header_lines(data, source, None)
    _check_version(lines, source, b"#!AER-DAT2", "AEDAT 2.0")
    _check_chip(lines, source, chip)
    body = len(data) - pos
    if body % _AEDAT2_DTYPE.itemsize:
        raise DatasetError(f"{source}: truncated: {body} bytes of events is not a whole number of 8-byte events")
    raw = np.frombuffer(data, dtype=_AEDAT2_DTYPE, offset=pos)
    t = raw["ts"].astype(np.int64)
    if len(t) > 1:  # the µs counter wraps at 2^32 (every 71 minutes)
        t += np.concatenate([[0], np.cumsum(np.diff(t) < -(1 << 31))]) << 32
    return raw["addr"].astype(np.int64), t


def decode_dvs128(address: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """jAER DVS128 address fields: ``x, y, p`` and a mask of the retina (non-sync) events."""
    return (address >> 1) & 0x7F, (address >> 8) & 0x7F, address & 1, (address & 0x8000) == 0


def parse_atis_bin(data: bytes, source: str = "<bytes>") -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``x, y, p, t`` (t in µs) of an N-MNIST / N-Caltech101 40-bit binary file."""
    if len(data) % 5:
        raise DatasetError(f"{source}: truncated: {len(data)} bytes is not a whole number of 5-byte events")
    raw = np.frombuffer(data, dtype=np.uint8).reshape(-1, 5).astype(np.int64)
    x, y = raw[:, 0], raw[:, 1]
    p = raw[:, 2] >> 7
    t = ((raw[:, 2] & 0x7F) << 16) | (raw[:, 3] << 8) | raw[:, 4]
    marker = y == ATIS_OVERFLOW_Y
    t = t + np.cumsum(marker) * ATIS_OVERFLOW_US
    keep = ~marker
    return x[keep], y[keep], p[keep], t[keep]


def parse_npy(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """A plain numeric ``.npy`` array, checked against its size before anything is allocated."""
    fh = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    except Exception as e:  # numpy raises ValueError, SyntaxError, … on garbage headers
        raise DatasetError(f"{source}: not a .npy file ({e})") from None
    if dtype.hasobject or dtype.kind not in "biuf":
        raise DatasetError(f"{source}: .npy holds {dtype}, expected a numeric array")
    count = int(np.prod(shape, dtype=np.int64))
    body = len(data) - fh.tell()
    if count * dtype.itemsize != body:
        raise DatasetError(
            f"{source}: truncated .npy: shape {shape} needs {count * dtype.itemsize} bytes, file has {body}"
        )
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=fh.tell())
    return arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape)


def parse_gesture_labels(data: bytes, source: str = "<bytes>", classes: int = 11) -> np.ndarray:
    """Rows ``(label, start_us, end_us)`` of a DvsGesture labels CSV, labels made 0-based."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise DatasetError(f"{source}: labels file is not ASCII text") from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or (number == 1 and line.lower().startswith("class")):
            continue
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != 3 or not all(f.isdigit() for f in fields):
            raise DatasetError(
                f"{source}: line {number}: expected 'class,startTime_usec,endTime_usec', got {line[:60]!r}"
            )
        label, start, end = (int(f) for f in fields)
        if not 1 <= label <= classes:
            raise DatasetError(f"{source}: line {number}: class {label} outside 1–{classes}")
        if end <= start:
            raise DatasetError(f"{source}: line {number}: window [{start}, {end}) is empty")
        rows.append((label - 1, start, end))
    if not rows:
        raise DatasetError(f"{source}: no labelled windows")
    return np.asarray(rows, dtype=np.int64)


def parse_name_list(data: bytes, source: str = "<bytes>") -> list[str]:
    """Non-empty lines of a text list such as ``trials_to_train.txt``."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise DatasetError(f"{source}: not a text file") from None
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise DatasetError(f"{source}: lists no files")
    bad = [n for n in names if "/" in n or "\\" in n or n in (".", "..") or "\x00" in n]
    if bad:
        raise DatasetError(f"{source}: {bad[0][:60]!r} is not a file name")
    return names
