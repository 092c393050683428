"""PyTorch counterpart of `mvl bench`: the same network (model.py), the same presets, the same loss
(0.5 · BCE on logits + 0.5 · soft Dice, as engine/src/train/loss.rs), Adam over the trainable parameters, and the same JSON keys.

Usage:
  python3 engine/benches/reference/bench.py --config configs/demo-cpu.toml --device cpu --batch 2
  python3 engine/benches/reference/bench.py --config configs/official-code.toml --device cuda \
      --batch 4 --mode bf16-autocast

--mode fp32 runs in float32 (TF32 matmuls disabled); tf32 is float32 with TF32 tensor-core
matmuls allowed (PyTorch's `allow_tf32`); bf16-autocast runs the forward under
torch.autocast(bfloat16) with float32 weights and optimiser. Times are medians of --iters timed
iterations after --warmup untimed ones. Peak memory: torch.cuda.max_memory_allocated on CUDA
(and max_memory_reserved as peak_reserved_bytes); the process's VmHWM on the CPU.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model import MedVisionLlama, closed_form_stats, load_preset, parameter_counts  # noqa: E402

LEARNING_RATE = 1e-4
DICE_SMOOTH = 1.0
DICE_WEIGHT = 0.5
TARGET_FOREGROUND = 0.3
TRAIN_FLOPS_PER_FORWARD = 3.0
# The official code's model: its trainable parameters, summed over its modules (DESIGN.md §3).
OFFICIAL_TRAINABLE = 1_165_440
OFFICIAL_FROZEN = 218_112_000 + 524_288
REPO = Path(__file__).resolve().parents[3]


def check_official_counts():
    """Builds configs/official-code.toml on the meta device (no memory) and checks its counts."""
    config = load_preset(REPO / "configs" / "official-code.toml")
    with torch.device("meta"):
        model = MedVisionLlama(config)
    trainable, frozen = parameter_counts(model)
    assert trainable == OFFICIAL_TRAINABLE, f"official-code trainable {trainable} != {OFFICIAL_TRAINABLE}"
    assert frozen == OFFICIAL_FROZEN, f"official-code frozen {frozen} != {OFFICIAL_FROZEN}"


def segmentation_loss(logits, target, output):
    """0.5 · BCE-with-logits (cross-entropy for softmax) + 0.5 · soft Dice per sample and channel,
    as engine/src/train/loss.rs."""
    logits = logits.float()
    if output == "softmax":
        voxel_term = -(torch.log_softmax(logits, 1) * target).sum() / (logits.numel() / logits.shape[1])
        probabilities = torch.softmax(logits, 1)
    else:
        voxel_term = F.binary_cross_entropy_with_logits(logits, target)
        probabilities = torch.sigmoid(logits)
    p, t = probabilities.flatten(2), target.flatten(2)
    dice = (2 * (p * t).sum(2) + DICE_SMOOTH) / (p.sum(2) + t.sum(2) + DICE_SMOOTH)
    return (1 - DICE_WEIGHT) * voxel_term + DICE_WEIGHT * (1 - dice.mean())


def vm_hwm_bytes():
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--mode", choices=["fp32", "tf32", "bf16-autocast"], default="fp32")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.batch < 1 or args.iters < 1:
        parser.error("--batch and --iters must be at least 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda asked for, but torch.cuda.is_available() is False")
    if args.threads:
        torch.set_num_threads(args.threads)

    check_official_counts()
    config = load_preset(args.config)
    stats = closed_form_stats(config)
    torch.manual_seed(config["seed"])
    # fp32 means fp32: no TF32 tensor-core matmuls unless --mode tf32 asks for them.
    torch.backends.cuda.matmul.allow_tf32 = args.mode == "tf32"
    torch.backends.cudnn.allow_tf32 = args.mode == "tf32"
    device = torch.device(args.device)
    model = MedVisionLlama(config).to(device)
    trainable, frozen = parameter_counts(model)
    assert (trainable, frozen) == (stats["trainable_params"], stats["frozen_params"]), (
        f"module counts {(trainable, frozen)} differ from the closed form "
        f"{(stats['trainable_params'], stats['frozen_params'])}")

    x, y, z = config["image_size"]
    shape = (args.batch, config["in_channels"], z, y, x)
    inputs = torch.randn(shape, device=device)
    target = (torch.rand((args.batch, config["out_channels"], z, y, x), device=device)
              < TARGET_FOREGROUND).float()
    autocast = torch.autocast(device_type=args.device, dtype=torch.bfloat16,
                              enabled=args.mode == "bf16-autocast")

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()

    model.eval()
    inference = []
    with torch.inference_mode(), autocast:
        for i in range(args.warmup + args.iters):
            started = time.perf_counter()
            model(inputs)
            sync()
            if i >= args.warmup:
                inference.append(time.perf_counter() - started)

    model.train()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=LEARNING_RATE)
    train = []
    for i in range(args.warmup + args.iters):
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            logits = model(inputs)
        segmentation_loss(logits, target, config["output"]).backward()
        optimizer.step()
        sync()
        if i >= args.warmup:
            train.append(time.perf_counter() - started)

    inference_s = statistics.median(inference)
    train_s = statistics.median(train)
    flops = stats["flops_per_sample"]
    report = {
        "device": args.device,
        "device_detail": (torch.cuda.get_device_name(device) if device.type == "cuda"
                          else f"CPU, {torch.get_num_threads()} threads") + f"; torch {torch.__version__}",
        "preset": config["name"],
        "batch": args.batch,
        "dtype": {"fp32": "f32", "tf32": "tf32"}.get(args.mode, "bf16-autocast"),
        "tokens": stats["tokens"],
        "flops_per_sample": flops,
        "trainable_params": trainable,
        "frozen_params": frozen,
        "llm_weights": "random (no checkpoint)" if config["kind"] == "medvisionllama" else "none (ViT-Baseline)",
        "warmup": args.warmup,
        "iters": args.iters,
        "inference_ms": inference_s * 1e3,
        "inference_ms_per_sample": inference_s * 1e3 / args.batch,
        "train_step_ms": train_s * 1e3,
        "train_step_ms_per_sample": train_s * 1e3 / args.batch,
        "train_samples_per_s": args.batch / train_s,
        "inference_tflops": flops / (inference_s / args.batch) / 1e12,
        "train_tflops": TRAIN_FLOPS_PER_FORWARD * flops / (train_s / args.batch) / 1e12,
    }
    if device.type == "cuda":
        report["peak_memory_bytes"] = torch.cuda.max_memory_allocated(device)
        report["peak_reserved_bytes"] = torch.cuda.max_memory_reserved(device)
        report["peak_memory_source"] = "torch.cuda.max_memory_allocated (reserved: max_memory_reserved)"
    else:
        report["peak_memory_bytes"] = vm_hwm_bytes()
        report["peak_memory_source"] = "process peak resident set (VmHWM), model construction included"
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
