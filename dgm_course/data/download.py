"""The one way the course downloads a file: a cache, a SHA-256 check, and a clear message when offline.

:func:`fetch` returns the cached copy when it is there and intact; otherwise it downloads the file to a
temporary name beside the cache entry, checks its hash, and only then moves it into place, so a cache
never holds a truncated or altered file. The cache is ``$DGM_DATA`` when set, else ``~/.cache/dgm_course``.

Callers that have an offline fallback (the applications' paintings, say) catch :class:`DownloadUnavailable`
and say which fallback they used.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

CACHE_VAR = "DGM_DATA"  # the same folder dgm_course.data.images caches in
_CHUNK = 1 << 20


class DownloadUnavailable(OSError):
    """A file could not be downloaded (no network, the server refused, or a timeout)."""


class HashMismatch(ValueError):
    """A downloaded (or cached) file does not have the expected SHA-256: it was not kept."""


def cache_dir() -> Path:
    """Where downloads are kept: ``$DGM_DATA``, else ``~/.cache/dgm_course``."""
    return Path(os.environ.get(CACHE_VAR) or Path.home() / ".cache" / "dgm_course")


def sha256(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file, as 64 hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(url: str, sha: str, name: str | None = None, *, directory: str | os.PathLike[str] | None = None,
          timeout: float = 30.0) -> Path:
    """Return the path of the file at ``url`` whose SHA-256 is ``sha``, downloading it once into the cache.

    Args:
        url: where to download from.
        sha: the expected SHA-256 (hex); a file with another hash is never returned.
        name: the file's name in the cache (default: the last part of the URL).
        directory: the cache (default: :func:`cache_dir`).
        timeout: seconds to wait for the server.

    Raises:
        DownloadUnavailable: the file is not cached and cannot be downloaded; the message says where to
            put a copy by hand.
        HashMismatch: the downloaded file has another hash (it is deleted).
    """
    if not isinstance(sha, str) or len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha.lower()):
        raise ValueError(f"sha must be a SHA-256 in hex (64 characters); got {sha!r}")
    sha = sha.lower()
    parts = urllib.parse.urlparse(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https", "file") or (parts.scheme != "file" and not parts.netloc):
        raise ValueError(f"url must be an http(s):// or file:// address; got {url!r}")
    name = name or parts.path.rstrip("/").rsplit("/", 1)[-1]
    if not name or name in (".", "..") or Path(name).name != name:
        raise ValueError(f"name must be a plain file name (no folders); got {name!r}")
    folder = Path(directory) if directory is not None else cache_dir()
    target = folder / name
    if target.exists() and sha256(target) == sha:
        return target
    stale = target.exists()  # a damaged copy, or one placed by hand with other bytes: kept until a good one arrives
    folder.mkdir(parents=True, exist_ok=True)
    handle, part = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)  # one per download
    partial = Path(part)
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            expected = response.headers.get("Content-Length")
            received = 0
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                out.write(chunk)
                received += len(chunk)
            if expected is not None and received < int(expected):
                raise ConnectionError(f"the connection closed after {received} of {expected} bytes")
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        partial.unlink(missing_ok=True)
        reason = f"HTTP {err.code}: {err.reason}" if isinstance(err, urllib.error.HTTPError) else getattr(
            err, "reason", err)
        kept = f" The copy already at {target} has another SHA-256 and was left as it is." if stale else ""
        raise DownloadUnavailable(
            f"could not download {target.name} from {url} ({reason}); trying again may work. Without a network (or "
            f"if the file has moved), put a copy of the file (SHA-256 {sha}) at {target} and run again.{kept}"
        ) from err
    got = sha256(partial)
    if got != sha:
        partial.unlink()
        raise HashMismatch(f"{url} gave a file with SHA-256 {got}, not the expected {sha}; it was not kept "
                           "(the server's file changed, or the download was altered).")
    os.replace(partial, target)
    return target
