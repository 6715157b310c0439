"""Acceptance run: the reference VQ-VAE on the embedded MNIST, against the PyTorch numbers.

Trains the reference architecture (28x28 -> 7x7 grid of K=64 codes, d=16; see
minivq/autoencoder.py) with Adam 1e-3, batch 128, float32, and prints the per-pixel
test MSE every `eval_every` steps, the test-set code perplexity and used codes, and the
wall time, for these variants (run one after the other):

    plain    paper Eq. 3: MSE + codebook loss + 0.25 commitment, codebook init +-1/K
    ema      EMA codebook (decay 0.99, Laplace eps 1e-5) + 0.25 commitment (App. A.1)
    restart  plain + re-seeding codes unused for `restart_after` batches
    ema-restart  both: EMA codebook and dead-code restarts
    ae       the plain autoencoder with the same encoder/decoder (no quantization)
    torch    (optional, not in the default list) bench/torch_reference.py's PyTorch VQ-VAE
             trained the same way, from the same initial weights and batch order as
             'plain': an apples-to-apples reference on this data set

Targets (PyTorch reference, 3000 steps): VQ-VAE test MSE <= 0.0035 (reference 0.00338),
perplexity >= 40 of 64 with EMA or restarts (plain about 34), autoencoder about 0.00082.

    python bench/acceptance_vqvae.py                      # all variants but torch, 3000 steps each
    python bench/acceptance_vqvae.py --variants ema-restart ae   # the two rows of the README
    python bench/acceptance_vqvae.py --variants ema --steps 500 --eval-every 250

Writes runs/acceptance/<variant>/{checkpoint.npz, best.npz, history.json} and
runs/acceptance/summary.json; rerunning with --resume continues unfinished variants.
"""
import argparse
import json
import os
import sys
import time

import numpy as onp

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from minivq.autoencoder import build_autoencoder   # noqa: E402
from minivq.data import load_dataset              # noqa: E402
from minivq.train import train                     # noqa: E402
from minivq.vqvae import build_vqvae, init_codebook_from_batch   # noqa: E402

VARIANTS = {
    "plain": {},
    "ema": {"codebook_update": "ema"},
    "restart": {"restart_after": 100},   # the quantize.py default: 100 batches = 627k vectors unseen
    "ema-restart": {"codebook_update": "ema", "restart_after": 100},
    "ae": None,                          # plain autoencoder
    "torch": None,                       # PyTorch reference, see run_torch
}
TARGETS = {"test_mse": 0.0035, "perplexity": 40.0, "ae_test_mse": 0.00082}


def run_variant(name, data, steps, batch_size, lr, seed, eval_every, out_root, resume,
                codebook_init, progress):
    """Train one variant; returns its summary dict (eval history, final metrics, seconds)."""
    rng = onp.random.default_rng(seed)
    if VARIANTS[name] is None:
        model = build_autoencoder()
        hook, hook_state = None, None
        params = model.init(rng)
    else:
        model = build_vqvae(dict(VARIANTS[name], codebook_init=codebook_init))
        params = model.init(rng)
        first = data.x_train[rng.permutation(len(data.x_train))[:batch_size]]
        params = init_codebook_from_batch(model, params, first, rng)
        hook, hook_state = model.step_hook, model.init_state(params)
    start = time.perf_counter()
    result = train(model.loss_and_aux, params, data.x_train, steps, batch_size, lr, rng,
                   step_hook=hook, hook_state=hook_state,
                   eval_fn=lambda p: model.evaluate(p, data.x_test), eval_every=eval_every,
                   out_dir=os.path.join(out_root, name), checkpoint_every=eval_every,
                   resume=resume, config=model.config,
                   progress=progress)
    seconds = time.perf_counter() - start
    return {"variant": name, "config": model.config, "eval": result.history["eval"],
            "seconds_this_run": seconds}


