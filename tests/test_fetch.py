"""unetpp fetch: download when missing, verify always, never touch the user's file; over real HTTP on loopback.

A small HTTP server on 127.0.0.1 (one per test, stopped by its fixture) serves a
zip, counts the requests, and can cut the connection halfway through the body.
The fast tests use the synthetic zip; the workflow tests run the fetch (and
ingest) through Snakemake and DVC in a copy of the project; the real-data tests
serve the shared stage1_train.zip and skip where it is absent.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from conftest import real_raw_zip

from unetpp.cli import main
from unetpp.data.content import Content, Verification, content_of, describe_difference
from unetpp.data.fetch import fetch
from unetpp.data.ingest import ingest
from unetpp.errors import UnetppError
from workflow_helpers import DVC, SNAKEMAKE, copy_workflow, run, snakemake_plan

RECORD = "data/raw/stage1_train.verified.json"
RAW = "data/raw/stage1_train.zip"
MAX_REQUESTS = 5  # a test that asks more often than this is broken: answer 503, never loop forever


@dataclass
class Server:
    """What the loopback server serves, and what it was asked."""

    url: str = ""
    payload: bytes | None = None
    cut_at: int | None = None  # send only this many body bytes of a full Content-Length, then hang up
    requests: list[str] = field(default_factory=list)

    def serve(self, payload: bytes, cut_at: int | None = None) -> None:
        self.payload, self.cut_at = payload, cut_at


@pytest.fixture()
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    state = Server()

    class Handler(http.server.BaseHTTPRequestHandler):
        timeout = 30  # seconds a client may stall before the server drops it

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            state.requests.append(self.path)
            if len(state.requests) > MAX_REQUESTS or state.payload is None:
                self.send_error(503 if state.payload is not None else 404)
                return
            body = state.payload
            self.send_response(200)
            self.send_header("Content-Type", "application/zip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body if state.cut_at is None else body[: state.cut_at])
            self.close_connection = True

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/stage1_train.zip"
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def leftovers(folder: Path) -> list[str]:
    """Temporary download folders or files left beside the raw path (Snakemake may remove an empty folder)."""
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.iterdir() if ".download-" in p.name or ".tmp-" in p.name)


def repack(source: Path, dest: Path, prefix: str = "", reverse: bool = True) -> Path:
    """The same members in another order, deflated, with directory entries and an optional wrapper folder."""
    with zipfile.ZipFile(source) as zin:
        items = [(info.filename, zin.read(info)) for info in zin.infolist() if not info.is_dir()]
    if reverse:
        items.reverse()
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as zout:
        folders = sorted({f"{prefix}{name.rsplit('/', 1)[0]}/" for name, _ in items})
        for folder in folders:
            zout.writestr(folder, b"")
        for name, data in items:
            zout.writestr(f"{prefix}{name}", data)
    return dest


def with_changed_mask_byte(source: Path, dest: Path) -> Path:
    """A copy of `source` whose first mask PNG has one byte more at its end (after IEND: still decodes)."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(dest, "w") as zout:
        changed = False
        for info in zin.infolist():
            data = zin.read(info)
            if not changed and "/masks/" in info.filename:
                data, changed = data + b"\0", True
            zout.writestr(info, data)
    return dest


# ----------------------------------------------------------------------------------------------- the digest


def test_the_digest_ignores_packing_order_compression_folders_and_wrapper(
    synthetic_raw_zip: Path, synthetic_raw_dir: Path, tmp_path: Path
) -> None:
    reference = content_of(synthetic_raw_zip)
    with zipfile.ZipFile(synthetic_raw_zip) as archive:
        n_masks = sum("/masks/" in name for name in archive.namelist())
    assert (reference.images, reference.masks) == (12, n_masks)
    assert content_of(repack(synthetic_raw_zip, tmp_path / "reversed.zip")) == reference
    assert content_of(repack(synthetic_raw_zip, tmp_path / "wrapped.zip", prefix="stage1_train/")) == reference
    assert content_of(synthetic_raw_dir) == reference
    assert content_of(synthetic_raw_zip).content_sha256 == reference.content_sha256  # deterministic


