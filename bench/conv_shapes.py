"""Forward + backward time of each coupling-network convolution, in each form.

For the coupling networks of a Glow on 32x32x3 images (L levels, width w,
batch 16), times, for every conv shape, the gradient of sum(conv(x, k) * g)
with respect to x and k, in these forms:

    conv2d       edge_bias_pad then tf.nn.conv2d (glow_tf's form before)
    adopted      glow_tf.nn.conv.edge_bias_conv, the form glow_tf now uses
    shifted_mm   shifted_matmul_conv: one matmul to k*k*F channels, shifted adds
    pointwise    pointwise_conv: a 1x1 conv as one matmul
    im2col       k*k shifted views concatenated, then one matmul (considered)
    torch        torch.nn.functional.conv2d with bias, NCHW, zero padding, as
                 rosinality/glow-pytorch runs it (with --torch; in a process
                 of its own, as TF's and torch's thread pools in one process
                 slow each other down; on a machine shared with other jobs run
                 with OMP_WAIT_POLICY=passive, see bench/train_throughput.py)

The TF forms alternate within every repeat so machine load hits all alike;
the table gives the median over repeats in ms and each form's time relative
to conv2d. Forms that do not apply to a shape are left blank.

    python bench/conv_shapes.py [--width 512] [--levels 3] [--repeats 7] [--torch]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

if "--torch-worker" in sys.argv:
    import torch
else:
    import tensorflow as tf

    from glow_tf.nn.conv import edge_bias_conv, pointwise_conv, shifted_matmul_conv
    from glow_tf.nn.edge_padding import edge_bias_pad

BATCH = 16


def conv2d(x, kernel):
    return tf.nn.conv2d(edge_bias_pad(x, int(kernel.shape[0])), kernel, 1, "VALID")


def im2col(x, kernel):
    size = int(kernel.shape[0])
    padded = edge_bias_pad(x, size)
    _, height, width, _ = x.shape
    columns = tf.concat(
        [padded[:, u : u + height, v : v + width] for u in range(size) for v in range(size)], -1
    )
    return pointwise_conv(columns, tf.reshape(kernel, [1, 1, -1, kernel.shape[-1]]))


def forms_for(size, channels, filters):
    forms = {"conv2d": conv2d, "adopted": edge_bias_conv}
    if size == 1:
        forms["pointwise"] = pointwise_conv
    else:
        forms["shifted_mm"] = shifted_matmul_conv
        forms["im2col"] = im2col
    return forms


def coupling_shapes(levels, width, image_size=32, channels=3):
    """(name, H, C_in, C_out, k) of every conv of one coupling network per level."""
    shapes = []
    for level in range(levels):
        image_size //= 2
        channels *= 4
        shapes += [
            (f"L{level} in", image_size, channels // 2, width, 3),
            (f"L{level} hidden", image_size, width, width, 1),
            (f"L{level} out", image_size, width, channels, 3),
        ]
        channels //= 2
    return shapes


def tf_step(form, x, kernel, g):
    @tf.function
    def step(x, kernel):
        with tf.GradientTape() as tape:
            tape.watch([x, kernel])
            loss = tf.reduce_sum(form(x, kernel) * g)
        return tape.gradient(loss, [x, kernel])

    return lambda: step(x, kernel)[0].numpy()


def torch_times(args) -> dict:
    """{conv name: median ms} of torch, from a process that imports only torch."""
    command = [sys.executable, os.path.abspath(__file__), "--torch-worker"]
    command += ["--width", str(args.width), "--levels", str(args.levels)]
    command += ["--repeats", str(args.repeats), "--iterations", str(args.iterations)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def torch_worker(args):
    rng = np.random.default_rng(0)
    result = {"_version": f"torch {torch.__version__} ({torch.get_num_threads()} threads)"}
    for name, size, channels, filters, k in coupling_shapes(args.levels, args.width):
        x, kernel, g = _arrays(rng, size, channels, filters, k)
        step = torch_step(x, kernel, g)
        milliseconds(step, 2)
        result[name] = statistics.median(
            milliseconds(step, args.iterations) for _ in range(args.repeats)
        )
    print(json.dumps(result))


def _arrays(rng, size, channels, filters, k):
    x = rng.normal(size=(BATCH, size, size, channels)).astype(np.float32)
    kernel = (rng.normal(size=(k, k, channels + (k > 1), filters)) * 0.05).astype(np.float32)
    g = rng.normal(size=(BATCH, size, size, filters)).astype(np.float32)
    return x, kernel, g


def torch_step(x, kernel, g):
    size = kernel.shape[0]
    xt = torch.tensor(x.transpose(0, 3, 1, 2).copy(), requires_grad=True)
    kt = torch.tensor(kernel[:, :, : x.shape[-1]].transpose(3, 2, 0, 1).copy(), requires_grad=True)
    bias = torch.zeros(kernel.shape[-1], requires_grad=True)
    gt = torch.tensor(g.transpose(0, 3, 1, 2).copy())

    def step():
        y = torch.nn.functional.conv2d(xt, kt, bias, padding=(size - 1) // 2)
        gx, gk, _ = torch.autograd.grad((y * gt).sum(), [xt, kt, bias])
        return gx

    return step


def milliseconds(step, iterations):
    start = time.perf_counter()
    for _ in range(iterations):
        step()
    return (time.perf_counter() - start) / iterations * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--levels", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--torch", action="store_true", help="add a torch column")
    parser.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.torch_worker:
        return torch_worker(args)

    rng = np.random.default_rng(0)
    columns = ["conv2d", "adopted", "shifted_mm", "pointwise", "im2col"]
    torch_ms = {}
    if args.torch:
        columns.append("torch")
        torch_ms = torch_times(args)
    print(
        f"forward+backward ms, batch {BATCH}, width {args.width}, median of {args.repeats}; "
        f"tf {tf.__version__} (intra-op threads "
        f"{tf.config.threading.get_intra_op_parallelism_threads() or 'default'})"
        + (f", {torch_ms['_version']}" if torch_ms else "")
        + f", {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    print(f"{'conv':10s} {'shape':>18s} " + " ".join(f"{c:>16s}" for c in columns))
    totals = dict.fromkeys(columns, 0.0)
    for name, size, channels, filters, k in coupling_shapes(args.levels, args.width):
        x, kernel, g = _arrays(rng, size, channels, filters, k)
        steps = {
            form_name: tf_step(form, tf.constant(x), tf.constant(kernel), tf.constant(g))
            for form_name, form in forms_for(k, channels, filters).items()
        }
        times = {form_name: [] for form_name in steps}
        for step in steps.values():
            milliseconds(step, 2)
        for _ in range(args.repeats):
            for form_name, step in steps.items():
                times[form_name].append(milliseconds(step, args.iterations))
        medians = {form_name: statistics.median(t) for form_name, t in times.items()}
        if name in torch_ms:
            medians["torch"] = torch_ms[name]
        cells = []
        for column in columns:
            if column in medians:
                ms = medians[column]
                totals[column] += ms
                cells.append(f"{ms:7.2f} ({ms / medians['conv2d']:4.2f}x)")
            else:
                cells.append(" " * 16)
        shape = f"{size}x{size} {channels}->{filters} k{k}"
        print(f"{name:10s} {shape:>18s} " + " ".join(f"{c:>16s}" for c in cells), flush=True)
    print(
        f"{'sum':10s} {'':>18s} "
        + " ".join(
            f"{totals[c]:7.2f} ({totals[c] / totals['conv2d']:4.2f}x)"
            if c in ("conv2d", "adopted", "torch")
            else " " * 16
            for c in columns
        )
    )


if __name__ == "__main__":
    main()
