"""PyTorch: the same MLP in eager mode, or with `--compile` under `torch.compile`.

The textbook loop: `nn.Sequential` of `nn.Linear`, `torch.optim.Adam`, each epoch a
`torch.randperm` and one indexed batch per step; two threads. With `--compile` the model is wrapped
in `torch.compile` (Inductor; the optimizer step stays eager), and its compilation happens in the
first epoch, which the benchmark discards. Needs `pip install torch==2.13.0`.

    python -m experiments.peers.torch_eager --data MNIST.npz --epochs 5 [--compile]
"""

import time

import torch
from torch import nn

from experiments.peers import (
    BATCH_SIZE,
    LEARNING_RATE,
    NUM_THREADS,
    SIZES,
    load_npz,
    parse_args,
    report,
)


def make_model() -> nn.Sequential:
    """Glorot-uniform weights and zero biases, as Keras initialises Dense."""
    layers: list[nn.Module] = []
    for n_in, n_out in zip(SIZES[:-1], SIZES[1:], strict=True):
        linear = nn.Linear(n_in, n_out)
        nn.init.xavier_uniform_(linear.weight)
        nn.init.zeros_(linear.bias)
        layers += [linear, nn.ReLU()]
    return nn.Sequential(*layers[:-1])  # logits out


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__.splitlines()[0], argv, compile="wrap the model in torch.compile")
    torch.set_num_threads(NUM_THREADS)
    torch.manual_seed(args.seed)
    data = load_npz(args.data)
    x_train = torch.from_numpy(data["x_train"])
    y_train = torch.from_numpy(data["y_train"]).long()
    model = make_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    step_model = torch.compile(model) if args.compile else model
    loss_fn = nn.CrossEntropyLoss()
    steps = len(x_train) // BATCH_SIZE

    epoch_seconds = []
    for _ in range(args.epochs):
        start = time.perf_counter()
        perm = torch.randperm(len(x_train))
        for i in range(steps):
            idx = perm[i * BATCH_SIZE : (i + 1) * BATCH_SIZE]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(step_model(x_train[idx]), y_train[idx])
            loss.backward()
            optimizer.step()
        epoch_seconds.append(time.perf_counter() - start)  # CPU eager: nothing left pending

    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(data["x_test"]))
        test_accuracy = (logits.argmax(-1) == torch.from_numpy(data["y_test"])).float().mean()
    name = "torch_compile" if args.compile else "torch_eager"
    report(name, epoch_seconds, test_accuracy.item())


if __name__ == "__main__":
    main()
