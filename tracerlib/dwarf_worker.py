"""Indexes a program's DWARF in a separate process and prints it as JSON: its call sites, or
with --access its shared-access sites (tracerlib/access.py).

Why a process: gdb links elfutils' libdw, whose exported functions have the same names as
libdwarf's (dwarf_tag, dwarf_attr, dwarf_child...). Inside gdb, the dynamic linker binds our
libdwarf calls - and libdwarf's own internal ones - to libdw's, which take other arguments:
the index comes out empty or the call crashes the user's debugger. Out of process, libdwarf
is itself, and a malformed binary cannot take the debugger down either. For the same reason
the index is an extension of its own, tracerlib._dwarf: tracerlib._core, which the debuggers
load, links neither libdwarf nor libelf. Import _dwarf here and nowhere inside a debugger.

    /usr/bin/python3 -m tracerlib.dwarf_worker [--access] PROGRAM
"""
import json
import sys

from . import _dwarf, access


def index(path):
    ix = _dwarf.DwarfIndex(path)
    return {"path": path, "has_debug_info": ix.has_debug_info, "units": ix.units(),
            "sites": ix.sites(scan=path)}


def shared_access(path):
    ix = _dwarf.DwarfIndex(path)
    main = ix.function("main")
    sites, summary = access.shared_sites(ix.code(path), ix.variables(),
                                         main["low_pc"] if main else None)
    return {"path": path, "has_debug_info": ix.has_debug_info, "sites": sites,
            "summary": summary}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    what = index
    if argv[:1] == ["--access"]:
        what, argv = shared_access, argv[1:]
    if len(argv) != 1:
        print("usage: python3 -m tracerlib.dwarf_worker [--access] PROGRAM", file=sys.stderr)
        return 2
    try:
        result = what(argv[0])
    except (OSError, ValueError) as e:
        print(json.dumps({"error": str(e)}))
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
