"""`strvos convert`: a training checkpoint -> the HF-format export `strvos_core.checkpoint.load_model` reads.

LoRA is merged into the LLM weights (W += alpha/r * B A), as the reference's convert_to_hf.py merges with peft.
"""
from __future__ import annotations

import argparse
import sys

HELP = "Export a training checkpoint (LoRA merged) in the reference HF format that --model accepts."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True,
                        help="a training checkpoint directory (<run>/checkpoints/step_N) or a run directory "
                             "(its newest checkpoint)")
    parser.add_argument("--out", required=True, help="export directory (config.json, model.safetensors, tokenizer)")
    parser.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default=None,
                        help="store the weights in this precision (default: as trained); the loader casts them "
                             "to the dtype the model is run in")
    parser.add_argument("--grounding-only", action="store_true",
                        help="write SAM 2's weights alone to --out (a .safetensors file) for model.grounding_init: "
                             "what a stage-0 (promptable) run hands the next stage")
    parser.add_argument("--mask-refine-radius", type=int, default=None, metavar="PIXELS",
                        help="write grounding.mask_refine_radius into the export's config (an inference setting: "
                             "SAM 2's mask brought to the frame by a colour guided filter of this radius; 0 turns it "
                             "off; default: as the checkpoint has it)")


def run(args: argparse.Namespace) -> int:
    from strvos_core.errors import StrvosError
    from strvos_core.training.export import export_checkpoint, export_grounding

    try:
        if args.grounding_only:
            if args.mask_refine_radius is not None:
                raise StrvosError("--mask-refine-radius sets the whole model's config: not with --grounding-only")
            out = export_grounding(args.checkpoint, args.out, args.dtype)
        else:
            out = export_checkpoint(args.checkpoint, args.out, args.dtype, args.mask_refine_radius)
    except StrvosError as error:
        print(f"strvos convert: error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0
