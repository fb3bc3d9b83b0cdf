"""The session's yields (a helper the Driver owns as `driver.yielder`): the policy and its
sites, their breakpoints, and the calls inserted at them - the yield hot path.

Placement: in breakpoint mode every yield site has a breakpoint; in agent mode only
shared-access sites (the agent yields before calls in-process, call_sites()). A site in one of
the program's shared libraries cannot always be placed before the library is loaded: the port
then returns None and the site waits in `pending` until the debugger reports a new object
(Driver.on_new_objects). A port whose library breakpoints sit at the process's addresses
(library_sites_follow_load False: gdb) has them removed when the process goes (a new launch,
an exec) and placed again when the library is loaded next.

The hot path: a thread at a site asks the policy; a yield is a call of sched_yield or usleep
inserted there (yields.insertion) - under PCT (agent mode), at a shared-access site, a call
of the agent's scheduling step (csrc/agent/access_step.c) at every hit - inside the
breakpoint's handler where the port allows it, else at the stop `tracer run` services
(service). The thread comes back through the site's breakpoint and gets its registers back;
one whose thread or image went away meanwhile is abandoned, never resumed at a stale pc.
"""
import os

from . import access, frontend, pct, yields

ACCESS_STEP = "tracer_agent_access_step"     # PCT's step at an access site (the agent's)


