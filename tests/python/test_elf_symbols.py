"""tracerlib.elf_symbols: the symbols gdb breakpoint locations are anchored on."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from tracerlib import elf_symbols, yields  # noqa: E402

SOURCE = """
namespace app { struct Lock { void Acquire(); }; void Lock::Acquire() {} }
static void helper(void) {}
int main() { app::Lock l; l.Acquire(); helper(); return 0; }
"""
TWIN = "static void helper(void) {}\nvoid call_twin(void) { helper(); }\n"


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    d = tmp_path_factory.mktemp("elf")
    (d / "a.cc").write_text(SOURCE)
    (d / "b.cc").write_text(TWIN)
    subprocess.run(["g++", "-g", "-O0", "-o", str(d / "prog"), str(d / "a.cc"),
                    str(d / "b.cc")], check=True)
    return str(d / "prog")


def nm(program):
    out = subprocess.run(["nm", program], capture_output=True, text=True, check=True).stdout
    return {line.split()[2]: int(line.split()[0], 16) for line in out.splitlines()
            if len(line.split()) == 3 and line.split()[1] in "tTW"}


def test_functions_match_nm(program):
    table, want = elf_symbols.functions(program), nm(program)
    for name in ("main", "_ZN3app4Lock7AcquireEv"):
        assert table[name] == [want[name]]
    assert len(table["_ZL6helperv"]) == 2, "two static helpers: one name, two addresses"


def test_anchor_prefers_a_unique_symbol_at_the_function(program):
    acquire = nm(program)["_ZN3app4Lock7AcquireEv"]
    assert elf_symbols.anchor(program, acquire + 4, acquire) == ("_ZN3app4Lock7AcquireEv", 4)
    site = {"caller": "Acquire", "call_pc": acquire + 4, "caller_low_pc": acquire}
    assert yields.site_location(site, program) == "*'_ZN3app4Lock7AcquireEv'+4"


def test_anchor_falls_back_to_main_for_an_ambiguous_name(program):
    helper = elf_symbols.functions(program)["_ZL6helperv"][0]
    main = nm(program)["main"]
    assert elf_symbols.anchor(program, helper + 1, helper) == ("main", helper + 1 - main)


def test_not_an_elf_file_has_no_symbols(tmp_path):
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x7fELF" + b"\x02\x01" + b"\xff" * 100)
    assert elf_symbols.functions(str(junk)) == {}
    assert elf_symbols.anchor(str(junk), 10, 5) is None
    assert elf_symbols.functions(str(tmp_path / "missing")) == {}