def test_one_changed_byte_changes_the_digest_and_is_named(synthetic_raw_zip: Path, tmp_path: Path) -> None:
    reference = content_of(synthetic_raw_zip)
    changed = content_of(with_changed_mask_byte(synthetic_raw_zip, tmp_path / "changed.zip"))
    assert (changed.images, changed.masks) == (reference.images, reference.masks)
    assert changed.content_sha256 != reference.content_sha256
    text = describe_difference(changed, reference)
    assert "same 12 images" in text and changed.content_sha256 in text and reference.content_sha256 in text


# ------------------------------------------------------------------------------------ fetch, no workflow


def test_an_existing_user_file_is_checked_and_never_downloaded(
    server: Server, synthetic_raw_zip: Path, tmp_path: Path
) -> None:
    server.serve(b"must never be asked for")
    raw = tmp_path / "data/raw/stage1_train.zip"
    raw.parent.mkdir(parents=True)
    raw.symlink_to(synthetic_raw_zip)
    before = synthetic_raw_zip.stat()
    record = fetch(raw, server.url, content_of(synthetic_raw_zip), tmp_path / "record.json")
    assert server.requests == []
    assert record.origin == "existing" and record.url is None
    assert raw.is_symlink() and raw.resolve() == synthetic_raw_zip.resolve()
    assert (synthetic_raw_zip.stat().st_mtime_ns, synthetic_raw_zip.stat().st_ino) == (
        before.st_mtime_ns,
        before.st_ino,
    )
    assert Verification.read(tmp_path / "record.json") == record


def test_an_existing_file_of_another_release_is_refused_and_left_alone(
    server: Server, synthetic_raw_zip: Path, tmp_path: Path
) -> None:
    raw = tmp_path / "stage1_train.zip"
    raw.write_bytes(synthetic_raw_zip.read_bytes())
    expected = Content("ab" * 32, images=670, masks=29461)
    with pytest.raises(UnetppError) as error:
        fetch(raw, server.url, expected, tmp_path / "record.json")
    message = error.value.message
    found = content_of(synthetic_raw_zip)
    for part in (
        "12 images",
        "670 images and 29,461 masks",
        "ab" * 32,
        found.content_sha256,
        "`any`",
        "never downloaded",
    ):
        assert part in message, (part, message)
    assert server.requests == [] and raw.read_bytes() == synthetic_raw_zip.read_bytes()
    assert not (tmp_path / "record.json").exists()
    # On purpose: any release, or exactly this one.
    assert fetch(raw, server.url, None, tmp_path / "record.json").expected_content_sha256 == "any"
    assert fetch(raw, server.url, found, tmp_path / "record.json").content_sha256 == found.content_sha256


def test_a_dangling_symlink_is_an_error_not_a_download(server: Server, tmp_path: Path) -> None:
    server.serve(b"must never be asked for")
    raw = tmp_path / "stage1_train.zip"
    raw.symlink_to(tmp_path / "gone.zip")
    with pytest.raises(UnetppError, match="does not exist; fix the link") as error:
        fetch(raw, server.url, None, tmp_path / "record.json")
    assert error.value.message.startswith(f"{raw} ")
    assert server.requests == [] and raw.is_symlink()


def test_own_data_is_never_replaced_by_a_download(server: Server, tmp_path: Path) -> None:
    """content digest `any` (own data) and nothing at --raw (a typo: demo.zp): an error naming the path, no request."""
    server.serve(b"must never be asked for")
    raw = tmp_path / "demo.zp"
    with pytest.raises(UnetppError) as error:
        fetch(raw, server.url, None, tmp_path / "record.json")
    assert error.value.message.startswith(f"{raw}: nothing there. With content digest `any`")
    assert "fix data.raw" in error.value.message
    assert server.requests == [] and not os.path.lexists(raw) and not (tmp_path / "record.json").exists()