def run_torch(data, steps, batch_size, lr, seed, eval_every, progress):
    """The PyTorch reference VQ-VAE, trained like 'plain' from the same start; summary dict."""
    import torch
    from bench import torch_reference
    from bench.bench_train import torch_vqvae_like
    from minivq.quantize import perplexity, used_codes
    from minivq.train import next_batch

    torch.set_num_threads(int(os.environ.get("OPENBLAS_NUM_THREADS", "2")))
    rng = onp.random.default_rng(seed)
    params = build_vqvae().init(rng)                  # the same initial weights as 'plain'
    rng.permutation(len(data.x_train))                # the draw 'plain' spends on its first batch
    model = torch_vqvae_like(torch, torch_reference, params)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    nchw = lambda x: torch.from_numpy(onp.ascontiguousarray(x.transpose(0, 3, 1, 2)))  # noqa: E731
    x_test = nchw(data.x_test)
    sampler = {"order": onp.zeros(0, onp.int64), "position": onp.array(0, onp.int64)}
    evals, start = [], time.perf_counter()
    for step in range(1, steps + 1):
        batch, sampler = next_batch(data.x_train, sampler, batch_size, rng)
        optimizer.zero_grad()
        loss = model.loss(nchw(batch))
        loss.backward()
        optimizer.step()
        if progress and step % 100 == 0:
            print(f"torch step {step}: loss {loss.item():.5f}", flush=True)
        if step % eval_every == 0 or step == steps:
            with torch.no_grad():
                indices = model.encode(x_test)
                test_mse = float(((model.decode(indices) - x_test) ** 2).mean())
            indices = indices.numpy()
            evals.append({"step": step, "seconds": time.perf_counter() - start, "test_mse": test_mse,
                          "perplexity": perplexity(indices, 64), "used_codes": used_codes(indices, 64)})
    return {"variant": "torch", "config": None, "eval": evals,
            "seconds_this_run": time.perf_counter() - start}


def report(summary):
    """Print one block per variant: test MSE at each eval, final usage, time; then the targets."""
    for item in summary:
        evals = item["eval"]
        print(f"\n== {item['variant']} ==")
        for record in evals:
            usage = (f"  perplexity {record['perplexity']:6.2f}  used codes {record['used_codes']:.0f}/64"
                     if "perplexity" in record else "")
            print(f"  step {record['step']:5d}  test MSE {record['test_mse']:.5f}{usage}"
                  f"  ({record['seconds']:.0f} s into this run)")
        print(f"  wall time of this invocation: {item['seconds_this_run']:.0f} s")
    print("\ntargets: VQ-VAE test MSE <= 0.0035 (PyTorch 0.00338); perplexity >= 40 with EMA or "
          "restarts (plain ~34); autoencoder ~0.00082")
    for item in summary:
        final = item["eval"][-1] if item["eval"] else {}
        if item["variant"] == "ae":
            verdict = f"test MSE {final.get('test_mse', float('nan')):.5f} (target ~{TARGETS['ae_test_mse']})"
        else:
            mse_ok = final.get("test_mse", 1.0) <= TARGETS["test_mse"]
            ppl_ok = final.get("perplexity", 0.0) >= TARGETS["perplexity"]
            verdict = (f"test MSE {final.get('test_mse', float('nan')):.5f} "
                       f"[{'ok' if mse_ok else 'MISSED'}], perplexity "
                       f"{final.get('perplexity', float('nan')):.1f} "
                       f"[{'ok' if ppl_ok else 'below 40'}]")
        print(f"  {item['variant']:8s} {verdict}")


def main(variants=("plain", "ema", "restart", "ema-restart", "ae"), steps=3000, batch_size=128, lr=1e-3,
         seed=0, eval_every=1000, out="runs/acceptance", dataset="mnist-embedded", resume=False,
         codebook_init="uniform", progress=True):
    data = load_dataset(dataset)
    os.makedirs(out, exist_ok=True)
    summary = []
    for name in variants:
        if name not in VARIANTS:
            raise ValueError(f"unknown variant {name!r}; expected some of {sorted(VARIANTS)}")
        if name == "torch":
            summary.append(run_torch(data, steps, batch_size, lr, seed, eval_every, progress))
        else:
            summary.append(run_variant(name, data, steps, batch_size, lr, seed, eval_every, out,
                                       resume, codebook_init, progress))
        report(summary[-1:])
        with open(os.path.join(out, "summary.json"), "w") as f:
            json.dump(summary, f, indent=1)
    print("\n==================== summary ====================")
    report(summary)
    return summary


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=["plain", "ema", "restart", "ema-restart", "ae"],
                        choices=sorted(VARIANTS))
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=1000)
    parser.add_argument("--out", default="runs/acceptance")
    parser.add_argument("--dataset", default="mnist-embedded")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--codebook-init", default="uniform",
                        choices=["uniform", "random", "kmeans++", "kmeans"])
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    main(args.variants, args.steps, args.batch_size, args.lr, args.seed, args.eval_every, args.out,
         args.dataset, args.resume, args.codebook_init, not args.no_progress)
