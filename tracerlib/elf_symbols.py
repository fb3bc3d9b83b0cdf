"""Function symbols of an ELF file: names a debugger can look up for a code address.

DWARF names a C++ member function by its short name ("Acquire"), which gdb cannot resolve in
an expression, and two files may each have a static function of the same name. A breakpoint
location made of a symbol named once in the ELF symbol table (the mangled name for C++) plus
an offset finds the one address intended, and gdb relocates it with the program.
"""
import mmap
import os
import struct

_SHT_SYMTAB, _SHT_DYNSYM, _STT_FUNC = 2, 11, 2
_SYMBOLS_MAX = 4_000_000            # bound on a hostile or enormous table
_cache = {}


def functions(path):
    """{name: [addresses]} of the function symbols of `path` ({} if it is not a readable
    64-bit little-endian ELF file). Cached per file and modification time."""
    return _tables(path)[0]


def _tables(path):
    """(functions, anchors) of `path`, cached: anchors maps an address to the name a
    location takes there, one that stands for that address only (a mangled C++ name first),
    so that each site costs one lookup, not a pass over the symbol table."""
    try:
        key = (path, os.stat(path).st_mtime_ns)
    except OSError:
        return {}, {}
    if key not in _cache:
        _cache.clear()
        try:
            names = _read(path)
        except (OSError, ValueError, OverflowError, struct.error, IndexError):
            names = {}
        anchors = {}
        for name in sorted((n for n, values in names.items() if len(values) == 1),
                           key=lambda n: (not n.startswith("_Z"), n)):
            anchors.setdefault(names[name][0], name)
        _cache[key] = names, anchors
    return _cache[key]


def _read(path):
    names = {}
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        if m[:4] != b"\x7fELF" or m[4] != 2 or m[5] != 1:
            return names
        shoff, = struct.unpack_from("<Q", m, 0x28)
        shentsize, shnum = struct.unpack_from("<HH", m, 0x3A)
        sections = [struct.unpack_from("<IIQQQQIIQQ", m, shoff + i * shentsize)
                    for i in range(shnum)]
        tables = [s for s in sections if s[1] == _SHT_SYMTAB] or \
                 [s for s in sections if s[1] == _SHT_DYNSYM]
        for _, _, _, _, offset, size, link, _, _, entsize in tables:
            strtab = sections[link]
            str_off, str_end = strtab[4], strtab[4] + strtab[5]
            for i in range(min(size // max(entsize, 24), _SYMBOLS_MAX)):
                st_name, st_info, _, shndx, value, _ = struct.unpack_from(
                    "<IBBHQQ", m, offset + i * entsize)
                if st_info & 0xF != _STT_FUNC or not shndx or not value:
                    continue
                end = m.find(b"\0", str_off + st_name, str_end)
                name = m[str_off + st_name:end].decode("utf-8", "replace") if end > 0 else ""
                if name:
                    names.setdefault(name, [])
                    if value not in names[name]:
                        names[name].append(value)
    return names


def anchor(path, address, near):
    """(symbol, address - its value) for a breakpoint at file address `address`: a function
    symbol whose name stands for one address only, taken at `near` (the enclosing function's
    start) if one is there, else `main`. None when neither exists."""
    table, anchors = _tables(path)
    if near in anchors:
        return anchors[near], address - near
    if table.get("main") and len(table["main"]) == 1:
        return "main", address - table["main"][0]
    return None
