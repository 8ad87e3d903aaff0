"""The installed wheel (issue 18, item 6): a platform wheel, manylinux-tagged on Linux when
auditwheel was there at build time, carrying a stripped library that still exports the ABI.

These check the package as pip installed it, so they are skipped when ``WSBROKER_LIBRARY``
points the binding at another library (a development run from the source tree).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import sys

import pytest

import wsbroker
from wsbroker import _ffi, _library

pytestmark = pytest.mark.skipif(bool(os.environ.get(_library.LIBRARY_ENV)),
                                reason="WSBROKER_LIBRARY overrides the bundled library")


def _wheel_tags() -> list:
    dist = importlib.metadata.distribution("wsbroker")
    text = dist.read_text("WHEEL") or ""
    assert "Root-Is-Purelib: false" in text, text
    return [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Tag:")]


def test_the_wheel_is_a_platform_wheel() -> None:
    tags = _wheel_tags()
    assert tags and all(t.startswith("py3-none-") and not t.endswith("-any") for t in tags), tags
    if sys.platform.startswith("linux") and importlib.util.find_spec("auditwheel") is not None:
        assert any("-manylinux_" in t for t in tags), tags


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ELF check")
def test_the_bundled_library_is_stripped_and_exports_the_abi() -> None:
    elffile = pytest.importorskip("elftools.elf.elffile")
    path = wsbroker.LIBRARY_PATH
    assert path.parent == __import__("pathlib").Path(wsbroker.__file__).resolve().parent
    with open(path, "rb") as f:
        elf = elffile.ELFFile(f)
        sections = [s.name for s in elf.iter_sections()]
        assert not [s for s in sections if s.startswith(".debug")], sections
        assert ".symtab" not in sections, "static symbol table left in"
        dynsym = elf.get_section_by_name(".dynsym")
        exported = {s.name for s in dynsym.iter_symbols() if s["st_shndx"] != "SHN_UNDEF"}
    missing = sorted(set(_ffi.FUNCTIONS) - exported)
    assert not missing, f"stripping removed exports: {missing}"
    assert path.stat().st_size < 16 << 20, f"{path.stat().st_size} bytes: not stripped?"
