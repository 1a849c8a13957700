"""A grid's process keeps its tensors on the heap even where Dask's nanny set ``MALLOC_TRIM_THRESHOLD_``."""
from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.system() != "Linux" or not platform.libc_ver()[0] == "glibc",
                                reason="glibc's malloc only")

PROBE = r"""
import ctypes
from asdlib.memory import tune_malloc

libc = ctypes.CDLL("libc.so.6")

class Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc.mallinfo2.restype = Mallinfo2
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]

def mapped_by(size):
    before = libc.mallinfo2().hblkhd
    block = libc.malloc(size)
    grown = libc.mallinfo2().hblkhd - before
    libc.free(block)
    return grown

size = 1 << 20  # a 1 MiB tensor, as a fused training step makes many of
print(mapped_by(size) >= size, tune_malloc(), mapped_by(size) >= size)
"""


def test_tune_malloc_moves_mib_blocks_from_mmap_to_the_heap():
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "65536"}  # what Dask's nanny gives every worker
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["True", "True", "False"]


def thp_mode() -> str | None:
    """The kernel's transparent huge page mode (``always``, ``madvise``, ``never``), or None."""
    try:
        text = open("/sys/kernel/mm/transparent_hugepage/enabled").read()
    except OSError:
        return None
    return text.split("[")[1].split("]")[0] if "[" in text else None


def test_hugepage_environ_adds_the_tunable_to_the_given_ones():
    from asdlib.memory import HUGEPAGE_TUNABLE, hugepage_environ

    assert hugepage_environ({}) == {"GLIBC_TUNABLES": HUGEPAGE_TUNABLE}
    assert hugepage_environ({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}) == {"GLIBC_TUNABLES": f"glibc.malloc.arena_max=2:{HUGEPAGE_TUNABLE}"}
    assert hugepage_environ({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}) == {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}  # the user's choice
    assert hugepage_environ({"ASDLIB_HUGEPAGES": "0"}) == {}


HUGE_PROBE = r"""
import torch
from asdlib.memory import anon_hugepages_bytes, tune_malloc
tune_malloc()
x = torch.ones(16 * 2**20)  # 64 MiB, written: every page faulted in
print(anon_hugepages_bytes())
"""


@pytest.mark.skipif(thp_mode() not in ("madvise", "always"), reason="the kernel's transparent huge pages are off")
def test_hugepage_environ_puts_a_new_process_tensors_on_huge_pages():
    from asdlib.memory import hugepage_environ

    def huge_bytes(env):
        out = subprocess.run([sys.executable, "-c", HUGE_PROBE], env=env, capture_output=True, text=True, timeout=120, check=True)
        return int(out.stdout.split()[-1])

    base = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    assert huge_bytes({**base, **hugepage_environ(base)}) >= 32 * 2**20  # most of the 64 MiB
    if thp_mode() == "madvise":  # only memory advised for it gets huge pages
        assert huge_bytes({**base, "GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}) < 32 * 2**20


TRAIN_PROBE = r"""
import hashlib, torch
from asdlib.config import Config
from asdlib.fused import train_fused
from asdlib.memory import anon_hugepages_bytes, tune_malloc
from asdlib.modelspec import ModelSpec
tune_malloc()
torch.set_num_threads(1)
gen = torch.Generator().manual_seed(0)
features = {name: torch.randn(3000, 640, generator=gen) for name in ("mic0", "mic0-mic4")}
trained = train_fused([ModelSpec.baseline(0), ModelSpec.dual(0, 4, 0.5)], [0, 1], features, Config(epochs=2), progress=False)
digest = hashlib.sha256()
for model, _ in trained:
    for tensor in model.state_dict().values():
        digest.update(tensor.numpy().tobytes())
print(digest.hexdigest(), anon_hugepages_bytes())
"""


@pytest.mark.skipif(thp_mode() not in ("madvise", "always"), reason="the kernel's transparent huge pages are off")
def test_huge_pages_leave_training_bit_for_bit_the_same():
    """Where the memory sits changes no arithmetic: the same weights, to the bit, with and without huge pages."""
    from asdlib.memory import hugepage_environ

    base = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    runs = {}
    for huge, env in ((True, {**base, **hugepage_environ(base)}), (False, {**base, "GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"})):
        out = subprocess.run([sys.executable, "-c", TRAIN_PROBE], env=env, capture_output=True, text=True, timeout=300, check=True)
        digest, huge_bytes = out.stdout.split()[-2:]
        runs[huge] = digest
        assert (int(huge_bytes) > 0) == huge or thp_mode() == "always"
    assert runs[True] == runs[False]
