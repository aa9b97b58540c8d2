"""Frame checks, the reference's image preprocessing (tiles for InternViT, squashed frame for SAM 2), prompts."""
