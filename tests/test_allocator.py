"""unetpp.allocator: freed blocks are reused instead of faulted in again; the user's own settings win.

The settings are process-wide and cannot be undone, so the behaviour is checked
in child processes; page faults are counted, not timed.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys

import pytest

from unetpp import allocator

# Two large blocks allocated, filled and freed twenty times, as a training step does with its activations; the
# minor page faults of each round are printed. 64 MiB is above glibc's largest mmap threshold (32 MiB), so by
# default every round maps fresh pages.
CHILD = """
import json, resource, sys, torch
from unetpp.allocator import keep_freed_memory
if sys.argv[1] == "keep":
    print(keep_freed_memory(), file=sys.stderr)
n = 64 * 2**20 // 4
faults = []
for i in range(20):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    big, smaller = torch.ones(n), torch.ones(n // 3)
    del big, smaller
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps(faults))
"""
ROUND_PAGES = (64 + 64 // 3) * 2**20 // 4096  # what one round touches, in 4 KiB pages
WARM_UP = 10  # rounds in which the heap may still grow; the last ten are compared


GLIBC_ONLY = pytest.mark.skipif(not allocator.on_glibc(), reason="glibc's malloc only")
CLEAN_ENV = {k: v for k, v in os.environ.items() if k not in allocator.USER_SETTINGS and k != "GLIBC_TUNABLES"}


def child_faults(mode: str, env: dict[str, str]) -> tuple[list[int], str]:
    """The minor page faults of each round after the warm-up, and what the child printed on stderr."""
    done = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True, env=env)
    return json.loads(done.stdout)[WARM_UP:], done.stderr


@pytest.fixture(scope="module")
def default_faults() -> list[int]:
    """The faults per round with glibc's defaults: run once, compared by both tests below."""
    return child_faults("default", CLEAN_ENV)[0]


@GLIBC_ONLY
def test_freed_blocks_are_reused_instead_of_faulted_in_again(default_faults: list[int]) -> None:
    if statistics.median(default_faults) < ROUND_PAGES // 4:
        pytest.skip(f"page faults per round by default {default_faults} for {ROUND_PAGES} pages: this kernel "
                    "backs large blocks with huge pages, so there is little to save here")
    kept, log = child_faults("keep", CLEAN_ENV)
    assert "glibc keeps freed memory for reuse" in log
    # The heap grows now and then while small allocations settle between the large blocks (on one CI machine
    # once in round 5-9, here up to round 4); in most rounds the same pages serve again, without a fault.
    assert statistics.median(kept) < ROUND_PAGES // 100, (kept, default_faults)


@GLIBC_ONLY
def test_a_malloc_setting_in_the_environment_wins(default_faults: list[int]) -> None:
    faults, log = child_faults("keep", {**CLEAN_ENV, "MALLOC_TOP_PAD_": "0"})
    assert "allocator: left as the environment sets it (MALLOC_TOP_PAD_)" in log
    assert sum(faults) > sum(default_faults) // 2, (faults, default_faults)  # nothing changed: as many as by default


def test_other_c_libraries_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "libc_ver", lambda: ("", ""))
    assert allocator.keep_freed_memory() == "allocator: left as it is (not glibc's malloc)"


def test_glibc_tunables_for_malloc_count_as_the_users_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in allocator.USER_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.rtld.optional_static_tls=1024")
    assert allocator._user_setting() is None
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.mmap_max=0")
    assert allocator._user_setting() == "GLIBC_TUNABLES"
