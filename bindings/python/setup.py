"""Build hook of the wsbroker Python package (metadata is in pyproject.toml).

``build_py`` runs ``cargo build --release --lib`` in the wsbroker Cargo workspace and copies
the resulting shared library into the package, so the wheel is self-contained:

* the Cargo root is ``$WSBROKER_CARGO_ROOT``, else the nearest parent of this directory whose
  ``Cargo.toml`` is the ``wsbroker`` package (``bindings/python`` -> the repository root);
* ``$CARGO`` names the cargo binary (default ``cargo``); ``$CARGO_TARGET_DIR`` is honoured,
  since the library's path is read from cargo's own JSON messages.

The wheel is tagged for the platform (``py3-none-<platform>``): it carries a native library,
but no CPython extension, so one wheel fits every Python 3 on that platform.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

try:  # setuptools >= 70.1 ships bdist_wheel itself
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # pragma: no cover - older setuptools with the wheel package
    from wheel.bdist_wheel import bdist_wheel  # type: ignore[no-redef]

HERE = Path(__file__).resolve().parent
LIB_SUFFIXES = (".so", ".dylib", ".dll")


def cargo_root() -> Path:
    env = os.environ.get("WSBROKER_CARGO_ROOT")
    if env:
        root = Path(env).resolve()
        if not (root / "Cargo.toml").is_file():
            sys.exit(f"wsbroker build: WSBROKER_CARGO_ROOT={env} has no Cargo.toml")
        return root
    for parent in [HERE, *HERE.parents]:
        manifest = parent / "Cargo.toml"
        if manifest.is_file() and re.search(r'(?m)^name\s*=\s*"wsbroker"\s*$', manifest.read_text()):
            return parent
    sys.exit(
        "wsbroker build: cannot find the wsbroker Cargo.toml above "
        f"{HERE}; set WSBROKER_CARGO_ROOT to the repository root"
    )


def build_library() -> Path:
    """Runs cargo and returns the path of the built cdylib."""
    root = cargo_root()
    cargo = os.environ.get("CARGO", "cargo")
    cmd = [cargo, "build", "--release", "--lib", "--message-format=json-render-diagnostics"]
    print(f"wsbroker build: {' '.join(cmd)} (in {root})", file=sys.stderr, flush=True)
    try:
        proc = subprocess.run(cmd, cwd=root, stdout=subprocess.PIPE, check=False)
    except FileNotFoundError:
        sys.exit(f"wsbroker build: '{cargo}' not found: install Rust (cargo) to build the library")
    if proc.returncode != 0:
        sys.exit(f"wsbroker build: cargo failed with exit code {proc.returncode}")
    found = None
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        target = msg.get("target") or {}
        if msg.get("reason") == "compiler-artifact" and target.get("name") == "wsbroker" \
                and "cdylib" in target.get("kind", []):
            for name in msg.get("filenames", []):
                if name.endswith(LIB_SUFFIXES):
                    found = Path(name)
    if found is None or not found.is_file():
        sys.exit("wsbroker build: cargo did not report the wsbroker cdylib")
    return found


class BuildPyWithLibrary(build_py):
    """build_py that also builds and bundles the shared library."""

    def run(self) -> None:
        super().run()
        library = build_library()
        dest = Path(self.build_lib) / "wsbroker" / library.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        self.copy_file(str(library), str(dest), preserve_mode=True)


class PlatformWheel(bdist_wheel):
    """Tags the wheel ``py3-none-<platform>`` and installs it as platform-specific."""

    def finalize_options(self) -> None:
        super().finalize_options()
        self.root_is_pure = False

    def get_tag(self):  # type: ignore[override]
        _, _, plat = super().get_tag()
        return "py3", "none", plat


class BinaryDistribution(Distribution):
    """The package contains a native library (so it is not pure)."""

    def has_ext_modules(self) -> bool:
        return True


setup(
    cmdclass={"build_py": BuildPyWithLibrary, "bdist_wheel": PlatformWheel},
    distclass=BinaryDistribution,
)
