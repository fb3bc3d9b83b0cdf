"""The driver's yield breakpoints (a Driver mixin): which sites get one, and when.

In breakpoint mode every yield site has one; in agent mode only shared-access sites (the
agent yields before calls in-process). A site in one of the program's shared libraries
cannot always be placed before the library is loaded: the port then returns None and the
site waits in `yield_pending` until the debugger reports a new object (Driver.
on_new_objects). A port whose library breakpoints sit at the process's addresses
(library_sites_follow_load False: gdb) has them removed when the process goes (a new launch,
an exec) and placed again when the library is loaded next.
"""
from . import access, yields


class YieldBreakpoints:
    def _yield_breakpoints(self, wanted, agent=False):
        """Places the yield sites' breakpoints (wanted), or removes them all."""
        if wanted and self.policy is not None:
            if (self.yield_bps or self.yield_pending) and self.yield_bps_agent == agent:
                return
            self._yield_breakpoints(False)
            self.yield_bps_agent = agent
            for site in self.yield_sites:
                if not agent or access.is_access(site):
                    self._place_site(site)
        elif not wanted:
            for bp in self.yield_bps.values():
                self.port.delete(bp)
            self.yield_bps, self.yield_pending = {}, []

    def _place_site(self, site):
        bp = self.port.break_site(site, lambda ctx, site=site: self.on_yield_site(site, ctx))
        if bp is None:
            self.yield_pending.append(site)
        else:
            self.yield_bps[yields.site_key(site)] = bp

    def on_new_objects(self):
        """The debugger loaded objects (libraries): the breakpoints waiting for them."""
        self.place_entry_breakpoints()
        if self.policy is not None and self.yield_pending:
            pending, self.yield_pending = self.yield_pending, []
            for site in pending:
                self._place_site(site)

    def _forget_library_sites(self):
        """The process is going (launch, exec): library breakpoints at its addresses go, to
        wait for the library again."""
        if self.port.library_sites_follow_load:
            return
        for site in self.yield_sites:
            key = yields.site_key(site)
            if site.get("object") and key in self.yield_bps:
                self.port.delete(self.yield_bps.pop(key))
                self.yield_pending.append(site)
