"""Unit tests of cairn_task on plain CPython, over a stand-in for the host's
blobs that keeps the host's contract (reads of at most 16 MiB, short at the
end). The real host is exercised by tests/all/python.rs.

    python3 -m unittest discover -s guest-sdk/python
"""

import csv
import sys
import types
import unittest


class _HostBlob:
    """The host's `blob` resource, in memory; counts reads."""

    def __init__(self, data: bytes) -> None:
        self.data = bytes(data)
        self.reads = []

    def hash(self) -> str:
        return "h%d" % len(self.data)

    def len(self) -> int:
        return len(self.data)

    def read(self, offset: int, len: int) -> bytes:
        assert len <= 16 << 20, "the host answers at most 16 MiB a read"
        self.reads.append((offset, len))
        return self.data[offset : offset + len]


class _HostBlobWriter:
    def __init__(self) -> None:
        self.parts = []

    def write(self, data: bytes) -> None:
        assert len(data) <= 16 << 20
        self.parts.append(bytes(data))

    @classmethod
    def finish(cls, writer: "_HostBlobWriter") -> _HostBlob:
        return _HostBlob(b"".join(writer.parts))


def _install_stand_in() -> None:
    blobs = types.ModuleType("wit_world.imports.blobs")
    blobs.Blob = _HostBlob
    blobs.BlobWriter = _HostBlobWriter
    imports = types.ModuleType("wit_world.imports")
    imports.blobs = blobs
    world = types.ModuleType("wit_world")
    world.imports = imports
    sys.modules.update({"wit_world": world, "wit_world.imports": imports, "wit_world.imports.blobs": blobs})


_install_stand_in()
from cairn_task import CHUNK, Blob, BlobWriter  # noqa: E402


class BlobTest(unittest.TestCase):
    def test_reads_whole_ranges_and_past_the_end(self):
        blob = Blob(_HostBlob(b"0123456789"))
        self.assertEqual(len(blob), 10)
        self.assertEqual(blob.read(), b"0123456789")
        self.assertEqual(blob.read(3, 4), b"3456")
        self.assertEqual(blob.read(8, 100), b"89")
        self.assertEqual(blob.read(12), b"")

    def test_a_large_read_is_cut_into_host_reads(self):
        data = bytes(range(256)) * ((40 << 20) // 256)
        host = _HostBlob(data)
        self.assertEqual(Blob(host).read(), data)
        self.assertEqual(len(host.reads), 3)

    def test_chunks_cover_the_blob_in_order(self):
        data = b"x" * (2 * CHUNK + 5)
        blob = Blob(_HostBlob(data))
        self.assertEqual([len(c) for c in blob], [CHUNK, CHUNK, 5])
        self.assertEqual(b"".join(blob.chunks(7)), data)
        with self.assertRaises(ValueError):
            next(blob.chunks(0))

    def test_lines_and_csv_cross_chunk_boundaries(self):
        rows = ["%d,%s" % (i, "é" * (i % 7)) for i in range(200_000)]
        data = ("n,s\n" + "\n".join(rows) + "\n").encode()
        self.assertGreater(len(data), 2 * CHUNK)
        blob = Blob(_HostBlob(data))
        self.assertEqual(sum(1 for _ in blob.lines()), 200_001)
        with blob.text_reader(newline="") as text:
            parsed = list(csv.reader(text))
        self.assertEqual(parsed[-1], ["199999", "é" * (199_999 % 7)])
        self.assertEqual(len(parsed), 200_001)

    def test_reader_seeks(self):
        reader = Blob(_HostBlob(b"abcdef")).reader()
        reader.seek(-2, 2)
        self.assertEqual(reader.read(), b"ef")
        reader.seek(1)
        self.assertEqual(reader.read(2), b"bc")

    def test_new_blobs_from_bytes_and_from_pieces(self):
        self.assertEqual(Blob.of(bytearray(b"abc")).read(), b"abc")
        self.assertEqual(Blob.from_chunks([b"ab", b"", b"cd"]).read(), b"abcd")
        writer = BlobWriter()
        big = b"y" * ((16 << 20) + 3)
        self.assertEqual(writer.write(big), len(big))
        blob = writer.finish()
        self.assertEqual(len(blob), len(big))
        with self.assertRaises(ValueError):
            writer.write(b"late")
        with self.assertRaises(ValueError):
            writer.finish()


if __name__ == "__main__":
    unittest.main()
