"""Rows of a ``.npy`` file on disk, read only when asked for.

An image cache or a file of frozen-base features can be far larger than memory. A
``DiskArray`` names some rows of such a file (``rows``, in order) and reads them with
``os.pread`` into a fresh array: nothing is memory-mapped, so the process's resident
memory holds only the batches being used, whatever the file's size. Indexing with an
array or a mask gives another ``DiskArray`` (no pixels read); ``np.asarray`` reads all
its rows. The file is opened once: a cache pruned while a run still reads it stays
readable until the run ends.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


class DiskArray:
    """Rows ``rows`` of the ``.npy`` file at ``path``, shaped like a NumPy array of them."""

    def __init__(self, path: str | Path, rows: np.ndarray | None = None, *, _file=None):
        self.path = Path(path)
        self._file = _file or _NpyFile(self.path)
        count = self._file.shape[0]
        self.rows = np.arange(count, dtype=np.int64) if rows is None else np.asarray(rows, np.int64)

    @property
    def dtype(self) -> np.dtype:
        return self._file.dtype

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.rows), *self._file.shape[1:])

    @property
    def file_length(self) -> int:
        """Rows in the whole file, whichever this view takes."""
        return self._file.shape[0]

    @property
    def nbytes(self) -> int:
        return len(self.rows) * self._file.row_bytes

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index):
        """One row as an array for an integer; another ``DiskArray`` for an array or a mask."""
        if isinstance(index, int | np.integer):
            return self.read(np.asarray([index]))[0]
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        return self.at_rows(self.rows[index])

    def at_rows(self, rows: np.ndarray) -> DiskArray:
        """Rows ``rows`` of the same file (file rows, not positions in this view)."""
        return DiskArray(self.path, rows, _file=self._file)

    def __array__(self, dtype=None, copy=None):
        pixels = self.read(np.arange(len(self.rows)))
        return pixels if dtype is None else pixels.astype(dtype)

    def read(self, positions: np.ndarray) -> np.ndarray:
        """The rows at ``positions`` (of this view), in that order, as a new array."""
        return self._file.read(self.rows[np.asarray(positions, np.int64)])


class _NpyFile:
    """An open ``.npy`` file: its dtype, shape, where its data starts, and ``read``."""

    def __init__(self, path: Path):
        shape, fortran, dtype, self.offset = _header(path)
        if fortran:
            raise ValueError(f"{path} is in Fortran order; rows cannot be read one by one")
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self.row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        self.fd = os.open(path, os.O_RDONLY)

    def read(self, rows: np.ndarray) -> np.ndarray:
        out = np.empty((len(rows), *self.shape[1:]), self.dtype)
        flat = out.reshape(len(rows), self.row_bytes // self.dtype.itemsize).view(np.uint8)
        for i, row in enumerate(rows):
            got = os.preadv(self.fd, [flat[i]], self.offset + int(row) * self.row_bytes)
            if got != self.row_bytes:
                raise OSError(f"short read of row {row} from a cache file: {got} bytes")
        return out

    def __del__(self):
        fd = getattr(self, "fd", None)
        if fd is not None:
            os.close(fd)


def create(path: str | Path, dtype, shape: tuple[int, ...]) -> int:
    """Write an empty ``.npy`` file of ``shape`` (sparse on disk); return where its data starts."""
    array = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    offset = int(array.offset)
    del array
    return offset


def write_rows(path: str | Path, offset: int, rows: np.ndarray, values: np.ndarray) -> None:
    """Write ``values[i]`` as row ``rows[i]`` of the ``.npy`` whose data starts at ``offset``."""
    values = np.ascontiguousarray(values)
    row_bytes = values[0].nbytes if len(values) else 0
    fd = os.open(path, os.O_WRONLY)
    try:
        for row, value in zip(rows, values, strict=True):
            os.pwrite(fd, value.reshape(-1).view(np.uint8), offset + int(row) * row_bytes)
    finally:
        os.close(fd)


def data_offset(path: str | Path) -> int:
    """Where the data of the ``.npy`` file at ``path`` starts, after its header."""
    return _header(path)[3]


def _header(path: str | Path) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """The shape, Fortran order, dtype and data offset of a ``.npy`` file."""
    with open(path, "rb") as handle:
        version = np.lib.format.read_magic(handle)
        read = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, fortran, dtype = read(handle)
        return tuple(shape), fortran, np.dtype(dtype), handle.tell()
