"""atomic_path: complete outputs appear, failed ones leave nothing behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from unetpp.atomic import atomic_path


def test_file_appears_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.txt"
    with atomic_path(target) as tmp:
        tmp.write_text("new")
        assert not target.exists()
        assert tmp.parent == target.parent
    assert target.read_text() == "new"
    assert os.listdir(target.parent) == ["out.txt"]
    assert oct(target.stat().st_mode & 0o777) != oct(0o600)


def test_failure_keeps_old_content_and_removes_temp(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_directory_target_replaced_whole(tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.mkdir()
    (target / "stale.txt").write_text("x")
    with atomic_path(target, is_dir=True) as tmp:
        (tmp / "fresh.txt").write_text("y")
    assert sorted(os.listdir(target)) == ["fresh.txt"]


def test_symlinked_target_is_replaced_not_written_through(tmp_path: Path) -> None:
    cached = tmp_path / "cache_copy"
    cached.write_text("cached")
    target = tmp_path / "out.txt"
    target.symlink_to(cached)
    with atomic_path(target) as tmp:
        tmp.write_text("new")
    assert not target.is_symlink()
    assert target.read_text() == "new"
    assert cached.read_text() == "cached"
