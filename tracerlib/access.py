"""Shared-access sites: the instructions that load or store a global or static variable that
more than one thread can reach. Computed in the DWARF worker (dwarf_worker.py --access) from
what tracerlib._dwarf reads: the variables (DWARF, else the ELF symbol table) and what the
functions' code does (csrc/access_scan.c).

How the set is chosen (docs/guide.md, "Shared-access sites", says the same for users):
  1. Thread entries: main, and the start function of every pthread_create call, found in the
     code as the function address loaded into the third-argument register before the call.
     Where a call's start function cannot be seen (it comes from memory, a table, a
     parameter), every function whose address the program takes counts as an entry.
  2. What an entry reaches: the functions reachable from it by direct calls (and tail jumps).
  3. A variable is shared when functions reached from two different entries access it, or
     from one thread start function (a start function may run in several threads at once);
     and when the program writes it somewhere (data only ever read cannot race).
  4. Its sites: every instruction, in any function, that reads or writes it.
Not found: data reached through pointers (heap, a struct handed to the thread, a variable's
address passed to a function), accesses in code reached only through function pointers
other than thread starts (they are still listed as sites when they touch a shared variable,
but do not make a variable shared), thread-locals, and anything in other libraries.
"""
import bisect
import collections
import os

READ, WRITE = "read", "write"


class _Names:
    """Address -> variable name: DWARF variables first, then the ELF's data symbols for what
    DWARF does not place (clang's DW_OP_addrx, objects linked in without -g)."""

    def __init__(self, variables, objects):
        self.spans = {}
        for v in variables:
            if v["size"] and v["addr"] not in self.spans:
                name = f"{v['function']}::{v['name']}" if v["function"] else v["name"]
                self.spans[v["addr"]] = (v["addr"] + v["size"], name)
        self.starts = sorted(self.spans)
        extra = {addr: (addr + size, name.split("@")[0]) for addr, size, name in objects
                 if self.find(addr) is None}
        self.spans.update(extra)
        self.starts = sorted(self.spans)

    def find(self, addr):
        """(start, name) of the variable holding addr, or None."""
        i = bisect.bisect_right(self.starts, addr) - 1
        if i < 0:
            return None
        end, name = self.spans[self.starts[i]]
        return (self.starts[i], name) if addr < end else None


def _reach(graph, entry):
    seen, todo = {entry}, [entry]
    while todo:
        for callee in graph.get(todo.pop(), ()):
            if callee not in seen:
                seen.add(callee)
                todo.append(callee)
    return seen


def shared_sites(code, variables, main_low_pc):
    """(sites, summary) from DwarfIndex.code() and .variables(); main_low_pc: main's entry or
    None. Each site: caller, variable, access (read, write, read+write), file, line,
    call_pc (the instruction), caller_low_pc, module, kind "access"."""
    names = _Names(variables, code["objects"])
    graph = collections.defaultdict(set)
    for caller, _pc, callee in code["calls"]:
        graph[caller].add(callee)
    starts = {addr for _c, _pc, addr in code["threads"] if addr}
    unseen = sum(1 for _c, _pc, addr in code["threads"] if not addr)
    if unseen:
        starts |= {addr for _c, _pc, addr in code["taken"]}
    entries = set(starts) | ({main_low_pc} if main_low_pc else set())
    reached = {e: _reach(graph, e) for e in entries}

    by_var = collections.defaultdict(list)
    for a in code["accesses"]:
        var = names.find(a["addr"])
        if var is not None:
            by_var[var].append(a)
    shared = {}
    for var, accesses in by_var.items():
        if not any(WRITE in a["access"] for a in accesses):
            continue
        funcs = {a["caller_low_pc"] for a in accesses}
        touching = {e for e in entries if reached[e] & funcs}
        if len(touching) >= 2 or touching & starts:
            shared[var] = accesses
    sites = []
    for (_start, name), accesses in shared.items():
        for a in accesses:
            sites.append({"kind": "access", "caller": a["caller"], "callee": None,
                          "variable": name, "access": a["access"], "file": a["file"],
                          "line": a["line"], "call_pc": a["pc"], "return_pc": 0,
                          "caller_low_pc": a["caller_low_pc"], "module": a["module"],
                          "tail": False, "from_code": True, "inlined": False})
    sites.sort(key=lambda s: s["call_pc"])
    summary = {"entries": len(entries), "thread_starts": len(starts),
               "starts_unseen": unseen, "variables": len(shared),
               "undecoded": code["undecoded"], "truncated": code["truncated"]}
    return sites, summary


def is_access(site):
    return site.get("kind") == "access"


def table(sites):
    rows = [("function", "variable", "access", "file:line", "address")]
    for s in sites:
        where = f"{os.path.basename(s['file'])}:{s['line']}" if s["file"] else "?"
        rows.append((s["caller"] or "?", s["variable"], s["access"], where,
                     f"{s['call_pc']:#x}"))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines + [f"{len(sites)} shared-access sites"])
