"""einsum and tensordot as compositions of ember ops (diagonal views, sum, permute, reshape, bmm, mul), so
autograd and every device come for free.

Note [einsum as pairwise bmm]
Like torch (aten/src/ATen/native/Linear.cpp), the equation is parsed into one label list per
operand; ellipses become extra labels, right-aligned across operands. Each operand first loses its
repeated labels (a diagonal) and the labels no one else needs (a sum). Operands are then contracted
left to right: in a pair, a label both share and someone later needs is a batch dim, one both share
and no one later needs is contracted, the rest stay with their operand; the pair becomes one bmm
(or a broadcast multiply when nothing is contracted). Labeled dims of size 1 broadcast, as in torch.
"""
from __future__ import annotations

from . import _C
from ._C import Tensor
from ._shape_ops import diagonal_view

__all__ = ["einsum", "tensordot"]

_ELLIPSIS = "..."


def _label_id(ch: str, pos: int) -> int:
    # torch's order: A-Z before a-z (the implicit output lists labels in this order).
    if "A" <= ch <= "Z":
        return ord(ch) - ord("A")
    if "a" <= ch <= "z":
        return 26 + ord(ch) - ord("a")
    raise RuntimeError(f"[einsum] invalid subscript given at index {pos} in the equation string, subscripts must be "
                       f"in [a-zA-Z]")


def _parse_term(term: str, offset: int, what: str) -> list:
    """Labels of one term: ints for letters, _ELLIPSIS for '...'; spaces are skipped."""
    labels, i = [], 0
    while i < len(term):
        ch = term[i]
        if ch == " ":
            i += 1
        elif ch == ".":
            if term[i:i + 3] != _ELLIPSIS:
                raise RuntimeError(f"[einsum] found '.' for {what} that is not part of any ellipsis")
            if _ELLIPSIS in labels:
                raise RuntimeError(f"[einsum] found more than one ellipsis ('...') for {what}")
            labels.append(_ELLIPSIS)
            i += 3
        else:
            labels.append(_label_id(ch, offset + i))
            i += 1
    return labels


def _letter(label: int) -> str:
    return chr(ord("A") + label) if label < 26 else chr(ord("a") + label - 26)


def _parse(equation: str, n_ops: int):
    """(per-operand label lists, output label list or None for implicit)."""
    lhs, arrow, rhs = equation.partition("->")
    terms = lhs.split(",")
    if len(terms) > n_ops:
        raise RuntimeError(f"[einsum] fewer operands were provided than specified in the equation "
                         f"({n_ops} given, {len(terms)} in {equation!r})")
    if len(terms) < n_ops:
        raise RuntimeError(f"[einsum] more operands were provided than specified in the equation "
                         f"({n_ops} given, {len(terms)} in {equation!r})")
    ins, pos = [], 0
    for k, term in enumerate(terms):
        ins.append(_parse_term(term, pos, f"operand {k}"))
        pos += len(term) + 1
    out = _parse_term(rhs, len(lhs) + 2, "the output") if arrow else None
    return ins, out


def _sublist_equation(args) -> tuple[str, list]:
    """einsum(op0, sublist0, op1, sublist1, ..., [sublist_out]) as an equation string."""
    def term(sub) -> str:
        parts = []
        for s in sub:
            if s is Ellipsis:
                parts.append(_ELLIPSIS)
            elif isinstance(s, int) and 0 <= s < 52:
                parts.append(_letter(s))
            else:
                raise ValueError(f"[einsum] subscript in sublist must be in range [0, 52), got {s!r}")
        return "".join(parts)

    ops, terms = list(args[0::2]), [term(s) for s in args[1::2]]
    out = None
    if len(args) % 2 == 1:
        out = term(args[-1])
        ops = ops[:-1]
    return ",".join(terms) + ("" if out is None else "->" + out), ops


