"""Patch lava-nc 0.10.0 so that it imports on Python >= 3.11 (scripts/setup.sh runs it after installing lava-nc).

``lava/magma/compiler/var_model.py`` gives 8 dataclass fields a dataclass instance as default
(``x: ByteEncoder = ByteEncoder()``). Python >= 3.11 refuses such mutable defaults when the class is
created (``ValueError: mutable default ... use default_factory``), so ``import lava.magma.compiler``
fails. The patch writes ``field(default_factory=ByteEncoder)`` instead: each instance gets its own
encoder, the values are the same. Intel archived Lava, so no release will carry this fix.

The file is changed only when its sha256 is the released lava-nc 0.10.0 one; a file that is already
patched is left as it is; any other file is refused (exit 1) with the reason. See docs/design.md,
"lava-nc on Python 3.11 and 3.12". Usage: ``.venv/bin/python scripts/patch_lava.py [FILE]``.
"""

from __future__ import annotations

import hashlib
import sys
import sysconfig
from pathlib import Path

REL = Path("lava/magma/compiler/var_model.py")
ORIGINAL_SHA256 = "3b8acb73dc3ff38d159065aa0339b90f371f99f162e68d10a3117afbd916afa8"  # lava-nc 0.10.0's wheel
PATCHED_SHA256 = "6aafe7e7d89d463effc9a24ba717948ddad9e7ca95e49e751b9413b06c373047"  # after the patch below
IMPORT_OLD = "from dataclasses import dataclass, InitVar\n"
IMPORT_NEW = "from dataclasses import dataclass, field, InitVar\n"
DEFAULT_OLD = ": ByteEncoder = ByteEncoder()\n"
DEFAULT_NEW = ": ByteEncoder = field(default_factory=ByteEncoder)\n"
N_FIELDS = 8


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def patched(text: str) -> str:
    """The released file with the 8 instance defaults turned into default factories."""
    assert text.count(IMPORT_OLD) == 1 and text.count(DEFAULT_OLD) == N_FIELDS
    return text.replace(IMPORT_OLD, IMPORT_NEW).replace(DEFAULT_OLD, DEFAULT_NEW)


def find() -> Path | None:
    """var_model.py of the lava-nc installed for this interpreter (without importing lava, which fails)."""
    dirs = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *sys.path]
    for d in dirs:
        if d and (Path(d) / REL).is_file():
            return Path(d) / REL
    return None


def main(argv: list[str] | None = None) -> int:
    """Patch the installed file, or the one path given (tests use a copy)."""
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else find()
    if path is None or not path.is_file():
        print(f"patch_lava: {path or REL} not found for {sys.executable}: is lava-nc installed?", file=sys.stderr)
        return 1
    text = path.read_bytes().decode()
    digest = sha256(text)
    if digest == PATCHED_SHA256:
        print(f"patch_lava: {path} is already patched (ByteEncoder defaults use default_factory)")
        return 0
    if digest != ORIGINAL_SHA256:
        print(
            f"patch_lava: refusing to patch {path}: sha256 {digest} is neither lava-nc 0.10.0's nor the patched "
            "file's (another lava-nc version? see docs/design.md, 'lava-nc on Python 3.11 and 3.12')",
            file=sys.stderr,
        )
        return 1
    new = patched(text)
    assert sha256(new) == PATCHED_SHA256, sha256(new)
    path.write_bytes(new.encode())
    print(f"patch_lava: patched {path}: {N_FIELDS} ByteEncoder() defaults -> field(default_factory=ByteEncoder)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
