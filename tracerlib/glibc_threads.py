"""A thread's thread pointer (x86-64 fs_base) found the way libthread_db finds it, for
debuggers that cannot read fs_base themselves (lldb 16 does not offer it as a register, and
its lldb-server, not the debugger, is the tracer, so ptrace is out).

glibc links every thread descriptor (`struct pthread`) into two lists of ld.so's
`_rtld_global`, `_dl_stack_user` (the main thread, user-supplied stacks) and `_dl_stack_used`,
and publishes for libthread_db where the lists and the fields are: `_thread_db_*` symbols in
libc.so.6's dynamic symbol table, each three uint32 (size in bits, count, offset). On x86-64
the thread pointer is the address of the thread's descriptor. Walking the lists reads a few
words of the stopped process's memory through /proc/PID/mem; no inferior call, no debug info.

Debugger-neutral: the front end passes a `lookup(name) -> runtime address or None`.
"""
import struct

# (descriptor symbol, what it locates)
_DESCRIPTORS = ("_thread_db_pthread_list", "_thread_db_pthread_tid", "_thread_db_list_t_next",
                "_thread_db_rtld_global__dl_stack_user",
                "_thread_db_rtld_global__dl_stack_used")
_RTLD_POINTER = "__nptl_rtld_global"      # libc's pointer to ld.so's _rtld_global
_MAX_THREADS = 100000                     # a bound on a (corrupt) list walk


class ThreadPointers:
    """fs_base of the threads of one glibc process. Raises nothing: unknown is None."""

    def __init__(self, pid, lookup):
        self.pid = pid
        self.lookup = lookup
        self.layout = None        # offsets, read once per process image
        self.cache = {}           # tid -> fs_base, checked before use

    def _read(self, address, size):
        try:
            with open(f"/proc/{self.pid}/mem", "rb", buffering=0) as mem:
                data = mem.read(size) if mem.seek(address) == address else b""
        except (OSError, OverflowError, ValueError):
            return None
        return data if len(data) == size else None

    def _word(self, address):
        data = self._read(address, 8)
        return struct.unpack("<Q", data)[0] if data else None

    def _load_layout(self):
        offsets = {}
        for name in _DESCRIPTORS:
            address = self.lookup(name)
            raw = self._read(address, 12) if address else None
            if raw is None:
                return None
            offsets[name] = struct.unpack("<3I", raw)[2]
        rtld_pointer = self.lookup(_RTLD_POINTER)
        rtld = self._word(rtld_pointer) if rtld_pointer else None
        if not rtld:
            return None
        return {"list": offsets["_thread_db_pthread_list"],
                "tid": offsets["_thread_db_pthread_tid"],
                "next": offsets["_thread_db_list_t_next"],
                "heads": (rtld + offsets["_thread_db_rtld_global__dl_stack_user"],
                          rtld + offsets["_thread_db_rtld_global__dl_stack_used"])}

    def _tid_at(self, descriptor):
        data = self._read(descriptor + self.layout["tid"], 4)
        return struct.unpack("<i", data)[0] if data else None

    def fs_base(self, tid):
        """The thread pointer of thread tid, or None when it cannot be found."""
        cached = self.cache.get(tid)
        if cached is not None and self._tid_at(cached) == tid:
            return cached
        if self.layout is None:
            self.layout = self._load_layout()
            if self.layout is None:
                return None
        self.cache.clear()
        for head in self.layout["heads"]:
            node = self._word(head + self.layout["next"])
            for _ in range(_MAX_THREADS):
                if not node or node == head:
                    break
                descriptor = node - self.layout["list"]
                found = self._tid_at(descriptor)
                if found is not None and found > 0:
                    self.cache[found] = descriptor
                node = self._word(node + self.layout["next"])
        return self.cache.get(tid)