class YieldBreakpoints:
    """Owns every piece of yield state of one debugger session."""

    def __init__(self, port, symbol, on_site):
        self.port = port
        self._symbol = symbol         # (ctx, name) -> runtime address, the driver's cache
        self._on_site = on_site       # the sites' breakpoint handler (Driver.on_yield_site)
        self.policy = None            # _core.YieldPolicy while yields are on
        self.opts = None
        self.sites = []               # where yields go (breakpoints, or the agent's list)
        self.bps = {}                 # site key -> breakpoint
        self.pending = []             # sites waiting for their library
        self.bps_agent = False        # placed for agent mode: access sites only
        self.library_injected = 0     # this run's yields at library sites (breakpoint mode)
        self.access_budget = yields.AccessBudget()
        self.pct_steps = pct.Steps()  # PCT: the estimate of a run's scheduling points
        self.plans = {}               # tid -> (function, argument) to insert
        self.saved = {}               # tid -> (pid, registers saved before the inserted call)
        self.abandoned = 0            # inserted calls whose thread or image went away
        self.threads_seen = set()     # (pid, tid) announced to the policy

    # ================================================================ on and off
    def turn_on(self, policy, opts, sites, agent, live_pids):
        """`tracer yield on`: agent, the live run records itself (access sites only)."""
        self.turn_off()
        self.policy, self.opts, self.sites = policy, opts, sites
        self.place(True, agent=agent)
        self.threads_seen.clear()
        for pid in live_pids:
            self.announce(pid, pid)

    def turn_off(self):
        self.place(False)
        self.sites = []
        self.policy = None
        self.plans.clear()
        self.saved.clear()

    def call_sites(self):
        """The sites the agent yields before (in-process): all but shared-access ones."""
        return [s for s in self.sites if not access.is_access(s)]

    def info(self):
        """The report's `yield` record of the run so far."""
        return frontend.yield_info(self.policy, self.sites, self.opts if self.policy else None,
                                   len(self.access_budget.disabled), self.library_injected)

    def status(self):
        return frontend.yield_status_text(self.policy, self.sites,
                                          len(self.access_budget.disabled))

    # ================================================================ placement
    def place(self, wanted, agent=False):
        """Places the yield sites' breakpoints (wanted), or removes them all."""
        if wanted and self.policy is not None:
            if (self.bps or self.pending) and self.bps_agent == agent:
                return
            self.place(False)
            self.bps_agent = agent
            for site in self.sites:
                if not agent or access.is_access(site):
                    self._place_site(site)
        elif not wanted:
            for bp in self.bps.values():
                self.port.delete(bp)
            self.bps, self.pending = {}, []

    def _place_site(self, site):
        bp = self.port.break_site(site, lambda ctx, site=site: self._on_site(site, ctx))
        if bp is None:
            self.pending.append(site)
        else:
            self.bps[yields.site_key(site)] = bp

    def place_pending(self):
        """The debugger loaded objects (libraries): the breakpoints waiting for them."""
        if self.policy is not None and self.pending:
            pending, self.pending = self.pending, []
            for site in pending:
                self._place_site(site)

    def forget_library_sites(self):
        """The process is going (launch, exec): library breakpoints at its addresses go, to
        wait for the library again."""
        if self.port.library_sites_follow_load:
            return
        for site in self.sites:
            key = yields.site_key(site)
            if site.get("object") and key in self.bps:
                self.port.delete(self.bps.pop(key))
                self.pending.append(site)

    # ================================================================ runs and processes
    def new_launch(self):
        """A fresh process is coming: the decisions start again from the seed."""
        self.plans.clear()
        self.saved.clear()
        self.threads_seen.clear()
        self.library_injected = 0
        if self.access_budget.new_run():
            self.place(False)           # placed again, enabled, at the launch
        if self.policy is not None:
            self.policy.reseed(self.opts.seed)

    def forget_process(self, pid):
        """pid's image is gone (exec): its threads' inserted calls cannot come back."""
        for tid in [t for t, (p, _) in self.saved.items() if p == pid]:
            del self.saved[tid]
            self.abandoned += 1

    def announce(self, pid, tid):
        """The policy keys decisions on thread ordinals: announce a process's threads in
        creation order (ascending tids), the same way under every debugger."""
        if (pid, tid) in self.threads_seen or self.policy is None:
            return
        try:
            tids = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
        except OSError:
            tids = [tid]
        for t in tids if tid in tids else tids + [tid]:
            if (pid, t) not in self.threads_seen:
                self.threads_seen.add((pid, t))
                self.policy.thread_seen(pid, t)

    # ================================================================ hot path
    def at_site(self, site, ctx, driving):
        """A thread is before an instrumented call (driving: `tracer run` drives). The policy
        decides; the call is inserted here when the port allows it, else at service (True:
        stop for it). Raises on trouble: the driver's handler says it once."""
        if self.policy is None:
            return False
        in_callback = self.port.yields_in_callback
        if not (in_callback or driving):
            return False
        tid = ctx.tid
        if tid in self.saved:           # back from the inserted call
            return self._undo(ctx) if in_callback else True
        if tid in self.plans:           # a re-reported stop
            return True
        key = yields.site_key(site)
        if access.is_access(site) and not self._within_budget(key):
            return False
        self.announce(ctx.pid, tid)
        plan = self._plan(ctx.pid, tid, key)
        if plan is None:
            return False
        self.library_injected += bool(site.get("object"))
        if in_callback:
            self._insert(ctx, plan)
            return False
        self.plans[tid] = plan
        return True

    def _plan(self, pid, tid, key):
        """What the thread calls before the site, or None. Under PCT the agent decides, at
        every hit: the debugger only reaches access sites (calls are the agent's own)."""
        if pct.is_pct(self.policy):
            return (ACCESS_STEP, 0)
        us = self.policy.decide(pid, tid, key)
        if us is None:
            return None
        return ("usleep", us) if us else ("sched_yield", 0)

    def _within_budget(self, key):
        """A hot access site is perturbed less and less, then its breakpoint is disabled -
        but only while no thread is inside an inserted call (it comes back through a
        breakpoint at its site to get its registers back)."""
        verdict = self.access_budget.hit(key)
        if verdict == yields.AccessBudget.DISABLE:
            if not (self.saved or self.plans) and key in self.bps:
                self.port.disable(self.bps[key])
                self.access_budget.disabled.add(key)
            return False
        return verdict == yields.AccessBudget.DECIDE

    def service(self):
        """Stop OURS: insert, or undo, the yield of the selected thread. A thread that died
        or a process that exec'd meanwhile abandons its yield: never a resume at a stale pc."""
        ctx = self.port.context()
        try:
            if ctx.tid in self.saved:
                self._undo(ctx)
                return
            plan = self.plans.pop(ctx.tid, None)
            if plan is not None:
                self._insert(ctx, plan)
        except Exception:               # noqa: BLE001 - the thread is gone: nothing to undo
            self.saved.pop(ctx.tid, None)
            self.plans.pop(ctx.tid, None)
            self.abandoned += 1

    def _insert(self, ctx, plan):
        function, argument = plan
        target = self._symbol(ctx, function)
        if target is None:
            return
        regs = ctx.read_registers(yields.SAVED_REGISTERS)
        writes, (address, data) = yields.insertion(regs, regs["rip"], target, argument)
        ctx.write_memory(address, data)
        ctx.write_registers(writes)
        self.saved[ctx.tid] = (ctx.pid, regs)

    def _undo(self, ctx):
        _, regs = self.saved.pop(ctx.tid)
        ctx.write_registers(regs)
        return False
