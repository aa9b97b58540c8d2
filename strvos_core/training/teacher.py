"""A training-only text teacher for SAM 2's language prompt token (loss.teacher_weight; never exported).

From random weights the [SEG] token starts almost independent of the expression, and the mask decoder learns in
its first ~100 steps to ignore it and segment the most salient object; it never recovers. The teacher is a path
from the expression to a prompt token that depends on the words from step 0: a GRU over the expression's token
ids (order matters: "the square left of the circle" is not "the circle left of the square"), its last state
projected to the prompt width. The decoder is trained on the teacher's token too, so it learns to follow a
language token, and the projected [SEG] token is pulled onto the teacher's (loss.teacher_distill_weight).
"""
from __future__ import annotations

import torch
from torch import nn


class ExpressionTeacher(nn.Module):
    def __init__(self, vocab_size: int, prompt_dim: int, width: int = 128, out_std: float = 0.25) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, width)
        self.encoder = nn.GRU(width, width, batch_first=True)
        self.out = nn.Linear(width, prompt_dim)
        with torch.no_grad():  # tokens at the norm of SAM 2's own (~16): a small token is ignored by the decoder
            self.out.weight.normal_(0.0, out_std)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """[L] token ids of one expression -> [1, prompt_dim] prompt token."""
        _, last = self.encoder(self.embed(ids[None]))
        return self.out(last[0])
