"""Helpers for parameter trees: nested dicts and lists whose leaves are arrays.

autograd differentiates such trees natively and `grad` returns the same structure,
so the whole framework passes parameters around as plain containers (no classes).
"""
import numpy as onp


def tree_map(fn, tree, *rest):
    """Apply `fn` leaf-wise to one or more trees of identical structure."""
    if isinstance(tree, dict):
        return {key: tree_map(fn, tree[key], *(r[key] for r in rest)) for key in tree}
    if isinstance(tree, (list, tuple)):
        return type(tree)(tree_map(fn, *leaves) for leaves in zip(tree, *rest))
    return fn(tree, *rest)


def tree_leaves(tree):
    """All leaves in a fixed, deterministic order (dict keys sorted)."""
    return [leaf for _, leaf in tree_flatten_with_paths(tree)]


def tree_flatten_with_paths(tree, prefix=""):
    """List of (path, leaf), paths like 'encoder/0/w' (dict keys sorted, list indices).

    Dict keys must be strings without '/', so that paths can be parsed back.
    """
    if isinstance(tree, dict):
        items = []
        for key in sorted(tree):
            if not isinstance(key, str) or "/" in key or not key:
                raise ValueError(f"tree keys must be non-empty strings without '/', got {key!r}")
            items += tree_flatten_with_paths(tree[key], f"{prefix}{key}/")
        return items
    if isinstance(tree, (list, tuple)):
        items = []
        for index, child in enumerate(tree):
            items += tree_flatten_with_paths(child, f"{prefix}{index}/")
        return items
    return [(prefix.rstrip("/"), tree)]


def tree_count(tree):
    """Total number of scalar entries over all array leaves."""
    return int(sum(onp.size(leaf) for leaf in tree_leaves(tree)))


def tree_cast(tree, dtype):
    """Copy of `tree` with every floating-point leaf cast to `dtype` (ints kept)."""
    def cast(leaf):
        leaf = onp.asarray(leaf)
        return leaf.astype(dtype) if onp.issubdtype(leaf.dtype, onp.floating) else leaf
    return tree_map(cast, tree)


def tree_zeros_like(tree):
    return tree_map(onp.zeros_like, tree)
