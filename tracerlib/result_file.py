"""How bin/tracer learns what each `tracer` command came to inside the debugger it drives.

Both debuggers exit 1 from batch mode when the last command failed, whether the program
failed or Tracer could not do what was asked; the line each prints differs too. So the
driver appends one JSON line per command to the file named by $TRACER_RESULT_FILE (set by
bin/tracer only): {"command", "status": passed|failed|error|ok, "report", "message"}.
"""
import json
import os

VARIABLE = "TRACER_RESULT_FILE"
LINES_MAX = 10000           # a runaway script cannot fill the disk


def record(command, verdict, text, error):
    """verdict: ("passed"|"failed", report path) of a run, hunt or replay, else None."""
    path = os.environ.get(VARIABLE)
    if not path:
        return
    if verdict and verdict[0] == "failed":
        status = "failed"
    elif error:
        status = "error"
    else:
        status = verdict[0] if verdict else "ok"
    lines = (error or text or "").splitlines()
    entry = {"command": command, "status": status, "report": verdict[1] if verdict else None,
             "message": lines[-1] if lines else ""}
    try:
        if os.path.exists(path) and os.path.getsize(path) > LINES_MAX * 512:
            return
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
    except OSError:
        pass                    # bin/tracer then says the debugger gave no result


def read(path):
    """Every command's entry, in order ([] when none was written)."""
    try:
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError):
        return []
