"""LoRA: starts as the identity update, trains only A and B, merges into the same function."""
from __future__ import annotations

import torch
from torch import nn

from strvos_core.training.lora import LoRALinear, apply_lora, merge_lora


def test_lora_starts_equal_to_base_and_merges_exactly():
    torch.manual_seed(0)
    base = nn.Linear(16, 8)
    lora = LoRALinear(base, rank=4, alpha=8, dropout=0.05).eval()
    x = torch.randn(5, 16)
    torch.testing.assert_close(lora(x), base(x))
    with torch.no_grad():
        lora.lora_B.normal_()
    assert not torch.allclose(lora(x), base(x))
    expected = base(x) + 2.0 * x @ lora.lora_A.t() @ lora.lora_B.t()
    torch.testing.assert_close(lora(x), expected)
    torch.testing.assert_close(lora.merged()(x), lora(x), atol=1e-5, rtol=1e-5)
    assert [n for n, p in lora.named_parameters() if p.requires_grad] == ["lora_A", "lora_B"]


def test_apply_and_merge_keep_the_plain_state_dict_keys():
    torch.manual_seed(0)
    model = nn.Sequential(nn.ModuleDict({"q_proj": nn.Linear(4, 4), "other": nn.Linear(4, 4)}))
    plain = set(model.state_dict())
    assert apply_lora(model, ("q_proj",), 2, 4.0, 0.0) == 1
    assert set(model.state_dict()) == plain | {"0.q_proj.lora_A", "0.q_proj.lora_B"}
    assert merge_lora(model) == 1
    assert set(model.state_dict()) == plain and type(model[0]["q_proj"]) is nn.Linear
