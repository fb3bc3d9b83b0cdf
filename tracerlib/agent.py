"""Agent mode, the debugger's side: whether the agent can enter a program, and the shared
ring and environment of one agent-mode run. The agent itself is csrc/agent/ (built as
tracerlib/libtracer_agent.so); the ring's layout is csrc/shared_ring.h. docs/agent-mode.md
says how the two halves meet.
"""
import itertools
import os
import re
import struct

from . import _core, yields
from .procfs import vanished

LIBRARY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "libtracer_agent.so")
_RING_DIR = "/dev/shm"
_PT_INTERP = 3
_serial = itertools.count()
_STALE = re.compile(r"tracer-(\d+)-\d+(\.sites)?")
_swept = False


def sweep_stale_rings():
    """Removes rings a debugger left in /dev/shm when it died without closing them (killed,
    or ended by the hang watch): each holds up to ~40 MB, and a later debugger given the same
    pid (pid_max is 32768 here) could not create its own. Once per debugger: at that point a
    ring named after this pid is a dead process's."""
    global _swept
    if _swept:
        return
    _swept = True
    try:
        names = os.listdir(_RING_DIR)
    except OSError:
        return
    for name in names:
        m = _STALE.fullmatch(name)
        if m and (int(m.group(1)) == os.getpid() or vanished(int(m.group(1)))):
            try:
                os.unlink(os.path.join(_RING_DIR, name))
            except OSError:
                pass


def cannot_enter(program):
    """Why LD_PRELOAD cannot bring the agent into `program` (None when it can): a static
    binary has no dynamic loader to read it."""
    if not os.path.exists(LIBRARY):
        return f"the agent is not built ({LIBRARY}); run `make`"
    try:
        with open(program, "rb") as f:
            head = f.read(64)
            if head[:4] != b"\x7fELF" or head[4] != 2:
                return "not a 64-bit ELF program"
            phoff, = struct.unpack_from("<Q", head, 32)
            phentsize, phnum = struct.unpack_from("<HH", head, 54)
            f.seek(phoff)
            table = f.read(phentsize * min(phnum, 512))
    except (OSError, struct.error, IndexError) as e:
        return f"cannot read {program}: {e}"
    types = [struct.unpack_from("<I", table, i * phentsize)[0]
             for i in range(len(table) // max(phentsize, 1))]
    return None if _PT_INTERP in types else "a static program (no dynamic loader)"


def site_line(site):
    """A site as the agent reads it (csrc/agent/yield.c): CALL_PC RETURN_PC, and for a
    library's site its key and the library's file name (the agent finds the object holding
    a return address by that name)."""
    line = f"{site['call_pc']:#x} {site['return_pc']:#x}"
    if site.get("object"):
        line += f" {yields.site_key(site):#x} {os.path.basename(site['object'])}"
    return line + "\n"


class AgentRun:
    """The ring of one run and the environment that makes the program record into it."""

    def __init__(self, values):
        sweep_stale_rings()
        self.path = os.path.join(_RING_DIR, f"tracer-{os.getpid()}-{next(_serial)}")
        self.ring = _core.SharedRing.create(self.path, cap=values.cap, budget=values.budget,
                                            payload=values.payload)
        self.filters = values.filters()
        self.sites_path = None
        self.attached = False       # bound into a running process by `tracer attach`
        self.bound = 0              # the GOT entries it bound there

    def environment(self, policy=None, opts=None, sites=(), strategy=None):
        """Variables for the program (LD_PRELOAD is appended to the user's own); strategy
        overrides the policy's text (PCT adds its steps estimate)."""
        preload = os.environ.get("LD_PRELOAD", "")
        env = {"LD_PRELOAD": f"{preload}:{LIBRARY}" if preload else LIBRARY,
               "TRACER_RING": self.path,
               # the filters, checked by the settings; the agent parses them with the same C
               "TRACER_TRACE": self.filters["trace"], "TRACER_STATUS": self.filters["status"],
               "TRACER_ENDPOINT": self.filters["endpoint"]}
        if policy is not None:
            info = policy.info
            env["TRACER_YIELD"] = (f"{info['seed']}:{info['probability']}:"
                                   f"{strategy or info['strategy']}")
            env["TRACER_YIELD_CLASSES"] = opts.classes
            placed = [s for s in sites if not s.get("entry")]
            if placed:
                self.sites_path = self.path + ".sites"
                fd = os.open(self.sites_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.writelines(site_line(s) for s in placed)
                env["TRACER_YIELD_SITES"] = self.sites_path
        return env

    def absorb_into(self, session):
        """The program stopped for good: its events become the session's (frozen)."""
        self.ring.freeze()
        session.absorb(self.ring)

    def close(self):
        for path in (self.path, self.sites_path):
            if path:
                try:
                    os.unlink(path)
                except OSError:
                    pass
        self.ring.close()
