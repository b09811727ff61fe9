"""JSON Patch (RFC 6902) and JSON Merge Patch (RFC 7396) on plain JSON documents.

SuperOffice's `PATCH /api/v1/Ticket/{id}` takes either; the simulator applies the patch to
the rendered TicketEntity and then reads back the few writable fields, so any path the
client uses behaves as on a document (and read-only fields are silently ignored).
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["PatchConflictError", "PatchError", "apply_json_patch", "apply_merge_patch"]


class PatchError(ValueError):
    """A malformed patch or a path that does not exist (answered 400)."""


class PatchConflictError(PatchError):
    """A `test` operation failed (answered 409, as SuperOffice documents)."""


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: objects merge recursively, `null` removes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        key = _key(result, name) or name
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise PatchError(f"bad JSON pointer {path!r}")
    if path == "":
        return []
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str]) -> Any:
    node = doc
    for part in parts[:-1]:
        node = _child(node, part)
    return node


def _child(node: Any, part: str) -> Any:
    if isinstance(node, dict):
        key = _key(node, part)
        if key is None:
            raise PatchError(f"path segment {part!r} does not exist")
        return node[key]
    if isinstance(node, list):
        index = _index(node, part, allow_end=False)
        return node[index]
    raise PatchError(f"path segment {part!r} does not exist")


def _key(node: dict[str, Any], part: str) -> str | None:
    """SuperOffice property names are case-insensitive: match exactly, then ignoring case."""
    if part in node:
        return part
    return next((k for k in node if k.lower() == part.lower()), None)


def _index(node: list[Any], part: str, *, allow_end: bool) -> int:
    if part == "-" and allow_end:
        return len(node)
    if not part.isdigit():
        raise PatchError(f"bad array index {part!r}")
    index = int(part)
    if index > len(node) or (index == len(node) and not allow_end):
        raise PatchError(f"array index {index} out of range")
    return index


def _get(doc: Any, parts: list[str]) -> Any:
    node = doc
    for part in parts:
        node = _child(node, part)
    return node


def _add(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return value
    parent = _parent(doc, parts)
    last = parts[-1]
    if isinstance(parent, dict):
        parent[_key(parent, last) or last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, allow_end=True), value)
    else:
        raise PatchError("cannot add below a scalar")
    return doc


def _remove(doc: Any, parts: list[str]) -> Any:
    if not parts:
        raise PatchError("cannot remove the whole document")
    parent = _parent(doc, parts)
    last = parts[-1]
    if isinstance(parent, dict):
        key = _key(parent, last)
        if key is None:
            raise PatchError(f"path segment {last!r} does not exist")
        del parent[key]
    elif isinstance(parent, list):
        del parent[_index(parent, last, allow_end=False)]
    else:
        raise PatchError("cannot remove below a scalar")
    return doc


def _replace(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return value
    parent = _parent(doc, parts)
    last = parts[-1]
    if isinstance(parent, dict):
        key = _key(parent, last)
        if key is None:
            raise PatchError(f"path segment {last!r} does not exist")
        parent[key] = value
    elif isinstance(parent, list):
        parent[_index(parent, last, allow_end=False)] = value
    else:
        raise PatchError("cannot replace below a scalar")
    return doc


def apply_json_patch(doc: Any, operations: Any) -> Any:
    """RFC 6902 add/remove/replace/move/copy/test on a deep copy of `doc`."""
    if not isinstance(operations, list):
        raise PatchError("a JSON Patch is an array of operations")
    result = copy.deepcopy(doc)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError("each operation needs 'op' and 'path'")
        name = str(op["op"]).lower()
        parts = _pointer(op["path"])
        if name in {"add", "replace", "test"} and "value" not in op:
            raise PatchError(f"{name} needs a 'value'")
        if name == "add":
            result = _add(result, parts, copy.deepcopy(op["value"]))
        elif name == "remove":
            result = _remove(result, parts)
        elif name == "replace":
            result = _replace(result, parts, copy.deepcopy(op["value"]))
        elif name in {"move", "copy"}:
            source = _pointer(op.get("from"))
            value = copy.deepcopy(_get(result, source))
            if name == "move":
                result = _remove(result, source)
            result = _add(result, parts, value)
        elif name == "test":
            if _get(result, parts) != op["value"]:
                raise PatchConflictError(f"test failed at {op['path']}")
        else:
            raise PatchError(f"unknown operation {op['op']!r}")
    return result
