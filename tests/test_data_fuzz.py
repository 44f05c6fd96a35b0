"""Random bytes into every parser: each returns well-formed arrays or raises DatasetError, nothing else."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chipnet.errors import DatasetError
from chipnet.formats import (
    parse_aedat2,
    parse_aedat31,
    parse_atis_bin,
    parse_gesture_labels,
    parse_name_list,
    parse_npy,
)

PARSERS = [parse_aedat31, parse_aedat2, parse_atis_bin, parse_npy, parse_gesture_labels, parse_name_list]
# Valid openings, so that random bytes also reach the code past each header.
PREFIXES = [
    b"",
    b"#!AER-DAT3.1\r\n#!END-HEADER\r\n",
    b"#!AER-DAT2.0\r\n# x\r\n",
    b"\x93NUMPY\x01\x00",
    b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }" + b" " * 44 + b"\n",
    b"class,startTime_usec,endTime_usec\n",
]


def _check(result) -> None:
    arrays = result if isinstance(result, tuple) else (result,)
    for a in arrays:
        if isinstance(a, np.ndarray):
            assert a.dtype != object
    if isinstance(result, tuple):
        assert len({len(a) for a in result}) == 1  # x, y, p, t (or address, t) line up


@pytest.mark.parametrize("parser", PARSERS, ids=lambda f: f.__name__)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prefix=st.sampled_from(PREFIXES), body=st.binary(max_size=400))
def test_random_bytes_raise_only_dataset_errors(parser, prefix, body):
    try:
        result = parser(prefix + body, "fuzz.bin")
    except DatasetError as e:
        assert "fuzz.bin" in str(e)
        return
    _check(result)


@settings(max_examples=150, deadline=None)
@given(
    packets=st.lists(
        st.tuples(
            st.integers(-3, 3),
            st.integers(0, 12),
            st.integers(0, 5),
            st.integers(0, 5),
            st.integers(0, 2),
            st.binary(max_size=64),
        ),
        max_size=5,
    )
)
def test_aedat31_packet_headers_with_random_fields(packets):
    """Well-framed files whose packet fields disagree with their payloads (sizes, counts, types)."""
    import struct

    data = b"#!AER-DAT3.1\r\n#!END-HEADER\r\n"
    for etype, size, capacity, number, overflow, payload in packets:
        data += struct.pack("<hhiiiiii", etype, 0, size, 4, overflow, capacity, number, number) + payload
    try:
        x, y, p, t = parse_aedat31(data, "packets.aedat")
    except DatasetError as e:
        assert "packets.aedat" in str(e)
        return
    assert len(x) == len(y) == len(p) == len(t)
    assert (t >= 0).all()
