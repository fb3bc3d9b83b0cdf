"""Agent mode's part of a run, for the driver (tracerlib/driver.py): which mode a launch or
attach gets, the launch with the agent, its ring and the yield policy in the program's
environment (PCT: the steps estimate it is given), the agent entering and leaving an attached
process (attach_agent.py), and, before the report, the agent's events taken into the run with
their call sites named (PCT: the steps the run took, learned for the next).

The ring and the environment themselves are agent.py's; the yields are the driver's yielder's
(yield_breakpoints.py). Functions of what they are given: the driver keeps the state.
"""
import os

from . import agent, attach_agent, pct


def launch_mode(values, port, program=None):
    """agent or breakpoint for the next launch (or attach to `program`); auto falls back
    to breakpoints (and says so) where the agent cannot enter the program."""
    wanted = values.mode
    if wanted == "breakpoint":
        return "breakpoint"
    why = agent.cannot_enter(program or port.program())
    if why is None:
        return "agent"
    port.write(f"tracer: {why}: breakpoint mode covers it"
               + ("" if wanted == "auto" else " (tracer mode is agent)"), error=True)
    return "breakpoint"


def launch(port, run, values, yielder):
    """Starts the program of `run` with the agent, its ring and the yield policy in its
    environment (for this launch only) -> the port's Stop."""
    run.agent = agent.AgentRun(values)
    strategy = None
    if pct.is_pct(yielder.policy):
        run.pct_steps = yielder.pct_steps.for_next_run(yielder.policy)
        strategy = pct.strategy_text(yielder.policy, run.pct_steps)
    env = run.agent.environment(yielder.policy, yielder.opts, yielder.call_sites(), strategy)
    port.set_environment(env)
    try:
        return port.launch()
    finally:
        port.set_environment({name: os.environ.get(name) for name in env})


def enter(port, pid, values, yielder):
    """The agent into the attached process pid (attach_agent.py): its AgentRun, or None
    after one line saying why not (breakpoints cover it)."""
    ring = agent.AgentRun(values)
    try:
        env = ring.environment(None if pct.is_pct(yielder.policy) else yielder.policy,
                               yielder.opts, yielder.call_sites())
        ring.bound = attach_agent.enter(port, env)
        ring.attached = True
        return ring
    except (attach_agent.CallFailed, OSError, RuntimeError) as e:
        ring.close()
        port.write(f"tracer: the agent cannot enter process {pid}: {e}; "
                   "breakpoint mode covers it", error=True)
    return None


def leave(port, run):
    """Before the debugger lets an attached process go (detach, `tracer stop`): the
    agent's wrappers out of the program, recording stopped. Never raises. Returns the
    GOT entries restored, or None."""
    ring = run.agent if run is not None else None
    if ring is None or not ring.attached or run.pid not in port.live_pids():
        return None
    ring.attached = False
    try:
        return attach_agent.leave(port, run.pid)
    except Exception as e:              # noqa: BLE001 - the program must go on
        ring.ring.freeze()
        port.write(f"tracer: could not unbind the agent from process {run.pid} "
                   f"({e}); it stays loaded and records nothing more", error=True)
    return None


def settle(run, yielder, describe):
    """Before an agent-mode run's report (its yield record made): the program's events, with
    their call sites named by describe(pc) (the agent records return addresses only) while
    the debugger still knows the program's load addresses, and its crashes' frames."""
    run.take_agent_events()
    policy = yielder.policy
    if pct.is_pct(policy) and run.pct_steps and run.agent_pct:
        yielder.pct_steps.learn(pct.record(run.yield_info, policy, run.pct_steps,
                                           run.agent_pct))
    for pc in {ev["site"] for ev in run.session.events()} - set(run.sites):
        try:
            run.sites[pc] = describe(pc)
        except Exception:               # noqa: BLE001 - an unknown site stays unnamed
            run.sites[pc] = {"function": None, "file": None, "line": None}
    for pid, (_, pcs) in run.crash_pcs.items():
        if not run.same_image(pid):     # another program's addresses: left unnamed
            continue
        for i, pc in enumerate(pcs):    # frame 0 is the faulting pc, not a return
            try:
                run.crash_sites.setdefault(pc, describe(pc + (i == 0)))
            except Exception:           # noqa: BLE001
                pass
