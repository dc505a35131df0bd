"""Notes on findings against an exported graph (ONNX), whose tensor names follow the exporter.

``torch.onnx.export`` keeps a module's parameter names where a weight survives as is, but folds
and fuses (BatchNorm into the preceding Conv in eval mode), names what it made anonymously
(``onnx::Conv_18``, ``val_12``: :data:`ckptdiff.readers.onnx.reader.ANONYMOUS`) and may store a
Linear lowered to MatMul as ``[in, out]``. Findings stay what they are (an ONNX file is not
``load_state_dict`` input, so key parity is the whole verdict); their notes say which convention
explains them, and anonymous initializers are listed as unpaired on purpose.
"""

from __future__ import annotations

from dataclasses import replace

from ckptdiff.diffing.report import Finding, Unpaired
from ckptdiff.manifest import Manifest

ANONYMOUS_NOTE = ("an anonymous ONNX initializer (the exporter made it: a fused weight or a "
                  "constant); ckptdiff does not pair it with a module key by shape alone")
_MATMUL_NOTE = ("an anonymous ONNX initializer shaped like a missing weight transposed: "
                "probably a Linear lowered to MatMul, stored [in, out] (the candidates); "
                "ckptdiff does not pair it by shape alone")
_CONV_NOTE = ("an anonymous ONNX initializer that feeds a Conv: probably a Conv weight or bias "
              "with BatchNorm folded in, whose values differ from the module's")
MISSING_NOTE = ("not an initializer of the ONNX graph: the exporter may have folded it into "
                "another tensor (BatchNorm into Conv in eval mode), stored it transposed under "
                "an anonymous name, or made it a constant")
TRANSPOSED_NOTE = ("transposed: the exporter stores this weight [in, out] (a Linear lowered to "
                   "MatMul); it is the target's [out, in] transposed")


def unpairable_keys(source: Manifest) -> frozenset[str]:
    """Source keys no rename may pair: an ONNX export's anonymous initializers (their values are
    fused, so loading one under a module key would be wrong even where shapes agree)."""
    if source.format != "onnx":
        return frozenset()
    return frozenset(source.metadata.get("anonymous", ()))


def note_exporter_conventions(source: Manifest, findings: list[Finding],
                              unpaired: tuple[Unpaired, ...]
                              ) -> tuple[list[Finding], tuple[Unpaired, ...]]:
    """``findings`` with notes for an ONNX source, and its anonymous keys added to ``unpaired``."""
    if source.format != "onnx":
        return findings, unpaired
    anonymous = unpairable_keys(source)
    missing = [f for f in findings if f.kind == "missing" and f.target is not None]
    noted: list[Finding] = []
    extra: list[Unpaired] = []
    for finding in findings:
        if finding.kind == "unexpected" and finding.key in anonymous:
            note, candidates = _anonymous(finding, missing)
            finding = replace(finding, note=note)
            extra.append(Unpaired(finding.key, None, note, candidates))
        elif finding.kind == "missing" and finding.severity == "error" and finding.note is None:
            finding = replace(finding, note=MISSING_NOTE)
        elif (finding.kind == "shape" and finding.source is not None
              and finding.target is not None and len(finding.source.shape) == 2
              and finding.source.shape[::-1] == finding.target.shape):
            finding = replace(finding, note=TRANSPOSED_NOTE)
        noted.append(finding)
    paired_already = {u.source_key for u in unpaired}
    return noted, unpaired + tuple(u for u in extra if u.source_key not in paired_already)


def _anonymous(finding: Finding, missing: list[Finding]) -> tuple[str, tuple[str, ...]]:
    """The note for an anonymous initializer, and the missing keys it could stand for."""
    shape = finding.source.shape if finding.source is not None else ()
    op = finding.key.removeprefix("onnx::").split("_", 1)[0]
    if len(shape) == 2 and (op in ("MatMul", "Gemm") or finding.key.startswith("val_")):
        transposed = tuple(f.key for f in missing
                           if f.target is not None and f.target.shape == shape[::-1])
        if transposed:
            return _MATMUL_NOTE, transposed
    same = tuple(f.key for f in missing if f.target is not None and f.target.shape == shape)
    return (_CONV_NOTE if op == "Conv" else ANONYMOUS_NOTE), same
