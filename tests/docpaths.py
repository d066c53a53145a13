"""Helpers for tests that edit API documents at a path of keys and indices."""

from __future__ import annotations

__all__ = ["nulled_and_omitted"]


def nulled_and_omitted(make_doc, path):
    """Two fresh documents from ``make_doc()``: one with ``path`` set to ``None``, one without it."""
    with_null, omitted = make_doc(), make_doc()
    for doc, action in ((with_null, "null"), (omitted, "delete")):
        node = doc
        for key in path[:-1]:
            node = node[key]
        if action == "null":
            node[path[-1]] = None
        else:
            del node[path[-1]]
    return with_null, omitted
