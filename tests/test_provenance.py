"""unetpp.training.provenance in temporary git repositories: a commit only for a tracked package, else why not."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from unetpp.errors import UnetppError
from unetpp.training.provenance import SOURCE_COMMIT_ENV, code_commit


def git(repo: Path, *args: str) -> str:
    cmd = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org", *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()


def make_package(root: Path) -> Path:
    package = root / "src" / "pkg"
    (package / "sub").mkdir(parents=True)
    for name in ("__init__.py", "a.py", "sub/__init__.py", "sub/b.py"):
        (package / name).write_text(f"# {name}\n")
    return package


@pytest.fixture(autouse=True)
def no_git_above(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """git must not find a repository above tmp_path (the test's 'outside any checkout')."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))


def test_a_tracked_package_records_its_commit_and_whether_it_was_edited(tmp_path):
    package = make_package(tmp_path / "repo")
    git(tmp_path / "repo", "init", "-q")
    git(tmp_path / "repo", "add", ".")
    git(tmp_path / "repo", "commit", "-qm", "code")
    head = git(tmp_path / "repo", "rev-parse", "HEAD")
    assert code_commit(package, environ={}) == {"sha": head, "dirty": False, "source": "git"}
    (package / "sub" / "b.py").write_text("# edited\n")
    assert code_commit(package, environ={}) == {"sha": head, "dirty": True, "source": "git"}
    # The checkout's own commit wins over a commit named in the environment.
    assert code_commit(package, environ={SOURCE_COMMIT_ENV: "abcdef1"})["sha"] == head


def test_a_copy_inside_another_repository_records_no_commit_and_why(tmp_path):
    # The GPU run's case: the copied src/ sat in an unrelated repository with a clean HEAD of its own.
    other = tmp_path / "home"
    other.mkdir()
    (other / "notes.txt").write_text("x\n")
    git(other, "init", "-q")
    git(other, "add", "notes.txt")
    git(other, "commit", "-qm", "unrelated")
    package = make_package(other / "copy")
    record = code_commit(package, environ={})
    assert record["sha"] is None and record["dirty"] is None
    assert f"the git repository at {other.resolve()} does not track the running package's 4 module(s)" in (
        record["reason"]
    )
    assert "e.g. copy/src/pkg/__init__.py" in record["reason"]
    # One module tracked is not enough: the other three would still be unknown code.
    git(other, "add", "copy/src/pkg/a.py")
    git(other, "commit", "-qm", "one module")
    assert "does not track the running package's 3 module(s)" in code_commit(package, environ={})["reason"]
    # The commit the copy was made from, passed by the script that copied it, is recorded as given.
    sha = "78af85b" + "0" * 33
    assert code_commit(package, environ={SOURCE_COMMIT_ENV: sha.upper()}) == {
        "sha": sha,
        "dirty": None,
        "source": SOURCE_COMMIT_ENV,
        "checkout": code_commit(package, environ={})["reason"],
    }


def test_outside_any_checkout_no_commit_unless_one_is_given(tmp_path):
    package = make_package(tmp_path / "plain")
    record = code_commit(package, environ={})
    assert record["sha"] is None and "is not inside a git checkout" in record["reason"]
    assert code_commit(package, environ={SOURCE_COMMIT_ENV: " 78af85b "})["sha"] == "78af85b"
    with pytest.raises(UnetppError, match="is not a git commit"):
        code_commit(package, environ={SOURCE_COMMIT_ENV: "main"})
