"""The lean tar reader agrees with Python's tarfile on ustar, GNU and PAX archives, and rejects corrupt ones."""

import io
import tarfile

import pytest

from nonspeech.data.tarstream import tar_members, tar_samples

LONG = "deep/" * 30 + "clip_with_a_long_name"
MEMBERS = {"a/clip1.npy": b"\x93NUMPY" + bytes(300), "a/clip1.cls": b"3", f"{LONG}.cls": b"1", "b.c.json": b"{}"}


def _archive(fmt: int) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for name, data in MEMBERS.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1.5  # a float mtime makes PAX archives carry extended headers
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_members_match_tarfile(fmt: int) -> None:
    assert dict(tar_members(_archive(fmt), "x.tar")) == MEMBERS


def test_samples_group_members_by_key() -> None:
    samples = list(tar_samples(_archive(tarfile.PAX_FORMAT), "x.tar"))
    assert [s["__key__"] for s in samples] == ["a/clip1", LONG, "b"]
    assert samples[0]["cls"] == b"3" and samples[2]["c.json"] == b"{}" and samples[0]["__url__"] == "x.tar"


def test_corrupt_and_truncated_archives_name_the_source() -> None:
    data = bytearray(_archive(tarfile.GNU_FORMAT))
    data[0] ^= 0xFF
    with pytest.raises(ValueError, match="x.tar: corrupt tar header"):
        list(tar_members(bytes(data), "x.tar"))
    with pytest.raises(ValueError, match="x.tar: truncated tar member"):
        list(tar_members(_archive(tarfile.GNU_FORMAT)[:700], "x.tar"))
