"""Build hook of the wsbroker Python package (metadata is in pyproject.toml).

``build_py`` runs ``cargo build --release --lib`` in the wsbroker Cargo workspace and copies
the resulting shared library into the package, so the wheel is self-contained:

* the Cargo root is ``$WSBROKER_CARGO_ROOT``, else the nearest parent of this directory whose
  ``Cargo.toml`` is the ``wsbroker`` package (``bindings/python`` -> the repository root);
* ``$CARGO`` names the cargo binary (default ``cargo``); ``$CARGO_TARGET_DIR`` is honoured,
  since the library's path is read from cargo's own JSON messages.

Progress. A first build compiles ~250 crates (2-3 minutes on 2 cores). pip captures a build
backend's output and shows it only with ``-v``, so cargo's stderr goes to the terminal
(``/dev/tty``) when there is one: cargo then draws its own progress bar. Without a terminal
(CI) it goes to stderr, which ``pip -v`` shows. ``WSBROKER_BUILD_TTY=0`` turns the terminal
output off.

The bundled copy is stripped (``strip --strip-unneeded``; ``$STRIP`` names another strip,
``WSBROKER_STRIP=0`` keeps the symbols): the release profile keeps line tables for perf and
backtraces, which users of the wheel do not need. The file in ``target/`` is never touched,
and the repository's release profile is not changed (a profile override would rebuild every
crate).

The wheel is tagged for the platform (``py3-none-<platform>``): it carries a native library,
but no CPython extension, so one wheel fits every Python 3 on that platform. On Linux, when
``auditwheel`` is importable (it is a build requirement there), ``auditwheel show`` decides
which ``manylinux_X_Y`` policy the library satisfies (glibc symbol versions, only system
libraries linked) and the wheel is retagged to it; without auditwheel it stays
``linux_<arch>``. ``WSBROKER_AUDITWHEEL=0`` skips that step, ``=1`` makes it mandatory.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, List, Optional

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

try:  # setuptools >= 70.1 ships bdist_wheel itself
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # pragma: no cover - older setuptools with the wheel package
    from wheel.bdist_wheel import bdist_wheel  # type: ignore[no-redef]

HERE = Path(__file__).resolve().parent
LIB_SUFFIXES = (".so", ".dylib", ".dll")


def say(message: str, *streams: Optional[IO[str]]) -> None:
    """Prints a build message to stderr (pip's log) and to the terminal stream, if any (on a
    line of its own: pip's spinner leaves the cursor after "Building wheel ... -")."""
    print(f"wsbroker build: {message}", file=sys.stderr, flush=True)
    for stream in streams:
        if stream is not None and stream is not sys.stderr:
            print(f"\nwsbroker build: {message}", file=stream, flush=True)


def terminal() -> Optional[IO[str]]:
    """The user's terminal when pip hides our stderr (see the module docstring)."""
    if os.environ.get("WSBROKER_BUILD_TTY", "1") == "0" or sys.stderr.isatty():
        return None
    try:
        return open("/dev/tty", "w")  # noqa: SIM115 - closed by build_library
    except OSError:
        return None


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
    """Runs cargo (its progress on the terminal or stderr) and returns the built cdylib."""
    root = cargo_root()
    cargo = os.environ.get("CARGO", "cargo")
    cmd = [cargo, "build", "--release", "--lib", "--message-format=json-render-diagnostics"]
    tty = terminal()
    try:
        say(f"{' '.join(cmd)} (in {root}): compiling the Rust library; a first build takes "
            "a few minutes (about 2-3 on 2 cores), later ones seconds", tty)
        started = time.monotonic()
        try:
            # stdout: cargo's JSON messages (read below); stderr: its progress, for people.
            proc = subprocess.Popen(cmd, cwd=root, stdout=subprocess.PIPE, stderr=tty, text=True)
        except FileNotFoundError:
            sys.exit(f"wsbroker build: '{cargo}' not found: install Rust (cargo) to build the library")
        found = None
        assert proc.stdout is not None
        for line in proc.stdout:
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
        code = proc.wait()
        if code != 0:
            sys.exit(f"wsbroker build: cargo failed with exit code {code}")
        if found is None or not found.is_file():
            sys.exit("wsbroker build: cargo did not report the wsbroker cdylib")
        say(f"cargo done in {time.monotonic() - started:.0f} s: {found}", tty)
        return found
    finally:
        if tty is not None:
            tty.close()


def strip_library(path: Path) -> None:
    """Strips a copy of the library in place (a no-op with a warning when impossible)."""
    if os.environ.get("WSBROKER_STRIP", "1") == "0" or sys.platform == "win32":
        return
    strip = os.environ.get("STRIP", "strip")
    args = [strip, "-x", str(path)] if sys.platform == "darwin" else [strip, "--strip-unneeded", str(path)]
    before = path.stat().st_size
    try:
        subprocess.run(args, check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        say(f"warning: could not strip {path.name} ({e}); bundling it unstripped")
        return
    say(f"stripped {path.name}: {before / 1e6:.1f} MB -> {path.stat().st_size / 1e6:.1f} MB")


class BuildPyWithLibrary(build_py):
    """build_py that also builds and bundles the (stripped) shared library."""

    def run(self) -> None:
        # A reused build/ keeps modules that no longer exist (renamed or removed): start clean.
        shutil.rmtree(Path(self.build_lib) / "wsbroker", ignore_errors=True)
        super().run()
        library = build_library()
        dest = Path(self.build_lib) / "wsbroker" / library.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(library, dest)  # a real copy: target/ keeps its own file untouched
        shutil.copymode(library, dest)
        strip_library(dest)


def manylinux_tag(wheel: Path) -> Optional[str]:
    """The manylinux platform tag ``auditwheel show`` finds the wheel consistent with."""
    mode = os.environ.get("WSBROKER_AUDITWHEEL", "auto")
    if mode == "0" or not sys.platform.startswith("linux"):
        return None
    if importlib.util.find_spec("auditwheel") is None:
        if mode == "1":
            sys.exit("wsbroker build: WSBROKER_AUDITWHEEL=1 but auditwheel is not installed")
        say("auditwheel not installed: the wheel keeps its linux_* tag (pip install auditwheel for manylinux)")
        return None
    proc = subprocess.run([sys.executable, "-m", "auditwheel", "show", str(wheel)],
                          capture_output=True, text=True)
    found = re.search(r'consistent with the\s+following platform tag:\s+"([^"]+)"', proc.stdout)
    if proc.returncode != 0 or not found:
        message = f"auditwheel show failed ({proc.returncode}): {proc.stdout}{proc.stderr}"
        if mode == "1":
            sys.exit(f"wsbroker build: {message}")
        say(f"warning: {message}; the wheel keeps its linux_* tag")
        return None
    tag = found.group(1)
    return tag if tag.startswith("manylinux") else None


class PlatformWheel(bdist_wheel):
    """Tags the wheel ``py3-none-<platform>`` (manylinux where auditwheel says so)."""

    def finalize_options(self) -> None:
        super().finalize_options()
        self.root_is_pure = False

    def get_tag(self):  # type: ignore[override]
        _, _, plat = super().get_tag()
        return "py3", "none", plat

    def run(self) -> None:
        before = set(Path(self.dist_dir).glob("*.whl")) if Path(self.dist_dir).is_dir() else set()
        super().run()
        made: List[Path] = sorted(set(Path(self.dist_dir).glob("*.whl")) - before)
        for wheel in made:
            tag = manylinux_tag(wheel)
            if tag is None:
                continue
            # `wheel tags` (its command line is the public interface): renames the file and
            # rewrites the WHEEL metadata and its RECORD line.
            subprocess.run([sys.executable, "-m", "wheel", "tags", "--remove", "--platform-tag", tag, str(wheel)],
                           check=True, stdout=subprocess.DEVNULL)
            say(f"retagged {wheel.name} as {tag} (auditwheel show)")


class BinaryDistribution(Distribution):
    """The package contains a native library (so it is not pure)."""

    def has_ext_modules(self) -> bool:
        return True


setup(
    cmdclass={"build_py": BuildPyWithLibrary, "bdist_wheel": PlatformWheel},
    distclass=BinaryDistribution,
)
