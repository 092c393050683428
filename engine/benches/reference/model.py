"""PyTorch reference of MedVisionLlama (Kumar et al., arXiv 2410.02458) as our engine builds it.

The same configurable network as engine/src/model/ (DESIGN.md §3), read from the same TOML presets
(configs/*.toml), so that `bench.py` and `mvl bench` time the same architecture:

  patch embedding (Linear on raster-ordered patches, = Conv3d k=s=patch) → [+pos] → encoder ViT
  blocks → VD1 (loralib-style LoRA mapper) → frozen Llama decoder layer (+ residual) → VD2 →
  [+pos] → decoder ViT blocks → per-token Linear head → un-patchify.

- ViT blocks: pre-LN, x + MHA(LN(x)), x + MLP(LN(x)), exact GELU, dropout on attention weights and
  in the MLP, no final LayerNorm.
- LoRA (loralib): frozen base weight W, trainable bias, A (Kaiming-uniform) and B (zeros); the
  forward is x W^T + b + s * (x A^T) B^T. W + s·BA is never materialised.
- Llama layer: RMSNorm → GQA attention (repeat_kv, SDPA, no RoPE, no mask, scale 1/sqrt(head_dim))
  → residual → RMSNorm → SwiGLU → residual → final RMSNorm with weight fixed at 1. Frozen; random
  weights (no checkpoint), optional LoRA on the projections named in `llm.lora_targets`.

Our own code, written from DESIGN.md §3; it is not the authors' implementation.
"""
from __future__ import annotations

import copy
import math
import tomllib
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

# ModelConfig::default() / LlmConfig::default() in engine/src/model/config.rs (the official code).
DEFAULT_MODEL = {
    "name": "official-code",
    "kind": "medvisionllama",
    "image_size": [128, 128, 128],
    "patch_size": 8,
    "in_channels": 1,
    "out_channels": 1,
    "output": "sigmoid",
    "embed_dim": 64,
    "encoder_depth": 0,
    "decoder_depth": 16,
    "num_heads": 4,
    "mlp_dim": 256,
    "dropout": 0.2,
    "pos_embed": "after-vd2",
    "mapper": "lora",
    "mapper_rank": 4,
    "mapper_alpha": 1.0,
    "llm_residual": True,
    "seed": 0,
}
DEFAULT_LLM = {
    "hidden": 4096,
    "heads": 32,
    "kv_heads": 8,
    "intermediate": 14336,
    "rms_eps": 1e-5,
    "final_norm": True,
    "layer": 31,
    "checkpoint": None,
    "lora_targets": [],
    "lora_rank": 8,
    "lora_alpha": 16.0,
}
LLM_PROJECTIONS = ("q", "k", "v", "o", "gate", "up", "down")
# Standard deviation of the random frozen Llama weights (Llama's initializer_range).
LLM_INIT_STD = 0.02


def load_preset(path: str | Path) -> dict:
    """The [model] table of a preset, with the engine's defaults filled in."""
    with open(path, "rb") as file:
        table = tomllib.load(file)["model"]
    config = copy.deepcopy(DEFAULT_MODEL)
    config.update({k: v for k, v in table.items() if k != "llm"})
    llm = copy.deepcopy(DEFAULT_LLM)
    llm.update(table.get("llm", {}))
    config["llm"] = llm
    unknown = set(llm["lora_targets"]) - set(LLM_PROJECTIONS)
    if unknown:
        raise ValueError(f"{path}: llm.lora_targets {sorted(unknown)} not in {LLM_PROJECTIONS}")
    return config


