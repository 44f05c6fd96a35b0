"""Every on-disk dataset read from tiny files written here in its exact release format."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli
from lava.lib.dl.slayer import io as slayer_io

from chipnet.errors import DatasetError
from chipnet.formats import parse_aedat31, parse_atis_bin
from train.data import FrameDataset, event_dataset

# ---------------------------------------------------------------- writers (independent of the readers)

AEDAT31_HEADER = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#Start-Time: 2017-01-01\r\n#!END-HEADER\r\n"


def polarity(x: int, y: int, p: int, ts: int, valid: int = 1) -> bytes:
    return struct.pack("<Ii", (x << 17) | (y << 2) | (p << 1) | valid, ts)


def packet(etype: int, size: int, payload: bytes, overflow: int = 0) -> bytes:
    n = len(payload) // size
    return struct.pack("<hhiiiiii", etype, 1, size, 4, overflow, n, n, n) + payload


# Recording 1: a special-event packet, polarity events (one marked invalid), a frame-sized packet of
# another type, and polarity events after a timestamp overflow (t = 2^31 + ts).
REC1_EVENTS = [  # x, y, p, t  (the valid polarity events, in order)
    (10, 20, 1, 100),
    (11, 21, 0, 150),
    (127, 0, 1, 240),
    (0, 127, 0, 260),
    (64, 64, 1, 2**31 + 5),
    (65, 66, 0, 2**31 + 9),
]


def recording1() -> bytes:
    special = packet(0, 8, struct.pack("<Ii", 7, 50) * 2)
    first = b"".join(polarity(*e) for e in REC1_EVENTS[:3]) + polarity(5, 5, 1, 245, valid=0)
    frame = packet(2, 20, bytes(range(40)))
    second = polarity(*REC1_EVENTS[3])
    after = b"".join(polarity(x, y, p, t - 2**31) for x, y, p, t in REC1_EVENTS[4:])
    return (
        AEDAT31_HEADER + special + packet(1, 8, first) + frame + packet(1, 8, second) + packet(1, 8, after, overflow=1)
    )


REC1_LABELS = b"class,startTime_usec,endTime_usec\r\n4,100,250\r\n11,250,2147483658\r\n"
REC2_EVENTS = [(1, 2, 1, 1000), (3, 4, 0, 1500), (5, 6, 1, 2500)]


def write_ibm_gesture(root: Path) -> Path:
    folder = root / "DvsGesture"
    folder.mkdir(parents=True)
    (folder / "user01_fluorescent.aedat").write_bytes(recording1())
    (folder / "user01_fluorescent_labels.csv").write_bytes(REC1_LABELS)
    rec2 = AEDAT31_HEADER + packet(1, 8, b"".join(polarity(*e) for e in REC2_EVENTS))
    (folder / "user24_led.aedat").write_bytes(rec2)
    (folder / "user24_led_labels.csv").write_bytes(b"class,startTime_usec,endTime_usec\n1,1000,2000\n2,2000,3000\n")
    (folder / "trials_to_train.txt").write_text("user01_fluorescent.aedat\n\n")
    (folder / "trials_to_test.txt").write_text("user24_led.aedat\n")
    return folder


def as_tuples(events: np.ndarray) -> list[tuple[int, int, int, int]]:
    return [(int(e["x"]), int(e["y"]), int(e["p"]), int(e["t"])) for e in events]


# ---------------------------------------------------------------- DVS128 Gesture, IBM release


def test_aedat31_parser_skips_other_packets_and_invalid_events_and_applies_overflow():
    x, y, p, t = parse_aedat31(recording1(), "rec1")
    assert list(zip(x.tolist(), y.tolist(), p.tolist(), t.tolist())) == REC1_EVENTS


def test_ibm_gesture_gives_one_sample_per_labelled_window(tmp_path):
    write_ibm_gesture(tmp_path)
    train = event_dataset("dvsgesture", "train", tmp_path)
    assert train.layout == "ibm" and len(train) == 2 and train.targets.tolist() == [3, 10]
    events, label = train[0]
    assert label == 3 and as_tuples(events) == REC1_EVENTS[:3]  # 100 <= t < 250
    events, label = train[1]
    assert label == 10 and as_tuples(events) == REC1_EVENTS[3:]  # across the overflow
    test = event_dataset("dvsgesture", "test", tmp_path / "DvsGesture")  # the folder itself works too
    assert test.targets.tolist() == [0, 1]
    assert as_tuples(test[0][0]) == REC2_EVENTS[:2] and as_tuples(test[1][0]) == REC2_EVENTS[2:]


def test_gesture_frames_are_cached_and_workers_give_the_same_tensors(tmp_path):
    write_ibm_gesture(tmp_path / "d")
    a = FrameDataset("dvsgesture", "test", 4, 2, cache_dir=tmp_path / "c", data_root=tmp_path / "d")
    assert [p.name.split("-")[:4] for p in (tmp_path / "c").glob("*.npz")] == [["dvsgesture", "test", "4px", "T2"]]
    # test sample 0: (1,2) ON at t=1000 -> bin 0, (3,4) OFF at t=1500 -> bin 1 (span 1000..1501)
    expected = np.zeros((2, 4, 4, 2), np.uint8)
    expected[1, 0, 0, 0] = expected[0, 0, 0, 1] = 1
    np.testing.assert_array_equal(a.spikes[0], expected)
    b = FrameDataset("dvsgesture", "test", 4, 2, cache_dir=None, data_root=tmp_path / "d", workers=2)
    np.testing.assert_array_equal(a.spikes, b.spikes)
    assert a.labels.tolist() == b.labels.tolist() == [0, 1]


@pytest.mark.parametrize(
    "name, content, problem",
    [
        ("user01_fluorescent.aedat", b"#!AER-DAT3.1\r\n#Format: RAW\r\n", "END-HEADER"),
        ("user01_fluorescent.aedat", recording1()[:-3], "truncated"),
        ("user01_fluorescent.aedat", b"#!AER-DAT2.0\r\n#!END-HEADER\r\n", "not an AEDAT 3.1"),
        ("user01_fluorescent.aedat", AEDAT31_HEADER + packet(1, 8, polarity(300, 1, 1, 5)), "outside the 128×128"),
        ("user01_fluorescent_labels.csv", b"class,startTime_usec,endTime_usec\n12,100,250\n", "class 12 outside 1–11"),
        ("user01_fluorescent_labels.csv", b"class,startTime_usec,endTime_usec\n0,100,250\n", "class 0 outside 1–11"),
        ("user01_fluorescent_labels.csv", b"class,start\n1,2\n", "line 2"),
        ("trials_to_train.txt", b"user01_fluorescent.aedat\nuser99_lab.aedat\n", "user99_lab.aedat"),
    ],
)
def test_broken_gesture_files_raise_errors_naming_the_file(tmp_path, name, content, problem):
    folder = write_ibm_gesture(tmp_path)
    (folder / name).write_bytes(content)
    with pytest.raises(DatasetError) as err:
        ds = event_dataset("dvsgesture", "train", tmp_path)
        ds[0]
    assert name in str(err.value) and problem in str(err.value)


def test_missing_gesture_dataset_says_what_and_where(tmp_path):
    with pytest.raises(DatasetError) as err:
        event_dataset("dvsgesture", "train", tmp_path)
    msg = str(err.value)
    assert str(tmp_path) in msg and "trials_to_train.txt" in msg and "ibmGestureTrain" in msg
    assert "research.ibm.com/dvsgesture" in msg and "--download" in msg


# ---------------------------------------------------------------- DVS128 Gesture, tonic's layout


def test_tonic_gesture_layout(tmp_path):
    base = tmp_path / "DVSGesture"
    clap = np.array([[3, 4, 1, 10], [5, 6, 0, 12], [7, 8, 1, 30]], dtype=np.int64)  # x, y, p, t (ms)
    other = np.array([[0, 0, 0, 1.5]], dtype=np.float32)
    for split, user, label, arr in [
        ("Train", "user01_fluorescent", 0, clap),
        ("Train", "user02_led", 10, other),
        ("Test", "user24_lab", 4, clap[:1]),
    ]:
        folder = base / f"ibmGesture{split}" / user
        folder.mkdir(parents=True)
        np.save(folder / f"{label}.npy", arr)
    train = event_dataset("dvsgesture", "train", tmp_path)
    assert train.layout == "tonic" and train.targets.tolist() == [0, 10]
    assert as_tuples(train[0][0]) == [(3, 4, 1, 10_000), (5, 6, 0, 12_000), (7, 8, 1, 30_000)]
    assert as_tuples(train[1][0]) == [(0, 0, 0, 1500)]
    test = event_dataset("dvsgesture", "test", tmp_path, layout="tonic")
    assert len(test) == 1 and test[0][1] == 4
    np.save(base / "ibmGestureTest" / "user24_lab" / "4.npy", np.zeros((2, 3)))
    with pytest.raises(DatasetError, match=r"4\.npy: expected an \(N, 4\) array"):
        test[0]


# ---------------------------------------------------------------- N-MNIST (40-bit ATIS binary)

NMNIST_EVENTS = [(0, 0, 1, 5), (33, 1, 0, 17), (12, 33, 1, 4_000_000), (7, 8, 0, 8_388_607)]


def write_with_lava(path: Path, events: list[tuple[int, int, int, int]]) -> None:
    x, y, p, t = (np.array(c) for c in zip(*events))
    path.parent.mkdir(parents=True, exist_ok=True)
    slayer_io.encode_2d_spikes(str(path), slayer_io.Event(x, y, p, t / 1000))  # lava-dl's writer, t in ms


def test_nmnist_reads_lava_written_files_and_overflow_markers(tmp_path):
    write_with_lava(tmp_path / "Train" / "3" / "00001.bin", NMNIST_EVENTS)
    write_with_lava(tmp_path / "Train" / "0" / "00002.bin", NMNIST_EVENTS[:1])
    # raw bytes: an event, an overflow marker (y = 240), an event 2^13 µs later than its field says
    raw = bytes([1, 2, 0x80, 0, 9]) + bytes([0, 240, 0, 0, 0]) + bytes([3, 4, 0x00, 0, 1])
    (tmp_path / "Test" / "9").mkdir(parents=True)
    (tmp_path / "Test" / "9" / "00003.bin").write_bytes(raw)
    for d in range(10):
        for split in ("Train", "Test"):
            folder = tmp_path / split / str(d)
            if not folder.exists():
                write_with_lava(folder / "00009.bin", [(1, 1, 1, 1)])
    train = event_dataset("nmnist", "train", tmp_path)
    assert len(train) == 10 and train.targets.tolist() == list(range(10))
    events, label = train[3]
    assert label == 3 and as_tuples(events) == NMNIST_EVENTS
    lava = slayer_io.read_2d_spikes(str(train.files[3]))  # lava-dl's reader agrees where both apply
    assert np.rint(lava.t * 1000).astype(int).tolist() == [e[3] for e in NMNIST_EVENTS]
    assert lava.x.tolist() == events["x"].tolist() and lava.c.tolist() == events["p"].tolist()
    test = event_dataset("nmnist", "test", tmp_path)
    assert as_tuples(test[9][0]) == [(1, 2, 1, 9), (3, 4, 0, 8193)]
    (tmp_path / "Test" / "9" / "00003.bin").write_bytes(raw[:-2])
    with pytest.raises(DatasetError, match="00003.bin: truncated"):
        test[9]
    (tmp_path / "Test" / "9" / "00003.bin").write_bytes(bytes([40, 2, 0, 0, 1]))
    with pytest.raises(DatasetError, match="00003.bin: .*outside the 34×34 sensor"):
        test[9]
    import shutil

    shutil.rmtree(tmp_path / "Test" / "5")
    with pytest.raises(DatasetError, match=r"class folder .*Test/5 is missing"):
        event_dataset("nmnist", "test", tmp_path)


def test_atis_parser_is_the_reference_bit_layout():
    # x=0xAB, y=0x12, ON, t=0x7FFFFF
    x, y, p, t = parse_atis_bin(bytes([0xAB, 0x12, 0xFF, 0xFF, 0xFF]))
    assert (x.tolist(), y.tolist(), p.tolist(), t.tolist()) == ([0xAB], [0x12], [1], [0x7FFFFF])


# ---------------------------------------------------------------- N-Caltech101 (seeded split)


def test_ncaltech101_split_is_seeded_stratified_and_shifts_coordinates(tmp_path):
    classes = ["BACKGROUND_Google", "accordion", "airplanes"]
    for ci, cls in enumerate(classes):
        for k in range(1, 6):
            write_with_lava(
                tmp_path / "Caltech101" / cls / f"image_{k:04d}.bin", [(50 + k, 30 + ci, 1, 10), (60, 40, 0, 20)]
            )
    train = event_dataset("ncaltech101", "train", tmp_path)
    test = event_dataset("ncaltech101", "test", tmp_path)
    assert train.classes == tuple(classes)
    assert len(test) == 3 and len(train) == 12  # round(0.2 * 5) = 1 test file per class
    assert sorted(map(str, train.files + test.files)) == sorted(map(str, (tmp_path / "Caltech101").rglob("*.bin")))
    assert sorted(test.targets.tolist()) == [0, 1, 2]
    again = event_dataset("ncaltech101", "test", tmp_path)
    assert again.files == test.files
    other = [event_dataset("ncaltech101", "test", tmp_path, seed=s).files for s in range(1, 6)]
    assert any(files != test.files for files in other)
    events, _ = test[0]
    k = int(test.files[0].stem[-1])
    assert as_tuples(events) == [(0, 0, 1, 10), (60 - 50 - k, 10 - (test.targets[0]), 0, 20)]


# ---------------------------------------------------------------- CIFAR10-DVS (AEDAT 2.0)

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def aedat2(events: list[tuple[int, int]]) -> bytes:
    header = b"#!AER-DAT2.0\r\n# This is a raw AE data file - do not edit\r\n# Timestamps tick is 1 us\r\n"
    return header + b"".join(struct.pack(">II", a, t) for a, t in events)


def dvs128(x: int, y: int, p: int) -> int:
    return (y << 8) | (x << 1) | p


def test_cifar10dvs_decodes_aedat2_upright_and_splits_per_class(tmp_path):
    for ci, cls in enumerate(CIFAR_CLASSES):
        for n in range(3):
            events = [(dvs128(ci, n, 1), 10), (0x8000, 11), (dvs128(127, 0, 0), 20 + n)]  # 0x8000: a sync event
            (tmp_path / "CIFAR10DVS" / cls).mkdir(parents=True, exist_ok=True)
            (tmp_path / "CIFAR10DVS" / cls / f"cifar10_{cls}_{n}.aedat").write_bytes(aedat2(events))
    train = event_dataset("cifar10dvs", "train", tmp_path, test_fraction=1 / 3)
    test = event_dataset("cifar10dvs", "test", tmp_path, test_fraction=1 / 3)
    assert len(train) == 20 and len(test) == 10 and sorted(test.targets.tolist()) == list(range(10))
    assert not set(train.files) & set(test.files)
    path = tmp_path / "CIFAR10DVS" / "cat" / "cifar10_cat_2.aedat"
    ds, idx = (train, train.files.index(path)) if path in train.files else (test, test.files.index(path))
    events, label = ds[idx]
    # x = 127 - y_raw, y = 127 - x_raw, p = 1 - p_raw; the sync event is dropped
    assert label == 3 and as_tuples(events) == [(127 - 2, 127 - 3, 0, 10), (127, 0, 1, 22)]
    path.write_bytes(aedat2([(1, 2)])[:-3])
    with pytest.raises(DatasetError, match="cifar10_cat_2.aedat: truncated"):
        ds[idx]
    path.write_bytes(AEDAT31_HEADER)
    with pytest.raises(DatasetError, match="cifar10_cat_2.aedat: not an AEDAT 2.0 file"):
        ds[idx]


# ---------------------------------------------------------------- the CLI


def test_inspect_prints_json_and_writes_png(tmp_path):
    write_ibm_gesture(tmp_path / "data")
    proc = run_cli(
        "train/run.py",
        "--dataset",
        "dvsgesture",
        "--data-root",
        str(tmp_path / "data"),
        "--inspect",
        "--out",
        str(tmp_path / "run"),
    )
    info = json.loads(proc.stdout[proc.stdout.index("{\n") :])  # lava-dl prints a Prophesee warning on import
    assert info["sensor_size"] == [128, 128, 2] and len(info["classes"]) == 11
    assert info["splits"]["train"]["samples"] == 2 and info["splits"]["test"]["samples"] == 2
    assert info["splits"]["train"]["per_class"]["right_arm_clockwise"] == 1
    assert [(s["label"], s["events"]) for s in info["splits"]["train"]["first"]] == [(3, 3), (10, 3)]
    png = Path(info["png"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    proc = run_cli(
        "train/run.py",
        "--dataset",
        "nmnist",
        "--data-root",
        str(tmp_path / "none"),
        "--inspect",
        "--out",
        str(tmp_path / "run"),
        check=False,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "dataset not found" in proc.stderr and "garrickorchard.com" in proc.stderr


# ---------------------------------------------------------------- the recording chip in AEDAT headers

DAVIS240C = b"# AEChip: eu.seebetter.ini.chips.davis.DAVIS240C\r\n"


def test_aedat2_from_another_chip_is_refused_naming_file_and_chip(tmp_path):
    events = [(dvs128(3, 4, 1), 10)]
    header, body = aedat2(events).split(b"# Timestamps tick is 1 us\r\n")
    for cls in CIFAR_CLASSES:
        (tmp_path / "CIFAR10DVS" / cls).mkdir(parents=True)
        for n in range(2):
            (tmp_path / "CIFAR10DVS" / cls / f"cifar10_{cls}_{n}.aedat").write_bytes(aedat2(events))
    ds = event_dataset("cifar10dvs", "test", tmp_path, test_fraction=0.5)
    path = ds.files[0]
    for chip_line in (
        b"# AEChip: ch.unizh.ini.jaer.chip.retina.DVS128\r\n",
        b"# AEChip: class ch.unizh.ini.jaer.chip.retina.Tmpdiff128\r\n",
    ):
        path.write_bytes(header + chip_line + b"# Timestamps tick is 1 us\r\n" + body)
        assert as_tuples(ds[0][0]) == [(127 - 4, 127 - 3, 0, 10)]  # a DVS128 file (or no chip line) reads as before
    path.write_bytes(header + DAVIS240C + b"# Timestamps tick is 1 us\r\n" + body)
    with pytest.raises(DatasetError) as e:
        ds[0]
    assert str(e.value) == f"{path}: recorded by a DAVIS240C, this loader reads DVS128 recordings"


def test_aedat31_from_another_chip_is_refused_naming_file_and_chip(tmp_path):
    data = recording1()
    x, y, p, t = parse_aedat31(data, "rec1", chip="DVS128")  # '#Source 1: DVS128'
    assert len(x) > 0
    davis = data.replace(b"#Source 1: DVS128", b"#Source 1: DAVIS240C")
    with pytest.raises(
        DatasetError, match=r"^rec\.aedat: recorded by a DAVIS240C, this loader reads DVS128 recordings$"
    ):
        parse_aedat31(davis, "rec.aedat", chip="DVS128")
    assert [a.tolist() for a in parse_aedat31(davis, "rec.aedat")] == [a.tolist() for a in (x, y, p, t)]
    write_ibm_gesture(tmp_path)
    rec = tmp_path / "DvsGesture" / "user01_fluorescent.aedat"
    rec.write_bytes(rec.read_bytes().replace(b"#Source 1: DVS128", b"#Source 1: DAVIS240C"))
    with pytest.raises(DatasetError, match="user01_fluorescent.aedat: recorded by a DAVIS240C"):
        event_dataset("dvsgesture", "train", tmp_path)[0]
