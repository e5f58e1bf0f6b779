"""Shim package: `retalk.server` (and optionally `retalk.cli`) come from this
directory; every other submodule (`retalk.user`, `retalk.store`, `retalk.cli`
unless shimmed, ...) is the real installed retalk package, found after the
shim on __path__. The real package's __init__ runs in this namespace, so
`from retalk import User, PinMismatchError` behaves exactly as with 0.3.0."""
import importlib.machinery
import os
import sys

_SHIM_DIR = os.path.dirname(os.path.abspath(__file__))
_SHIM_ROOT = os.path.dirname(_SHIM_DIR)


def _real_package_dir():
    search = [p for p in sys.path
              if os.path.abspath(p or os.curdir) != _SHIM_ROOT]
    spec = importlib.machinery.PathFinder.find_spec("retalk", search)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("retalk shim: the real retalk package is not "
                          "installed on sys.path")
    return list(spec.submodule_search_locations)[0]


_REAL_DIR = _real_package_dir()
__path__ = [_SHIM_DIR, _REAL_DIR]

_real_init = os.path.join(_REAL_DIR, "__init__.py")
with open(_real_init, encoding="utf-8") as _f:
    exec(compile(_f.read(), _real_init, "exec"), globals())
