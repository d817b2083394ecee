"""A small thread-safe LRU, and the change stamp that keys caches of files."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path


class LRU:
    def __init__(self, max_items: int):
        self.max_items = max_items
        self._d: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            if key not in self._d:
                return None
            self._d.move_to_end(key)
            return self._d[key]

    def put(self, key, value) -> None:
        with self._lock:
            self._d[key] = value
            self._d.move_to_end(key)
            while len(self._d) > self.max_items:
                self._d.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._d.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._d)


def change_stamp(path: str | os.PathLike) -> int:
    """A change stamp for a file or folder (a folder changes when any file in it does)."""
    p = Path(path)
    try:
        st = p.stat().st_mtime_ns
        if p.is_dir():
            st = max([st] + [c.stat().st_mtime_ns for c in p.iterdir() if c.is_file()])
        return st
    except OSError:
        return -1
