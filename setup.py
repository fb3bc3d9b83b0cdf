"""Builds the recorder core as tracerlib/_core (run: /usr/bin/python3 setup.py build_ext --inplace)."""
import glob

from setuptools import Extension, setup

core = Extension(
    "tracerlib._core",
    sources=sorted(glob.glob("csrc/*.c")),
    include_dirs=["csrc", "/usr/include/libdwarf"],
    libraries=["dwarf", "elf", "yajl"],
    extra_compile_args=["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter",
                        "-fvisibility=hidden"],
)

setup(name="tracer", version="0.1", packages=["tracerlib"], ext_modules=[core])
