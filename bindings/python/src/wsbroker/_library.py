"""Finding, loading and checking the shared library; :data:`lib` is the loaded one.

At import the library is located (``$WSBROKER_LIBRARY`` first, else the copy bundled next to
this file), every function of :data:`wsbroker._ffi.FUNCTIONS` is bound with explicit
``restype``/``argtypes`` (so a pointer result is never truncated to the default ``int``), and
the ABI version and struct sizes are compared with the library's own: a stale or foreign
library fails here, with its path in the message, not later with corrupted memory.
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path
from typing import Optional

from . import _ffi

#: Environment variable naming the shared library to load instead of the bundled copy.
LIBRARY_ENV = "WSBROKER_LIBRARY"


def library_filename() -> str:
    """File name of the shared library on this platform."""
    if sys.platform == "darwin":
        return "libwsbroker.dylib"
    if sys.platform == "win32":
        return "wsbroker.dll"
    return "libwsbroker.so"


def library_path() -> Path:
    """Where the library is loaded from: ``$WSBROKER_LIBRARY``, else the bundled copy."""
    override = os.environ.get(LIBRARY_ENV)
    if override:
        return Path(override)
    return Path(__file__).resolve().parent / library_filename()


class LibraryError(ImportError):
    """The shared library could not be loaded or does not match this binding."""


def _bind(lib: ctypes.CDLL, path: Path) -> None:
    for name, (restype, argtypes) in _ffi.FUNCTIONS.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            raise LibraryError(
                f"wsbroker: {path} does not export {name}; it is not a wsbroker C ABI "
                f"v{_ffi.ABI_VERSION} library (rebuild it, or fix {LIBRARY_ENV})"
            ) from None
        fn.restype = restype
        fn.argtypes = argtypes
    for name, (restype, argtypes) in _ffi.OPTIONAL_FUNCTIONS.items():
        fn = getattr(lib, name, None)
        if fn is not None:
            fn.restype = restype
            fn.argtypes = argtypes


def _check(lib: ctypes.CDLL, path: Path) -> None:
    version = lib.wsb_abi_version()
    if version != _ffi.ABI_VERSION:
        raise LibraryError(
            f"wsbroker: {path} has C ABI version {version}, this binding needs {_ffi.ABI_VERSION}"
        )
    for cname, struct in _ffi.STRUCTS.items():
        # Asked of the library itself; the C layout is the fallback of a library that
        # predates wsb_struct_size (it returns 0 for an unknown struct).
        want = lib.wsb_struct_size(_ffi.STRUCT_IDS[cname]) or _ffi.C_LAYOUT_SIZEOF[cname]
        have = ctypes.sizeof(struct)
        if have != want:
            raise LibraryError(
                f"wsbroker: sizeof({cname}) is {want} in the C ABI of {path} "
                f"but the ctypes declaration has {have}"
            )


def load(path: Optional[Path] = None) -> ctypes.CDLL:
    """Loads, binds and checks the library (``path`` defaults to :func:`library_path`)."""
    path = path or library_path()
    if not path.exists():
        hint = (
            f"{LIBRARY_ENV} points to a missing file"
            if os.environ.get(LIBRARY_ENV)
            else "reinstall the package (pip install ./bindings/python builds it with cargo) "
            f"or set {LIBRARY_ENV}"
        )
        raise LibraryError(f"wsbroker: shared library not found: {path} ({hint})")
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as e:
        raise LibraryError(f"wsbroker: cannot load the shared library {path}: {e}") from e
    _bind(lib, path)
    _check(lib, path)
    return lib


#: The loaded library (bound and checked).
lib = load()
#: Where it was loaded from.
LIBRARY_PATH = library_path()