def tokens(config: dict) -> int:
    p = config["patch_size"]
    return math.prod(n // p for n in config["image_size"])


def has_llm(config: dict) -> bool:
    return config["kind"] == "medvisionllama"


def closed_form_stats(config: dict) -> dict:
    """Parameter and FLOP counts, the same closed forms as engine/src/model/stats.rs."""
    d, m, n = config["embed_dim"], config["mlp_dim"], tokens(config)
    patch_in = config["patch_size"] ** 3 * config["in_channels"]
    patch_out = config["patch_size"] ** 3 * config["out_channels"]

    def linear(a, b):
        return a * b + b

    block_params = 2 * 2 * d + linear(d, 3 * d) + linear(d, d) + linear(d, m) + linear(m, d)
    blocks = config["encoder_depth"] + config["decoder_depth"]
    trainable = linear(patch_in, d) + n * d + blocks * block_params + linear(d, patch_out)
    block_flops = 2.0 * n * (d * 3 * d + d * d + d * m + m * d) + 4.0 * n * n * d
    flops = 2.0 * n * (patch_in * d + d * patch_out) + blocks * block_flops
    frozen = 0
    if has_llm(config):
        llm = config["llm"]
        h, i = llm["hidden"], llm["intermediate"]
        kv = llm["kv_heads"] * (h // llm["heads"])
        shapes = {"q": (h, h), "k": (h, kv), "v": (h, kv), "o": (h, h),
                  "gate": (h, i), "up": (h, i), "down": (i, h)}
        frozen += 2 * h + sum(a * b for a, b in shapes.values())
        for name, (a, b) in shapes.items():
            flops += 2.0 * n * a * b
            if name in llm["lora_targets"]:
                trainable += llm["lora_rank"] * (a + b)
                flops += 2.0 * n * llm["lora_rank"] * (a + b)
        flops += 4.0 * n * n * h
        r = config["mapper_rank"]
        if config["mapper"] == "lora":
            frozen += 2 * d * h
            trainable += (h + r * (d + h)) + (d + r * (h + d))
            flops += 2.0 * 2.0 * n * (d * h + r * (d + h))
        else:
            trainable += linear(d, h) + linear(h, d)
            flops += 2.0 * 2.0 * n * d * h
    return {"trainable_params": trainable, "frozen_params": frozen, "tokens": n,
            "flops_per_sample": flops}


class LoraLinear(nn.Module):
    """loralib.Linear: frozen W [out, in] (+ trainable bias), trainable A [r, in], B [out, r]."""

    def __init__(self, d_in, d_out, rank, alpha, bias=True, frozen_init_std=None):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(d_out, d_in), requires_grad=False)
        self.bias = nn.Parameter(torch.empty(d_out)) if bias else None
        self.lora_A = nn.Parameter(torch.empty(rank, d_in)) if rank > 0 else None
        self.lora_B = nn.Parameter(torch.zeros(d_out, rank)) if rank > 0 else None
        self.scaling = alpha / rank if rank > 0 else 0.0
        bound = 1.0 / math.sqrt(d_in)
        with torch.no_grad():
            if frozen_init_std is None:
                nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Linear's default
            else:
                nn.init.normal_(self.weight, std=frozen_init_std)
            if self.bias is not None:
                nn.init.uniform_(self.bias, -bound, bound)
            if self.lora_A is not None:
                nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))

    def forward(self, x):
        out = F.linear(x, self.weight, self.bias)
        if self.lora_A is not None:
            out = out + (x @ self.lora_A.transpose(0, 1) @ self.lora_B.transpose(0, 1)) * self.scaling
        return out


class VitBlock(nn.Module):
    """Pre-LN ViT block: x + MHA(LN(x)); x + MLP(LN(x)) with exact GELU and dropout."""

    def __init__(self, dim, heads, mlp_dim, dropout):
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, mlp_dim)
        self.fc2 = nn.Linear(mlp_dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        b, n, d = x.shape
        qkv = self.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, d // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [b, heads, n, head_dim]
        # Dropout on the attention weights, as the engine does.
        attended = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0)
        x = x + self.proj(attended.transpose(1, 2).reshape(b, n, d))
        hidden = self.drop(F.gelu(self.fc1(self.norm2(x)), approximate="none"))
        return x + self.drop(self.fc2(hidden))


def rms_norm(x, weight, eps):
    scale = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return x * scale if weight is None else x * scale * weight


def repeat_kv(x, group):
    """[b, kv_heads, n, hd] → [b, kv_heads·group, n, hd]; query head i uses KV head i // group."""
    if group == 1:
        return x
    b, kv, n, hd = x.shape
    return x[:, :, None].expand(b, kv, group, n, hd).reshape(b, kv * group, n, hd)


