"""Object storage (s3://, gs://, any fsspec URL) for run folders and inputs, through fsspec."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import posixpath
import re
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
# schemes that are not object storage: local files, and http(s) sources (fetched by yt-dlp)
NOT_REMOTE = {"file", "local", "http", "https"}
STAGING_ENV = "INTERNVID_STAGING"  # where remote run folders are staged on this machine


def scheme(url: str | os.PathLike) -> str | None:
    """The URL scheme of `url` (lower case), None for a plain path."""
    m = _SCHEME.match(str(url))
    return m.group(1).lower() if m else None


def is_remote(url: str | os.PathLike) -> bool:
    """Whether `url` names object storage (s3://, gs://, memory://...) rather than this disk."""
    s = scheme(url)
    return s is not None and s not in NOT_REMOTE


class StorageError(OSError):
    """A storage URL that cannot be used (unknown scheme, missing fsspec backend)."""


class StorageUnavailable(OSError):
    """The store could not be used: no or wrong credentials, an unreachable endpoint, an error
    of the backend's client (botocore, google-auth, aiohttp) that is not an OSError."""


# the packages whose exceptions are the store's, not a bug of ours
_BACKENDS = ("botocore", "aiobotocore", "s3fs", "gcsfs", "google", "aiohttp", "adlfs", "azure")


def _hint(e: BaseException) -> str:
    name = type(e).__name__
    if "Credential" in name or "Auth" in name:
        return (
            " (give the store's credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or "
            "AWS_PROFILE, AWS_ENDPOINT_URL for an S3-compatible server; gcloud auth for gs://)"
        )
    return ""


@contextlib.contextmanager
def backend_errors(url: str) -> Iterator[None]:
    """Turn the exceptions of a storage client that are not OSErrors (botocore's
    NoCredentialsError, EndpointConnectionError, ...) into StorageUnavailable naming `url`."""
    try:
        yield
    except OSError:
        raise
    except Exception as e:
        if not any(c.__module__.split(".")[0] in _BACKENDS for c in type(e).__mro__):
            raise
        text = " ".join(str(e).split())[:300]
        raise StorageUnavailable(f"{url}: {type(e).__name__}: {text}{_hint(e)}") from e


def _guarded(method: Callable[..., Any]) -> Callable[..., Any]:
    """A Store method whose backend errors become StorageUnavailable."""

    @functools.wraps(method)
    def call(self: Store, *args: Any, **kwargs: Any) -> Any:
        with backend_errors(self.url):
            return method(self, *args, **kwargs)

    return call


def filesystem(url: str) -> tuple[Any, str]:
    """(fsspec filesystem, path inside it) of `url`. Credentials come from the backend's own
    environment and config (AWS_* and ~/.aws for s3fs, GOOGLE_* for gcsfs); none are logged."""
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as e:
        proto = scheme(url)
        hint = {"s3": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs"}
        pkg = hint.get(proto or "", "the fsspec backend of that scheme")
        raise StorageError(f"cannot open {url}: {e} (pip install {pkg})") from e
    return fs, path


def safe_rel(rel: str) -> str:
    """`rel` as a relative POSIX key inside a folder; refuses absolute keys and `..`."""
    rel = rel.replace("\\", "/")
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if rel.startswith("/") or any(p == ".." for p in parts):
        raise ValueError(f"key escapes its folder: {rel!r}")
    return "/".join(parts)


def is_temp(rel: str) -> bool:
    """A temp file of io/atomic (`.NAME.tmp-PID`): never published."""
    name = posixpath.basename(rel)
    return name.startswith(".") and ".tmp-" in name


@dataclass
class Store:
    """A folder in object storage: relative keys, whole-object puts (an object appears under
    its name only when its upload completed, so readers never see half of one)."""

    url: str  # e.g. s3://bucket/run
    _fs: Any = field(default=None, repr=False, compare=False)
    _root: str = field(default="", repr=False, compare=False)

    def __post_init__(self) -> None:
        self.url = str(self.url).rstrip("/")

    def __getstate__(self) -> dict[str, Any]:  # workers rebuild the filesystem themselves
        return {"url": self.url, "_fs": None, "_root": ""}

    @property
    def fs(self) -> Any:
        if self._fs is None:
            self._fs, self._root = filesystem(self.url)
        return self._fs

    @property
    def root(self) -> str:
        self.fs  # noqa: B018 - resolves the root with the filesystem
        return self._root.rstrip("/")

    def key(self, rel: str) -> str:
        rel = safe_rel(rel)
        return f"{self.root}/{rel}" if rel else self.root

    def url_of(self, rel: str) -> str:
        rel = safe_rel(rel)
        return f"{self.url}/{rel}" if rel else self.url

    @_guarded
    def exists(self, rel: str) -> bool:
        return bool(self.fs.exists(self.key(rel)))

    @_guarded
    def files(self, prefix: str = "") -> dict[str, int]:
        """Relative key -> size of every object under `prefix` (fresh listing, no cache)."""
        self.fs.invalidate_cache()
        base = self.key(prefix)
        try:
            found = self.fs.find(base, detail=True)
        except FileNotFoundError:
            return {}
        out = {}
        for path, info in found.items():
            if info.get("type") == "directory":
                continue
            rel = path[len(self.root) :].lstrip("/") if path.startswith(self.root) else path
            out[rel] = int(info.get("size") or 0)
        return dict(sorted(out.items()))

    @_guarded
    def put(self, local: str | Path, rel: str) -> None:
        """Upload one local file to `rel` (one object, visible only once complete)."""
        self.fs.put_file(str(local), self.key(rel))

    @_guarded
    def get(self, rel: str, local: str | Path) -> Path:
        """Download `rel` to `local`, through a temp name (a killed get leaves no half file)."""
        local = Path(local)
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = local.with_name(f".{local.name}.tmp-{os.getpid()}")
        try:
            self.fs.get_file(self.key(rel), str(tmp))
            os.replace(tmp, local)
        finally:
            tmp.unlink(missing_ok=True)
        return local

    @_guarded
    def read_bytes(self, rel: str) -> bytes:
        return bytes(self.fs.cat_file(self.key(rel)))

    @_guarded
    def write_bytes(self, rel: str, data: bytes, exclusive: bool = False) -> None:
        """One object with `data`; `exclusive`: fail with FileExistsError when it exists."""
        if exclusive:
            try:
                self.fs.pipe_file(self.key(rel), data, mode="create")
                return
            except FileExistsError:
                raise
            except (TypeError, NotImplementedError, ValueError):  # a backend without it
                if self.exists(rel):
                    raise FileExistsError(self.url_of(rel)) from None
        self.fs.pipe_file(self.key(rel), data)

    @_guarded
    def rm(self, rel: str, recursive: bool = False) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self.key(rel), recursive=recursive)


def staging_dir(url: str) -> Path:
    """This machine's working copy of remote folder `url`: $INTERNVID_STAGING (or the user
    cache's internvid/staging) / a hash of the URL. It persists, so a resumed run on the same
    machine finds its downloads and scratch; everything that matters is also in the store."""
    base = os.environ.get(STAGING_ENV)
    if not base:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        base = os.path.join(cache, "internvid", "staging")
    digest = hashlib.sha256(str(url).rstrip("/").encode()).hexdigest()[:16]
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", str(url).rstrip("/").rsplit("/", 1)[-1])[:40]
    return Path(base) / f"{name}-{digest}"


Select = Callable[[str], bool]  # which relative keys a command needs


def everything(rel: str) -> bool:
    return True


def pull(store: Store, local: Path, select: Select = everything) -> dict[str, tuple[int, int]]:
    """Copy the store's objects that `select` keeps into `local` (those whose size differs
    from the local copy, or missing). Returns the snapshot: rel -> (size, mtime_ns)."""
    got = 0
    for rel, size in store.files().items():
        try:
            rel = safe_rel(rel)
        except ValueError:  # a key with `..` or a leading `/`: never written outside `local`
            log.warning("skipping object %r of %s: its key escapes the folder", rel, store.url)
            continue
        if is_temp(rel) or not select(rel):
            continue
        target = local / rel
        if target.is_file() and target.stat().st_size == size:
            continue
        store.get(rel, target)
        got += 1
    if got:
        log.info("fetched %d file(s) of %s", got, store.url)
    return snapshot(local)


def snapshot(local: Path) -> dict[str, tuple[int, int]]:
    """rel -> (size, mtime_ns) of every file under `local`."""
    out = {}
    if local.is_dir():
        for p in local.rglob("*"):
            if p.is_file():
                st = p.stat()
                out[p.relative_to(local).as_posix()] = (st.st_size, st.st_mtime_ns)
    return out


def push(
    store: Store,
    local: Path,
    before: dict[str, tuple[int, int]],
    skip: Select = lambda rel: False,
    last: Iterable[str] = (),
) -> int:
    """Upload every file under `local` that is new or changed since `before` (temp files and
    `skip`ped keys never); the keys in `last` go after all others, in that order (a reader
    that sees them sees everything they describe). Returns how many were uploaded."""
    now = snapshot(local)
    changed = [r for r, st in now.items() if before.get(r) != st and not is_temp(r) and not skip(r)]
    order = list(last)
    changed.sort(key=lambda r: (order.index(r) if r in order else -1, r))
    for rel in changed:
        store.put(local / rel, rel)
    if changed:
        log.info("published %d file(s) to %s", len(changed), store.url)
    return len(changed)


def rm_local(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def iter_remote_files(url: str, extensions: Iterable[str]) -> Iterator[str]:
    """The URLs of the objects under `url` (a prefix, a single object, or a glob) whose name
    ends with one of `extensions`, sorted; an object named exactly is returned whatever its
    extension."""
    fs, path = filesystem(url)
    proto = scheme(url)
    exts = tuple(e.lower() for e in extensions)
    with backend_errors(url):
        if any(c in path for c in "*?["):
            found = sorted(p for p in fs.glob(path) if fs.isfile(p))
        elif fs.isfile(path):
            found = None
        else:
            found = sorted(fs.find(path))
    if found is None:
        yield url
        return
    for p in found:
        if p.lower().endswith(exts):
            yield f"{proto}://{p.lstrip('/')}" if proto != "memory" else f"memory://{p}"
