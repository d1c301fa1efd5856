"""Saving and loading scikit-learn estimators with skops: no pickle, an explicit list of trusted
types, and the same bytes for the same estimator.

:func:`save_estimator` writes a skops file (a zip of a JSON schema and ``.npy`` arrays) and then
rewrites it canonically: skops names arrays and memo entries after ``id()`` (memory addresses)
and stamps zip entries with the current time, so two dumps of one estimator differ; here ids
become ordinals in schema order and every entry gets the same date, so a rerun of the train stage
writes the same bytes.

:func:`load_estimator` reads every type the schema names and refuses the file unless each one is
in :data:`TRUSTED_TYPES` (the types the TF-IDF and embedding families are made of); only then is
``skops.io.load`` called, trusting exactly the listed types that skops itself does not trust by
default.  Nothing is ever loaded with ``trusted=True``, and nothing in the file can run code on load.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from secmine.detect.models.base import ModelError

SCHEMA = "schema.json"
#: Every (module, class) a saved TF-IDF pipeline or logistic-regression head may contain.
TRUSTED_TYPES: frozenset[str] = frozenset(
    {
        "builtins.dict", "builtins.list", "builtins.tuple", "builtins.str", "builtins.int", "builtins.float",
        "builtins.bool", "builtins.NoneType",
        "numpy.ndarray", "numpy.dtype", "numpy.float64", "numpy.float32", "numpy.int64", "numpy.int32",
        "numpy.bool_", "numpy.bool",
        "sklearn.pipeline.Pipeline",
        "sklearn.feature_extraction.text.TfidfVectorizer",
        "sklearn.feature_extraction.text.TfidfTransformer",
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.svm._classes.LinearSVC",
    }
)
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)


class UntrustedModelError(ModelError):
    """A saved estimator names a type outside the trusted list; it is not loaded."""


def _walk_types(node: Any, found: list[str]) -> None:
    if isinstance(node, dict):
        if "__class__" in node and "__module__" in node:
            name = f"{node['__module__']}.{node['__class__']}"
            if name not in found:
                found.append(name)
        for value in node.values():
            _walk_types(value, found)
    elif isinstance(node, list):
        for value in node:
            _walk_types(value, found)


def _read_schema(path: Path) -> tuple[zipfile.ZipFile, Any]:
    try:
        archive = zipfile.ZipFile(path)
        schema = json.loads(archive.read(SCHEMA))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise ModelError(f"{path}: not a skops file ({type(exc).__name__}: {exc}); retrain the model "
                         "(secmine train)") from exc
    return archive, schema


def schema_types(path: str | os.PathLike[str]) -> list[str]:
    """Every ``module.class`` named in a skops file's schema, in order of appearance."""
    archive, schema = _read_schema(Path(path))
    archive.close()
    found: list[str] = []
    _walk_types(schema, found)
    return found


def canonical_skops(data: bytes) -> bytes:
    """The skops file ``data`` with ``id()``-based memo ids and array names replaced by ordinals in
    schema order, and every zip entry dated 1980-01-01 (same estimator, same bytes)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    names = {info.filename for info in source.infolist()}
    schema = json.loads(source.read(SCHEMA))
    ids: dict[int, int] = {}
    files: dict[str, str] = {}

    def rename(value: str) -> str:
        if value not in files:
            files[value] = f"{len(files) + 1}{Path(value).suffix}"
        return files[value]

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for key, value in node.items():
                if key == "__id__" and isinstance(value, int):
                    out[key] = ids.setdefault(value, len(ids) + 1)
                elif key == "file" and isinstance(value, str) and value in names:
                    out[key] = rename(value)
                else:
                    out[key] = walk(value)
            return out
        if isinstance(node, list):
            return [walk(value) for value in node]
        return node

    schema = walk(schema)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as target:
        for info in source.infolist():
            if info.filename == SCHEMA:
                continue
            if info.filename not in files:  # an entry the schema does not reference: keep it, renamed
                rename(info.filename)
            entry = zipfile.ZipInfo(files[info.filename], date_time=_FIXED_DATE)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            target.writestr(entry, source.read(info.filename), compresslevel=6)
        entry = zipfile.ZipInfo(SCHEMA, date_time=_FIXED_DATE)
        entry.compress_type = zipfile.ZIP_DEFLATED
        entry.external_attr = 0o644 << 16
        target.writestr(entry, json.dumps(schema, indent=2).encode("utf-8"), compresslevel=6)
    return buffer.getvalue()


def save_estimator(estimator: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``estimator`` to ``path`` as a canonical skops file (atomically)."""
    import skops.io as sio

    from secmine.io import write_bytes

    return write_bytes(path, canonical_skops(sio.dumps(estimator)))


def load_estimator(path: str | os.PathLike[str], *, trusted: Iterable[str] = TRUSTED_TYPES) -> Any:
    """The estimator saved at ``path``, after checking that every type its schema names is in
    ``trusted``; :class:`UntrustedModelError` (naming the file and the types) otherwise."""
    import skops.io as sio

    path = Path(path)
    allowed = frozenset(trusted)
    named = schema_types(path)
    flagged = list(sio.get_untrusted_types(file=path))  # what skops itself would not load untrusted
    refused = list(dict.fromkeys(name for name in [*named, *flagged] if name not in allowed))
    if refused:
        raise UntrustedModelError(
            f"{path}: refusing to load: the file names type(s) outside the trusted list "
            f"({', '.join(refused)}); it was not written by secmine or was altered -- retrain "
            "(secmine train)")
    try:
        return sio.load(path, trusted=flagged)
    except Exception as exc:  # noqa: BLE001 - skops raises many types for damaged files
        raise ModelError(f"{path}: skops cannot load it ({type(exc).__name__}: {exc}); retrain "
                         "(secmine train)") from exc


def load_saved(directory: str | os.PathLike[str], name: str, *, legacy: str, what: str) -> Any:
    """The estimator a model folder saved as ``name``; a folder holding only the ``legacy`` pickle
    (``what``: "pipeline", "classifier head") is refused with the fix, never unpickled."""
    path = Path(directory) / name
    if not path.is_file():
        if (Path(directory) / legacy).is_file():
            raise ModelError(f"{Path(directory) / legacy}: a pickled (joblib) {what}, which secmine no longer "
                             "loads; retrain the model (secmine train) to save it with skops")
        raise ModelError(f"{path}: saved {what} not found; retrain the model (secmine train)")
    return load_estimator(path)
