"""Connector-only vision-language models on the scene world, built the LatentLens paper's way.

Three stages, each deterministic for its seed on the CPU:

1. ``train_tower``: a small CLIP vision tower (one patch per grid cell) trained with its own objective: every
   patch token classifies its cell's colour and shape (linear heads, thrown away afterwards). Then frozen.
2. ``train_text_lm`` (zoo VLM only): a stories-sized Llama LM pretrained on text descriptions of the world.
   The SmolLM2 VLM uses the real SmolLM2 instead.
3. ``train_connector``: LLaVA's two-layer MLP projector, the only trained part, through the frozen LM on captions
   ("<image> red circle, blue cross."): loss on the caption tokens only.

``llava_config`` / ``llava_state`` put the parts together as a standard ``LlavaForConditionalGeneration``.
Training input layout (also what ``interp.models.vision`` builds for a prompt): ``[BOS] <image> x GRID^2, text``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from interp.zoo import scenes as world
from interp.zoo.train import Run

__all__ = ["TowerRecipe", "ConnectorRecipe", "IMAGE_MEAN", "IMAGE_STD", "pixel_values", "tower_config", "train_tower",
           "tower_features", "train_text_lm", "train_connector", "caption_accuracy", "llava_config", "llava_state",
           "caption_ids"]

IMAGE_MEAN = (0.5, 0.5, 0.5)
IMAGE_STD = (0.25, 0.25, 0.25)
N_COLOUR, N_SHAPE = len(world.COLOURS) + 1, len(world.SHAPES) + 1  # + "none"


@dataclass
class _Run(Run):
    """A vision run: the zoo's ``Run`` (seed, steps, learning rate, threads) plus the images drawn from and the batch."""

    steps: int = 300
    images: int = 3000
    batch: int = 64


@dataclass
class TowerRecipe(_Run):
    """The vision tower's shape and run (per-patch colour and shape classification)."""

    hidden: int = 64
    layers: int = 2
    heads: int = 4


@dataclass
class ConnectorRecipe(_Run):
    """The projector's run through the frozen (or, ``lm_lr > 0``, trained) LM on captions."""

    steps: int = 500
    batch: int = 8
    lr: float = 2e-3
    threads: int = 2
    max_objects: int | None = 3
    """captions of sparse scenes of 1..max_objects objects (None: dense scenes); the image is needed to name them"""
    lm_lr: float = 0.0
    """> 0: the LM is trained too, at this learning rate (the zoo VLM only; the SmolLM2 VLM keeps its LM frozen)"""


def pixel_values(images: list[np.ndarray]) -> torch.Tensor:
    """[n, 3, SIZE, SIZE] float32 tower input from uint8 [SIZE, SIZE, 3] arrays (scaled to 0..1, then normalised)."""
    x = torch.from_numpy(np.stack(images)).float().div(255.0).permute(0, 3, 1, 2)
    mean, std = torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGE_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def tower_config(r: TowerRecipe):
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(hidden_size=r.hidden, intermediate_size=2 * r.hidden, num_hidden_layers=r.layers,
                            num_attention_heads=r.heads, image_size=world.SIZE, patch_size=world.CELL, projection_dim=r.hidden)


def _labels(batch: list[world.Scene]) -> tuple[torch.Tensor, torch.Tensor]:
    colours, shapes = list(world.COLOURS), list(world.SHAPES)
    col = [[0 if c is None else 1 + colours.index(c) for _, _, c, _ in s.patch_truth()] for s in batch]
    shp = [[0 if h is None else 1 + shapes.index(h) for _, _, _, h in s.patch_truth()] for s in batch]
    return torch.tensor(col), torch.tensor(shp)


def tower_features(tower, pix: torch.Tensor) -> torch.Tensor:
    """[n, GRID^2, hidden] patch features as LLaVA reads them (last layer's hidden states, CLS dropped)."""
    return tower(pixel_values=pix, output_hidden_states=True).hidden_states[-1][:, 1:]


