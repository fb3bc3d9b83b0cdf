"""Agent mode for `tracer attach`: the agent enters a running process by inserted calls.

The process is stopped (attached). Its selected thread, stopped at a system call (where no
vector register is live, and the rest are saved and put back), is
made to call dlopen(agent, RTLD_NOW), then the agent's tracer_agent_attach(config) with the
settings launch would have put in the environment (csrc/agent/attach.c binds the wrappers
into the loaded objects' GOTs). Before the debugger lets the process go, an inserted call to
tracer_agent_detach() puts the GOT back. Each call goes the way yields go in breakpoint mode
(yields.call_frame: the registers and stack through the port's Context), returning to the
program's entry point, where a breakpoint of ours stops that thread only (the code at the
entry point never runs again once the program started; gdb returns there from its own
inferior calls).

A thread interrupted inside a system call would restart it when resumed: the kernel moves
its pc back over the `syscall` instruction. The inserted call cancels that (rax is not a
restart code any more), and putting the registers back redoes what the kernel would have
done: the pc on the `syscall` instruction, rax the call's number (from /proc, since lldb
cannot read orig_rax), so the program makes its call again as if it had never stopped.
"""
import os
import struct

from . import agent, elf_symbols, yields
from .port import FATAL, INTERRUPT, TIMEOUT

RTLD_NOW = 2
_AT_ENTRY = 9
_RESTART = {-512: None, -513: None, -514: None,    # ERESTARTSYS, NOINTR, NOHAND: same call
            -516: 219}                             # ERESTART_RESTARTBLOCK: restart_syscall
_STOPS_MAX = 200            # stops of other threads during one inserted call
_FAILURES = {-1: "the agent could not open the ring",
             -2: "the agent is already recording in it",
             -3: "the agent's configuration is too long",
             -4: "the agent could not find its own wrappers"}


class CallFailed(Exception):
    """An inserted call could not be made or failed; the message is one line."""


def _signed(value, bits=64):
    return value - (1 << bits) if value >> (bits - 1) else value


def entry_point(pid):
    """The program's entry point (AT_ENTRY of its auxiliary vector)."""
    try:
        with open(f"/proc/{pid}/auxv", "rb") as f:
            auxv = f.read()
    except OSError as e:
        raise CallFailed(f"cannot read /proc/{pid}/auxv: {e.strerror}") from None
    for i in range(0, len(auxv) - 15, 16):
        kind, value = struct.unpack_from("<QQ", auxv, i)
        if kind == _AT_ENTRY:
            return value
    raise CallFailed("the process has no entry point in its auxiliary vector")


def syscall_number(pid, tid):
    """The system call the stopped thread is inside, or None when it is in its own code."""
    try:
        with open(f"/proc/{pid}/task/{tid}/syscall") as f:
            word = f.read().split()[0]
    except (OSError, IndexError) as e:
        raise CallFailed(f"cannot read /proc/{pid}/task/{tid}/syscall: "
                         f"{getattr(e, 'strerror', e)}") from None
    return int(word) if word.lstrip("-").isdigit() and int(word) >= 0 else None


def _at_syscall(pid, pc):
    """The thread is about to make a system call (it was stopped just before one): every
    register it uses is an argument, saved and put back like the rest."""
    try:
        with open(f"/proc/{pid}/mem", "rb") as f:
            f.seek(pc)
            return f.read(2) == b"\x0f\x05"
    except (OSError, ValueError, OverflowError):
        return False


