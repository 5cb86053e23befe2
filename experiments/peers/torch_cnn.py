"""PyTorch eager: the lab's CNN, as `experiments.gorner_cnn` trains it, the textbook way.

conv 6@6x6 stride 1, 12@5x5 stride 2, 24@4x4 stride 2 ('same' padding as XLA pads it, ReLU),
dense 200 ReLU, dropout 0.25, dense 10 (244,076 parameters); Adam 1e-3, batch 100, NCHW, two
threads; Glorot-uniform weights and zero biases as the project initialises them. Each epoch a
`torch.randperm` and one indexed batch per step. Needs `pip install torch==2.13.0`.

    python -m experiments.peers.torch_cnn --data MNIST.npz --epochs 2
"""

import time

import torch
from torch import nn

from experiments.peers import BATCH_SIZE, LEARNING_RATE, NUM_THREADS, load_npz, parse_args, report

PARAMS = 244_076


def make_model() -> nn.Sequential:
    """'same' padding for the strided layers as XLA pads it: the odd pixel after, not before."""
    model = nn.Sequential(
        nn.Conv2d(1, 6, 6, stride=1, padding="same"),
        nn.ReLU(),
        nn.ZeroPad2d((1, 2, 1, 2)),
        nn.Conv2d(6, 12, 5, stride=2),  # 28 -> 14
        nn.ReLU(),
        nn.ZeroPad2d((1, 1, 1, 1)),
        nn.Conv2d(12, 24, 4, stride=2),  # 14 -> 7
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(7 * 7 * 24, 200),
        nn.ReLU(),
        nn.Dropout(0.25),
        nn.Linear(200, 10),
    )
    for layer in model:
        if isinstance(layer, nn.Conv2d | nn.Linear):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
    return model


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__.splitlines()[0], argv)
    torch.set_num_threads(NUM_THREADS)
    torch.manual_seed(args.seed)
    data = load_npz(args.data)
    x_train = torch.from_numpy(data["x_train"]).reshape(-1, 1, 28, 28)
    y_train = torch.from_numpy(data["y_train"]).long()
    model = make_model()
    assert sum(p.numel() for p in model.parameters()) == PARAMS
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    loss_fn = nn.CrossEntropyLoss()
    steps = len(x_train) // BATCH_SIZE

    epoch_seconds = []
    for _ in range(args.epochs):
        model.train()
        start = time.perf_counter()
        perm = torch.randperm(len(x_train))
        for i in range(steps):
            idx = perm[i * BATCH_SIZE : (i + 1) * BATCH_SIZE]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x_train[idx]), y_train[idx])
            loss.backward()
            optimizer.step()
        epoch_seconds.append(time.perf_counter() - start)  # CPU eager: nothing left pending

    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(data["x_test"]).reshape(-1, 1, 28, 28))
        test_accuracy = (logits.argmax(-1) == torch.from_numpy(data["y_test"])).float().mean()
    report("torch_cnn", epoch_seconds, test_accuracy.item())


if __name__ == "__main__":
    main()