def train_tower(r: TowerRecipe) -> tuple[torch.nn.Module, dict]:
    """Train the vision tower on per-patch colour and shape classification; returns (tower in eval mode, stats)."""
    from transformers import CLIPVisionModel

    torch.manual_seed(r.seed)
    torch.set_num_threads(r.threads)
    tower = CLIPVisionModel(tower_config(r))
    heads = torch.nn.Linear(r.hidden, N_COLOUR + N_SHAPE)
    train = world.scenes(r.images, "train")
    pix, (col, shp) = pixel_values([s.pixels for s in train]), _labels(train)
    opt = torch.optim.AdamW(list(tower.parameters()) + list(heads.parameters()), lr=r.lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(r.seed)
    t0 = time.time()
    for step in tqdm(range(r.steps), desc="vision tower", leave=False):
        for group in opt.param_groups:
            group["lr"] = r.lr * 0.5 * (1 + np.cos(np.pi * step / r.steps))
        idx = torch.randint(len(train), (r.batch,), generator=g)
        out = heads(tower_features(tower, pix[idx]))
        loss = F.cross_entropy(out[..., :N_COLOUR].flatten(0, 1), col[idx].flatten()) + F.cross_entropy(
            out[..., N_COLOUR:].flatten(0, 1), shp[idx].flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    tower.eval()
    held = world.scenes(500, "heldout")
    with torch.no_grad():
        out = heads(tower_features(tower, pixel_values([s.pixels for s in held])))
    hc, hs = _labels(held)
    stats = {"tower_heldout_colour_acc": (out[..., :N_COLOUR].argmax(-1) == hc).float().mean().item(),
             "tower_heldout_shape_acc": (out[..., N_COLOUR:].argmax(-1) == hs).float().mean().item(),
             "tower_final_loss": loss.item(), "tower_seconds": round(time.time() - t0, 1)}
    for p in tower.parameters():
        p.requires_grad_(False)
    return tower, stats


def caption_ids(tokenizer, scene: world.Scene, bos_id: int | None, image_id: int) -> tuple[list[int], int]:
    """(token ids ``[BOS] <image> x GRID^2 caption``, index of the first caption token)."""
    head = ([bos_id] if bos_id is not None else []) + [image_id] * world.GRID ** 2
    return head + tokenizer.encode(" " + scene.caption(), add_special_tokens=False), len(head)


def train_text_lm(tokenizer, *, seed: int = 0, d_model: int = 128, layers: int = 4, heads: int = 4, steps: int = 600,
                  batch: int = 32, lr: float = 3e-3, threads: int = 1):
    """A small Llama LM pretrained on text about the world (descriptions and captions, no images).
    Returns (model in eval mode with frozen weights, stats)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    cfg = LlamaConfig(hidden_size=d_model, intermediate_size=2 * d_model, num_hidden_layers=layers,
                      num_attention_heads=heads, num_key_value_heads=max(1, heads // 2), max_position_embeddings=64,
                      vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.bos_token_id,
                      pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True)
    lm = LlamaForCausalLM(cfg)
    texts = world.caption_corpus(20000, seed=seed) + [s.caption() for s in world.scenes(4000, "train", start=50_000)]
    ids = [tokenizer.encode(t) for t in texts]
    opt = torch.optim.AdamW(lm.parameters(), lr=lr, weight_decay=0.01)
    g = torch.Generator().manual_seed(seed)
    t0 = time.time()
    for step in tqdm(range(steps), desc="text LM", leave=False):
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1 + np.cos(np.pi * step / steps))
        pick = torch.randint(len(ids), (batch,), generator=g).tolist()
        x, mask = _pad([ids[i] for i in pick], tokenizer.pad_token_id)
        logits = lm(input_ids=x, attention_mask=mask).logits[:, :-1]
        tgt = x[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
        loss = F.cross_entropy(logits.flatten(0, 1), tgt.flatten(), ignore_index=-100)
        opt.zero_grad()
        loss.backward()
        opt.step()
    lm.eval()
    for p in lm.parameters():
        p.requires_grad_(False)
    return lm, {"lm_final_loss": loss.item(), "lm_seconds": round(time.time() - t0, 1)}


def _pad(seqs: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    n = max(map(len, seqs))
    x = torch.full((len(seqs), n), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), n), dtype=torch.long)
    for i, s in enumerate(seqs):
        x[i, : len(s)], mask[i, : len(s)] = torch.tensor(s), 1
    return x, mask


def _projector(vision_config, text_config) -> torch.nn.Module:
    from transformers import LlavaConfig
    from transformers.models.llava.modeling_llava import LlavaMultiModalProjector

    return LlavaMultiModalProjector(LlavaConfig(vision_config=vision_config.to_dict(), text_config=text_config.to_dict(),
                                                projector_hidden_act="gelu", vision_feature_layer=-1))


def _connector_loss(lm, projector, feats, seqs, starts, image_id, pad) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits [n, vocab], targets [n]) at the caption tokens only: the unembedding runs on those positions alone
    (SmolLM2's 49k-word head over every position cost most of a step)."""
    x, mask = _pad(seqs, pad)
    emb = lm.get_input_embeddings()(x.clamp(max=lm.config.vocab_size - 1))
    vis = projector(feats)  # [b, GRID^2, d]
    is_img = (x == image_id).unsqueeze(-1)
    emb = emb.masked_scatter(is_img, vis.to(emb.dtype))
    hidden = lm.model(inputs_embeds=emb, attention_mask=mask).last_hidden_state[:, :-1]
    tgt = x[:, 1:].clone()
    for i, s in enumerate(starts):
        tgt[i, : s - 1] = -100
    tgt = tgt.masked_fill(mask[:, 1:] == 0, -100)
    keep = tgt != -100
    return lm.lm_head(hidden[keep]), tgt[keep]


def train_connector(lm, tokenizer, tower, image_id: int, r: ConnectorRecipe) -> tuple[torch.nn.Module, dict]:
    """Train LLaVA's projector through the frozen ``lm`` on scene captions; returns (projector in eval mode, stats)."""
    torch.manual_seed(r.seed)
    torch.set_num_threads(r.threads)
    projector = _projector(tower.config, lm.config)
    train = world.scenes(r.images, "train", max_objects=r.max_objects)
    with torch.no_grad():
        feats = torch.cat([tower_features(tower, pixel_values([s.pixels for s in train[i:i + 256]]))
                           for i in range(0, len(train), 256)])
    bos = lm.config.bos_token_id
    pairs = [caption_ids(tokenizer, s, bos, image_id) for s in train]
    groups = [{"params": list(projector.parameters()), "base": r.lr}]
    if r.lm_lr > 0:
        lm.train()
        for p in lm.parameters():
            p.requires_grad_(True)
        groups.append({"params": list(lm.parameters()), "base": r.lm_lr})
    opt = torch.optim.AdamW(groups, lr=r.lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(r.seed)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    t0, losses = time.time(), []
    for step in tqdm(range(r.steps), desc="connector", leave=False, mininterval=30):
        for group in opt.param_groups:
            group["lr"] = group["base"] * min(1.0, (step + 1) / 20) * 0.5 * (1 + np.cos(np.pi * step / r.steps))
        pick = torch.randint(len(train), (r.batch,), generator=g).tolist()
        logits, tgt = _connector_loss(lm, projector, feats[pick], [pairs[i][0] for i in pick], [pairs[i][1] for i in pick],
                                      image_id, pad)
        loss = F.cross_entropy(logits, tgt)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if (step + 1) % 50 == 0:
            tqdm.write(f"connector step {step + 1}: mean loss of the last 50 {np.mean(losses[-50:]):.4f}")
    projector.eval()
    lm.eval()
    for p in [*projector.parameters(), *lm.parameters()]:
        p.requires_grad_(False)
    return projector, {"connector_final_loss": float(np.mean(losses[-20:])), "connector_seconds": round(time.time() - t0, 1)}


@torch.no_grad()
def caption_accuracy(lm, tokenizer, tower, projector, image_id: int, n: int = 200, with_image: bool = True,
                     max_objects: int | None = 3) -> float:
    """Teacher-forced accuracy of the next-token argmax on the colour and shape words of ``n`` held-out captions
    (scenes of 1..``max_objects`` objects; ``with_image=False`` feeds the projector zeros: the text-only floor)."""
    held = world.scenes(n, "heldout", max_objects=max_objects)
    pix = pixel_values([s.pixels for s in held])
    feats = tower_features(tower, pix)
    if not with_image:
        feats = torch.zeros_like(feats)
    attr = {tokenizer.encode(" " + w, add_special_tokens=False)[0] for w in (*world.COLOURS, *world.SHAPES)}
    hit = tot = 0
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    for i in range(0, n, 32):
        pairs = [caption_ids(tokenizer, s, lm.config.bos_token_id, image_id) for s in held[i:i + 32]]
        logits, tgt = _connector_loss(lm, projector, feats[i:i + 32], [p[0] for p in pairs], [p[1] for p in pairs], image_id, pad)
        keep = torch.isin(tgt, torch.tensor(sorted(attr)))
        hit += (logits[keep].argmax(-1) == tgt[keep]).sum().item()
        tot += keep.sum().item()
    return hit / max(tot, 1)


def llava_config(tower, text_config, image_id: int) -> dict:
    """The ``LlavaConfig`` (as a dict for ``config.json``) joining ``tower`` and a text model of ``text_config``."""
    from transformers import LlavaConfig

    cfg = LlavaConfig(vision_config=tower.config.to_dict(), text_config=text_config.to_dict(), image_token_id=image_id,
                      vision_feature_layer=-1, vision_feature_select_strategy="default", projector_hidden_act="gelu",
                      image_seq_length=world.GRID ** 2, tie_word_embeddings=bool(getattr(text_config, "tie_word_embeddings", False)))
    cfg.architectures = ["LlavaForConditionalGeneration"]
    return cfg.to_dict()


def llava_state(tower, projector, lm=None) -> dict[str, torch.Tensor]:
    """State dict under ``LlavaForConditionalGeneration`` names: the tower and projector, and the LM's when given."""
    out = {f"model.vision_tower.{k}": v for k, v in tower.state_dict().items()}
    out.update({f"model.multi_modal_projector.{k}": v for k, v in projector.state_dict().items()})
    if lm is not None:
        for k, v in lm.state_dict().items():
            if k.startswith("model."):
                out["model.language_model." + k[len("model."):]] = v
            elif k == "lm_head.weight" and not lm.config.tie_word_embeddings:
                out[k] = v
    return {k: v.detach().contiguous().clone() for k, v in out.items()}