def einsum(*args) -> Tensor:
    """torch.einsum: einsum('ij,jk->ik', a, b), einsum('ij,jk', [a, b]) or the sublist form
    einsum(a, [0, 1], b, [1, 2], [0, 2]). Ellipses, repeated labels (diagonals), implicit outputs and
    size-1 broadcasting follow torch; see Note [einsum as pairwise bmm]."""
    if not args:
        raise ValueError("[einsum] must specify the equation string and at least one operand, or at least one "
                         "operand and its subscripts list")
    if isinstance(args[0], str):
        equation, operands = args[0], list(args[1:])
        if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
            operands = list(operands[0])
    else:
        equation, operands = _sublist_equation(args)
    for i, op in enumerate(operands):
        if not isinstance(op, Tensor):
            raise TypeError(f"[einsum] operand {i} must be a Tensor, got {type(op).__name__}")
    if not operands:
        raise ValueError("[einsum] must specify the equation string and at least one operand, or at least one "
                         "operand and its subscripts list")
    in_labels, out_labels = _parse(equation, len(operands))
    return _contract(equation, operands, in_labels, out_labels)


def _expand_ellipsis(equation, operands, in_labels):
    """Per-operand label lists with the ellipsis replaced by negative labels -1..-n (right-aligned),
    and n, the number of ellipsis dims."""
    n_ell = 0
    for k, (op, labels) in enumerate(zip(operands, in_labels)):
        named = len(labels) - (1 if _ELLIPSIS in labels else 0)
        if _ELLIPSIS in labels:
            if op.dim() < named:
                raise RuntimeError(f"[einsum] the number of subscripts in the equation ({named}) is more than the "
                                   f"number of dimensions ({op.dim()}) for operand {k} (shape {list(op.shape)}, "
                                   f"equation {equation!r})")
            n_ell = max(n_ell, op.dim() - named)
        elif op.dim() != named:
            raise RuntimeError(f"[einsum] the number of subscripts in the equation ({named}) does not match the "
                               f"number of dimensions ({op.dim()}) for operand {k} (shape {list(op.shape)}, "
                               f"equation {equation!r}) and no ellipsis was given")
    out = []
    for op, labels in zip(operands, in_labels):
        if _ELLIPSIS not in labels:
            out.append(list(labels))
            continue
        i = labels.index(_ELLIPSIS)
        k = op.dim() - (len(labels) - 1)
        out.append(labels[:i] + [-(k - j) for j in range(k)] + labels[i + 1:])
    return out, n_ell


def _take_diagonals(t: Tensor, labels: list) -> tuple[Tensor, list]:
    """Collapses repeated labels of one operand to their diagonal (torch checks the sizes agree)."""
    while True:
        seen, dup = {}, None
        for d, lab in enumerate(labels):
            if lab in seen:
                dup = (seen[lab], d)
                break
            seen[lab] = d
        if dup is None:
            return t, labels
        d1, d2 = dup
        if t.shape[d1] != t.shape[d2]:
            raise RuntimeError(f"[einsum] subscript {_letter(labels[d1])} is repeated for operand of shape "
                               f"{list(t.shape)} but the sizes don't match, {t.shape[d1]} != {t.shape[d2]}")
        lab = labels[d1]
        t = diagonal_view(t, 0, d1, d2)  # the diagonal becomes the last dim
        labels = [x for i, x in enumerate(labels) if i not in (d1, d2)] + [lab]


def _sum_labels(t: Tensor, labels: list, drop: set) -> tuple[Tensor, list]:
    dims = [d for d, lab in enumerate(labels) if lab in drop]
    if not dims:
        return t, labels
    return t.sum(dims), [lab for lab in labels if lab not in drop]


