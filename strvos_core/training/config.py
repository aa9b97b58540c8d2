"""Training configuration: one YAML file -> nested dataclasses, checked once with messages naming the field.

Defaults are the reference recipe (REFERENCE_SPEC.md section 7): frozen ViT and SAM 2 except its mask decoder,
LoRA r=128 alpha=256 dropout 0.05 on every LLM linear layer, embed_tokens/lm_head/mlp1/text_hidden_fcs trained,
CE weight 1 + BCE weight 2 + Dice weight 0.5 on 12544 uncertainty-sampled points, AdamW lr 4e-5 wd 0.05,
5% linear warm-up from 1e-5x then cosine to 0, grad clip 1.0, accumulation 4.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from strvos_core.errors import StrvosError

PART_MODES = ("frozen", "full")
LLM_MODES = ("frozen", "lora", "full")
STAGES = ("image", "video", "promptable")
EXPRESSION_KINDS = ("appearance", "relation", "motion")


@dataclass
class ModelSection:
    """Where the weights start: a preset (random init, with `overrides` merged into its config) or an export."""

    preset: str = "tiny"
    overrides: dict[str, Any] = field(default_factory=dict)
    init: str | None = None  # an HF-format export directory (checkpoint.load_model); wins over preset
    tokenizer: str = "synthetic"  # "synthetic" (tokenization/), "tiny" (bundled), or a tokenizer directory
    seed: int = 0
    # From scratch only: re-draw the LLM token embeddings with this std (None keeps Qwen2's initializer_range,
    # 0.02). At 0.02 a text token is ~20x smaller than a projected image token, so after one layer every answer
    # position holds the same image average and the LLM output stops depending on its input (measured: LM loss
    # stuck at log 3, one [SEG] state for every expression).
    embedding_std: float | None = None
    # From scratch only: re-draw the last Linear of text_hidden_fcs with this std (None keeps PyTorch's init).
    # SAM 2's own prompt and output tokens have norms ~16; the default init gives the [SEG] prompt token ~1.5-4, and
    # the decoder, whose first token self-attention has no residual, then ignores it completely (measured: changing
    # the token moved the logits by < 0.001).
    prompt_std: float | None = None
    # From scratch only: the query and key projections of every attention in SAM 2's mask decoder start as one shared
    # orthonormal projection times this scale ("mimetic" init), so attention starts as a similarity of content and
    # position (the click's and the image's positional encodings match where they coincide). None keeps PyTorch's
    # init, under which the decoder learned "every object" and not "the clicked one" (training/README.md).
    decoder_attention_init: float | None = None
    # From scratch only: the ViT's absolute position embeddings (zero in transformers' init) start as a 2D sine-cosine
    # table of this root-mean-square (the patch embedding's output is ~0.5). From zero a small ViT stayed a bag of
    # patches: colour and texture learned, shape at chance (training.attribute_probe). None keeps the zeros.
    vision_position_init: float | None = None
    # SAM 2's weights from a stage-0 run (`strvos convert --grounding-only`), loaded over the build: the next stage
    # starts from a SAM 2 that answers prompts, and the rest of the model from the same seed as stage 0
    grounding_init: str | None = None
    # The LLM's vision path (vision_model + mlp1) from an attribute pre-training run (`training.attribute_probe
    # --save`), loaded over the build: stage 1 starts from a trunk that already sees size and shape
    vision_init: str | None = None
    # true: an `init` export without it gains vision.motion_input (a motion encoder reading the previous frame's
    # difference, its output projection zero so the model starts as it was); a random build takes it from
    # `overrides: {vision: {motion_input: true}}`
    motion_input: bool = False
    # The motion encoder from a motion pre-training run (`training.motion_probe --save`), loaded over the model's
    # with its output projection zero: the model starts as it would without motion input, reading features that
    # already say which way each object moved once training grows the projection
    motion_init: str | None = None
    # true: the model gains grounding.attention_click (SAM 2 also gets a click where the [SEG] attention peaks; no new
    # weights, the decoder learns to use it); a random build may take it from `overrides` as well
    attention_click: bool = False
    # true: the model gains grounding.object_score_gate (SAM 2's object score empties the mask of a target judged out
    # of view; train it with loss.object_score_weight)
    object_score_gate: bool = False


@dataclass
class TrainableSection:
    """Which parts learn. The reference: vision frozen, llm lora, sam2 encoder frozen, decoder full."""

    vision: str = "frozen"
    mlp1: str = "full"
    llm: str = "lora"
    embeddings: str = "full"  # embed_tokens and lm_head (the added tokens need them); "output": lm_head only
    text_hidden_fcs: str = "full"
    sam2_image_encoder: str = "frozen"
    sam2_mask_decoder: str = "full"
    sam2_prompt_encoder: str = "frozen"  # point / box / "not a point" embeddings (the reference keeps them frozen)
    motion_encoder: str = "full"  # the embedded model's motion encoder (vision.motion_input); models without have none


@dataclass
class LoraSection:
    rank: int = 128
    alpha: float = 256.0
    dropout: float = 0.05
    targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class LossSection:
    lm_weight: float = 1.0
    bce_weight: float = 2.0
    dice_weight: float = 0.5
    num_points: int = 12544
    oversample_ratio: float = 3.0
    importance_sample_ratio: float = 0.75
    # False: BCE and Dice over every low-res pixel instead of sampled points (training from scratch: while the
    # logits are confidently wrong on a small target, uncertainty sampling rarely visits it)
    point_sampling: bool = True
    # False: the LM loss trains lm_head only (hidden states detached). From scratch, the answer is always "[SEG].",
    # and its cross-entropy through the backbone collapses every [SEG] state onto one vector before the mask loss
    # can make it depend on the expression (measured: cosine 1.000 between expressions after 500 steps).
    lm_backbone_grad: bool = True
    # > 0: also pull the projected [SEG] prompt toward SAM 2's own embedding of a click at the target's centre
    # (normalised MSE; 0 = off, the reference). From scratch the mask loss alone lets the decoder settle on "the
    # most salient object" and every [SEG] collapse onto one vector; this gives the LLM a direct, per-expression
    # target (where the object is) that the click-trained decoder already turns into a mask.
    seg_click_weight: float = 0.0
    # > 0: pull the projected [SEG] prompt toward the target's exemplar token (SAM 2's own image embedding averaged
    # over the target; normalised MSE, the target detached): what the target looks like to SAM 2, which a decoder
    # pre-trained on exemplar prompts (data.exemplar_fraction) selects by. For an appearance expression the LLM can
    # say that from the words; a click token needs it to compute where the target is.
    seg_exemplar_weight: float = 0.0
    # > 0: the [SEG] state must also say which words its expression holds (multi-label BCE through a linear head
    # used only in training, saved with the checkpoints, never exported). From scratch, a [SEG] state starts ~1%
    # dependent on the expression and the mask loss alone lets it collapse; this keeps it about the expression.
    seg_words_weight: float = 0.0
    click_weight: float = 1.0  # the click-prompt mask loss (data.clicks_per_frame), relative to the [SEG] masks'
    # > 0: a training-only text teacher (a small GRU over the expression's token ids, never exported) makes its own
    # SAM 2 prompt token, whose masks are trained with this weight. Its token depends on the expression from step 0,
    # so the decoder learns to be driven by a language token instead of settling on "the most salient object".
    teacher_weight: float = 0.0
    # > 0 (with teacher_weight): normalised MSE pulling the projected [SEG] token onto the teacher's (detached) token,
    # so the LLM path hands the decoder the token it has learned to follow.
    teacher_distill_weight: float = 0.0
    # > 0: training-only linear heads read each object's size, colour, texture and shape off every cell of SAM 2's
    # image embedding and of the LLM's image tokens (synthetic data only: it knows them). From scratch, the image
    # features must say what is where before any language token can select an object by its description.
    attribute_weight: float = 0.0
    # with attribute_weight: the LLM-side head also takes a cross-entropy over the values on the token cells that one
    # object covers for more than half. The soft shares alone are dominated by the ~95 % background cells: a vision
    # path trained on them kept shape at chance (training.attribute_probe, which uses both)
    attribute_object_cells: bool = False
    # the [SEG] path's mask loss (BCE + Dice) relative to the reference's weights; 0 while a teacher trains the
    # decoder alone (a decoder trained on uninformative [SEG] tokens learns to ignore every language token)
    seg_mask_weight: float = 1.0
    # > 0: SAM 2's object score of each decoded [SEG] mask learns whether the target is in view (BCE, as SAM 2's own
    # training), and the mask losses then score only targets in view (SAM 2 scores masks only where the object is)
    object_score_weight: float = 0.0
    iou_weight: float = 1.0  # stage "promptable": SAM's IoU head, MSE toward each candidate's actual IoU
    # how a ground-truth mask is taken to the low-res logits' size for the [SEG] and click losses: "nearest" (the
    # reference) or "area" (each cell's share of the object). A perfect fit of nearest's target scores J&F 0.72 at
    # 160 px, of area's 0.91 (training.ceiling); stage "promptable" always uses area.
    mask_target: str = "nearest"
    # > 0: the LLM's last-layer attention from the [SEG] position over the image tokens (mean of the heads,
    # renormalised over the image) is trained toward where the target lies (its share of each token's cell):
    # cross-entropy, frames where the target is visible. The [SEG] state then carries where the target is, which
    # SAM 2's decoder follows as it follows a click (with loss.seg_click_weight); from scratch the decoder does not
    # learn to select by a language token's content (measured: not even with free per-colour vectors).
    seg_attention_weight: float = 0.0
    # > 0: the same attention row's mass on the image tokens (mean of the heads, before the renormalisation above)
    # is trained toward whether the target is in view: BCE, 1 in view, 0 out of view (absent targets come from
    # data.absent_per_sample with an answer holding [SEG]). A signal a gate on absent targets can read.
    seg_presence_weight: float = 0.0
    # > 0: a training-only linear head must read the target's centre (x, y in [-1, 1]) off the [SEG] state (MSE,
    # frames where the target is visible): what the attention found must reach the state SAM 2 is prompted with.
    seg_position_weight: float = 0.0
    # > 0: the same position head must read each image token's own cell centre off what that token hands the [SEG]
    # row of the last layer when attended (o_proj of its value, every head; MSE). The head being linear, the [SEG]
    # attention's weighted sum of those values then says where the attended cells are: what the attention finds
    # reaches the state (measured without it: attention on the target 10x uniform, but what it reads carries no
    # position, training.probe's attended/value R^2).
    value_position_weight: float = 0.0
    # > 0: a training-only linear head must read, off the [SEG] state entering the last layer (what its attention
    # query is made from), which value of each attribute the expression names ("not said" where it names none;
    # synthetic expressions only). The attention can select an object by its description only if the query
    # carries the description (measured without it: the appearance expressions of a frame give tokens at cosine
    # 0.998, training.probe --kinds).
    seg_attribute_weight: float = 0.0
    # True: frame t's losses also train frame t-1's [SEG] state through the recurrence (backpropagation through
    # the clip). False (the reference's stage-1 video branch): the state is detached, so nothing teaches it to
    # carry what a later frame needs: a motion expression ("moving left") cannot be told from one frame.
    state_grad: bool = False
    # > 0: a training-only linear head must read off each frame's [SEG] state (the one fed back to the next frame)
    # where the objects the noun phrase describes are (every candidate, not only the target; each cell's share of an
    # 8x8 map, binary cross-entropy). A motion word can be told only by comparing where the candidates are now with
    # where they were, and the state is the only thing a frame hands the next (synthetic expressions only).
    state_candidates_weight: float = 0.0
    # > 0: on LLM-blind frames (data.llm_blind_fraction) the [SEG] position's attention, averaged over layers and
    # heads, is pulled onto the <TIME_CONTEXT> slot (-log of its weight): the state fed back is the only thing there
    # that says where the target is, and from single-frame training the LLM gives that slot ~2 % of its attention.
    state_attention_weight: float = 0.0
    # > 0 (a model with vision.motion_input): a training-only head must read off each LLM image token which way the
    # objects there moved since the frame before (training/motion.py); synthetic video data only
    motion_cell_weight: float = 0.0
    # > 0: a training-only head must read the motion word the expression names off the [SEG] state entering the last
    # layer, as seg_attribute_weight does for the attributes (synthetic expressions only)
    seg_motion_weight: float = 0.0


@dataclass
class OptimSection:
    lr: float = 4e-5
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.05
    grad_clip: float = 1.0
    warmup_ratio: float = 0.05
    warmup_start_factor: float = 1e-5
    grad_accum_steps: int = 4
    # learning-rate multipliers per trainable part (names of the `trainable` section), e.g. {sam2_image_encoder: 0.1}:
    # trained from scratch at the decoder's rate, SAM 2's image encoder settles on "every object" features before the
    # decoder learns to select one (measured in training/README.md)
    lr_scales: dict[str, float] = field(default_factory=dict)


@dataclass
class DataSection:
    """Synthetic referring videos generated in memory (a pool of `num_videos`, sampled per step by seed)."""

    stage: str = "image"  # "image" (stage 1: single frames) or "video" (stage 2: clips with the recurrence)
    num_videos: int = 64
    seed: int = 0
    width: int = 320
    height: int = 240
    frames_per_video: int = 20
    clip_frames: int = 5  # stage 2: frames per sample (the reference samples 5)
    # stage 2: 0 draws the clip's frames anywhere in the video (the reference); N > 0 draws each gap between
    # consecutive clip frames from 1..N, closer to the stream the model sees at inference (gap 1)
    clip_max_gap: int = 0
    # stage 2: this share of a clip's frames after the first show the LLM a blank image (its image tokens zeroed; SAM 2
    # still sees the frame): the [SEG] state can then find the target only through the state fed back from the
    # frame before. 0 = off (the reference). Trained from scratch on single frames, the LLM otherwise ignores the state.
    llm_blind_fraction: float = 0.0
    batch_size: int = 1  # samples per process per micro-step
    expressions_per_sample: int = 1  # targets sharing a sample's frames (the reference samples several objects
    #                                  per video); the frames' image work is done once for all of them
    # phrasings generated per object and expression kind (the synthetic world's expressions_per_kind; evaluation
    # uses 1): more make more distinct expressions per frame for expressions_per_sample to draw from
    expressions_per_kind: int = 1
    # SAM 2's own promptable task alongside (0 = off, as the reference, whose SAM 2 comes pretrained): per frame,
    # this many visible objects get one positive click each, and their mask is learned from the best of SAM 2's
    # three candidates. From scratch it trains the decoder's prompt path and object features while the [SEG]
    # embedding still carries nothing (without it the decoder learns to ignore the [SEG] token).
    clicks_per_frame: int = 0
    kinds: tuple[str, ...] = ()  # default: appearance+relation for images, all kinds for video
    # stage "promptable" (SAM 2's own task, training/promptable.py): prompts per frame, decoded on one image encoding
    prompts_per_frame: int = 32
    box_fraction: float = 0.25  # of the prompts: boxes (the rest: clicks)
    corrective_fraction: float = 0.5  # of the clicks: followed by a corrective second click
    exemplar_fraction: float = 0.0  # of the prompts: exemplars (SAM 2's embedding of the object, training/promptable.py)
    answers: tuple[str, ...] = ("Sure, [SEG].", "It is [SEG].", "[SEG].")
    # stage "image": up to this many more targets per sample whose object is out of view (or hidden) in the frame,
    # drawn from the same video's expressions and answered `absent_answer`: without [SEG] (an empty mask, as the
    # reference's no-target answers) or with one (SAM 2's object score decides: loss.object_score_weight).
    # 0 = off: every target of a sample is in view (the reference's frames).
    absent_per_sample: int = 0
    absent_answer: str = "No."

    def expression_kinds(self) -> tuple[str, ...]:
        if self.kinds:
            return self.kinds
        return ("appearance", "relation") if self.stage == "image" else EXPRESSION_KINDS


@dataclass
class RunSection:
    steps: int = 1000  # optimizer steps
    save_every: int = 100
    keep_checkpoints: int = 2
    log_every: int = 1
    device: str = "cpu"
    threads: int = 0  # torch.set_num_threads; 0 leaves torch's default


@dataclass
class TrainConfig:
    model: ModelSection = field(default_factory=ModelSection)
    trainable: TrainableSection = field(default_factory=TrainableSection)
    lora: LoraSection = field(default_factory=LoraSection)
    loss: LossSection = field(default_factory=LossSection)
    optim: OptimSection = field(default_factory=OptimSection)
    data: DataSection = field(default_factory=DataSection)
    run: RunSection = field(default_factory=RunSection)

    def __post_init__(self) -> None:
        validate(self)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> TrainConfig:
        data = dict(data or {})
        sections = {f.name: f.type for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(sections))
        if unknown:
            raise StrvosError(f"training config: unknown sections {unknown}; expected some of {sorted(sections)}")
        kwargs = {name: _section(name, SECTION_TYPES[name], data.get(name)) for name in sections}
        return cls(**kwargs)

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        import yaml

        path = Path(path)
        if not path.is_file():
            raise StrvosError(f"training config {path} does not exist")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise StrvosError(f"training config {path} is not valid YAML: {exc}") from None
        if data is not None and not isinstance(data, dict):
            raise StrvosError(f"training config {path} must be a mapping of sections")
        return cls.from_dict(data)


SECTION_TYPES = {
    "model": ModelSection, "trainable": TrainableSection, "lora": LoraSection, "loss": LossSection,
    "optim": OptimSection, "data": DataSection, "run": RunSection,
}


def _section(name: str, kind: type, values: Any):
    if values is None:
        return kind()
    if not isinstance(values, dict):
        raise StrvosError(f"training config: section {name!r} must be a mapping, got {type(values).__name__}")
    known = {f.name: f for f in dataclasses.fields(kind)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise StrvosError(f"training config: unknown keys {unknown} in section {name!r}; known: {sorted(known)}")
    converted = {}
    for key, value in values.items():
        default = getattr(kind(), key)
        if isinstance(default, tuple) and isinstance(value, list):
            value = tuple(value)
        converted[key] = value
    return kind(**converted)


def validate(config: TrainConfig) -> None:
    def need(ok: bool, message: str) -> None:
        if not ok:
            raise StrvosError(f"training config: {message}")

    t = config.trainable
    need(t.embeddings in (*PART_MODES, "output"),
         f"trainable.embeddings must be one of {(*PART_MODES, 'output')}, got {t.embeddings!r}")
    for name in ("vision", "mlp1", "text_hidden_fcs", "sam2_image_encoder", "sam2_mask_decoder", "sam2_prompt_encoder",
                 "motion_encoder"):
        need(getattr(t, name) in PART_MODES, f"trainable.{name} must be one of {PART_MODES}, got {getattr(t, name)!r}")
    need(t.llm in LLM_MODES, f"trainable.llm must be one of {LLM_MODES}, got {t.llm!r}")
    lo = config.lora
    need(lo.rank >= 1 and lo.alpha > 0 and 0.0 <= lo.dropout < 1.0,
         f"lora needs rank >= 1, alpha > 0, 0 <= dropout < 1 (got {lo.rank}, {lo.alpha}, {lo.dropout})")
    need(bool(lo.targets), "lora.targets must name at least one linear layer")
    ls = config.loss
    need(min(ls.lm_weight, ls.bce_weight, ls.dice_weight, ls.click_weight, ls.seg_click_weight, ls.seg_exemplar_weight,
             ls.seg_words_weight, ls.teacher_weight, ls.teacher_distill_weight, ls.attribute_weight, ls.seg_mask_weight,
             ls.seg_attention_weight, ls.seg_position_weight, ls.value_position_weight, ls.seg_attribute_weight,
             ls.state_candidates_weight, ls.state_attention_weight, ls.motion_cell_weight, ls.seg_motion_weight,
             ls.object_score_weight, ls.seg_presence_weight) >= 0,
         "loss weights must be >= 0")
    need(ls.teacher_distill_weight == 0 or ls.teacher_weight > 0,
         "loss.teacher_distill_weight needs loss.teacher_weight > 0 (the teacher must be trained to be followed)")
    need(config.model.embedding_std is None or config.model.embedding_std > 0, "model.embedding_std must be > 0")
    need(config.model.prompt_std is None or config.model.prompt_std > 0, "model.prompt_std must be > 0")
    need(config.model.vision_position_init is None or config.model.vision_position_init > 0,
         "model.vision_position_init must be > 0")
    need(not config.model.motion_input or config.model.init is not None,
         "model.motion_input widens an init export's conv trunk; a random build takes "
         "model.overrides: {vision: {motion_input: true}}")
    need(config.model.init is None or config.model.vision_init is None,
         "model.vision_init loads a vision path over a random build; model.init loads a whole export: drop one")
    need(config.model.decoder_attention_init is None or config.model.decoder_attention_init > 0,
         "model.decoder_attention_init must be > 0")
    need(config.model.decoder_attention_init is None or config.model.grounding_init is None,
         "model.decoder_attention_init re-draws the decoder that model.grounding_init loads: drop one of them")
    need(ls.mask_target in ("nearest", "area"), f"loss.mask_target must be 'nearest' or 'area', got {ls.mask_target!r}")
    need(ls.num_points >= 1 and ls.oversample_ratio >= 1.0 and 0.0 <= ls.importance_sample_ratio <= 1.0,
         "loss needs num_points >= 1, oversample_ratio >= 1 and importance_sample_ratio in [0, 1]")
    o = config.optim
    need(o.lr > 0 and o.weight_decay >= 0 and o.grad_clip >= 0, "optim needs lr > 0, weight_decay >= 0, grad_clip >= 0")
    need(0.0 <= o.warmup_ratio < 1.0 and 0.0 < o.warmup_start_factor <= 1.0,
         "optim needs 0 <= warmup_ratio < 1 and 0 < warmup_start_factor <= 1")
    need(o.grad_accum_steps >= 1, f"optim.grad_accum_steps must be >= 1, got {o.grad_accum_steps}")
    d = config.data
    need(d.stage in STAGES, f"data.stage must be one of {STAGES}, got {d.stage!r}")
    need(d.num_videos >= 1 and d.batch_size >= 1, "data needs num_videos >= 1 and batch_size >= 1")
    need(d.clicks_per_frame >= 0, f"data.clicks_per_frame must be >= 0, got {d.clicks_per_frame}")
    need(d.prompts_per_frame >= 1, f"data.prompts_per_frame must be >= 1, got {d.prompts_per_frame}")
    need(all(0.0 <= f <= 1.0 for f in (d.box_fraction, d.corrective_fraction, d.exemplar_fraction)),
         "data.box_fraction, data.corrective_fraction and data.exemplar_fraction must be in [0, 1]")
    known_parts = {f.name for f in fields(TrainableSection)}
    need(all(k in known_parts and v > 0 for k, v in o.lr_scales.items()),
         f"optim.lr_scales must map parts of {sorted(known_parts)} to factors > 0, got {o.lr_scales}")
    need(d.expressions_per_sample >= 1, f"data.expressions_per_sample must be >= 1, got {d.expressions_per_sample}")
    need(d.expressions_per_kind >= 1, f"data.expressions_per_kind must be >= 1, got {d.expressions_per_kind}")
    need(1 <= d.clip_frames <= d.frames_per_video, "data needs 1 <= clip_frames <= frames_per_video")
    need(d.clip_max_gap >= 0, f"data.clip_max_gap must be >= 0, got {d.clip_max_gap}")
    need(0.0 <= d.llm_blind_fraction < 1.0, f"data.llm_blind_fraction must be in [0, 1), got {d.llm_blind_fraction}")
    need(config.loss.state_attention_weight == 0 or d.llm_blind_fraction > 0,
         "loss.state_attention_weight scores LLM-blind frames: it needs data.llm_blind_fraction > 0")
    need(all(k in EXPRESSION_KINDS for k in d.kinds), f"data.kinds must be among {EXPRESSION_KINDS}, got {d.kinds}")
    need(bool(d.answers) and all(a.count("[SEG]") == 1 for a in d.answers),
         "data.answers must be a non-empty list of answers with exactly one [SEG] each")
    need(d.absent_per_sample >= 0, f"data.absent_per_sample must be >= 0, got {d.absent_per_sample}")
    need(d.absent_per_sample == 0 or (d.stage == "image" and bool(d.absent_answer.strip())
                                      and d.absent_answer.count("[SEG]") <= 1),
         "data.absent_per_sample needs stage image and an absent_answer with one [SEG] or none")
    r = config.run
    need(r.steps >= 1 and r.save_every >= 1 and r.keep_checkpoints >= 1 and r.log_every >= 1,
         "run needs steps, save_every, keep_checkpoints and log_every >= 1")
