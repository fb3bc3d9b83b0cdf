"""The agent loaded the way `tracer attach` loads it (dlopen, then tracer_agent_attach with the
settings as text), here by the program itself so that no debugger is needed: its wrappers are
bound into the program's GOT (partial and full RELRO), record from then on, and are unbound by
tracer_agent_detach. Also the stack frame the debugger writes for an inserted call.

Needs `make agent` (skipped otherwise)."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from tracerlib import _core, attach_agent, yields  # noqa: E402

AGENT = os.path.join(ROOT, "tracerlib", "libtracer_agent.so")

pytestmark = pytest.mark.skipif(not os.path.exists(AGENT), reason="make agent first")

PROGRAM = r"""
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
static void round_trip(int *fds, const char *msg)
{
	char buf[32];
	if (write(fds[1], msg, strlen(msg)) != (ssize_t)strlen(msg) ||
	    read(fds[0], buf, sizeof buf) != (ssize_t)strlen(msg))
		_exit(3);
}
int main(int argc, char **argv)
{
	int fds[2];
	void *agent;
	if (pipe(fds))
		return 2;
	round_trip(fds, "before");
	agent = dlopen(argv[1], RTLD_NOW);
	if (!agent)
		return 4;
	int (*attach)(const char *) = (int (*)(const char *))dlsym(agent, "tracer_agent_attach");
	int (*detach)(void) = (int (*)(void))dlsym(agent, "tracer_agent_detach");
	char config[4096] = { 0 };      /* argv holds no NUL: entries come '\n'-separated */
	strncpy(config, argv[2], sizeof config - 2);
	for (char *c = config; *c; c++)
		if (*c == '\n')
			*c = '\0';
	int bound = attach(config);
	round_trip(fds, "during");
	int restored = detach();
	round_trip(fds, "after");
	printf("%d %d\n", bound, restored);
	return 0;
}
"""



def _run(tmp_path, ring_path, config, link=()):
    src = tmp_path / "attach_self.c"
    src.write_text(PROGRAM)
    exe = tmp_path / "attach_self"
    subprocess.run(["gcc", "-O0", *link, "-o", str(exe), str(src)], check=True)
    ring = _core.SharedRing.create(ring_path, cap=50, budget=1000, payload=64)
    try:
        text = attach_agent.config_text({"TRACER_RING": ring_path, **config}).decode()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACER_", "LD_PRE"))}
        p = subprocess.run([str(exe), AGENT, text.replace("\0", "\n")], env=env,
                           capture_output=True, text=True, timeout=30)
        return p, ring.events()
    finally:
        ring.close()


@pytest.mark.parametrize("link", [(), ("-Wl,-z,relro,-z,now",)], ids=["lazy", "full-relro"])
def test_bound_between_attach_and_detach(tmp_path, ring_path, link):
    p, events = _run(tmp_path, ring_path, {}, link)
    assert p.returncode == 0, p.stderr
    bound, restored = map(int, p.stdout.split())
    assert bound >= 2 and restored == bound, p.stdout
    assert [(e["fn"], e["data"]) for e in events] == [("write", b"during"), ("read", b"during")]


def test_settings_come_from_the_text(tmp_path, ring_path):
    """The filters handed over as text apply, as TRACER_TRACE would at launch."""
    p, events = _run(tmp_path, ring_path, {"TRACER_TRACE": "read", "TRACER_STATUS": "",
                                           "TRACER_ENDPOINT": "*"})
    assert p.returncode == 0, p.stderr
    assert [(e["fn"], e["data"]) for e in events] == [("read", b"during")]


def test_no_ring_leaves_the_program_alone(tmp_path, ring_path):
    p, events = _run(tmp_path, ring_path, {"TRACER_RING": "/dev/shm/no-such-ring"})
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["-1", "0"] and events == []


def test_call_frame():
    """The inserted frame: data and return address below the red zone, 16-byte aligned
    data, the stack pointer 8 mod 16 at the function's entry, arguments in order."""
    regs = {"rsp": 0x7ffc_0000_1238}
    data = b"/path/libtracer_agent.so\0"
    writes, memory = yields.call_frame(regs, 0x401000, 0x7f00_0000_1000, (7, 2), data)
    at = yields.data_address(regs, data)
    assert at % 16 == 0 and at + len(data) <= regs["rsp"] - yields.RED_ZONE
    assert writes["rsp"] % 16 == 8 and writes["rsp"] + 8 <= at
    assert list(writes) == ["rdi", "rsi", "rip", "rsp"]
    assert writes["rdi"] == 7 and writes["rsi"] == 2 and writes["rip"] == 0x7f00_0000_1000
    assert memory == [(writes["rsp"], (0x401000).to_bytes(8, "little")), (at, data)]
    assert attach_agent.config_text({"A": "1", "LD_PRELOAD": "x", "B": None}) == b"A=1\0\0"
