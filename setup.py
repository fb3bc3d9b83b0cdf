"""Builds Tracer's two C extensions in place (run: /usr/bin/python3 setup.py build_ext --inplace).

tracerlib._core   the recorder core that gdb and lldb load: links yajl only.
tracerlib._dwarf  the DWARF index (libdwarf, libelf), imported only by tracerlib/dwarf_worker.py
                  in a process of its own: gdb links elfutils' libdw, whose dwarf_* symbols
                  would shadow libdwarf's inside the debugger.
"""
import glob

from setuptools import Extension, setup

# Keep in step with DWARF_SRC in the Makefile.
DWARF_SRC = ["csrc/dwarf_index.c", "csrc/dwarf_walk.c", "csrc/dwarf_lines.c",
             "csrc/elf_plt_scan.c", "csrc/x86_insn.c", "csrc/access_scan.c",
             "csrc/dwarf_vars.c"]
DWARF_BINDING = ["csrc/module_dwarf.c"]
# A header change rebuilds an extension: without `depends` setuptools compares only the .c
# files with the built library, and a changed layout (the ring's) would keep old objects.
HEADERS = sorted(glob.glob("csrc/*.h"))
CFLAGS = ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fvisibility=hidden"]

core = Extension(
    "tracerlib._core",
    sources=sorted(set(glob.glob("csrc/*.c")) - set(DWARF_SRC) - set(DWARF_BINDING)),
    include_dirs=["csrc"],
    libraries=["yajl"],
    depends=HEADERS,
    extra_compile_args=CFLAGS,
)

dwarf = Extension(
    "tracerlib._dwarf",
    sources=DWARF_BINDING + DWARF_SRC,
    include_dirs=["csrc", "/usr/include/libdwarf"],
    libraries=["dwarf", "elf"],
    depends=HEADERS,
    extra_compile_args=CFLAGS,
)

setup(name="tracer", version="0.1", packages=["tracerlib"], ext_modules=[core, dwarf])
