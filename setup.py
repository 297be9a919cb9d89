"""Build of duohil's native core: one C extension, duohil.engines.builtin.native._core.

Everything else about the package is in pyproject.toml. The extension compiles against the unicorn
headers shipped in the unicorn wheel (pinned in [build-system] requires, so the headers are the ones
of the version duohil runs with) and links nothing from unicorn: it resolves the C API at run time on
the library the `unicorn` package loaded. The builtin engine requires it (the scheduler and both
cores' exception paths exist only in C). The build stays ``optional`` so that an install without a
C compiler or Python.h still succeeds for the other engines (renode, serial) and the tools; the
builtin engine then refuses to start with one line saying why (`duohil engines`), and
`ci/setup.sh` stops with that line.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from setuptools import Extension, setup

NATIVE = Path("duohil/engines/builtin/native")


def _unicorn_include() -> str | None:
    """The include directory of the unicorn wheel in the build environment, without importing it
    (importing would load libunicorn for nothing)."""
    spec = importlib.util.find_spec("unicorn")
    for loc in (spec.submodule_search_locations or []) if spec else []:
        inc = Path(loc) / "include"
        if (inc / "unicorn" / "unicorn.h").is_file():
            return str(inc)
    return None


# A compile that fails (optional=True) must not leave an older build of the core in place beside
# the sources (editable installs put it there): drop it first, so such an install says so.
for _old in NATIVE.glob("_core*.so"):
    _old.unlink()

ext_modules = []
_inc = _unicorn_include()
if _inc is None:
    print("duohil: no unicorn headers in the build environment; the native core is not built",
          file=sys.stderr)
else:
    ext_modules.append(Extension(
        "duohil.engines.builtin.native._core",
        # every C file of the folder is part of the core (sorted: the same build everywhere)
        sources=[str(p) for p in sorted(NATIVE.glob("*.c"))],
        depends=[str(p) for p in sorted(NATIVE.glob("*.h"))],
        include_dirs=[_inc],
        # the units call each other across files on every access (the bus -> a model's ops -> its
        # register decode): hidden visibility makes those direct calls instead of calls through
        # the PLT (only PyInit__core is exported), -flto lets the linker inline them
        extra_compile_args=["-O2", "-flto", "-fvisibility=hidden", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter",
                            "-Wno-missing-field-initializers", "-Wno-cast-function-type"],
        extra_link_args=["-O2", "-flto=auto"],
        libraries=["dl"],
        optional=True,          # a failed compile: the builtin engine says why, the install succeeds
    ))

setup(ext_modules=ext_modules)