class LlamaBlock(nn.Module):
    """A frozen Llama decoder layer without RoPE and without a mask, plus a final RMSNorm (weight 1)."""

    def __init__(self, llm: dict):
        super().__init__()
        h, i = llm["hidden"], llm["intermediate"]
        self.heads, self.kv_heads = llm["heads"], llm["kv_heads"]
        self.head_dim = h // self.heads
        self.eps, self.final_norm = llm["rms_eps"], llm["final_norm"]
        kv = self.kv_heads * self.head_dim
        self.input_norm = nn.Parameter(torch.ones(h), requires_grad=False)
        self.post_norm = nn.Parameter(torch.ones(h), requires_grad=False)
        shapes = {"q": (h, h), "k": (h, kv), "v": (h, kv), "o": (h, h),
                  "gate": (h, i), "up": (h, i), "down": (i, h)}
        for name, (a, b) in shapes.items():
            rank = llm["lora_rank"] if name in llm["lora_targets"] else 0
            setattr(self, name, LoraLinear(a, b, rank, llm["lora_alpha"], bias=False,
                                           frozen_init_std=LLM_INIT_STD))

    def forward(self, x):
        b, n, _ = x.shape
        h = rms_norm(x, self.input_norm, self.eps)
        q = self.q(h).view(b, n, self.heads, self.head_dim).transpose(1, 2)
        k = self.k(h).view(b, n, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v(h).view(b, n, self.kv_heads, self.head_dim).transpose(1, 2)
        group = self.heads // self.kv_heads
        attended = F.scaled_dot_product_attention(q, repeat_kv(k, group), repeat_kv(v, group))
        x = x + self.o(attended.transpose(1, 2).reshape(b, n, self.heads * self.head_dim))
        h = rms_norm(x, self.post_norm, self.eps)
        x = x + self.down(F.silu(self.gate(h)) * self.up(h))
        return rms_norm(x, None, self.eps) if self.final_norm else x


def mapper(config, d_in, d_out):
    if config["mapper"] == "lora":
        return LoraLinear(d_in, d_out, config["mapper_rank"], config["mapper_alpha"])
    return nn.Linear(d_in, d_out)


def patchify(x, p):
    """[b, c, z, y, x] → [b, tokens, c·p³], raster order (z·gy + y)·gx + x, channel-first patches."""
    b, c, nz, ny, nx = x.shape
    gz, gy, gx = nz // p, ny // p, nx // p
    x = x.reshape(b, c, gz, p, gy, p, gx, p).permute(0, 2, 4, 6, 1, 3, 5, 7)
    return x.reshape(b, gz * gy * gx, c * p ** 3)


def unpatchify(t, channels, grid, p):
    """The inverse of patchify: [b, tokens, c·p³] → [b, c, z, y, x]."""
    b = t.shape[0]
    gz, gy, gx = grid
    t = t.reshape(b, gz, gy, gx, channels, p, p, p).permute(0, 4, 1, 5, 2, 6, 3, 7)
    return t.reshape(b, channels, gz * p, gy * p, gx * p)


class MedVisionLlama(nn.Module):
    """The configurable network (ViT-Baseline when kind = "vit-baseline"); returns logits."""

    def __init__(self, config: dict):
        super().__init__()
        d, p = config["embed_dim"], config["patch_size"]
        self.patch = p
        self.out_channels = config["out_channels"]
        self.pos_at_input = config["pos_embed"] == "input"
        self.llm_residual = config["llm_residual"]
        self.patch_embed = nn.Linear(p ** 3 * config["in_channels"], d)
        self.pos_embed = nn.Parameter(torch.randn(1, tokens(config), d))

        def blocks(count):
            return nn.ModuleList(VitBlock(d, config["num_heads"], config["mlp_dim"], config["dropout"])
                                 for _ in range(count))

        self.encoder = blocks(config["encoder_depth"])
        if has_llm(config):
            hidden = config["llm"]["hidden"]
            self.vd1 = mapper(config, d, hidden)
            self.llm = LlamaBlock(config["llm"])
            self.vd2 = mapper(config, hidden, d)
        else:
            self.vd1 = self.llm = self.vd2 = None
        self.decoder = blocks(config["decoder_depth"])
        self.head = nn.Linear(d, p ** 3 * config["out_channels"])

    def forward(self, x):
        """x: [b, in_channels, z, y, x] → logits [b, out_channels, z, y, x]."""
        grid = tuple(n // self.patch for n in x.shape[2:])
        t = self.patch_embed(patchify(x, self.patch))
        if self.pos_at_input:
            t = t + self.pos_embed
        for block in self.encoder:
            t = block(t)
        if self.llm is not None:
            mapped = self.vd1(t)
            t = self.llm(mapped) + mapped if self.llm_residual else self.llm(mapped)
            t = self.vd2(t)
        if not self.pos_at_input:
            t = t + self.pos_embed
        for block in self.decoder:
            t = block(t)
        return unpatchify(self.head(t), self.out_channels, grid, self.patch)


def parameter_counts(model: nn.Module) -> tuple[int, int]:
    """(trainable, frozen) values."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    return trainable, frozen
