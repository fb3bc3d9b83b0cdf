"""What /proc says of a process: its threads' scheduler states, its tracer, its name. No
imports from the rest of Tracer, so any module (the ports, the run, the hang watch) can use
it without an import cycle."""
import os


def thread_states(pid):
    """The scheduler state letter of each live thread of pid ('R', 'S', 't', 'Z'...); none
    when pid is gone."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    states = []
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                # "tid (comm) S ...": comm may hold ')'
                states.append(f.read().rsplit(")", 1)[1].split()[0])
        except (OSError, IndexError):
            pass                        # this thread is gone
    return states


def vanished(pid):
    """The process is gone, or every thread of it is a zombie (a zombie leader alone is a
    process whose main thread exited while others run)."""
    return all(state in ("Z", "X") for state in thread_states(pid))


def tracer_of(pid):
    """The pid ptrace-attached to pid (TracerPid), 0 when none or pid is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("TracerPid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def command_name(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "gone"
