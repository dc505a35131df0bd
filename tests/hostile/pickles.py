"""The hostile pickle corpus: every payload, reached by every trick, in protocols 0 to 5.

A :class:`Hostile` is a *fragment* (opcodes that push one value) plus the unsafe globals it names
and its protocol; :func:`whole` makes it a complete pickle and the container writers
(:mod:`tests.hostile.containers`) put it into torch zip, legacy and DCP files, alone or nested
deep inside a valid checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from tests.hostile.asm import Asm
from tests.hostile.payloads import Payload, payloads

from ckptdiff.readers.pickle.allowlist import ALLOWED_GLOBALS


@dataclass(frozen=True)
class Hostile:
    """One malicious value: its opcodes, the unsafe globals they name, its protocol."""

    name: str
    fragment: bytes
    unsafe: frozenset[str]
    protocol: int
    payload: Payload

    def whole(self) -> bytes:
        """The fragment as a complete pickle."""
        asm = Asm(self.protocol)
        asm.op(self.fragment)
        return asm.complete()


ALLOWED = {f"{module}.{name}" for module, name in ALLOWED_GLOBALS}
_STYLES = ("SHORT_BINUNICODE", "BINUNICODE8", "BINUNICODE", "SHORT_BINSTRING", "BINSTRING",
           "STRING", "UNICODE")
Technique = Callable[[Asm, Payload], None]


def _call_args(asm: Asm, payload: Payload) -> None:
    asm.tuple_(list(payload.args))


def global_reduce(asm: Asm, p: Payload) -> None:
    """GLOBAL + REDUCE: what ``__reduce__`` makes pickle write."""
    asm.glob(p.module, p.name)
    _call_args(asm, p)
    asm.op(b"R")


def stack_global(style: str, via_memo: bool = False) -> Technique:
    """STACK_GLOBAL whose two strings come from ``style`` opcodes (optionally via the memo)."""
    def technique(asm: Asm, p: Payload) -> None:
        asm.stack_global(p.module, p.name, style, via_memo)
        _call_args(asm, p)
        asm.op(b"R")
    technique.__name__ = f"stack_global_{style.lower()}{'_memo' if via_memo else ''}"
    return technique


def inst(asm: Asm, p: Payload) -> None:
    """INST: MARK, the arguments, then ``i module\\nname\\n`` calls the global."""
    asm.globals.add(_dotted(p))
    asm.mark()
    for arg in p.args:
        asm.value(arg)
    asm.op(b"i" + f"{p.module}\n{p.name}\n".encode())


def obj(asm: Asm, p: Payload) -> None:
    """OBJ: MARK, the global, the arguments, ``o``."""
    asm.mark().glob(p.module, p.name)
    for arg in p.args:
        asm.value(arg)
    asm.op(b"o")


def newobj(asm: Asm, p: Payload) -> None:
    """NEWOBJ (``cls.__new__(cls, *args)``) and NEWOBJ_EX with keyword arguments."""
    asm.glob(p.module, p.name)
    _call_args(asm, p)
    asm.op(b"\x81").op(b"0")
    asm.glob(p.module, p.name)
    _call_args(asm, p)
    asm.value({"shell": True}).op(b"\x92")


def build_setstate(asm: Asm, p: Payload) -> None:
    """BUILD sets ``__setstate__`` on an allowed object, a second BUILD calls it."""
    asm.glob("argparse", "Namespace").op(b")\x81")
    asm.mark().text("__setstate__").glob(p.module, p.name).op(b"d").op(b"b")
    asm.value(p.args[0] if p.args else "x").op(b"b")


def memo_overwrite(asm: Asm, p: Payload) -> None:
    """An allowed global memoized, its memo slot overwritten by the payload, then fetched."""
    asm.glob("collections", "OrderedDict")
    slot = asm.put()
    asm.op(b"0").glob(p.module, p.name)
    asm.put(slot)
    asm.op(b"0").op(b"N").op(b"2").op(b"0").op(b"0")  # a DUP/POP shuffle, net nothing
    asm.get(slot)
    _call_args(asm, p)
    asm.op(b"R")


def hidden_by_pop_mark(asm: Asm, p: Payload) -> None:
    """The call made inside a MARK that POP_MARK discards; an innocent dict is the value."""
    asm.mark().glob(p.module, p.name)
    _call_args(asm, p)
    asm.op(b"R").op(b"1").op(b"}")


def getattr_chain(asm: Asm, p: Payload) -> None:
    """``getattr(__import__(module), name)(*args)``: the payload is only named by strings."""
    asm.glob("builtins", "getattr").mark().glob("builtins", "__import__")
    asm.tuple_([p.module]).op(b"R").text(p.name).op(b"tR")
    _call_args(asm, p)
    asm.op(b"R")


def inside_tensor_hooks(asm: Asm, p: Payload) -> None:
    """The payload as a tensor's backward hook (torch < 1.x ran them on load)."""
    asm.glob("torch._utils", "_rebuild_tensor_v2").mark()
    asm.mark().text("storage").glob("torch", "FloatStorage").text("0").text("cpu").value(4)
    asm.op(b"tQ").value(0).tuple_([2, 2]).tuple_([2, 1]).op(b"\x89")
    asm.glob("collections", "OrderedDict").op(b")R")
    asm.value(0).glob(p.module, p.name).op(b"s").op(b"tR")


def nested_pickle(asm: Asm, p: Payload) -> None:
    """``pickle.loads`` of an inner pickle that calls the payload."""
    inner = Asm(2)
    global_reduce(inner, p)
    asm.glob("pickle", "loads")
    asm.mark().bytes_(inner.complete()).op(b"tR")


TECHNIQUES: list[Technique] = [global_reduce, inst, obj, newobj, build_setstate, memo_overwrite,
                               hidden_by_pop_mark, getattr_chain, inside_tensor_hooks,
                               nested_pickle, stack_global("SHORT_BINUNICODE", via_memo=True),
                               *[stack_global(style) for style in _STYLES]]


def _dotted(p: Payload) -> str:
    from tests.hostile.asm import py3_name
    return py3_name(p.module, p.name)


def _fits(technique: Technique, p: Payload) -> bool:
    # GLOBAL, INST, OBJ and UNICODE spell names on lines: a name with a newline needs a
    # STACK_GLOBAL of length-prefixed or quoted strings.
    plain = "\n" not in p.module + p.name
    name = technique.__name__
    return plain or (name.startswith("stack_global") and not name.endswith("unicode"))


def corpus(canary: str) -> Iterator[Hostile]:
    """Every payload by every technique that can spell it, rotating through protocols 0-5."""
    number = 0
    for technique in TECHNIQUES:
        for payload in payloads(canary):
            if not _fits(technique, payload):
                continue
            protocol = number % 6
            asm = Asm(protocol)
            technique(asm, payload)
            yield Hostile(f"{number:04d}-{technique.__name__}-{payload.module}.{payload.name}"
                          .replace("\n", "_"), bytes(asm.out),
                          frozenset(asm.globals - ALLOWED), protocol, payload)
            number += 1
    yield from _extension_codes(number)


def _extension_codes(number: int) -> Iterator[Hostile]:
    for code, opcode in ((1, b"\x82\x01"), (513, b"\x83\x01\x02"), (70000, b"\x84p\x11\x01\x00")):
        payload = Payload("copyreg", f"extension_code_{code}", ())
        yield Hostile(f"{number:04d}-ext-{code}", opcode + b")R", frozenset(
            {f"copyreg.extension_code_{code}"}), 2, payload)
        number += 1
