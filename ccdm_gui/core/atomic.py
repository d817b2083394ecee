"""Files that appear complete or not at all: a reader sees the old file or the new one,
never half a file, and a failure or a cancellation leaves no temporary behind.

Everything is written under a hidden temporary name in the destination folder (same
file system, so the final rename is atomic) and moved into place once complete.
``atomic_path`` and ``atomic_write_bytes`` replace a run's own outputs; ``atomic_file``
and ``FolderTransaction`` write a user's exports, refuse to clobber unless told, and turn
every OSError into a WriteError whose message names the path and says why.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path


class WriteError(Exception):
    """A file could not be written; the message names the path and says why."""


class WriteCancelled(WriteError):
    """The user cancelled; nothing was written."""


def error_for(exc: OSError, path: str | os.PathLike) -> WriteError:
    """Turn an OSError (or PyAV's OSError subclasses) into a message a user can act on."""
    path = Path(path)
    code = getattr(exc, "errno", None)
    if code == errno.ENOENT and path.parent.is_dir():
        # The folder is there, yet nothing can be made in it (/proc, a vanished mount).
        return WriteError(f"cannot create {path}: {path.parent} takes no new files or folders")
    if code in (errno.ENOSPC, errno.EDQUOT):
        return WriteError(f"not enough disk space to write {path}")
    if code in (errno.EACCES, errno.EPERM):
        return WriteError(f"no permission to write to {path.parent}")
    if code == errno.EROFS:
        return WriteError(f"{path.parent} is on a read-only file system")
    if code == errno.ENOENT:
        return WriteError(f"folder {path.parent} does not exist")
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return WriteError(f"could not write {path}: {reason}")


class TempFile(io.FileIO):
    """The file object every export byte goes through: PNG frames, GIFs and PyAV's
    muxer (via its Python-file IO). Being one Python class, its ``write`` is where a
    test injects a full disk."""

    def fileno(self) -> int:
        # Pillow encodes straight into a file descriptor when it gets one, bypassing
        # write(); without one it calls write() like everything else.
        raise io.UnsupportedOperation("fileno")


def _create_exclusive(path: Path) -> TempFile:
    # Opened by path (not fd) so the file object's name is a real path: FFmpeg's mp4
    # "faststart" pass re-opens the file by that name. "x" refuses an existing file, and
    # the mode is 0o666 less the umask like any new file (mkstemp would force 0o600).
    return TempFile(path, "x+")


def _temp_name(path: Path) -> Path:
    return path.parent / f".{path.name}.{secrets.token_hex(4)}.part"


def _move_into_place(tmp: Path, dest: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, dest)
        return
    # A hard link refuses to replace an existing file, so "no clobber" holds even if
    # the file appeared while we were encoding. Some file systems (FAT, some network
    # shares) have no hard links; there we check and rename.
    try:
        os.link(tmp, dest)
    except FileExistsError:
        raise WriteError(f"{dest} already exists; choose another name or allow overwrite") from None
    except OSError:
        if dest.exists():
            raise WriteError(
                f"{dest} already exists; choose another name or allow overwrite"
            ) from None
        os.replace(tmp, dest)
    else:
        os.unlink(tmp)


def check_destination(path: Path, overwrite: bool) -> None:
    """Fail early, before any work, on a destination that cannot be written."""
    folder = path.parent
    if not folder.exists():
        raise WriteError(f"folder {folder} does not exist")
    if not folder.is_dir():
        raise WriteError(f"{folder} is not a folder")
    if path.is_dir():
        raise WriteError(f"{path} is a folder; choose a file name")
    if path.exists() and not overwrite:
        raise WriteError(f"{path} already exists; choose another name or allow overwrite")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise WriteError(f"no permission to write to {folder}")


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, overwrite: bool = False) -> Iterator[TempFile]:
    """Yield a writable, seekable file; on normal exit it becomes ``path``."""
    path = Path(path)
    check_destination(path, overwrite)
    tmp = _temp_name(path)
    try:
        f = _create_exclusive(tmp)
    except OSError as e:
        raise error_for(e, path) from e
    try:
        yield f
        f.flush()
        os.fsync(io.FileIO.fileno(f))
        f.close()
        _move_into_place(tmp, path, overwrite)
    except BaseException as e:
        f.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError) and not isinstance(e, WriteError):
            raise error_for(e, path) from e
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` for the block to write (for writers that want a
    file name, such as safetensors); moved over ``path`` when the block succeeds, removed
    when it fails. Creates missing folders and replaces an existing file: for a run's
    own outputs (saved runs, checkpoints, JSON results), not for a user's export."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, write: Callable) -> None:
    """``write(fileobj)`` into a temporary file beside ``path``, then move it over."""
    with atomic_path(path) as tmp, open(tmp, "xb") as f:
        write(f)


def write_file(path: Path, data_writer) -> None:
    """Write one new file inside a staging folder (no rename needed there)."""
    try:
        f = _create_exclusive(path)
    except OSError as e:
        raise error_for(e, path) from e
    with f:
        try:
            data_writer(f)
        except OSError as e:
            if isinstance(e, WriteError):
                raise
            raise error_for(e, path) from e


class FolderTransaction:
    """Stage a set of named files and publish them into ``folder`` together.

    If the folder does not exist, files are staged in a hidden sibling folder that is
    renamed to ``folder`` at the end (one atomic step). If it exists, they are staged in
    a hidden sub-folder and renamed in one by one; existing files of the same names are
    refused unless ``overwrite``. With ``overwrite``, files a previous write listed in
    the JSON ``manifest`` (its "files") but this one does not write are removed, so a
    folder never mixes frames of two runs. Anything else in the folder is left alone.
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        names: list[str],
        overwrite: bool = False,
        manifest: str | None = None,
    ):
        self.folder = Path(folder)
        self.names = list(names)
        self.overwrite = overwrite
        self.manifest = manifest
        self.staging: Path | None = None
        self._created: list[Path] = []
        self._existed = False

    def __enter__(self) -> FolderTransaction:
        folder = self.folder
        if folder.exists() and not folder.is_dir():
            raise WriteError(f"{folder} is a file, not a folder")
        self._existed = folder.is_dir()
        if self._existed:
            clashes = [n for n in self.names if (folder / n).exists()]
            if clashes and not self.overwrite:
                raise WriteError(
                    f"{folder} already holds {len(clashes)} of the files this export writes "
                    f"(e.g. {clashes[0]}); choose another folder or allow overwrite"
                )
            parent = folder
        else:
            parent = folder.parent
            missing = []
            p = parent
            while not p.exists():
                missing.append(p)
                p = p.parent
            if not p.is_dir():
                raise WriteError(f"{p} is a file, not a folder")
            try:
                for m in reversed(missing):
                    m.mkdir()
                    self._created.append(m)
            except OSError as e:
                self._remove_created()
                raise error_for(e, m) from e
        staging = parent / f".ccdm-export-{secrets.token_hex(4)}.part"
        try:
            staging.mkdir()
        except OSError as e:
            self._remove_created()
            raise error_for(e, folder if not self._existed else staging) from e
        self.staging = staging
        return self

    def path(self, name: str) -> Path:
        assert self.staging is not None
        return self.staging / name

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self.staging is not None
        if exc_type is None:
            try:
                self._publish()
                return
            except OSError as e:
                self._abort()
                raise error_for(e, self.folder / "x") from e
        self._abort()

    def _publish(self) -> None:
        assert self.staging is not None
        if not self._existed:
            os.rename(self.staging, self.folder)
            return
        stale = self._previous_files() - set(self.names)
        for name in self.names:
            src, dst = self.staging / name, self.folder / name
            if self.overwrite:
                os.replace(src, dst)
            else:
                _move_into_place(src, dst, overwrite=False)
        for name in stale:
            p = self.folder / name
            # Only plain names a previous export wrote; never a path out of the folder.
            if p.name == name and p.is_file():
                p.unlink()
        self.staging.rmdir()

    def _previous_files(self) -> set[str]:
        if not self.overwrite or self.manifest is None:
            return set()
        try:
            old = json.loads((self.folder / self.manifest).read_text())
            return {str(n) for n in old.get("files", [])}
        except (OSError, ValueError, AttributeError):
            return set()

    def _abort(self) -> None:
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
        self._remove_created()

    def _remove_created(self) -> None:
        for p in reversed(self._created):
            with contextlib.suppress(OSError):
                p.rmdir()
        self._created.clear()