def _contract(equation, operands, in_labels, out_spec):
    labels_per_op, n_ell = _expand_ellipsis(equation, operands, in_labels)
    counts: dict = {}
    for labels in labels_per_op:
        for lab in labels:
            counts[lab] = counts.get(lab, 0) + 1
    any_ellipsis = any(_ELLIPSIS in labels for labels in in_labels)
    if out_spec is None:  # implicit: ellipsis dims, then labels seen once, in torch's label order
        out = [-(n_ell - j) for j in range(n_ell)] if any_ellipsis else []
        out += sorted(lab for lab, c in counts.items() if lab >= 0 and c == 1)
    else:
        out = []
        for lab in out_spec:
            if lab == _ELLIPSIS:
                out += [-(n_ell - j) for j in range(n_ell)]
                continue
            if lab in out:
                raise RuntimeError(f"[einsum] output subscript {_letter(lab)} appears more than once in the output "
                                   f"(equation {equation!r})")
            if lab not in counts:
                raise RuntimeError(f"[einsum] output subscript {_letter(lab)} does not appear in the equation for "
                                   f"any input operand (equation {equation!r})")
            out.append(lab)
    # The sizes of each label must agree up to size-1 broadcasting.
    sizes: dict = {}
    for k, (op, labels) in enumerate(zip(operands, labels_per_op)):
        for lab, s in zip(labels, op.shape):
            have = sizes.get(lab, 1)
            if s != 1 and have != 1 and s != have:
                shapes = ", ".join(str(list(o.shape)) for o in operands)
                raise RuntimeError(f"[einsum] operands do not broadcast: subscript "
                                   f"{'...' if lab < 0 else _letter(lab)} has sizes {have} and {s} "
                                   f"(operand {k}; shapes {shapes}; equation {equation!r})")
            if s != 1:
                sizes[lab] = s

    out_set = set(out)
    ops = []
    for k, (op, labels) in enumerate(zip(operands, labels_per_op)):
        t, labs = _take_diagonals(op, labels)
        later = out_set.union(*[set(ls) for j, ls in enumerate(labels_per_op) if j != k])
        t, labs = _sum_labels(t, labs, {lab for lab in labs if lab not in later})
        ops.append((t, labs))

    t, labs = ops[0]
    for j in range(1, len(ops)):
        needed = out_set.union(*[set(ls) for _, ls in ops[j + 1:]])
        t, labs = _contract_pair(t, labs, ops[j][0], ops[j][1], needed)
    # Labels still present but not in the output are summed; then the output order.
    t, labs = _sum_labels(t, labs, {lab for lab in labs if lab not in out_set})
    return t.permute([labs.index(lab) for lab in out]) if labs != out else t


def _contract_pair(a: Tensor, la: list, b: Tensor, lb: list, needed: set):
    """One pairwise product: batch labels (shared, needed later), contracted (shared, not needed),
    labels only in a, labels only in b. A shared label of size 1 on one side is summed on the other
    first (contracted) or broadcast (batch)."""
    shared = [lab for lab in la if lab in lb]
    contracted = [lab for lab in shared if lab not in needed]
    # Size-1 broadcasting of contracted labels: sum the other side, then the label is size 1 in both.
    for lab in contracted:
        sa, sb = a.shape[la.index(lab)], b.shape[lb.index(lab)]
        if sa == 1 and sb != 1:
            b = b.sum(lb.index(lab), keepdim=True)
        elif sb == 1 and sa != 1:
            a = a.sum(la.index(lab), keepdim=True)
    batch = [lab for lab in shared if lab in needed]
    only_a = [lab for lab in la if lab not in lb]
    only_b = [lab for lab in lb if lab not in la]
    if not contracted:  # a broadcast multiply: align both to batch + only_a + only_b
        order = batch + only_a + only_b
        return _align(a, la, order) * _align(b, lb, order), order
    batch_sizes = [max(a.shape[la.index(lab)], b.shape[lb.index(lab)]) for lab in batch]
    sa = [a.shape[la.index(lab)] for lab in only_a]
    sb = [b.shape[lb.index(lab)] for lab in only_b]
    sk = [a.shape[la.index(lab)] for lab in contracted]
    a3 = a.permute([la.index(lab) for lab in batch + only_a + contracted])
    b3 = b.permute([lb.index(lab) for lab in batch + contracted + only_b])
    a3 = a3.expand(batch_sizes + sa + sk)
    b3 = b3.expand(batch_sizes + sk + sb)
    nb, m, k, n = _prod(batch_sizes), _prod(sa), _prod(sk), _prod(sb)
    r = _C.bmm(a3.reshape(nb, m, k), b3.reshape(nb, k, n))
    return r.reshape(batch_sizes + sa + sb), batch + only_a + only_b


