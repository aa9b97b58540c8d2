"""Training-only aids for training from random weights: the attribute heads, the [SEG] attention supervision,
the text teacher, the prompt-token init scale. Each is checked against hand-computed values on real modules."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from strvos_core.datasets.synthetic.vocabulary import ATTRIBUTE_VALUES, ATTRIBUTES
from strvos_core.training.attributes import (
    GROUP_SIZES,
    AttributeHead,
    attribute_targets,
    said_attribute_loss,
    said_attributes,
)
from strvos_core.training.build import build_model, configure_trainable, set_train_mode
from strvos_core.training.data import SyntheticPool, prepare_frame
from strvos_core.training.forward import TrainingModel, value_contributions


def test_attribute_targets_are_the_area_shares_of_each_value():
    labels = np.zeros((4, 4), dtype=np.uint8)
    labels[:2, :2] = 1  # fills the top-left cell of a 2x2 grid
    labels[2:, 2] = 2  # half of the bottom-right cell
    attributes = {1: {"size": "small", "colour": "red", "texture": "plain", "shape": "circle"},
                  2: {"size": "large", "colour": "blue", "texture": "dotted", "shape": "star"}}
    got = attribute_targets(labels, attributes, (2, 2))
    assert got.shape == (4, sum(GROUP_SIZES))
    start = 0
    for attribute, size in zip(ATTRIBUTES, GROUP_SIZES, strict=True):
        group = got[:, start:start + size]
        torch.testing.assert_close(group.sum(dim=1), torch.ones(4))
        values = ATTRIBUTE_VALUES[attribute]
        assert group[0, values.index(attributes[1][attribute])] == 1.0  # top-left: all object 1
        assert group[3, values.index(attributes[2][attribute])] == 0.5  # bottom-right: half object 2
        assert group[3, -1] == 0.5 and group[1, -1] == 1.0 and group[2, -1] == 1.0  # the rest is background
        start += size


def test_attribute_targets_of_a_frame_without_objects_are_all_background():
    """Objects leave the frame in videos: a frame with none in view (the stage-2 run that found this crashed)."""
    targets = attribute_targets(np.zeros((12, 16), dtype=np.int32), {}, (3, 4))
    assert targets.shape == (12, sum(GROUP_SIZES))
    ends = np.cumsum(GROUP_SIZES) - 1
    torch.testing.assert_close(targets[:, ends], torch.ones(12, len(GROUP_SIZES)))
    assert float(targets.sum()) == 12 * len(GROUP_SIZES)


def test_attribute_head_loss_is_lowest_on_the_targets():
    head = AttributeHead(8)
    labels = np.zeros((4, 4), dtype=np.uint8)
    labels[:2] = 1
    targets = attribute_targets(labels, {1: {"size": "small", "colour": "red", "texture": "plain",
                                             "shape": "circle"}}, (2, 2))
    with torch.no_grad():  # a head that outputs log-targets (+ a constant per group) reaches the entropy bound
        head.linear.weight.zero_()
        head.linear.bias.zero_()
    cells = torch.zeros(4, 8)
    head.requires_grad_(False)
    uniform = float(head.loss(cells, targets))
    assert uniform == pytest.approx(sum(np.log(s) for s in GROUP_SIZES), rel=1e-5)
    one_hot_cells = torch.eye(4, 8)
    with torch.no_grad():
        head.linear.weight[:, :4] = 30 * (targets.T - 0.5)  # cell i -> logits favouring its own targets
    assert float(head.loss(one_hot_cells, targets)) < 1e-3 < uniform


def test_said_attributes_name_the_targets_noun_phrase_only():
    """The landmark of a relation is not the target: only the words before "left of" count."""
    said = said_attributes("the large striped circle left of the blue square")
    expected = [ATTRIBUTE_VALUES["size"].index("large"), len(ATTRIBUTE_VALUES["colour"]),
                ATTRIBUTE_VALUES["texture"].index("striped"), ATTRIBUTE_VALUES["shape"].index("circle")]
    assert said.tolist() == expected
    assert said_attributes("the red object moving left").tolist() == [
        len(ATTRIBUTE_VALUES["size"]), ATTRIBUTE_VALUES["colour"].index("red"), len(ATTRIBUTE_VALUES["texture"]),
        len(ATTRIBUTE_VALUES["shape"])]  # "object" names no shape
    with pytest.raises(ValueError, match="seg_attribute_weight needs synthetic expressions"):
        said_attributes("the mug on the table")


def test_said_attribute_loss_sums_the_groups_cross_entropies():
    goal = said_attributes("the red object")
    uniform = torch.zeros(sum(GROUP_SIZES))
    assert float(said_attribute_loss(uniform, goal)) == pytest.approx(sum(np.log(s) for s in GROUP_SIZES), rel=1e-6)
    confident = torch.full((sum(GROUP_SIZES),), -20.0)
    starts = np.cumsum((0, *GROUP_SIZES[:-1]))
    confident[torch.as_tensor(starts) + goal] = 20.0
    assert float(said_attribute_loss(confident, goal)) < 1e-6


def test_position_loss_reads_the_mask_centre_in_minus_one_to_one(aided):
    _, model, trainer = aided
    mask = np.zeros((10, 20), dtype=bool)
    mask[0:2, 18:20] = True  # centre (19, 1) in pixels -> (0.9, -0.8)
    head = trainer.training_heads["seg_position"]
    with torch.no_grad():
        head.weight.zero_()
        head.bias.copy_(torch.tensor([0.9, -0.8]))
    hidden = torch.randn(1, model.config.language.hidden_size)
    with torch.no_grad():
        assert float(trainer.position_loss(hidden, mask)) == pytest.approx(0.0, abs=1e-10)
        head.bias.zero_()
        assert float(trainer.position_loss(hidden, mask)) == pytest.approx((0.81 + 0.64) / 2, rel=1e-5)


def test_attention_loss_is_the_cross_entropy_against_the_target_share():
    mask = np.zeros((6, 6), dtype=bool)
    mask[:3, :3] = True  # the top-left quarter of a 2x2 token grid
    perfect = torch.tensor([1.0, 0.0, 0.0, 0.0])
    uniform = torch.full((4,), 0.25)
    assert float(TrainingModel.attention_loss(perfect, mask)) == pytest.approx(0.0, abs=1e-6)
    assert float(TrainingModel.attention_loss(uniform, mask)) == pytest.approx(np.log(4), rel=1e-6)
    with pytest.raises(ValueError, match="one whole-frame tile"):
        TrainingModel.attention_loss(torch.full((5,), 0.2), mask)


@pytest.fixture
def aided(micro_config):
    config = micro_config(model={"prompt_std": 0.15},
                          trainable={"llm": "full", "vision": "full", "sam2_image_encoder": "full"},
                          loss={"attribute_weight": 1.0, "seg_attention_weight": 1.0, "teacher_weight": 1.0,
                                "teacher_distill_weight": 1.0, "seg_position_weight": 1.0, "value_position_weight": 1.0,
                                "seg_attribute_weight": 1.0, "point_sampling": False},
                          data={"expressions_per_sample": 2})
    model = build_model(config.model)
    configure_trainable(model, config.trainable, config.lora)
    set_train_mode(model)
    return config, model, TrainingModel(model, config.loss)


def test_the_aids_reach_the_parts_they_train(aided):
    config, model, trainer = aided
    sample = SyntheticPool(config.data).sample(0, 0, 0, 0)
    terms = trainer([sample], torch.Generator().manual_seed(0))
    for key in ("attributes", "seg_attention", "teacher", "distill", "seg_position", "value_position",
                "said_attributes"):
        assert key in terms and torch.isfinite(terms[key]) and float(terms[key].detach()) > 0, key
    out = trainer.last_frames[0][0]
    assert out.seg_attention is not None
    torch.testing.assert_close(out.seg_attention.sum(), torch.tensor(1.0))
    terms["loss"].backward()
    heads = trainer.training_heads
    for name in ("sam_attributes", "llm_attributes", "teacher", "seg_position", "said_attributes"):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in heads[name].parameters()), name
    # the attention loss trains the LLM's queries/keys; the attribute heads train both image encoders
    assert model.language_model.model.layers[-1].self_attn.q_proj.weight.grad.abs().sum() > 0
    # the value-position aid trains what the last layer's attention reads (values and output projection)
    assert model.language_model.model.layers[-1].self_attn.v_proj.weight.grad.abs().sum() > 0
    assert out.image_values is not None and out.image_values.shape[1] == model.config.language.hidden_size
    assert model.grounding_encoder.sam2_model.image_encoder.neck.convs[-1].conv.weight.grad.abs().sum() > 0
    assert model.mlp1[-1].weight.grad.abs().sum() > 0
    # the said-attributes aid reads the [SEG] state entering the last layer: it trains the layers before it
    assert out.seg_query_state is not None and out.seg_query_state.shape == (model.config.language.hidden_size,)
    assert model.language_model.model.layers[0].self_attn.v_proj.weight.grad.abs().sum() > 0


def test_value_contributions_mix_into_the_attention_output(aided):
    """With the last layer's queries zeroed every head attends uniformly, so the last token's attention output is
    the mean of the tokens' value contributions: checks the key/value head layout against the real layer."""
    _, model, _ = aided
    layer = model.language_model.model.layers[-1]
    captured = {}

    def keep_input(_module, args, kwargs):
        captured["input"] = args[0] if args else kwargs["hidden_states"]

    def keep_output(_module, _args, output):
        captured["output"] = output[0]

    hooks = [layer.register_forward_pre_hook(keep_input, with_kwargs=True),
             layer.self_attn.register_forward_hook(keep_output)]
    with torch.no_grad():
        layer.self_attn.q_proj.weight.zero_()
        layer.self_attn.q_proj.bias.zero_()
        model.language_model.model(inputs_embeds=torch.randn(1, 9, model.config.language.hidden_size))
        for hook in hooks:
            hook.remove()
        contributions = value_contributions(layer, captured["input"][0])
    assert contributions.shape == (9, model.config.language.hidden_size)
    torch.testing.assert_close(captured["output"][0, -1], contributions.mean(dim=0), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(captured["output"][0, 2], contributions[:3].mean(dim=0), rtol=1e-5, atol=1e-5)


def test_value_position_loss_reads_each_token_cell_centre(aided):
    _, model, trainer = aided
    head = trainer.training_heads["seg_position"]
    values = torch.randn(4, model.config.language.hidden_size)  # a 2x2 token grid
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
        # centres (-0.5, -0.5), (0.5, -0.5), (-0.5, 0.5), (0.5, 0.5): every coordinate off by 0.5
        assert float(trainer.value_position_loss(values)) == pytest.approx(0.25, rel=1e-6)


def test_eager_attention_changes_nothing_but_the_returned_weights(aided):
    _, model, trainer = aided
    embeds = torch.randn(1, 12, model.config.language.hidden_size)
    eager = model.language_model.model(inputs_embeds=embeds, output_attentions=True)
    model.language_model.set_attn_implementation("sdpa")
    plain = model.language_model.model(inputs_embeds=embeds)
    torch.testing.assert_close(eager.last_hidden_state, plain.last_hidden_state, atol=1e-5, rtol=1e-5)
    assert eager.attentions[-1].shape[-1] == 12


def test_teacher_token_depends_on_word_order_and_prompt_std_sets_the_token_scale(aided, micro_config):
    _, model, trainer = aided
    a = trainer.teacher(trainer.expression_ids("the square left of the circle"))
    b = trainer.teacher(trainer.expression_ids("the circle left of the square"))
    assert a.shape == (1, model.config.text_hidden_dim) and not torch.allclose(a, b)
    assert 8 < float(a.detach().norm()) < 30  # at the scale of SAM 2's own prompt tokens (~16)
    torch.testing.assert_close(model.text_hidden_fcs[-2].weight.detach().std(), torch.tensor(0.15), atol=0.01, rtol=0)
    default = build_model(micro_config().model)
    assert float(default.text_hidden_fcs[-2].weight.detach().std()) < 0.1


def test_teacher_needs_its_own_mask_loss(micro_config):
    from strvos_core.errors import StrvosError

    with pytest.raises(StrvosError, match="teacher_distill_weight needs loss.teacher_weight"):
        micro_config(loss={"teacher_distill_weight": 1.0})


def test_attention_row_is_the_seg_query_over_the_image_tokens(aided):
    """Recomputed by hand: last layer, [SEG] row, mean over heads, image columns, renormalised."""
    config, model, trainer = aided
    sample = SyntheticPool(config.data).sample(0, 0, 0, 0)
    prepared = prepare_frame(sample.frames[0], sample.targets[0].masks[0], model.config)
    answer = trainer.answer_ids("[SEG].")
    with torch.no_grad():
        tokens, sam = trainer.frame_features(prepared)
        out = trainer.frame_forward(prepared, "the red circle", answer, None, (tokens, sam))
        ids = torch.cat([model.prompt_ids("the red circle", prepared.tiles.shape[0]), answer[None]], dim=1)
        attention = model.language_model.model(inputs_embeds=model.prompt_embeddings(ids, tokens, None),
                                               output_attentions=True).attentions[-1][0]
    seg = int(torch.nonzero(ids[0] == model.token_ids.seg)[0, 0])
    row = attention[:, seg].mean(dim=0)[ids[0] == model.token_ids.img_context]
    assert row.shape[0] == tokens.shape[0]
    torch.testing.assert_close(out.seg_attention, row / row.sum())


def test_held_out_r2_is_one_for_a_linear_map_and_low_for_noise():
    from strvos_core.training.probe import _held_out_r2

    rng = np.random.default_rng(0)
    features = rng.normal(size=(90, 5))
    goal = features[:, :2] @ np.array([[1.0, -2.0], [0.5, 3.0]]) + 0.25
    assert _held_out_r2(features, goal) > 0.95  # ridge shrinks a little
    assert _held_out_r2(features, rng.normal(size=(90, 2))) < 0.2


def test_probe_reports_on_a_trained_checkpoint(micro_config, tmp_path, capsys):
    from strvos_core.training.probe import main as probe_main
    from strvos_core.training.trainer import train

    config = micro_config(run={"steps": 1}, data={"expressions_per_sample": 2, "num_videos": 3})
    train(config, tmp_path / "run", progress=False)
    assert probe_main(["--run", str(tmp_path / "run"), "--frames", "2"]) == 0
    header, _, values = capsys.readouterr().out.strip().splitlines()
    row = dict(zip(header.strip("| ").split(" | "), values.strip("| ").split(" | "), strict=True))
    assert row["step"] == "1" and int(row["targets"]) >= 2
    assert 0.0 <= float(row["own_iou"]) <= 1.0 and -1.0 <= float(row["min_cosine"]) <= 1.0
    assert 0.0 <= float(row["attention_on_target"]) <= 1.0 and 0.0 < float(row["uniform_on_target"]) < 1.0
    assert "read_position_r2" in row


def test_probe_draws_only_the_kinds_it_is_given(micro_config, tmp_path, monkeypatch):
    from strvos_core.training import probe as probe_module
    from strvos_core.training.trainer import train

    config = micro_config(run={"steps": 1}, data={"expressions_per_sample": 2, "num_videos": 3})
    train(config, tmp_path / "run", progress=False)
    seen = []
    real_pool = probe_module.SyntheticPool
    monkeypatch.setattr(probe_module, "SyntheticPool", lambda data: seen.append(data.kinds) or real_pool(data))
    assert probe_module.main(["--run", str(tmp_path / "run"), "--frames", "1", "--kinds", "relation"]) == 0
    assert seen == [("relation",)]


def test_attention_link_reads_the_mass_on_the_target_and_what_the_attention_mixes(micro_config, tmp_path):
    from strvos_core.training import checkpointing
    from strvos_core.training.probe import _attention_link
    from strvos_core.training.trainer import train

    config = micro_config(run={"steps": 1}, data={"num_videos": 3})
    train(config, tmp_path / "run", progress=False)
    model = checkpointing.load_model(checkpointing.list_checkpoints(tmp_path / "run")[-1])
    count = model.config.num_image_token
    side = int(round(count ** 0.5))
    image = torch.randn(count, model.config.language.hidden_size)  # the last layer's input at the image tokens
    mask = np.zeros((side * 10, side * 10), bool)
    mask[:10, -10:] = True  # the top-right token cell exactly
    attention = torch.zeros(count)
    attention[side - 1] = 1.0
    mass, uniform, centre, attended, read = _attention_link(model, image, attention, mask)
    assert mass == 1.0 and uniform == pytest.approx(1 / side**2)
    np.testing.assert_allclose(centre, image[side - 1].numpy())
    np.testing.assert_allclose(attended, centre)
    with torch.no_grad():  # what the attention reads from that one token: its value contribution
        own = value_contributions(model.language_model.model.layers[-1], image)
    np.testing.assert_allclose(read, own[side - 1].numpy(), rtol=1e-5, atol=1e-6)
    attention = torch.full_like(attention, 1 / attention.numel())  # uniform: the mass a blind search puts there
    assert _attention_link(model, image, attention, mask)[0] == pytest.approx(uniform)


def test_word_head_checkpoints_of_the_earlier_format_still_resume(tmp_path):
    """Before the heads became one ModuleDict, training_head.pt held the word head's own state ("weight", "bias")."""
    from strvos_core.training.checkpointing import _training_heads_state

    old = torch.nn.Linear(4, 6)
    torch.save(old.state_dict(), tmp_path / "training_head.pt")
    heads = torch.nn.ModuleDict({"word_head": torch.nn.Linear(4, 6)})
    heads.load_state_dict(_training_heads_state(tmp_path, heads, "cpu"))
    torch.testing.assert_close(heads["word_head"].weight, old.weight)


def test_sincos_table_encodes_row_then_column():
    from strvos_core.training.position_init import sincos_table

    table = sincos_table(3, 8)  # 2 frequencies per sin/cos block: omega 1 and 1/100
    assert table.shape == (9, 8)
    row, col = 1, 2
    expected = [np.sin(row), np.sin(row / 100), np.cos(row), np.cos(row / 100),
                np.sin(col), np.sin(col / 100), np.cos(col), np.cos(col / 100)]
    np.testing.assert_allclose(table[row * 3 + col].numpy(), expected, rtol=1e-6)
    assert len({tuple(r) for r in table.tolist()}) == 9  # every cell its own code
    with pytest.raises(ValueError, match="divisible by 4"):
        sincos_table(3, 6)


def test_vision_position_init_writes_the_table_at_the_asked_scale(micro_config):
    from strvos_core.errors import StrvosError
    from strvos_core.training.position_init import sincos_table

    zero = build_model(micro_config().model).vision_model.embeddings.position_embeddings
    assert float(zero.abs().max()) == 0.0  # transformers' init: the reason for the option
    model = build_model(micro_config(model={"vision_position_init": 0.5}).model)
    table = model.vision_model.embeddings.position_embeddings[0].detach()
    assert float(table[0].abs().max()) == 0.0  # the class token's position
    assert float(table[1:].pow(2).mean().sqrt()) == pytest.approx(0.5, rel=1e-5)
    side = int(round((table.shape[0] - 1) ** 0.5))
    expected = sincos_table(side, table.shape[1])
    torch.testing.assert_close(table[1:] / table[1:].pow(2).mean().sqrt(),
                               expected / expected.pow(2).mean().sqrt())
    with pytest.raises(StrvosError, match="vision_position_init"):
        build_model(micro_config(model={"vision_position_init": 0.5, "init": "somewhere"}).model)


def test_attribute_object_cells_add_the_cross_entropy_on_cells_one_object_covers(aided):
    """loss.attribute_object_cells: the LLM-side attribute loss gains exactly `object_cell_loss` of the same head."""
    from strvos_core.training.attributes import object_cell_loss

    config, model, trainer = aided
    sample = SyntheticPool(config.data).sample(0, 0, 0, 0)
    features = model.encode_frame(sample.frames[0])
    tokens, sam = features.image_tokens.float(), features.sam
    with torch.no_grad():
        plain = trainer.attribute_loss((tokens, sam), sample.labels[0], sample.attributes)
        trainer.loss_config.attribute_object_cells = True
        both = trainer.attribute_loss((tokens, sam), sample.labels[0], sample.attributes)
        side = int(tokens.shape[0] ** 0.5)
        targets = attribute_targets(sample.labels[0], sample.attributes, (side, side))
        extra = object_cell_loss(trainer.training_heads["llm_attributes"].linear(tokens), targets)
    assert float(extra) > 0
    torch.testing.assert_close(both - plain, extra)