def call(port, target, args=(), data=b"", need_syscall=False):
    """The selected thread of the stopped process calls target(*args) and comes back with
    everything as it was; returns rax. An argument None stands for the address of `data`."""
    ctx = port.context()
    pid, tid = ctx.pid, ctx.tid
    regs = ctx.read_registers(yields.SAVED_REGISTERS)
    restore = dict(regs)
    number = syscall_number(pid, tid)
    rax = _signed(regs["rax"])
    if number is not None and rax in _RESTART:      # redo what the kernel would have done
        restore["rip"] -= 2
        restore["rax"] = _RESTART[rax] if _RESTART[rax] is not None else number
    elif need_syscall and number is None and not _at_syscall(pid, regs["rip"]):
        raise CallFailed("its selected thread is not at a system call (an inserted dlopen "
                         "could clobber the vector registers it is using)")
    back_at = entry_point(pid)
    at = yields.data_address(regs, data)
    writes, memory = yields.call_frame(regs, back_at, target,
                                       [at if a is None else a for a in args], data)
    writes = {"rax": 0, **writes}       # not a restart code: the kernel leaves the pc alone
    bp = port.break_return(ctx, back_at, lambda c: c.tid == tid)
    try:
        try:
            for address, blob in memory:
                ctx.write_memory(address, blob)
            ctx.write_registers(writes)
        except Exception as e:          # noqa: BLE001 - not started: all back as it was
            ctx.write_registers(restore)
            raise CallFailed(f"cannot set up an inserted call: {e}") from None
        back = _run_until_back(port, tid, back_at)
        result = back.read_registers(("rax",))["rax"]
        back.write_registers(restore)
    finally:
        port.delete(bp)
        port.run_ended()
    return result


def _run_until_back(port, tid, back_at):
    """Resumes the process until thread tid stops at back_at: its Context there."""
    for _ in range(_STOPS_MAX):
        stop = port.resume()
        if not port.live_pids():
            raise CallFailed("the process ended during an inserted call")
        ctx = port.context()
        if ctx.tid == tid and ctx.read_registers(("rip",))["rip"] == back_at:
            return ctx
        if stop.kind in (FATAL, INTERRUPT, TIMEOUT):
            raise CallFailed(f"the process stopped ({stop.signal or stop.kind}) during an "
                             "inserted call, left inside it")
    raise CallFailed("the inserted call did not come back")


def _library_address(pid, name):
    """Runtime address of the agent's function `name` in pid (its mapping from /proc)."""
    real = os.path.realpath(agent.LIBRARY)
    try:
        with open(f"/proc/{pid}/maps") as f:
            starts = [int(line.split("-", 1)[0], 16) for line in f
                      if line.rstrip("\n").endswith(real) and line.split()[2] == "00000000"]
    except OSError as e:
        raise CallFailed(f"cannot read /proc/{pid}/maps: {e.strerror}") from None
    values = elf_symbols.functions(agent.LIBRARY).get(name)
    if not starts or not values:
        raise CallFailed(f"the agent is not mapped in process {pid}")
    return min(starts) + values[0]


def config_text(environment):
    """The agent's settings as tracer_agent_attach reads them: NAME=VALUE, NUL-separated."""
    pairs = [f"{k}={v}" for k, v in environment.items() if k != "LD_PRELOAD" and v is not None]
    return "\0".join(pairs).encode() + b"\0\0"


def enter(port, environment):
    """Loads the agent into the stopped process and starts it with `environment` (what the
    launch would have set). Returns the number of GOT entries bound; raises CallFailed."""
    ctx = port.context()
    dlopen = ctx.symbol("dlopen")
    if not dlopen:
        raise CallFailed("no dlopen in the process")
    path = os.path.realpath(agent.LIBRARY).encode() + b"\0"
    if not call(port, dlopen, (None, RTLD_NOW), path, need_syscall=True):
        raise CallFailed("dlopen could not load the agent")
    bound = _signed(call(port, _library_address(ctx.pid, "tracer_agent_attach"), (None,),
                         config_text(environment)), 32)
    if bound < 0:
        raise CallFailed(_FAILURES.get(bound, f"the agent refused ({bound})"))
    return bound


def leave(port, pid):
    """Unbinds the agent (GOT back as the loader left it, nothing more recorded) while the
    process is stopped. Returns the number of entries restored; raises CallFailed."""
    return _signed(call(port, _library_address(pid, "tracer_agent_detach")), 32)
