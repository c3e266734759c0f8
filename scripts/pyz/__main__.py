"""nodedoc in one file for the node's own Python: ``python3 nodedoc.pyz [command] ...``.

The archive carries nodedoc and its pure-Python dependencies at its top (imported from the zip as they
are), and the compiled ones (grpcio, protobuf, psutil) once per interpreter and machine under
``_native/cp3X-MACHINE/``. This file picks the set for the running interpreter, puts it on the import path,
and loads each compiled extension from memory (a memfd), so nothing is written to the node's disks.
It runs on every Python the archive was built for, and says so plainly on any other.
"""

import importlib.abc
import importlib.machinery
import importlib.util
import os
import platform
import sys
import zipfile

ARCHIVE = os.path.dirname(os.path.abspath(__file__))
NATIVE = "_native"
EXIT_CANNOT_RUN = 3


def _fail(message):
    sys.stderr.write("nodedoc: " + message + "\n")
    sys.exit(EXIT_CANNOT_RUN)


class MemoryExtensionFinder(importlib.abc.MetaPathFinder):
    """Finds ``pkg.mod`` as ``PREFIX/pkg/mod<suffix>`` in the archive and loads it from a memfd."""

    def __init__(self, archive, prefix):
        self.archive = archive
        self.prefix = prefix
        self.members = set(archive.namelist())
        self.keep = []  # the memfds stay open for the life of the process

    def find_spec(self, fullname, path=None, target=None):
        base = self.prefix + fullname.replace(".", "/")
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            if base + suffix in self.members:
                location = self._in_memory(fullname, self.archive.read(base + suffix))
                loader = importlib.machinery.ExtensionFileLoader(fullname, location)
                return importlib.util.spec_from_file_location(fullname, location, loader=loader)
        return None

    def _in_memory(self, name, data):
        fd = os.memfd_create(name)
        self.keep.append(fd)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        return "/proc/self/fd/%d" % fd


def _native_tag():
    return "cp%d%d-%s" % (sys.version_info[0], sys.version_info[1], platform.machine())


def _check_libc():
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError):
        libc = ""
    if not libc.startswith("glibc "):
        _fail(
            "nodedoc.pyz needs a glibc-based Linux (glibc 2.17 or newer); this system's C library is not glibc"
        )
    major, minor = (int(x) for x in libc.split()[1].split(".")[:2])
    if (major, minor) < (2, 17):
        _fail("nodedoc.pyz needs glibc 2.17 or newer; this system has %s" % libc)


def _setup():
    if sys.implementation.name != "cpython":
        _fail("nodedoc.pyz runs on CPython; this is %s" % sys.implementation.name)
    _check_libc()
    archive = zipfile.ZipFile(ARCHIVE)
    tag = _native_tag()
    prefix = "%s/%s/" % (NATIVE, tag)
    if not any(name.startswith(prefix) for name in archive.namelist()):
        built = sorted(
            {n.split("/")[1] for n in archive.namelist() if n.startswith(NATIVE + "/") and n.count("/") > 1}
        )
        _fail(
            "nodedoc.pyz has no compiled parts for CPython %d.%d on %s (it carries: %s)"
            % (sys.version_info[0], sys.version_info[1], platform.machine(), ", ".join(built))
        )
    if not hasattr(os, "memfd_create"):
        _fail("nodedoc.pyz loads its compiled parts from memory and needs os.memfd_create (Linux 3.17+)")
    sys.path.insert(1, os.path.join(ARCHIVE, NATIVE, tag))
    sys.meta_path.insert(0, MemoryExtensionFinder(archive, prefix))
    if sys.version_info < (3, 10):
        _preload(archive, "probes")


def _preload(archive, package):
    """Import every module of ``package`` now, on this thread. Before 3.10 zipimport loads through the old
    load_module path, which does not mark a module as still initialising: a probe thread importing a module
    another probe thread is halfway through gets "cannot import name". Loaded up front, nothing races."""
    names = sorted(
        n[: -len(".py")].replace("/", ".").replace(".__init__", "")
        for n in archive.namelist()
        if n.startswith(package + "/") and n.endswith(".py") and not n.endswith("/regenerate.py")
    )
    for name in names:
        importlib.import_module(name)


def main():
    _setup()
    from tui.cli import main as nodedoc

    sys.argv[0] = "nodedoc"
    return nodedoc()


if __name__ == "__main__":
    sys.exit(main())