def test_a_complete_download_is_checked_then_placed(server: Server, synthetic_raw_zip: Path, tmp_path: Path) -> None:
    payload = synthetic_raw_zip.read_bytes()
    server.serve(payload)
    raw = tmp_path / "data/raw/stage1_train.zip"
    stale = raw.parent / f".{raw.name}.download-killed"  # a download killed with -9 earlier
    stale.mkdir(parents=True)
    record = fetch(raw, server.url, content_of(synthetic_raw_zip), tmp_path / "record.json")
    assert raw.read_bytes() == payload and not raw.is_symlink()
    assert (record.origin, record.url) == ("downloaded", server.url)
    assert record.file_sha256 == hashlib.sha256(payload).hexdigest()
    assert len(server.requests) == 1 and leftovers(raw.parent) == []


def test_a_connection_cut_halfway_leaves_nothing(server: Server, synthetic_raw_zip: Path, tmp_path: Path) -> None:
    payload = synthetic_raw_zip.read_bytes()
    server.serve(payload, cut_at=len(payload) // 2)
    raw = tmp_path / "stage1_train.zip"
    expected = content_of(synthetic_raw_zip)
    with pytest.raises(UnetppError, match="nothing was kept.* run the fetch stage again") as error:
        fetch(raw, server.url, expected, tmp_path / "record.json")
    assert error.value.message.startswith(f"{raw}: not there, and downloading it from {server.url} failed")
    assert not os.path.lexists(raw) and not (tmp_path / "record.json").exists() and leftovers(tmp_path) == []
    # Running again restarts the download.
    server.serve(payload)
    fetch(raw, server.url, expected, tmp_path / "record.json")
    assert raw.read_bytes() == payload and len(server.requests) == 2


def test_a_wrong_download_is_refused_and_leaves_nothing(
    server: Server, synthetic_raw_zip: Path, tmp_path: Path
) -> None:
    raw = tmp_path / "stage1_train.zip"
    server.serve(synthetic_raw_zip.read_bytes())
    expected = Content("cd" * 32, images=670, masks=29461)
    with pytest.raises(UnetppError, match=r"the download from .* \(nothing was written there\) is not the stage1_train") as error:
        fetch(raw, server.url, expected, tmp_path / "record.json")
    assert error.value.message.startswith(f"{raw}: ")
    server.serve(b"<html>not a zip</html>")
    with pytest.raises(UnetppError, match="is not a usable stage1_train") as error:
        fetch(raw, server.url, expected, tmp_path / "record.json")
    assert error.value.message.startswith(f"{raw}: ")
    server.serve(None)  # type: ignore[arg-type]
    with pytest.raises(UnetppError, match="404") as error:
        fetch(raw, server.url, expected, tmp_path / "record.json")
    assert error.value.message.startswith(f"{raw}: ")
    assert not os.path.lexists(raw) and leftovers(tmp_path) == []


def test_ingest_refuses_data_changed_since_the_fetch(synthetic_raw_zip: Path, tmp_path: Path) -> None:
    raw = tmp_path / "stage1_train.zip"
    raw.write_bytes(synthetic_raw_zip.read_bytes())
    fetch(raw, "http://127.0.0.1:9/unused", None, tmp_path / "record.json")
    assert ingest(raw, tmp_path / "ok.h5", workers=2, progress=False, verified=tmp_path / "record.json").n_images == 12
    with_changed_mask_byte(synthetic_raw_zip, raw)
    with pytest.raises(UnetppError, match="changed since. Nothing was written.*--forcerun fetch"):
        ingest(raw, tmp_path / "bad.h5", workers=1, progress=False, verified=tmp_path / "record.json")
    assert not (tmp_path / "bad.h5").exists()


def test_the_command_checks_its_digest_option(synthetic_raw_zip: Path, tmp_path: Path) -> None:
    args = ["fetch", "--raw", str(synthetic_raw_zip), "--url", "http://127.0.0.1:9/x.zip", "--images", "12"]
    args += ["--masks", "1", "--out", str(tmp_path / "r.json")]
    result = CliRunner().invoke(main, [*args, "--content-sha256", "abc"])
    assert result.exit_code == 2 and "neither 64 hex digits nor `any`" in result.output
    result = CliRunner().invoke(main, [*args, "--content-sha256", "ANY"])
    assert result.exit_code == 0, result.output
    assert "already there, used as it is" in result.output and "any release accepted" in result.output


def test_the_counts_are_needed_only_with_a_digest(synthetic_raw_zip: Path, tmp_path: Path) -> None:
    args = ["fetch", "--raw", str(synthetic_raw_zip), "--url", "http://127.0.0.1:9/x.zip", "--out", str(tmp_path / "r.json")]
    result = CliRunner().invoke(main, [*args, "--content-sha256", "any"])
    assert result.exit_code == 0, result.output
    assert "any release accepted" in result.output
    result = CliRunner().invoke(main, [*args, "--content-sha256", "ab" * 32, "--images", "12"])
    assert result.exit_code == 2 and "--masks needed with a --content-sha256 digest" in result.output


# ------------------------------------------------------------------------------- through the workflows


def project_with(tmp_path: Path, url: str, **data: Any) -> Path:
    project = copy_workflow(tmp_path / "project")
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["data"].update(url=url, workers=1, **data)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return project


def expecting(content: Content) -> dict[str, Any]:
    return {"content_sha256": content.content_sha256, "images": content.images, "masks": content.masks}


def snakemake(project: Path, *args: str, check: bool = True) -> Any:
    return run([SNAKEMAKE, "--cores", "1", *args], cwd=project, check=check)


@pytest.mark.slow
def test_snakemake_downloads_on_a_fresh_clone_once_and_never_again(
    server: Server, synthetic_raw_zip: Path, tmp_path: Path
) -> None:
    server.serve(synthetic_raw_zip.read_bytes())
    project = project_with(tmp_path, server.url, **expecting(content_of(synthetic_raw_zip)))
    interim = "data/interim/stage1_train.h5"
    snakemake(project, interim)
    raw = project / RAW
    assert raw.read_bytes() == synthetic_raw_zip.read_bytes() and len(server.requests) == 1
    assert json.loads((project / RECORD).read_text())["origin"] == "downloaded"
    # The download changed neither the inputs nor the params of fetch or ingest: nothing to redo.
    assert snakemake_plan(project, interim)[0] == []
    # Now data.raw is no output of any rule: --forceall reruns the check but cannot delete or fetch it again.
    jobs, _ = snakemake_plan(project, "--forceall", interim)
    assert {job.name: job.outputs for job in jobs}["fetch"] == {RECORD}
    inode = raw.stat().st_ino
    snakemake(project, "--forceall", interim)
    assert raw.stat().st_ino == inode and len(server.requests) == 1


@pytest.mark.slow
def test_dvc_downloads_on_a_fresh_clone_and_repro_f_keeps_the_file(
    server: Server, synthetic_raw_zip: Path, tmp_path: Path
) -> None:
    server.serve(synthetic_raw_zip.read_bytes())
    project = project_with(tmp_path, server.url, **expecting(content_of(synthetic_raw_zip)))
    run([DVC, "config", "--local", "core.no_scm", "true"], cwd=project)
    run([DVC, "repro", "ingest"], cwd=project)
    raw = project / RAW
    assert raw.read_bytes() == synthetic_raw_zip.read_bytes() and len(server.requests) == 1
    assert (project / "data/interim/stage1_train.h5").is_file()
    inode = raw.stat().st_ino
    run([DVC, "repro", "-f", "ingest"], cwd=project)
    assert raw.stat().st_ino == inode and len(server.requests) == 1


# ----------------------------------------------------------------------- the real zip over loopback HTTP


@pytest.fixture(scope="module")
def real_zip() -> Path:
    path = real_raw_zip()
    if not path.is_file():
        pytest.skip(f"real data not found at {path} (set UNETPP_RAW_ZIP to its path)")
    return path


def real_project(tmp_path: Path, url: str) -> Path:
    """A project with the real params.yaml (the reference digest and counts), data.url on loopback."""
    return project_with(tmp_path, url)


@pytest.mark.real_data
@pytest.mark.slow
def test_real_zip_complete_download_through_snakemake(server: Server, real_zip: Path, tmp_path: Path) -> None:
    payload = real_zip.read_bytes()
    server.serve(payload)
    project = real_project(tmp_path, server.url)
    snakemake(project, RECORD)
    record = json.loads((project / RECORD).read_text())
    reference = yaml.safe_load((project / "params.yaml").read_text())["data"]
    assert (record["content_sha256"], record["images"], record["masks"]) == (reference["content_sha256"], 670, 29461)
    assert record["origin"] == "downloaded" and record["file_sha256"] == hashlib.sha256(payload).hexdigest()
    assert len(server.requests) == 1 and leftovers(project / "data/raw") == []


@pytest.mark.real_data
@pytest.mark.slow
def test_real_zip_connection_cut_halfway_through_snakemake(server: Server, real_zip: Path, tmp_path: Path) -> None:
    payload = real_zip.read_bytes()
    server.serve(payload, cut_at=len(payload) // 2)
    project = real_project(tmp_path, server.url)
    result = snakemake(project, RECORD, check=False)
    assert result.returncode != 0
    log = (project / "logs/fetch.log").read_text()
    assert "failed" in log and "nothing was kept" in log, log
    assert not os.path.lexists(project / RAW) and not (project / RECORD).exists()
    assert leftovers(project / "data/raw") == []


@pytest.mark.real_data
@pytest.mark.slow
def test_real_params_refuse_a_wrong_file_through_snakemake(
    server: Server, real_zip: Path, synthetic_raw_zip: Path, tmp_path: Path
) -> None:
    server.serve(synthetic_raw_zip.read_bytes())
    project = real_project(tmp_path, server.url)
    result = snakemake(project, RECORD, check=False)
    assert result.returncode != 0
    log = (project / "logs/fetch.log").read_text()
    assert "12 images" in log and "670 images and 29,461 masks" in log and "data.content_sha256" in log, log
    assert not os.path.lexists(project / RAW) and not (project / RECORD).exists()


@pytest.mark.real_data
@pytest.mark.slow
def test_real_zip_linked_by_the_user_is_used_without_a_download(server: Server, real_zip: Path, tmp_path: Path) -> None:
    server.serve(b"must never be asked for")
    project = real_project(tmp_path, server.url)
    raw = project / RAW
    raw.parent.mkdir(parents=True)
    raw.symlink_to(real_zip.resolve())
    snakemake(project, RECORD)
    record = json.loads((project / RECORD).read_text())
    assert record["origin"] == "existing" and (record["images"], record["masks"]) == (670, 29461)
    snakemake(project, RECORD, "--forcerun", "fetch")  # the target first: --forcerun takes every name after it
    assert server.requests == [] and raw.is_symlink() and raw.resolve() == real_zip.resolve()


def test_an_unreadable_record_is_named_with_a_recovery_that_reruns_nothing(tmp_path):
    record = tmp_path / "stage1_train.verified.json"
    record.write_text("{not json")
    with pytest.raises(UnetppError) as caught:
        Verification.read(record)
    message = str(caught.value)
    assert message.startswith(f"{record}: cannot read the verification record")
    assert "delete it and run the pipeline again" in message and "--forcerun" not in message
