#!/usr/bin/env python3
"""The PyTorch (Python) twin of sweep-train's MLP training loop, for bench/trainer/run.sh.

Same data (Fashion-MNIST IDX files; 10% held out for validation, pixels scaled to
[0, 1] and standardized with the training split's mean and std), same model (mlp:
784 -> hidden... -> 10, ReLU, PyTorch's default initialization), same optimizer (SGD
with momentum), constant learning rate, same batch size and epochs, same loop (a
randperm per epoch, index_select batches from tensors held in memory, cross-entropy,
loss sums kept as tensors until the epoch ends). Only the validation split's
permutation differs (numpy's instead of sweep-train's mt19937_64); sizes are equal.

Prints one JSON object per epoch and one at the end, like sweep-train's metrics.
"""
import argparse
import gzip
import json
import os
import time

import numpy as np
import torch


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find(data_dir, name):
    for candidate in (name, name + ".gz"):
        path = os.path.join(data_dir, candidate)
        if os.path.exists(path):
            return path
    raise SystemExit(f"{name}[.gz] not found in {data_dir}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data_dir", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--hidden", default="[256,128]")
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--batch_size", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--val_fraction", type=float, default=0.1)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    x = read_idx(find(a.data_dir, "train-images-idx3-ubyte")).astype(np.float32) / 255.0
    y = read_idx(find(a.data_dir, "train-labels-idx1-ubyte")).astype(np.int64)
    xt = read_idx(find(a.data_dir, "t10k-images-idx3-ubyte")).astype(np.float32) / 255.0
    yt = read_idx(find(a.data_dir, "t10k-labels-idx1-ubyte")).astype(np.int64)
    n = len(y)
    n_val = int(round(n * a.val_fraction))
    perm = np.random.RandomState(20240601).permutation(n)
    tr, va = perm[: n - n_val], perm[n - n_val:]
    mean, std = x[tr].mean(), x[tr].std()
    norm = lambda v: torch.from_numpy(((v - mean) / std).astype(np.float32)).unsqueeze(1)
    x_train, y_train = norm(x[tr]), torch.from_numpy(y[tr])
    x_val, y_val = norm(x[va]), torch.from_numpy(y[va])
    x_test, y_test = norm(xt), torch.from_numpy(yt)

    torch.manual_seed(a.seed)
    layers, features = [torch.nn.Flatten()], 28 * 28
    for width in json.loads(a.hidden):
        layers += [torch.nn.Linear(features, width), torch.nn.ReLU()]
        features = width
    layers.append(torch.nn.Linear(features, 10))
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=a.momentum)
    loss_fn = torch.nn.CrossEntropyLoss()

    def evaluate(xs, ys):
        model.eval()
        with torch.no_grad():
            loss_sum, correct = torch.zeros(()), torch.zeros((), dtype=torch.int64)
            for b in range(0, len(ys), 1000):
                logits = model(xs[b:b + 1000])
                loss_sum += loss_fn(logits, ys[b:b + 1000]) * len(ys[b:b + 1000])
                correct += (logits.argmax(1) == ys[b:b + 1000]).sum()
        return loss_sum.item() / len(ys), correct.item() / len(ys)

    total_steps, total_seconds = 0, 0.0
    n_train = len(y_train)
    for epoch in range(a.epochs):
        torch.manual_seed(a.seed * 1000003 + epoch)
        order = torch.randperm(n_train)
        model.train()
        loss_sum = torch.zeros(())
        steps = 0
        start, cpu_start = time.perf_counter(), time.process_time()
        for b in range(0, n_train, a.batch_size):
            idx = order[b:b + a.batch_size]
            xb, yb = x_train.index_select(0, idx), y_train.index_select(0, idx)
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            loss_sum += loss.detach() * len(idx)
            steps += 1
        train_loss = loss_sum.item() / n_train
        seconds = time.perf_counter() - start
        cpu_seconds = time.process_time() - cpu_start
        total_steps += steps
        total_seconds += seconds
        val_loss, val_acc = evaluate(x_val, y_val)
        print(json.dumps({"step": epoch + 1, "train_loss": train_loss, "val_loss": val_loss,
                          "val_acc": val_acc, "train_seconds": seconds,
                          "train_cpu_seconds": cpu_seconds,
                          "steps_per_second": steps / seconds}), flush=True)
    test_loss, test_acc = evaluate(x_test, y_test)
    print(json.dumps({"step": a.epochs, "test_acc": test_acc, "test_loss": test_loss,
                      "steps_per_second": total_steps / total_seconds,
                      "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
