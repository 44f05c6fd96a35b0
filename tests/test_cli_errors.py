"""Bad arguments end in one line on stderr and a non-zero exit, never a traceback."""
from conftest import run_cli


def test_export_of_missing_run(tmp_path):
    proc = run_cli("export/to_netx.py", "--run", str(tmp_path / "nope"), check=False)
    assert proc.returncode == 2
    assert "no checkpoint" in proc.stderr and "Traceback" not in proc.stderr


def test_export_of_garbage_checkpoint(tmp_path):
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    proc = run_cli("export/to_netx.py", "--run", str(tmp_path), check=False)
    assert proc.returncode == 2
    assert "checkpoint.pt" in proc.stderr and "Traceback" not in proc.stderr


def test_run_with_missing_net_or_report_folder(tmp_path, tiny_run):
    proc = run_cli("-m", "lava_runtime", "run", "--net", str(tmp_path / "x.net"), "--dataset", "synthgesture",
                   "--report", str(tmp_path / "r.json"), check=False)
    assert proc.returncode == 2 and "not found" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("-m", "lava_runtime", "run", "--net", str(tiny_run / "model.net"), "--dataset", "synthgesture",
                   "--report", str(tmp_path / "missing" / "r.json"), check=False)
    assert proc.returncode == 2 and "does not exist" in proc.stderr


def test_train_with_unknown_dataset(tmp_path):
    proc = run_cli("train/run.py", "--dataset", "nope", "--epochs", "1", "--out", str(tmp_path / "r"), check=False)
    assert proc.returncode == 2 and "unknown dataset" in proc.stderr and "Traceback" not in proc.stderr