def _align(t: Tensor, labels: list, order: list) -> Tensor:
    """t's dims permuted into `order`, with size-1 dims for labels t lacks."""
    present = [lab for lab in order if lab in labels]
    t = t.permute([labels.index(lab) for lab in present])
    shape, it = [], iter(t.shape)
    for lab in order:
        shape.append(next(it) if lab in labels else 1)
    return t.reshape(shape)


def _prod(xs) -> int:
    n = 1
    for x in xs:
        n *= x
    return n


# ---- tensordot --------------------------------------------------------------------------------------

def tensordot(a: Tensor, b: Tensor, dims=2, out=None) -> Tensor:
    """torch.tensordot: contracts dims_a of a with dims_b of b (dims: an int n for a's last n and b's
    first n, a pair of lists, or a 2 x n tensor); the result has a's free dims then b's."""
    if out is not None:
        raise NotImplementedError("[tensordot] out= is not supported by ember")
    if isinstance(dims, Tensor):
        dims = dims.tolist() if dims.dim() > 0 else int(dims.item())
    if isinstance(dims, int):
        if dims < 0:
            raise RuntimeError(f"[tensordot] tensordot expects dims >= 0, but got dims={dims}")
        if dims > min(a.dim(), b.dim()):
            raise RuntimeError(f"[tensordot] tensordot expects dims < ndim_a or ndim_b, but got dims={dims} for "
                               f"shapes {list(a.shape)} and {list(b.shape)}")
        da, db = list(range(a.dim() - dims, a.dim())), list(range(dims))
    else:
        if len(dims) != 2:
            raise RuntimeError("[tensordot] tensordot expects dims to be a pair of lists or an int")
        da, db = dims
        da = [da] if isinstance(da, int) else list(da)
        db = [db] if isinstance(db, int) else list(db)
    if len(da) != len(db):
        raise RuntimeError(f"[tensordot] both dimension lists should have same length, got {da} and {db}")
    da = [_wrap(d, a.dim(), "tensordot") for d in da]
    db = [_wrap(d, b.dim(), "tensordot") for d in db]
    for x, y in zip(da, db):
        if a.shape[x] != b.shape[y]:
            raise RuntimeError(f"[tensordot] contracted dimensions need to match, but first has size {a.shape[x]} in "
                               f"dim {x} and second has size {b.shape[y]} in dim {y}")
    if a.dtype != b.dtype:
        raise RuntimeError(f"[tensordot] expected both operands to have the same dtype, got {a.dtype} and {b.dtype}")
    free_a = [d for d in range(a.dim()) if d not in da]
    free_b = [d for d in range(b.dim()) if d not in db]
    sa, sb = [a.shape[d] for d in free_a], [b.shape[d] for d in free_b]
    k = _prod(a.shape[d] for d in da)
    a2 = a.permute(free_a + da).reshape(_prod(sa), k)
    b2 = b.permute(db + free_b).reshape(k, _prod(sb))
    return _C.mm(a2, b2).reshape(sa + sb)


def _wrap(d: int, ndim: int, op: str) -> int:
    if not -max(ndim, 1) <= d < max(ndim, 1):
        raise IndexError(f"[{op}] Dimension out of range (expected to be in range of [{-max(ndim, 1)}, "
                         f"{max(ndim, 1) - 1}], but got {d})")
    return d % max(ndim, 1)
