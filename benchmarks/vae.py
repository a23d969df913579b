"""Benchmark of the variational autoencoders of the VAE chapter for the full steps of dgm_course.budget.VAE_SIZES (the
chapter trains them for fewer, to stay within its 4 minutes): test ELBO and the IWAE estimate of the NLL (nats per
image and bits per dimension), with the training time.

    python benchmarks/vae.py                 # digits and Fashion-MNIST (a few minutes on 2 CPU cores)
    python benchmarks/vae.py --smoke         # seconds: proves the script runs (the tests run this)
    python benchmarks/vae.py --mnist-root D  # MNIST's IDX files in folder D (otherwise tried online)
    python benchmarks/vae.py --json r.json   # the table also as JSON, in r.json

Rows:
- digits (8x8, binarized once, Bernoulli decoder): the MLP VAE of the chapter, 8 latent dimensions;
- Fashion-MNIST (28x28 grey levels, dequantized, Gaussian decoder): the chapter's convolutional VAE;
- MNIST, when it can be loaded (dynamically binarized, Bernoulli decoder): the VAE of Burda et al. (2016),
  two hidden layers of 200 tanh units and 50 latent dimensions, against their published NLL of 86.76 nats
  (k = 5000); on a CPU it trains for far fewer epochs than their 3,280, so expect a higher number.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import torch
from torch import nn

from dgm_course import budget
from dgm_course.data import images
from dgm_course.training import fit
from dgm_course.vae import VAE, conv_vae, mlp_vae

from _table import Column, Report, add_json_option  # benchmarks/_table.py, beside this script

# the VAE chapter's sizes (dgm_course.budget.VAE_SIZES; the chapter trains them for fewer steps); digits with 8 latents
DIGITS = dict(latent=8, **budget.VAE_SIZES["digits"])
FASHION = budget.VAE_SIZES["fashion-mnist"]
IWAE_K = 500
# Burda et al. 2016, Table 1: VAE, one stochastic layer, trained with k = 1; NLL estimated with k = 5000
BURDA_NLL = 86.76


def burda_vae() -> VAE:
    """The VAE of Burda et al. (2016) on 784 binary pixels: 784-200-200-50 tanh encoder and its mirror."""
    def net(i: int, o: int) -> nn.Sequential:
        return nn.Sequential(nn.Linear(i, 200), nn.Tanh(), nn.Linear(200, 200), nn.Tanh(), nn.Linear(200, o))
    return VAE(nn.Sequential(nn.Flatten(), net(784, 100)), nn.Sequential(net(50, 784), nn.Unflatten(1, (1, 28, 28))),
               (1, 28, 28), 50, "bernoulli")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds")
    parser.add_argument("--mnist-root", help="a folder with MNIST's four IDX files")
    parser.add_argument("--mnist-steps", type=int, default=20_000, help="training steps of the MNIST VAE")
    add_json_option(parser)
    args = parser.parse_args()
    report = Report("vae", smoke=args.smoke, seeds=[0])
    s = args.smoke
    digits_cfg = {**DIGITS, **(dict(hidden=32, steps=30) if s else {})}
    fashion_cfg = {**FASHION, **(dict(latent=4, channels=8, hidden=32, steps=20, batch=64) if s else {})}
    k = 10 if s else IWAE_K
    n_test = 200 if s else 1000
    print(f"{torch.get_num_threads()} threads; torch {torch.__version__}", flush=True)
    records = []

    def row(name: str, vae: VAE, seconds: float, steps: int, x: torch.Tensor, k: int, dim: int, offset: float) -> None:
        t = time.perf_counter()
        elbo, nll, se = vae.evaluate(x, k)  # the chapter's scores
        bits = (nll + offset) / (dim * math.log(2))
        records.append(dict(model=name, steps=steps, train_s=seconds, test_images=len(x), elbo=elbo, k=k, nll=nll,
                            se=se, bits=bits, eval_s=time.perf_counter() - t))
        print(f"  {name}: trained {seconds:.1f} s, test ELBO {elbo:.2f}, IWAE NLL {nll:.2f}", flush=True)

    # digits: binarized once with a fixed generator, as in the chapter
    gen = torch.Generator().manual_seed(0)
    train = images.binarize(images.load("digits", "train", verbose=False).images, gen)
    test = images.binarize(images.load("digits", "test", verbose=False).images, gen)
    torch.manual_seed(0)
    vae = mlp_vae((1, 8, 8), latent=digits_cfg["latent"], hidden=digits_cfg["hidden"])
    history = fit(vae, vae.loss, train, steps=digits_cfg["steps"], batch_size=digits_cfg["batch"], lr=digits_cfg["lr"],
                  cosine=True, seed=0, device="cpu", progress=False)
    row("digits, MLP VAE (Bernoulli)", vae, history.seconds, digits_cfg["steps"], test, k, 64, 0.0)

    # Fashion-MNIST: grey levels, dequantized; bits per dimension of the 256-level images
    deq = torch.Generator().manual_seed(0)
    f_train = images.dequantize(images.load("fashion-mnist", "train").images[: 2000 if s else None], generator=deq)
    f_test = images.dequantize(images.load("fashion-mnist", "test", verbose=False).images[:n_test], generator=deq)
    torch.manual_seed(0)
    vae = conv_vae((1, 28, 28), latent=fashion_cfg["latent"], channels=fashion_cfg["channels"],
                   hidden=fashion_cfg["hidden"], likelihood="gaussian")
    history = fit(vae, vae.loss, f_train, steps=fashion_cfg["steps"], batch_size=fashion_cfg["batch"],
                  lr=fashion_cfg["lr"], cosine=True, seed=0, device="cpu", progress=False)
    row("Fashion-MNIST, conv VAE (Gaussian, dequantized)", vae, history.seconds, fashion_cfg["steps"], f_test, k // 5,
        784, 784 * math.log(256))

    # MNIST, when reachable: Burda et al.'s VAE, dynamically binarized (a fresh draw for every batch)
    try:
        m_train = images.load("mnist", "train", root=args.mnist_root)
        m_test = images.load("mnist", "test", root=args.mnist_root, verbose=False)
    except images.DataUnavailable as error:
        mnist_note = f"MNIST not reachable, so no comparison with Burda et al. ({error})"
        report.data.update(mnist=None)
    else:
        steps = 20 if s else args.mnist_steps
        torch.manual_seed(0)
        vae = burda_vae()
        pixels = m_train.images

        def dynamic(n: int, g: torch.Generator) -> torch.Tensor:
            return images.binarize(pixels[torch.randint(len(pixels), (n,), generator=g)], g)

        history = fit(vae, vae.loss, dynamic, steps=steps, batch_size=100, lr=1e-3, cosine=True, seed=0, device="cpu",
                      progress=False)
        x = images.binarize(m_test.images[: 200 if s else None], torch.Generator().manual_seed(0))
        row(f"MNIST ({m_train.source}), Burda et al.'s VAE", vae, history.seconds, steps, x, 10 if s else 5000,
            784, 0.0)
        mnist_note = f"MNIST: Burda et al. (2016) report {BURDA_NLL} nats for this VAE (k = 5000) after 3,280 epochs"
        report.data.update(mnist=m_train.source, burda_nll=BURDA_NLL)

    print()
    report.table("vae", [
        Column("model", "model"), Column("steps", "steps"), Column("train (s)", "train_s", ".1f"),
        Column("test images", "test_images", ","), Column("test ELBO (nats)", "elbo", ".2f"), Column("IWAE k", "k"),
        Column("IWAE NLL (nats)", "nll", ".2f", se="se"), Column("bits/dim", "bits", ".3f"),
        Column("eval (s)", "eval_s", ".1f"),
    ], records)
    print("\n" + mnist_note)
    report.write(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
