"""The program's own shared libraries: which objects besides the program hold yield sites.

A library is the program's OWN when the dynamic loader would find it outside the system's
library directories (SYSTEM_DIRS: /lib, /usr/lib and their 32/64-bit and multiarch
variants): next to the program through its RUNPATH/RPATH (`$ORIGIN`...), in
LD_LIBRARY_PATH, under /usr/local/lib or /opt. libc, libstdc++ and the other system
libraries are not (their calls into each other are not the program's). The set is read from
the files before the run - the program's DT_NEEDED, then those of its own libraries,
breadth-first, each resolved as ld.so does - so that breakpoints can be placed before any
code runs. A library the program dlopen()s is not in it (name it with `--module PATH`).
"""
import glob
import mmap
import os
import struct

SYSTEM_DIRS = ("/lib", "/lib32", "/lib64", "/libx32", "/usr/lib", "/usr/lib32", "/usr/lib64",
               "/usr/libx32")
OWN_MAX = 64                    # own libraries indexed at most (a bound on the walk)
_DT_NEEDED, _DT_RPATH, _DT_RUNPATH = 1, 15, 29
_SHT_DYNAMIC = 6
_cache = {}


def dynamic(path):
    """(needed names, rpath dirs, runpath dirs) of an ELF file, `$ORIGIN` expanded; empty
    when it is not a readable 64-bit little-endian ELF file or has no dynamic section."""
    try:
        key = (path, os.stat(path).st_mtime_ns)
    except OSError:
        return [], [], []
    if key not in _cache:
        if len(_cache) > 256:
            _cache.clear()
        try:
            _cache[key] = _read_dynamic(path)
        except (OSError, ValueError, struct.error, IndexError):
            _cache[key] = [], [], []
    return _cache[key]


def _read_dynamic(path):
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return _parse_dynamic(path, data)


def _parse_dynamic(path, data):
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return [], [], []
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize)
                for i in range(min(shnum, 4096))]
    origin = os.path.dirname(os.path.realpath(path))
    needed, rpath, runpath = [], [], []
    for _, kind, _, _, offset, size, link, _, _, _ in sections:
        if kind != _SHT_DYNAMIC:
            continue
        strtab = sections[link][4]
        for i in range(size // 16):
            tag, value = struct.unpack_from("<qQ", data, offset + i * 16)
            if tag == 0:
                break
            if tag not in (_DT_NEEDED, _DT_RPATH, _DT_RUNPATH):
                continue
            end = data.find(b"\0", strtab + value)
            if end < 0:
                raise ValueError("a dynamic string runs off the file")
            text = data[strtab + value:end].decode("utf-8", "replace")
            if tag == _DT_NEEDED:
                needed.append(text)
            else:
                dirs = [d.replace("$ORIGIN", origin).replace("${ORIGIN}", origin)
                        for d in text.split(":") if d]
                (rpath if tag == _DT_RPATH else runpath).extend(dirs)
    return needed, rpath, runpath


def _configured_dirs():
    """The system's search directories (ld.so.conf's, then the defaults)."""
    dirs = []
    for conf in sorted(glob.glob("/etc/ld.so.conf.d/*.conf")):
        try:
            with open(conf) as f:
                dirs += [line.strip() for line in f
                         if line.strip().startswith("/") and not line.startswith("include")]
        except OSError:
            pass
    return dirs + ["/lib64", "/usr/lib64", "/lib", "/usr/lib"]


def resolve(name, rpath, runpath):
    """The file ld.so would load for DT_NEEDED `name` (None if none is found): RPATH when
    there is no RUNPATH, LD_LIBRARY_PATH, RUNPATH, the system directories."""
    if "/" in name:
        return os.path.realpath(name) if os.path.isfile(name) else None
    env = [d for d in os.environ.get("LD_LIBRARY_PATH", "").split(":") if d]
    for d in ([] if runpath else rpath) + env + runpath + _configured_dirs():
        candidate = os.path.join(d, name)
        if os.path.isfile(candidate):
            return os.path.realpath(candidate)
    return None


def is_system(path):
    real = os.path.realpath(path)
    return any(real == d or real.startswith(d + "/") for d in SYSTEM_DIRS)


def dependencies(program, own_only=True):
    """The libraries `program` loads at start, breadth-first (real paths, at most OWN_MAX):
    its own ones only (the walk does not go into system libraries), or with own_only=False
    the system ones it needs directly or through its own libraries as well."""
    found, queue, seen = [], [program], {os.path.realpath(program)}
    while queue and len(found) < OWN_MAX:
        needed, rpath, runpath = dynamic(queue.pop(0))
        for name in needed:
            path = resolve(name, rpath, runpath)
            if path is None or path in seen:
                continue
            seen.add(path)
            if is_system(path):
                if not own_only:
                    found.append(path)
                continue
            found.append(path)
            queue.append(path)
    return found[:OWN_MAX]


def matches(path, name):
    """Whether `--module NAME` names the library at `path`: its path, its file name, or
    that name without its version suffix or `lib` prefix (libfoo.so.1: libfoo.so, libfoo,
    foo)."""
    if name == path or "/" in name and os.path.realpath(name) == os.path.realpath(path):
        return True
    base = os.path.basename(path)
    stem = base.split(".so")[0]
    return name in (base, stem + ".so", stem, stem.removeprefix("lib"))


def load_bias(pid, path):
    """Where `path` is loaded in process pid: its load address minus its file addresses
    (from /proc/PID/maps and its first PT_LOAD), or None when it is not mapped there."""
    real = os.path.realpath(path)
    try:
        with open(f"/proc/{pid}/maps") as f:
            for line in f:
                fields = line.split(None, 5)
                if len(fields) == 6 and fields[5].strip() == real and int(fields[2], 16) == 0:
                    return int(fields[0].split("-")[0], 16) - _first_load_vaddr(real)
    except (OSError, ValueError):
        pass
    return None


def _first_load_vaddr(path):
    with open(path, "rb") as f:
        head = f.read(64)
        phoff, = struct.unpack_from("<Q", head, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
        f.seek(phoff)
        table = f.read(phentsize * min(phnum, 512))
    for i in range(len(table) // max(phentsize, 1)):
        kind, _, offset, vaddr = struct.unpack_from("<IIQQ", table, i * phentsize)
        if kind == 1 and offset == 0:       # PT_LOAD holding the file's start
            return vaddr & ~0xFFF
    return 0
