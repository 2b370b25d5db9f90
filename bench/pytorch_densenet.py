#!/usr/bin/env python3
"""Training and inference speed of the article's DenseNet in PyTorch on the CPU, for comparison
with `deno task bench`. Optional, run by hand: the project itself never needs Python; this needs
PyTorch (Debian/Ubuntu: `apt-get install python3-torch`).

    python3 bench/pytorch_densenet.py                       # both networks, batch 64, 2 threads
    python3 bench/pytorch_densenet.py --net conv --batch 32 --threads 1 --channels-last --json

The network is lib/nn/densenet.ts's (the article's, 961,066 parameters, checked at start) and the
step is bench/densenet.ts's: cross-entropy of random images [batch, 3, 32, 32] and random labels,
the loss read back, SGD (lr 0.01, momentum 0.9); `--warmup` untimed steps, the median of `--steps`
timed ones, and as many inference passes (eval mode). `--json` prints one object per network with
bench/densenet.ts's keys (`"backend": "pytorch"`). Run it interleaved with `deno task bench` on the
same machine: timings on a shared machine are only comparable within one period.
"""
import argparse
import json
import resource
import statistics
import time

import torch
from torch import nn


class DenseBlock(nn.Module):
    """Five 3×3 convolutions of 32 channels on the concatenation of the earlier outputs."""

    def __init__(self, layer, in_channels):
        super().__init__()
        self.bn = nn.BatchNorm2d(in_channels)
        widths = [in_channels, 32, 64, 96, 128]
        self.convs = nn.ModuleList(layer(w, 32, 3, padding=1) for w in widths)
        self.act = nn.LeakyReLU(0.01)

    def forward(self, x):
        x = self.bn(x)
        outs = []
        for i, conv in enumerate(self.convs):
            out = self.act(conv(x))
            outs.append(out)
            # The article's c2_dense … c5_dense: LeakyReLU of the concatenation so far.
            x = out if i == 0 else self.act(torch.cat(outs, 1))
        return x


class Transition(nn.Module):
    """1×1 convolution without bias, LeakyReLU, BatchNorm, 2×2 average pooling."""

    def __init__(self, layer, in_channels, out_channels):
        super().__init__()
        self.conv = layer(in_channels, out_channels, 1, bias=False)
        self.act = nn.LeakyReLU(0.01)
        self.bn = nn.BatchNorm2d(out_channels)
        self.pool = nn.AvgPool2d(2)

    def forward(self, x):
        return self.pool(self.bn(self.act(self.conv(x))))


class DenseNet(nn.Module):
    """The article's DenseNet: `variant` picks the layer of the blocks and transitions."""

    def __init__(self, variant, classes=10):
        super().__init__()
        layer = nn.Conv2d if variant == "conv" else nn.ConvTranspose2d
        self.low = nn.Conv2d(3, 64, 7, padding=3, bias=False)
        stages = []
        for block_in, transition_out in [(64, 128), (128, 128), (128, 64)]:
            stages += [DenseBlock(layer, block_in), Transition(layer, 160, transition_out)]
        self.stages = nn.Sequential(*stages)
        self.bn = nn.BatchNorm2d(64)
        self.pre_classifier = nn.Linear(64 * 4 * 4, 512)
        self.classifier = nn.Linear(512, classes)

    def forward(self, x):
        x = self.bn(self.stages(torch.relu(self.low(x))))
        return self.classifier(self.pre_classifier(torch.flatten(x, 1)))


def bench(variant, args):
    torch.manual_seed(0)
    model = DenseNet(variant)
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if params != 961_066:
        raise SystemExit(f"{variant} DenseNet has {params} parameters, expected 961,066")
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    x = torch.randn(args.batch, 3, 32, 32).to(memory_format=fmt)
    y = torch.randint(0, 10, (args.batch,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        loss.item()  # read back, as the trainer does

    def forward():
        with torch.no_grad():
            model(x).numpy()

    def timed(f):
        t0 = time.perf_counter()
        f()
        return (time.perf_counter() - t0) * 1000

    model.train()
    for _ in range(args.warmup):
        step()
    step_ms = statistics.median(timed(step) for _ in range(args.steps))
    model.eval()
    forward()
    forward_ms = statistics.median(timed(forward) for _ in range(args.steps))
    return {
        "net": variant,
        "backend": "pytorch",
        "torch": torch.__version__,
        "memory_format": "channels_last" if args.channels_last else "nchw",
        "threads": torch.get_num_threads(),
        "batch": args.batch,
        "steps": args.steps,
        "warmup": args.warmup,
        "ms_per_img": step_ms / args.batch,
        "img_per_s": 1000 * args.batch / step_ms,
        "step_ms": step_ms,
        "forward_ms_per_img": forward_ms / args.batch,
        "forward_img_per_s": 1000 * args.batch / forward_ms,
        # ru_maxrss is in kB on Linux; the peak of the whole process (both networks with --net both).
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--net", choices=["conv", "transposed", "both"], default="both")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--channels-last", action="store_true", help="NHWC memory format")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    if args.batch < 1 or args.steps < 1 or args.threads < 1 or args.warmup < 0:
        p.error("--batch, --steps and --threads must be positive, --warmup not negative")
    torch.set_num_threads(args.threads)
    for variant in ["conv", "transposed"] if args.net == "both" else [args.net]:
        r = bench(variant, args)
        if args.json:
            print(json.dumps(r))
        else:
            print(
                f"{variant:<10} PyTorch {r['torch']} ({r['memory_format']}, {r['threads']} threads, "
                f"batch {r['batch']}): training step {r['ms_per_img']:.2f} ms/img, "
                f"inference {r['forward_ms_per_img']:.2f} ms/img"
            )


if __name__ == "__main__":
    main()
