"""``ckptdiff remap``: write a checkpoint whose keys (and kernel layouts) fit the target.

Registered on the main app in ``cli.py``. Exit codes: 0 the written checkpoint is compatible
with TARGET, 1 it is written but still incompatible (what remains is printed), 2 bad input or
usage, 3 unsafe content refused.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ckptdiff.cli.common import guarded, model_kwargs_of


def remap_command(
    source: Annotated[str, typer.Argument(
        help="The checkpoint to rewrite (safetensors, torch zip .pth, Keras .weights.h5).")],
    target: Annotated[str, typer.Argument(
        help="What it must load into: a checkpoint, a snapshot, or pkg.module:attr/file.py:attr.")],
    output: Annotated[Path, typer.Option(
        "--output", "-o", help="File to write: .safetensors (streamed) or .pth/.pt/.bin.")],
    rules: Annotated[Path | None, typer.Option(
        "--rules", help="Rules file: applied when it exists, else the rules found are written "
                        "to it.")] = None,
    key: Annotated[str | None, typer.Option(
        "--key", help="Container entry of SOURCE holding the tensors.")] = None,
    target_key: Annotated[str | None, typer.Option(
        "--target-key", help="Container entry of TARGET when it is a checkpoint.")] = None,
    model_kwargs: Annotated[str | None, typer.Option(
        "--model-kwargs", help="JSON keyword arguments for a model class or factory.")] = None,
    min_confidence: Annotated[float, typer.Option(
        "--min-confidence", min=0.0, max=1.0,
        help="Skip suggestions below this confidence.")] = 0.0,
    lora_scale: Annotated[float | None, typer.Option(
        "--lora-scale", help="Merge each LoRA adapter as W + S·B·A at this scale S.")] = None,
    drop_lora: Annotated[bool, typer.Option(
        "--drop-lora",
        help="Leave LoRA adapters out: the base weights load without them.")] = False,
    lora_adapter: Annotated[Path | None, typer.Option(
        "--lora-adapter", help="A PEFT adapter_model.safetensors to merge into SOURCE (the base).")
    ] = None,
) -> None:
    """Write SOURCE with the confident renames, kernel transposes and conversions for TARGET.

    Reads weight bytes tensor by tensor: writing safetensors needs memory for one tensor, not the
    checkpoint. The written file is diffed against TARGET; exit 1 when it still does not fit.

    \b
    Examples:
      ckptdiff remap dp.pth mypkg.models:build -o fixed.safetensors
      ckptdiff remap keras.weights.h5 net.py:Net -o net.pth --rules keras_to_torch.json
      ckptdiff remap base.safetensors net.py:Net -o out.pth --lora-adapter adapter.safetensors
    """
    from ckptdiff.api import remap
    from ckptdiff.rename.snippet import unpaired_lines
    from ckptdiff.render.text import render_text

    kwargs = guarded(lambda: model_kwargs_of(model_kwargs))
    result = guarded(lambda: remap(source, target, output, key=key, target_key=target_key,
                                    model_kwargs=kwargs, rules=rules,
                                    min_confidence=min_confidence, lora_scale=lora_scale,
                                    drop_lora=drop_lora, lora_adapter=lora_adapter))
    parts = [f"{result.written} tensors", f"{result.renamed} renamed"]
    if result.transformed:
        parts.append(f"{result.transformed} reordered")
    if result.converted:
        parts.append(f"{result.converted} converted")
    if result.dropped:
        parts.append(f"{len(result.dropped)} left out")
    sys.stderr.write(f"wrote {result.output} ({', '.join(parts)})\n")
    for line in result.dropped[:10]:
        sys.stderr.write(f"  left out: {line}\n")
    if len(result.dropped) > 10:
        sys.stderr.write(f"  … and {len(result.dropped) - 10} more\n")
    if result.rules_action is not None:
        sys.stderr.write(f"{result.rules_action} rules: {result.rules_path}\n")
    if result.report.compatible:
        sys.stdout.write(f"compatible: {result.output} loads into {target}\n")
        return
    sys.stdout.write(render_text(result.report) + "\n")
    if result.before is not None:
        for line in unpaired_lines(result.before.unpaired):
            sys.stdout.write(f"  not renamed: {line}\n")
    raise typer.Exit(1)
