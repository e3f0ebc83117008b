"""Write cairn tasks in Python (componentize-py 0.25).

A cairn task is a WebAssembly component with typed WIT exports. This module
wraps the host interface ``cairn:task/blobs`` (the WIT is ``wit/task.wit``
next to this file) in an idiomatic API:

* :class:`Blob`: immutable, content-addressed bytes held by the host. A large
  input arrives as a ``borrow<blob>``: a handle, not a copy. Wrap it with
  ``Blob(handle)`` and read it whole (:meth:`Blob.read`), in chunks
  (:meth:`Blob.chunks`, or iterate the blob), as a binary or text stream
  (:meth:`Blob.reader`, :meth:`Blob.text_reader`), line by line
  (:meth:`Blob.lines`); ``len(blob)`` is its size. Make one from bytes with
  :meth:`Blob.of`, and return ``blob.handle`` from an export.
* :class:`BlobWriter`: builds a blob piece by piece, for outputs too big for
  one ``list<u8>``.

A task's world includes ``cairn:task/task@0.1.0`` (a world naming the
``wit/deps/cairn-task`` directory, a link to this directory's ``wit``), so the
bindings componentize-py generates for it have the module
``wit_world.imports.blobs`` this module uses. A complete task, ``app.py``::

    from wit_world import exports
    from wit_world.imports.blobs import Blob as Handle
    from cairn_task import Blob

    class Count(exports.Count):
        def total(self, text: Handle) -> int:
            return sum(len(line.split()) for line in Blob(text).lines())

built with ``componentize-py -d wit -w words componentize -p . -p
PATH/TO/guest-sdk/python app -o words.wasm``. See README.md here for the
whole walkthrough.

Reading never copies more than one chunk into the task at a time, so a blob
need not fit in the task's memory; the host answers at most 16 MiB a read.
"""

from __future__ import annotations

import io
from typing import Iterable, Iterator, Optional

from wit_world.imports import blobs as _blobs

#: The chunk size of :meth:`Blob.chunks` and of the streams, in bytes.
CHUNK = 1 << 20
#: The most the host answers in one read, in bytes.
MAX_READ = 16 << 20

__all__ = ["Blob", "BlobWriter", "CHUNK", "MAX_READ"]


class Blob:
    """A host blob: immutable bytes, keyed by their hash.

    ``Blob(handle)`` wraps a handle of the generated bindings
    (``wit_world.imports.blobs.Blob``), such as an export's ``borrow<blob>``
    argument; :attr:`handle` is what an export returns for a ``blob`` result.
    """

    __slots__ = ("handle", "_len")

    def __init__(self, handle: _blobs.Blob) -> None:
        self.handle = handle
        self._len: Optional[int] = None

    @classmethod
    def of(cls, data: bytes) -> "Blob":
        """A new blob of ``data``; the host hashes it and stores it only if
        it is part of a result."""
        return cls(_blobs.Blob(bytes(data)))

    @classmethod
    def from_chunks(cls, chunks: Iterable[bytes]) -> "Blob":
        """A new blob of ``chunks`` concatenated, written piece by piece."""
        writer = BlobWriter()
        for chunk in chunks:
            writer.write(chunk)
        return writer.finish()

    def hash(self) -> str:
        """The blake3 hash of the content, as 64 lowercase hex digits."""
        return self.handle.hash()

    def __len__(self) -> int:
        if self._len is None:
            self._len = self.handle.len()
        return self._len

    def read(self, offset: int = 0, size: Optional[int] = None) -> bytes:
        """Up to ``size`` bytes from ``offset`` (all the rest by default);
        fewer at the end of the blob."""
        end = len(self) if size is None else min(len(self), offset + size)
        parts = []
        while offset < end:
            part = self.handle.read(offset, min(end - offset, MAX_READ))
            if not part:
                break
            parts.append(part)
            offset += len(part)
        return b"".join(parts)

    def chunks(self, size: int = CHUNK) -> Iterator[bytes]:
        """The content in order, ``size`` bytes at a time (the last may be
        shorter)."""
        if size <= 0:
            raise ValueError("chunk size must be positive")
        offset = 0
        while True:
            part = self.handle.read(offset, min(size, MAX_READ))
            if not part:
                return
            offset += len(part)
            yield part

    def __iter__(self) -> Iterator[bytes]:
        return self.chunks()

    def reader(self, buffer_size: int = CHUNK) -> io.BufferedReader:
        """A buffered, seekable binary stream over the content."""
        return io.BufferedReader(_RawReader(self), buffer_size)

    def text_reader(
        self, encoding: str = "utf-8", errors: str = "strict", newline: Optional[str] = None
    ) -> io.TextIOWrapper:
        """A text stream over the content, like ``open(path, encoding=...)``;
        pass ``newline=""`` for the ``csv`` module."""
        return io.TextIOWrapper(self.reader(), encoding=encoding, errors=errors, newline=newline)

    def lines(self, encoding: str = "utf-8") -> Iterator[str]:
        """The content's lines, decoded, with their line endings."""
        with self.text_reader(encoding=encoding) as text:
            yield from text


class BlobWriter:
    """Builds a blob piece by piece::

        writer = BlobWriter()
        for row in rows:
            writer.write(row)
        blob = writer.finish()
    """

    __slots__ = ("_handle",)

    def __init__(self) -> None:
        self._handle: Optional[_blobs.BlobWriter] = _blobs.BlobWriter()

    def write(self, data: bytes) -> int:
        """Appends ``data``; returns its length."""
        if self._handle is None:
            raise ValueError("write to a finished BlobWriter")
        view = memoryview(data)
        for start in range(0, len(view), MAX_READ):
            self._handle.write(bytes(view[start : start + MAX_READ]))
        return len(view)

    def finish(self) -> Blob:
        """Ends the writer; the blob of everything written."""
        if self._handle is None:
            raise ValueError("BlobWriter finished twice")
        handle, self._handle = self._handle, None
        return Blob(_blobs.BlobWriter.finish(handle))


class _RawReader(io.RawIOBase):
    """The raw stream under :meth:`Blob.reader`."""

    def __init__(self, blob: Blob) -> None:
        super().__init__()
        self._blob = blob
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        want = min(len(buffer), MAX_READ)
        part = self._blob.handle.read(self._pos, want) if want else b""
        buffer[: len(part)] = part
        self._pos += len(part)
        return len(part)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._blob)}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos
