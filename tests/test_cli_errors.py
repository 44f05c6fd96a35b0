"""Bad arguments end in one line on stderr and a non-zero exit, never a traceback."""

from conftest import lava_run, run_cli


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
    proc = run_cli(
        *lava_run(str(tmp_path / "x.net")),
        "--report",
        str(tmp_path / "r.json"),
        check=False,
    )
    assert proc.returncode == 2 and "not found" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli(
        *lava_run(str(tiny_run / "model.net")),
        "--report",
        str(tmp_path / "missing" / "r.json"),
        check=False,
    )
    assert proc.returncode == 2 and "does not exist" in proc.stderr


def test_train_with_unknown_dataset(tmp_path):
    proc = run_cli("train/run.py", "--dataset", "nope", "--epochs", "1", "--out", str(tmp_path / "r"), check=False)
    assert proc.returncode == 2 and "unknown dataset" in proc.stderr and "Traceback" not in proc.stderr


def test_run_cli_turns_user_errors_into_2_and_interrupts_into_130(capsys):
    from chipnet.cli import run_cli as wrap
    from chipnet.errors import CheckpointError, ConfigError, DatasetError, ExportError, RuntimeConfigError, SmaLavaError
    from export.constraints import ConstraintError
    from lava_runtime.energy import EnergyModelError

    for cls in (
        DatasetError,
        ConfigError,
        CheckpointError,
        ExportError,
        RuntimeConfigError,
        ConstraintError,
        EnergyModelError,
    ):
        assert issubclass(cls, SmaLavaError)

    capsys.readouterr()  # importing lava-dl may print to stderr

    def fails(argv):
        raise ConfigError("bad option")

    def interrupted(argv):
        raise KeyboardInterrupt

    assert wrap(fails) == 2 and capsys.readouterr().err == "error: bad option\n"
    assert wrap(interrupted, interrupted="stopped") == 130 and capsys.readouterr().err == "stopped\n"
    assert wrap(lambda argv: len(argv), ["a", "b"]) == 2


def test_project_scripts_name_the_documented_mains():
    import importlib
    import sys
    from pathlib import Path

    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib

    scripts = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]["scripts"]
    assert set(scripts) == {"sma-train", "sma-finetune", "sma-analyze", "sma-export", "sma-lava"}
    for target in scripts.values():
        module, name = target.split(":")
        assert callable(getattr(importlib.import_module(module), name)), target
