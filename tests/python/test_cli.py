"""bin/tracer's command line, without a debugger: the options made from the settings, the
commands each debugger is given, and how a debugger's results become an exit status.
(tests/e2e/test_cli.py runs it for real under gdb and lldb.)"""
import io
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from tracerlib import cli, result_file, settings  # noqa: E402


def test_every_setting_is_an_option_of_run_and_hunt():
    values = {s.name: ("3" if s.kind == "int" else s.choices[-1] if s.choices
                       else str(s.default)) for s in settings.SETTINGS}
    for command in ("run", "hunt"):
        argv = [command] + (["--runs", "2"] if command == "hunt" else [])
        for name, value in values.items():
            argv += [f"--{name}", value]
        opts = cli.parse(argv + ["--", "prog", "-v", "--", "x"])
        assert opts.program == "prog" and opts.args == ["-v", "--", "x"]
        assert cli.setting_commands(opts) == [("set", n, v) for n, v in values.items()]


def test_options_are_validated_as_the_settings_are():
    with pytest.raises(cli.UsageError, match="from 1 to"):
        cli.parse(["run", "--budget", "0", "--", "prog"])
    with pytest.raises(cli.UsageError, match="one of"):
        cli.parse(["run", "--report", "sometimes", "--", "prog"])
    assert cli.setting_commands(cli.parse(["run", "prog"])) == []    # the debugger's defaults


def test_debugger_command_lines():
    gdb, lldb = cli.DEBUGGERS["gdb"], cli.DEBUGGERS["lldb"]
    commands = [("set", "cap", "5"), ("do", "tracer run")]
    argv = gdb.argv(commands, "/bin/prog", ["a b"])
    assert argv[argv.index("-ex"):] == ["-ex", "unset environment TRACER_RESULT_FILE",
                                        "-ex", "set tracer cap 5", "-ex", "tracer run",
                                        "--args", "/bin/prog", "a b"]
    argv = lldb.argv(commands, "/bin/prog", ["a b"])
    assert argv[-7:] == ["-o", "tracer set cap 5", "-o", "tracer run", "--", "/bin/prog", "a b"]
    assert "-b" in argv and "-batch" in gdb.argv([], "p", [])


def test_yield_options_pass_as_tracer_yield_on_takes_them():
    opts = cli.parse(["hunt", "--runs", "5", "--class", "sync", "--function", "a", "b",
                      "--probability", "0.25", "--strategy", "yield", "--seed", "9",
                      "--", "prog"])
    assert cli.yield_words(opts) == ["--class", "sync", "--probability", "0.25",
                                     "--strategy", "yield", "--function", "a", "b"]
    assert cli.yield_words(cli.parse(["hunt", "--runs", "1", "prog"])) == []
    # --seed alone is the hunt's first seed: the default mix stays (the bench's `default`)
    assert cli.yield_words(cli.parse(["hunt", "--runs", "1", "--seed", "7", "prog"])) == []


def result(command, status, report=None, message=""):
    return {"command": command, "status": status, "report": report, "message": message}


def test_an_earlier_error_decides():
    """gdb runs on after a failed command: an error before the last one is the verdict."""
    ok, err = result("yield on", "ok"), result("yield on", "error", message="tracer: no")
    passed = result("hunt", "passed")
    assert cli.verdict([ok, passed]) is passed
    assert cli.verdict([err, passed]) is err
    assert cli.verdict([]) is None


@pytest.mark.parametrize("rc,res,status,line", [
    (1, result("run", "failed", "r.json", "tracer: program failed: exit status 3; report: "
               "r.json"), 1, "tracer: program failed: exit status 3; report: r.json"),
    (1, result("hunt", "failed", "r.json", "tracer: hunt found a failure with seed 4"), 1,
     "tracer: hunt found a failure with seed 4; report: r.json"),
    (0, result("run", "passed", None, "tracer: program exited normally"), 0,
     "tracer: program exited normally"),
    (1, result("run", "error", None, "tracer: no program loaded"), 2,
     "tracer: no program loaded"),
    (0, result("run", "ok", None, ""), 2, "tracer: `tracer run` stopped before the program "
     "ended"),
    (1, None, 2, "tracer: gdb exited with status 1 before `tracer run` finished: boom"),
    (-11, result("run", "passed", None, "x"), 2,
     "tracer: gdb was killed by signal 11 before `tracer run` finished: boom"),
])
def test_conclude(rc, res, status, line):
    output = cli.Output(cli.DEBUGGERS["gdb"])
    output.line("boom", io.StringIO())
    command = res["command"] if res else "run"
    assert cli.conclude(cli.DEBUGGERS["gdb"], rc, res, output, command) == (status, line)


def test_output_leaves_out_chatter_and_the_closing_line_twin():
    out = io.StringIO()
    output = cli.Output(cli.DEBUGGERS["lldb"])
    for line in ("Current executable set to '/bin/x' (x86_64).", "tracer store is s",
                 "hello from the program", "tracer: yields on at 2 call sites",
                 "more", "error: tracer: program failed: exit status 1; report: r.json"):
        output.line(line, out)
    output.finish("tracer: program failed: exit status 1; report: r.json")
    assert out.getvalue() == ("hello from the program\ntracer: yields on at 2 call sites\n"
                              "more\n")


def test_result_file_records(tmp_path, monkeypatch):
    path = tmp_path / "r.jsonl"
    monkeypatch.setenv(result_file.VARIABLE, str(path))
    result_file.record("run", ("failed", "r.json"), None, "tracer: program failed")
    result_file.record("hunt", ("passed", None), None, "tracer: hunt interrupted")
    result_file.record("show", None, "a\nlast line", None)
    assert result_file.read(str(path)) == [
        result("run", "failed", "r.json", "tracer: program failed"),
        result("hunt", "error", None, "tracer: hunt interrupted"),
        result("show", "ok", None, "last line")]
    monkeypatch.delenv(result_file.VARIABLE)
    result_file.record("run", None, "x", None)          # not under bin/tracer: nothing
    assert len(result_file.read(str(path))) == 3
