"""asdlib.download against a tiny MIMII-like archive served over HTTP on 127.0.0.1.

No mocks: a threaded http.server (with Range support, written here) serves the bytes, and the
tests count the requests it receives. The handler writes each log entry completely before it
sends a byte, so whatever the client has received is already in ``server.log``: no assertion
depends on how the server thread is scheduled.
"""
from __future__ import annotations

import hashlib
import io
import stat
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from asdlib import download as dl

# ----------------------------------------------------------------------------- fixtures


class _Handler(BaseHTTPRequestHandler):
    """Serves ``server.files[name]``; honours ``Range: bytes=N-`` unless ``server.ignore_range``."""

    def do_GET(self):  # noqa: N802 (http.server API)
        server = self.server
        name = self.path.lstrip("/").split("?")[0]
        range_header = self.headers.get("Range")
        server.log.append({"path": name, "range": range_header})
        if name not in server.files:
            self.send_error(404)
            return
        body = server.files[name]
        start = 0
        if range_header and not server.ignore_range:
            start = int(range_header.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        payload = body[start:]
        # recorded before the client can see the response, so a test never races the server thread
        server.log[-1]["sent"] = len(payload)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Content-Type", "application/zip")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):  # keep test output quiet
        pass


@pytest.fixture
def server():
    """A local HTTP server; ``server.url`` is its base URL, ``server.log`` its requests."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.files, httpd.log, httpd.ignore_range = {}, [], False
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def _wav_bytes(seed: int) -> bytes:
    """0.1 s of 8-channel 16 kHz 16-bit noise as WAV bytes."""
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    sf.write(buffer, rng.uniform(-0.3, 0.3, size=(1600, 8)), 16_000, subtype="PCM_16", format="WAV")
    return buffer.getvalue()


MEMBERS = ["fan/id_00/normal/00000000.wav", "fan/id_00/abnormal/00000000.wav"]


@pytest.fixture
def tiny_zip() -> bytes:
    """A MIMII-like archive (``fan/id_00/...``) as bytes, stored so its size is ~50 kB."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as zf:
        for seed, name in enumerate(MEMBERS):
            zf.writestr(name, _wav_bytes(seed))
    return buffer.getvalue()


def _visible(folder: Path) -> list[str]:
    """Names in ``folder`` except the lock files (``.<name>.lock``, kept by design: see filelock)."""
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock"))


def _registry(data: bytes, name: str = "0_dB_fan.zip", md5: str | None = None) -> pd.DataFrame:
    return pd.DataFrame({"file": [name], "bytes": [len(data)],
                         "md5": [md5 or hashlib.md5(data).hexdigest()],
                         "url": [f"http://127.0.0.1:9/never/{name}"]})


# ----------------------------------------------------------------------------- registry


def test_packaged_registry_has_the_twelve_zenodo_archives():
    table = dl.load_registry()
    assert list(table.columns) == dl.REGISTRY_COLUMNS
    assert len(table) == 12
    assert set(zip(table["machine"], table["snr_db"])) == {(m, s) for m in dl.MACHINES for s in dl.SNRS_DB}
    assert round(table["bytes"].sum() / 1e9, 1) == 100.2
    assert table["md5"].str.fullmatch(r"[0-9a-f]{32}").all()
    assert table["url"].str.contains("zenodo.org/record/3384388/files/").all()
    row = table.set_index("file").loc["0_dB_fan.zip"]
    assert (row["bytes"], row["md5"]) == (10411902283, "6354d1cc2165c52168f9ef1bcd9c7c52")


def test_archives_selects_rows():
    assert dl.archives("fan", [0])["file"].tolist() == ["0_dB_fan.zip"]
    assert dl.archives(["valve"])["snr_db"].tolist() == [-6, 0, 6]
    both = dl.archives(None, [-6, 6])
    assert len(both) == 8 and set(both["snr_db"]) == {-6, 6}
    assert len(dl.archives()) == 12


@pytest.mark.parametrize("kwargs, expected", [
    ({"machines": ["fan", "fridge"]}, "fan, pump, slider, valve"),
    ({"snrs_db": [3]}, "-6, 0, 6"),
    ({"snrs_db": ["loud"]}, "-6, 0, 6"),
])
def test_archives_rejects_unknown_values(kwargs, expected):
    with pytest.raises(ValueError, match=expected):
        dl.archives(**kwargs)


# ----------------------------------------------------------------------------- download + unpack


def test_download_verifies_unpacks_and_second_call_does_no_request(tmp_path, server, tiny_zip):
    server.files["0_dB_fan.zip"] = tiny_zip
    root = tmp_path / "mimii"
    kwargs = dict(base_url=server.url, registry=_registry(tiny_zip), progress=False)

    folders = dl.download_mimii(root, ["fan"], [0], **kwargs)

    assert folders == [root / "0_dB_fan"]
    for name in MEMBERS:
        info = sf.info(root / "0_dB_fan" / name)
        assert (info.channels, info.samplerate, info.frames) == (8, 16_000, 1600)
    assert dl.is_unpacked(root / "0_dB_fan")
    assert (root / "archives" / "0_dB_fan.zip").read_bytes() == tiny_zip
    assert _visible(root / "archives") == ["0_dB_fan.zip"]  # no .part
    assert _visible(root) == ["0_dB_fan", "archives"]  # no staging folder
    assert [entry["path"] for entry in server.log] == ["0_dB_fan.zip"]

    assert dl.download_mimii(root, ["fan"], [0], **kwargs) == folders
    assert len(server.log) == 1  # nothing requested again


def test_verified_archive_is_not_downloaded_again(tmp_path, server, tiny_zip):
    server.files["0_dB_fan.zip"] = tiny_zip
    archives_dir = tmp_path / "archives"
    md5 = hashlib.md5(tiny_zip).hexdigest()
    url = f"{server.url}/0_dB_fan.zip"
    dl.fetch_archive(url, archives_dir, "0_dB_fan.zip", md5, len(tiny_zip), progress=False)
    dl.fetch_archive(url, archives_dir, "0_dB_fan.zip", md5, len(tiny_zip), progress=False)
    assert len(server.log) == 1


def test_keep_archives_false_deletes_the_zip(tmp_path, server, tiny_zip):
    server.files["0_dB_fan.zip"] = tiny_zip
    root = tmp_path / "mimii"
    dl.download_mimii(root, base_url=server.url, registry=_registry(tiny_zip),
                      keep_archives=False, progress=False)
    assert (root / "0_dB_fan" / MEMBERS[0]).is_file()
    assert _visible(root / "archives") == []
    dl.download_mimii(root, base_url=server.url, registry=_registry(tiny_zip),
                      keep_archives=False, progress=False)
    assert len(server.log) == 1  # unpacked, so not fetched again though the zip is gone


def test_partial_download_resumes_with_a_range_request(tmp_path, server, tiny_zip):
    server.files["0_dB_fan.zip"] = tiny_zip
    half = len(tiny_zip) // 2
    archives_dir = tmp_path / "archives"
    archives_dir.mkdir()
    (archives_dir / "0_dB_fan.zip.part").write_bytes(tiny_zip[:half])

    path = dl.fetch_archive(f"{server.url}/0_dB_fan.zip", archives_dir, "0_dB_fan.zip",
                            hashlib.md5(tiny_zip).hexdigest(), len(tiny_zip), progress=False)

    assert server.log == [{"path": "0_dB_fan.zip", "range": f"bytes={half}-", "sent": len(tiny_zip) - half}]
    assert dl.file_md5(path) == hashlib.md5(tiny_zip).hexdigest()
    assert not (archives_dir / "0_dB_fan.zip.part").exists()


def test_server_ignoring_range_restarts_cleanly(tmp_path, server, tiny_zip):
    server.files["0_dB_fan.zip"] = tiny_zip
    server.ignore_range = True
    archives_dir = tmp_path / "archives"
    archives_dir.mkdir()
    (archives_dir / "0_dB_fan.zip.part").write_bytes(b"\xff" * 1000)  # would corrupt if appended to

    path = dl.fetch_archive(f"{server.url}/0_dB_fan.zip", archives_dir, "0_dB_fan.zip",
                            hashlib.md5(tiny_zip).hexdigest(), len(tiny_zip), progress=False)

    assert server.log[0]["range"] == "bytes=1000-" and server.log[0]["sent"] == len(tiny_zip)
    assert path.read_bytes() == tiny_zip


def test_truncated_transfer_keeps_the_part_for_resuming(tmp_path, server, tiny_zip):
    server.files["0_dB_fan.zip"] = tiny_zip[:1000]  # the server has less than the registry says
    archives_dir = tmp_path / "archives"
    with pytest.raises(dl.DownloadError, match="only 1000 of .* re-run"):
        dl.fetch_archive(f"{server.url}/0_dB_fan.zip", archives_dir, "0_dB_fan.zip",
                         hashlib.md5(tiny_zip).hexdigest(), len(tiny_zip), progress=False)
    assert (archives_dir / "0_dB_fan.zip.part").read_bytes() == tiny_zip[:1000]
    assert not (archives_dir / "0_dB_fan.zip").exists()

    server.files["0_dB_fan.zip"] = tiny_zip  # next run gets the rest
    dl.fetch_archive(f"{server.url}/0_dB_fan.zip", archives_dir, "0_dB_fan.zip",
                     hashlib.md5(tiny_zip).hexdigest(), len(tiny_zip), progress=False)
    assert server.log[-1]["range"] == "bytes=1000-"
    assert (archives_dir / "0_dB_fan.zip").read_bytes() == tiny_zip


def test_part_longer_than_the_server_file_starts_over(tmp_path, server, tiny_zip):
    server.files["0_dB_fan.zip"] = tiny_zip[:500]  # the server answers 416 to "bytes=1000-"
    archives_dir = tmp_path / "archives"
    archives_dir.mkdir()
    (archives_dir / "0_dB_fan.zip.part").write_bytes(tiny_zip[:1000])
    with pytest.raises(dl.DownloadError, match="only 500 of"):
        dl.fetch_archive(f"{server.url}/0_dB_fan.zip", archives_dir, "0_dB_fan.zip",
                         hashlib.md5(tiny_zip).hexdigest(), len(tiny_zip), progress=False)
    assert [entry["range"] for entry in server.log] == ["bytes=1000-", None]
    assert (archives_dir / "0_dB_fan.zip.part").read_bytes() == tiny_zip[:500]


def test_wrong_md5_raises_a_clear_error_and_leaves_no_final_file(tmp_path, server, tiny_zip):
    server.files["0_dB_fan.zip"] = tiny_zip
    root = tmp_path / "mimii"
    wrong = "0" * 32
    with pytest.raises(dl.ChecksumError) as info:
        dl.download_mimii(root, base_url=server.url, registry=_registry(tiny_zip, md5=wrong), progress=False)
    message = str(info.value)
    for part in ("0_dB_fan.zip", wrong, hashlib.md5(tiny_zip).hexdigest(), "delete it and re-run"):
        assert part in message
    assert not (root / "archives" / "0_dB_fan.zip").exists()
    assert not (root / "0_dB_fan").exists()
    assert (root / "archives" / "0_dB_fan.zip.corrupt").read_bytes() == tiny_zip


def test_missing_file_on_server_is_a_download_error(tmp_path, server, tiny_zip):
    with pytest.raises(dl.DownloadError, match="404"):
        dl.download_mimii(tmp_path, base_url=server.url, registry=_registry(tiny_zip), progress=False)


def test_not_enough_disk_space_fails_before_any_request(tmp_path, server, tiny_zip):
    server.files["0_dB_fan.zip"] = tiny_zip
    huge = _registry(tiny_zip).assign(bytes=10**18)
    with pytest.raises(dl.InsufficientSpaceError, match="GB needed"):
        dl.download_mimii(tmp_path, base_url=server.url, registry=huge, progress=False)
    assert server.log == []


def test_foreign_folder_under_the_final_name_is_not_overwritten(tmp_path, tiny_zip):
    archive = tmp_path / "0_dB_fan.zip"
    archive.write_bytes(tiny_zip)
    (tmp_path / "0_dB_fan").mkdir()
    with pytest.raises(ValueError, match="no completion marker"):
        dl.unpack_archive(archive, tmp_path / "0_dB_fan", progress=False)


# ----------------------------------------------------------------------------- unsafe archives


def _zip_with(tmp_path: Path, member: zipfile.ZipInfo | str, data: bytes = b"evil") -> Path:
    path = tmp_path / "0_dB_fan.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("fan/id_00/normal/00000000.wav", _wav_bytes(0))
        zf.writestr(member, data)
    return path


def _symlink_member(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # unix
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize("member", [
    "../evil.txt",
    "fan/../../evil.txt",
    "/tmp/asdlib-test-evil.txt",
    _symlink_member("fan/link"),
], ids=["dotdot", "nested-dotdot", "absolute", "symlink"])
def test_unsafe_members_are_refused_and_nothing_is_written(tmp_path, member):
    archive = _zip_with(tmp_path, member, data=b"../../outside" if isinstance(member, zipfile.ZipInfo) else b"evil")
    target = tmp_path / "data" / "0_dB_fan"
    before = sorted(tmp_path.rglob("*"))
    name = member.filename if isinstance(member, zipfile.ZipInfo) else member

    with pytest.raises(dl.UnsafeArchiveError) as info:
        dl.unpack_archive(archive, target, progress=False)

    assert str(archive) in str(info.value) and repr(name) in str(info.value)
    after = sorted(p for p in tmp_path.rglob("*") if p != tmp_path / "data" and not p.name.endswith(".lock"))
    assert after == before  # neither the target, a staging folder nor evil.txt
    assert not Path("/tmp/asdlib-test-evil.txt").exists()


# ----------------------------------------------------------------------------- two processes at once

_UNPACKER = """
import sys, time
from pathlib import Path
from asdlib.download import unpack_archive
archive, target, gate = map(Path, sys.argv[1:])
while not gate.exists():  # both processes start unpacking together
    time.sleep(0.001)
unpack_archive(archive, target, progress=False)
"""


def test_two_processes_unpacking_one_archive_leave_it_complete(tmp_path):
    """Issue 14.4: without a lock, one process deleted the other's staging folder mid-extraction."""
    import subprocess
    import sys

    archive = tmp_path / "0_dB_fan.zip"
    members = {f"fan/id_00/normal/{i:08d}.wav": _wav_bytes(i % 7) for i in range(300)}
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    target, gate = tmp_path / "data" / "0_dB_fan", tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", _UNPACKER, str(archive), str(target), str(gate)],
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    gate.touch()
    errors = [p.communicate(timeout=300)[1] for p in procs]

    assert [p.returncode for p in procs] == [0, 0], errors
    assert dl.is_unpacked(target)
    written = {p.relative_to(target).as_posix(): p.read_bytes() for p in target.rglob("*.wav")}
    assert written == members  # every member, every byte
    assert _visible(target.parent) == ["0_dB_fan"]  # no staging folder left behind


def test_python_m_asdlib_download_is_the_cli(capsys):
    """``python -m asdlib.download`` goes through the one parser of asdlib.cli."""
    assert dl.main(["--machines", "valve", "--snr", "0", "--list", "--root", "unused"]) == 0
    assert "0_dB_valve.zip" in capsys.readouterr().out
    assert dl.main(["--list"]) == 2
    assert capsys.readouterr().err == (
        "asdlib download: error: the following arguments are required: --root (see `asdlib download --help`)\n")
