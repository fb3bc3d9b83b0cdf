"""The default mix of a plain `tracer hunt`: which profiles rotate, and that each is a
`tracer yield on` selection the parser accepts. (Hunts that find bugs with it run under the
real debuggers in tests/e2e/test_hunt_mix.py.)"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from tracerlib import hunt_mix, yields  # noqa: E402


def test_rotation_follows_mode_and_access_sites():
    names = lambda rotation: [p.name for p in rotation]      # noqa: E731
    assert names(hunt_mix.profiles(True, True)) == ["delay", "pct", "taper"]
    assert names(hunt_mix.profiles(False, True)) == ["delay", "taper"]
    assert "access" in hunt_mix.profiles(True, True)[0].arguments
    assert "access" not in hunt_mix.profiles(True, False)[0].arguments
    assert not any("pct" in p.arguments for p in hunt_mix.profiles(False, False))


def test_seeds_take_turns_and_carry_their_seed():
    mix = hunt_mix.Mix(hunt_mix.profiles(True, True))
    assert [mix.profile(s).name for s in range(7)] == \
        ["delay", "pct", "taper", "delay", "pct", "taper", "delay"]
    assert mix.arguments(4).endswith("--seed 4") and "pct:3" in mix.arguments(4)
    assert mix.describe() == "delay, pct, taper"


def test_every_profile_parses_as_yield_on_arguments():
    for profile in hunt_mix.profiles(True, True) + [hunt_mix.DELAY]:
        opts = yields.parse_yield_on_args(profile.arguments + " --seed 9")
        assert opts.seed == 9 and opts.strategy.split(":")[0] in ("delay", "pct", "taper")
