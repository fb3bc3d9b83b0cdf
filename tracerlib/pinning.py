"""gdb re-sets an address breakpoint (`*ADDR`) in whichever program space is current when
symbols change (exec, a library load): a return site of one process image then gets a
location at the same address in every other image - an int3 inside another program's
instruction (SIGILL), or at an address not mapped yet (`Cannot insert breakpoint`). A
breakpoint that belongs to one program space keeps its locations there and nowhere else."""


def keep_in_space(bp, inferiors):
    """Disables bp's locations outside bp.space (its owner's program space; None: any).
    Called on every change of bp (gdb.events.breakpoint_modified)."""
    space = getattr(bp, "space", None)
    if space is None or not bp.is_valid():
        return
    if bp.hit_count != getattr(bp, "hits_seen", 0):     # a hit (gdb notifies each): no move
        bp.hits_seen = bp.hit_count
        return
    own = {inf.num for inf in inferiors if inf.progspace == space}
    for loc in bp.locations:
        if loc.enabled and not own.intersection(loc.thread_groups):
            loc.enabled = False         # (notifies breakpoint_modified again: nothing left)
