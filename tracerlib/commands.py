"""The `tracer` commands (run, start, stop, attach, status, show, snapshot, export, sites,
yield, hunt, replay, settings) and their table with help, for both ports.

A mixin of the Driver (tracerlib/driver.py): each command reads and changes the driver's
state and calls its run machinery (run_once, arm, disarm, _finish...); the state machine
itself stays there. Every command returns text or raises TracerError (one line).
"""
from . import (_core, agent, agent_mode, coverage, export, frontend, hunt, hunt_mix, pct,
               replay, result_file, settings, yields)
from .port import wait_for
from .run import TracerError

CATALOGUE = _core.catalogue()
_DETACH_SECONDS = 3.0           # the longest a detach may take to show (lldb)


class Commands:
    """The driver's commands (mixed into Driver)."""

    # ================================================================ commands
    def cmd_run(self, args):
        run = self.run_once(args)
        if run is None:             # stopped at your own breakpoint, or interrupted
            return self.port.stopped_text()
        if not run.disturbed:       # a run the debugger failed under: Tracer's error
            self.verdict = ("failed" if run.failed else "passed", run.report_path)
        if run.failed or run.disturbed:
            raise TracerError(run.outcome().removeprefix("tracer: "))
        return run.outcome()

    def cmd_start(self, arg):
        if self.armed:
            raise TracerError("already tracing; `tracer stop` first")
        live = self.port.live_pids()
        if not self.port.program() and not live:
            raise TracerError("no program loaded: " + self.port.load_hint)
        self.arm()
        if live:
            self._run_for(live[0])
            return "tracer: armed"
        return "tracer: armed; `run` (or `tracer run`) starts the program"

    def cmd_stop(self, arg):
        if not self.armed and self.yielder.policy is None:
            raise TracerError("not tracing; `tracer start` arms it")
        self.yield_off(quiet=True)
        agent_mode.leave(self.port, self.run)
        if self.armed:
            self.disarm()
        return "tracer: disarmed"

    def cmd_attach(self, arg):
        pid = frontend.attach_pid(arg, self.port.name.split()[0])
        if pid in self.port.live_pids():
            raise TracerError(f"process {pid} is already traced")
        armed_here = not self.armed
        mode = (agent_mode.launch_mode(self.values, self.port, f"/proc/{pid}/exe")
                if armed_here else self.armed_mode)
        if armed_here:                  # before attaching: some settings are fixed after;
            self.arm(mode, port_mode="breakpoint")     # breakpoints' (agent may fall back)
        try:
            self.port.attach(pid)
        except TracerError:
            if armed_here:
                self.disarm()
            raise
        ring = None
        if mode == "agent":
            ring = agent_mode.enter(self.port, pid, self.values, self.yielder)
            if ring is None:            # it said why: breakpoints cover the process
                self.armed_mode = "breakpoint"
                self.missing = _core.filter_check("trace", self.values.trace)
        if not self.entry_bps or self.missing:
            self.place_entry_breakpoints()
        self._new_run(pid, mode=self.armed_mode)
        self.run.agent = ring
        how = f" in agent mode ({ring.bound} GOT entries bound)" if ring else ""
        return (f"tracer: attached to {pid} and tracing{how}; `continue` or `tracer run` "
                "to let it go")

    def cmd_detach(self, arg):
        live = self.port.live_pids()
        if not live:
            raise TracerError("no process to detach from")
        pid = self.run.pid if self.run is not None and self.run.pid in live else live[0]
        restored = agent_mode.leave(self.port, self.run)
        self.on_detach(pid)             # the report, disarmed
        self.port.detach()
        wait_for(lambda: pid not in self.port.live_pids(), _DETACH_SECONDS)
        return f"tracer: detached from {pid}; it runs on untraced" + (
            f" (agent unbound: {restored} GOT entries restored)" if restored is not None else "")

    def cmd_status(self, arg):
        notes = [self.yield_status("").removeprefix("tracer: ")] if self.yielder.policy else []
        if self.run is not None:
            notes.append(f"mode: {self.run.mode}" + (" (calls recorded inside the program)"
                                                     if self.run.mode == "agent" else ""))
            notes.append(coverage.status_line(self.run, self.port.live_pids()))
        if self.yielder.abandoned:
            notes.append(f"{self.yielder.abandoned} yields abandoned (thread or image gone)")
        if self.port.children_note and (self.run is None or self.run.mode == "breakpoint"):
            notes.append(f"{self.port.name.split()[0]} limitation: {self.port.children_note}")
        placed = [CATALOGUE[c]["name"] for c, bp in self.entry_bps.items()
                  if self.port.located(bp)]
        missing = self.missing + [CATALOGUE[c]["name"] for c, bp in self.entry_bps.items()
                                  if not self.port.located(bp)]
        return frontend.status_text(self.armed, self.run, placed, len(self.return_bps),
                                    missing, self.disarming, self.hot_path_error, notes)

    def cmd_show(self, arg):
        return frontend.show_text(arg, self.run)

    def cmd_snapshot(self, arg):
        run = self.run
        pid = run.pid if run is not None else 0
        tid = self.port.selected_tid() or pid
        froze_live_run = run is not None and not run.finished
        if froze_live_run:
            self._settle(run)
        path = frontend.snapshot(run, frontend.stop("snapshot", pid, tid),
                                 lambda: self.port.processes(self.values.backtrace),
                                 arg or None)
        if froze_live_run:
            self._disarm_soon()         # the ring is frozen: stopping the program is waste
        return f"tracer: report: {path}"

    def cmd_export(self, arg):
        return export.export(arg, self.live_report)

    def live_report(self):
        if self.run is None:
            raise TracerError("nothing traced yet: `tracer run` first, or --from REPORT")
        return self.run.report_dict()

    # ---- yields and hunt ----
    def _program(self):
        program = self.port.program()
        if not program:
            raise TracerError("no program loaded: " + self.port.load_hint)
        return program

    def cmd_sites(self, arg):
        opts = yields.parse_sites_args(arg)
        return yields.sites_table(yields.SiteIndex.of(self._program()).select(opts), opts)

    def yield_on(self, arg, keep_pct_steps=False):
        opts, policy, sites = yields.plan(self._program(), arg)
        pct.check(policy, self.values.mode)
        if not keep_pct_steps:
            self.yielder.pct_steps.forget()
        live = self.port.live_pids()
        self.yielder.turn_on(policy, opts, sites, bool(live) and self.run is not None and
                             self.run.mode == "agent", live)
        return (f"tracer: yields on at {frontend.sites_phrase(sites)}, probability "
                f"{opts.probability}, strategy {policy.info['strategy']}, seed {opts.seed}")

    def yield_off(self, arg="", quiet=False):
        if self.yielder.policy is None and not quiet:
            raise TracerError("yields are not on")
        self.yielder.turn_off()
        return None if quiet else "tracer: yields off, no site left instrumented"

    def yield_status(self, arg):
        return self.yielder.status()

    def cmd_hunt(self, arg):
        opts = hunt.parse_args(arg)
        mix = None if self.yielder.policy is not None else self._default_mix()
        if mix is not None:
            self.port.write(f"tracer: hunt: no yields on, so the seeds take turns: "
                            f"{mix.describe()} (`tracer yield on` first picks one)")
        first = opts.seed if opts.seed is not None else (
            self.yielder.opts.seed if mix is None else 0)

        def run_once(seed, find):
            if mix is None:
                self.yielder.opts.seed = seed
            else:
                self.yield_on(mix.arguments(seed), keep_pct_steps=True)
            report = self.values.report
            if find is not None:            # a confirming run: the find's own report is kept
                self.yielder.pct_steps.repeat(find.pct_steps)
                self.values.set("report", "never")
            try:
                run = self.run_once("")
            finally:
                self.values.set("report", report)
            if run is not None and find is None:
                self.verdict = ("disturbed" if run.disturbed else "failed" if run.failed
                                else "passed", run.report_path)
            return run

        search = hunt.Hunt(opts, first, run_once, self._replay_command, self.port.write,
                           mix and (lambda s: mix.profile(s).name))
        try:
            return search.go(self.values)
        finally:
            if search.found is not None:    # what `tracer show`, `replay` and the verdict see
                self.run = search.found.run
                self.verdict = ("failed", self.run.report_path)
            if mix is not None:     # yields are as they were: off
                self.yield_off(quiet=True)

    def _default_mix(self):
        """The profiles a plain hunt rotates: those this program and mode can run."""
        program = self._program()
        agent_mode = (self.values.mode != "breakpoint"
                      and agent.cannot_enter(program) is None)
        try:
            has_access_sites = bool(yields.plan(program, "--class access")[2])
        except TracerError:             # no shared-access site (or no debug info)
            has_access_sites = False
        rotation = hunt_mix.profiles(agent_mode, has_access_sites)
        for profile in rotation:        # nothing to perturb: the same error as yield on
            yields.plan(program, profile.arguments)
        return hunt_mix.Mix(rotation)

    def cmd_replay(self, arg):
        reproduced, _, line, kept = replay.replay(self, arg)
        self.verdict = ("failed" if reproduced else "passed", kept)
        if reproduced:              # like a failed run: the command fails (batch exit 1)
            raise TracerError(line.removeprefix("tracer: "))
        return line

    def _replay_command(self, seed):
        """A shell command that reruns `seed` with the same sites, policy and limits."""
        commands = [("set", limit) for limit in frontend.changed_limits(self.values)]
        policy = self.yielder.policy
        strategy = policy.info["strategy"]
        if pct.is_pct(policy) and "pct_steps" in self.run.yield_info:
            strategy = pct.strategy_text(policy, self.run.yield_info["pct_steps"])
        commands += [("do", "tracer yield on " + frontend.yield_on_args(
            self.yielder.opts, strategy, seed)), ("do", "tracer run")]
        argv = self.run.argv if self.run is not None else self.argv(0)
        return self.port.batch_command(commands, self._program(), argv[1:])

    # ---- settings ----
    def set_value(self, name, text):
        """For ports with native settings: (the value in force, as text; error or None)."""
        try:
            self.values.set(name, text)
            error = None
        except settings.SettingError as e:
            error = f"tracer: {e}"
        return str(getattr(self.values, name)), error

    # For ports without native settings:
    def cmd_set(self, arg):
        words = arg.split(None, 1)
        if len(words) != 2:
            raise TracerError("tracer set NAME VALUE; `tracer settings` lists them")
        value = self.values.set(words[0], words[1])
        return f"tracer {words[0]} is {value}"

    def cmd_settings(self, arg):
        return "\n".join(f"tracer {s.name} = {getattr(self.values, s.name)}  ({s.doc})"
                         for s in settings.SETTINGS)

    # ================================================================ the command table
    def commands(self, native_settings):
        """[(name, summary, long help, action(arg) -> text or None, takes_files)]: every
        `tracer` subcommand, with its help from frontend.COMMANDS."""
        actions = {"run": self.cmd_run, "start": self.cmd_start, "stop": self.cmd_stop,
                   "attach": self.cmd_attach, "detach": self.cmd_detach,
                   "status": self.cmd_status,
                   "show": self.cmd_show, "snapshot": self.cmd_snapshot,
                   "export": self.cmd_export, "sites": self.cmd_sites,
                   "yield on": self.yield_on, "yield off": self.yield_off,
                   "yield status": self.yield_status, "hunt": self.cmd_hunt,
                   "replay": self.cmd_replay}
        table = [(name, *frontend.command_help(name, **self.port.help_words)[1:],
                  self._guarded(action, name),
                  name in ("run", "show", "snapshot", "export", "replay"))
                 for name, action in actions.items()]
        if not native_settings:
            table.append(("set", "Change a setting: tracer set NAME VALUE.",
                          "Change a setting: tracer set NAME VALUE.\n\n" + "\n".join(
                              f"  {s.name:10s} {s.doc} (default {s.default})"
                              for s in settings.SETTINGS), self._guarded(self.cmd_set, "set"),
                          False))
            table.append(("settings", "The settings in force.", "The settings in force.",
                          self._guarded(self.cmd_settings, "settings"), False))
        return table

    def _guarded(self, action, name):
        """action(arg) -> (text or None, one-line error or None): nothing escapes into the
        debugger as a traceback. Each result also goes to $TRACER_RESULT_FILE when bin/tracer
        drives the debugger (result_file.py: a failed program is not Tracer's own error)."""
        def guarded(arg):
            self.verdict = None
            try:
                self.poll()
                text, error = action(arg.strip()), None
            except (TracerError, settings.SettingError) as e:
                text, error = None, f"tracer: {e}"
            except Exception as e:      # noqa: BLE001 - a command must not crash the debugger
                text, error = None, f"tracer: {type(e).__name__}: {e}"
            result_file.record(name, self.verdict, text, error)
            return text, error
        return guarded
