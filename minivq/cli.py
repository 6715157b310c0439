"""The `minivq` command line: argparse over the pipeline steps of `pipeline.py`.

    minivq train-vqvae --out runs/mine          # images -> VQ-VAE (RUN/vqvae)
    minivq encode --run runs/mine               # images -> code grids (RUN/codes)
    minivq train-prior --run runs/mine          # code grids -> PixelCNN prior (RUN/prior)
    minivq sample --run runs/mine -n 64         # prior -> RUN/samples/*.png, *.npy
    minivq reconstruct --run runs/mine          # RUN/figures/reconstructions.png
    minivq demo                                 # all of it on the embedded MNIST, ~5 min
    minivq demo --data my_images/ --preset course32   # all of it on your own 32x32 images

Also `python -m minivq ...`. Every command prints a one-line summary at the end. Errors
from the library (bad data, missing runs, corrupted checkpoints) end the program with
`minivq: error: <message>` and exit code 2, without a traceback (`--debug` shows it).
"""
import argparse
import errno
import inspect
import sys
import time

import numpy as onp

from . import pipeline
from .checkpoint import CheckpointError
from .data import SPECS
from .demo import demo
from .likelihood import format_bits
from .run_dir import load_vqvae
from .threads import apply_threads
from .train import TrainingDivergedError
from .vqvae import VQVAE_DEFAULTS

DEFAULT_RUN = "runs/default"


# ---------------------------------------------------------------- argument types

def _number(kind, test, wanted):
    """argparse type: parse with `kind`, then require test(value) ('must be <wanted>')."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}") from None
        if not test(value):
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text}")
        return value
    parse.__name__ = wanted             # argparse names the type in some messages
    return parse


positive_int = _number(int, lambda v: v >= 1, "an integer >= 1")
non_negative_int = _number(int, lambda v: v >= 0, "an integer >= 0")
positive_float = _number(float, lambda v: 0 < v < float("inf"), "a number > 0")
non_negative_float = _number(float, lambda v: 0 <= v < float("inf"), "a number >= 0")
fraction = _number(float, lambda v: 0 <= v < 1, "a number in [0, 1)")
unit_interval = _number(float, lambda v: 0 <= v <= 1, "a number in [0, 1]")


def thread_count(text):
    """argparse type of --threads: 'auto' or an integer >= 1."""
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 'auto' or an integer >= 1, got {text!r}")
    return value


# ---------------------------------------------------------------- the commands

def _train_vqvae(args):
    model = {key: getattr(args, key) for key in (
        "kind", "num_codes", "code_dim", "hidden", "res_hidden", "num_res_blocks",
        "num_downsamplings", "beta", "recon_weight", "codebook_update", "ema_decay", "restart_after",
        "codebook_init")}
    for key, value in (pipeline.PAPER_VQVAE if args.paper else {}).items():
        model[key] = value if model[key] is None else model[key]     # explicit flags win over --paper
    result = pipeline.train_vqvae(args.run, data=args.data, steps=args.steps, batch_size=args.batch_size,
                              lr=args.lr, eval_every=args.eval_every,
                              checkpoint_every=args.checkpoint_every, seed=args.seed,
                              resume=args.resume, force=args.force, download=args.download,
                              allow_new_settings=args.allow_new_settings, preset=args.preset,
                              progress=not args.no_progress, **model)
    best = (f"best test MSE {result['test_mse']:.5f} at step {result['step']}, perplexity "
            f"{result['perplexity']:.1f}, used codes {result['used_codes']:.0f}/{result['num_codes']}"
            if "test_mse" in result else "not evaluated yet")
    print(f"{result['kind']} VQ-VAE: {best}, {result['seconds']:.0f} s -> {result['checkpoint']}")


def _encode(args):
    result = pipeline.encode(args.run, batch_size=args.batch_size, progress=not args.no_progress,
                             augment=args.augment, max_shift=args.max_shift)
    print(f"codes: train {result['train_shape']}, test {result['test_shape']}, perplexity "
          f"{result['perplexity']:.1f}, used codes {result['used_codes']}/{result['num_codes']} "
          f"(VQ-VAE step {result['vqvae_step']}) -> {result['folder']}")


def _train_prior(args):
    result = pipeline.train_prior(args.run, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                              eval_every=args.eval_every, checkpoint_every=args.checkpoint_every,
                              seed=args.seed, resume=args.resume, force=args.force,
                              dropout=args.dropout, input_mode=args.input_mode, gated=args.gated,
                              conditional=args.conditional, channels=args.channels,
                              num_blocks=args.num_blocks, first_kernel=args.first_kernel,
                              kernel=args.kernel, allow_new_settings=args.allow_new_settings,
                              progress=not args.no_progress, ema_decay=args.ema_decay,
                              schedule=args.schedule, warmup=args.warmup, augment=args.augment)
    kind = ("conditional " if result["conditional"] else "") + ("gated " if result["gated"] else "")
    best = (f"best held-out {result['test_bits']:.3f} bits/code at step {result['step']}"
            if "test_bits" in result else "not evaluated yet")
    print(f"{kind}PixelCNN prior: {best} (uniform {result['uniform_bits']:.2f}, unigram "
          f"{result['unigram_bits']:.2f}, independent cells {result['independent_bits']:.2f}), "
          f"{result['seconds']:.0f} s -> {result['checkpoint']}")
    if "bits_per_dim" in result:
        print(f"whole model: {format_bits(result['test_bits'], result['bits_per_dim'])}")


def _sample(args):
    start = time.perf_counter()
    path = pipeline.sample(args.run, n=args.n, temperature=args.temperature, top_k=args.top_k,
                       seed=args.seed, labels=args.labels, name=args.name, compare=args.compare,
                       force=args.force, progress=not args.no_progress)
    print(f"{args.n} samples in {time.perf_counter() - start:.1f} s -> {path} "
          f"(code indices: {path[:-len('.png')]}.npy)")
    vqvae = load_vqvae(args.run)
    images = pipeline.decode(vqvae.model, vqvae.params, onp.load(path[:-len(".png")] + ".npy"))
    print(pipeline.score_line(args.run, images)[1])


def _reconstruct(args):
    path = pipeline.reconstruct(args.run, n=args.n, kind="flat" if args.flat else "grid")
    print(f"originals above reconstructions -> {path}")


def _demo(args):
    options = {key: getattr(args, key) for key in (
        "vqvae_steps", "flat_steps", "prior_steps", "batch_size", "prior_batch_size",
        "eval_every", "prior_eval_every", "n_samples", "seed", "data", "download", "preset",
        "conditional")}
    summary = demo(args.run, quick=args.quick, resume=args.resume,
                        progress=not args.no_progress, **options)
    print("\nfigures:")
    for path in summary["figures"]:
        print(f"  {path}")
    print(f"samples: {summary['samples']} (code indices: {summary['samples'][:-len('.png')]}.npy)")
    print(f"\ndemo: test MSE {summary['test_mse']:.5f}, perplexity {summary['perplexity']:.1f}, "
          f"used codes {summary['used_codes']:.0f}/{summary['num_codes']}; bits/code uniform "
          f"{summary['uniform_bits']:.2f}, unigram {summary['unigram_bits']:.2f}, independent "
          f"{summary['independent_bits']:.2f}, {format_bits(summary['prior_bits'], summary['bits_per_dim'])}; "
          f"{summary['n_samples']} samples in {summary['sample_seconds']:.1f} s; "
          f"{summary['score_line']}; wall time {summary['seconds'] / 60:.1f} min")


# ---------------------------------------------------------------- the parser

def _common(parser, run_flag, run_default, run_help):
    """Options every command has: the run directory, --no-progress, --threads, --debug."""
    flags = (run_flag, "--run" if run_flag == "--out" else "--out")
    parser.add_argument(*flags, dest="run", metavar="RUN", default=run_default,
                        help=f"{run_help} (default: {run_default})")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--threads", type=thread_count, default="auto",
                        help="numpy's BLAS threads: a number, or 'auto': the cores other processes "
                             "leave free, unless OPENBLAS_NUM_THREADS is set (default: auto)")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error instead of a one-line message")


def _training(parser, defaults, what):
    """Training options; their defaults are None so that --resume takes the run's own."""
    mine = "; with --resume, the run's own"
    parser.add_argument("--steps", type=positive_int,
                        help=f"total optimizer steps; with --resume, train until this many "
                             f"(default: {defaults['steps']}{mine})")
    parser.add_argument("--batch-size", type=positive_int,
                        help=f"{what} per step (default: {defaults['batch_size']}{mine})")
    parser.add_argument("--lr", type=positive_float,
                        help=f"Adam learning rate (default: {defaults['lr']:g}{mine})")
    parser.add_argument("--eval-every", type=positive_int,
                        help=f"held-out evaluation every this many steps; the best one is kept "
                             f"as best.npz and used downstream (default: {defaults['eval_every']}{mine})")
    parser.add_argument("--checkpoint-every", type=positive_int,
                        help=f"write checkpoint.npz every this many steps (default: --eval-every{mine})")
    parser.add_argument("--seed", type=int, help=f"random seed (default: {defaults['seed']}{mine})")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in RUN from its checkpoint.npz, with its own settings")
    parser.add_argument("--allow-new-settings", action="store_true",
                        help="with --resume: accept options that differ from the run's (e.g. a lower "
                             "--lr after divergence); the change is recorded in history.json")
    parser.add_argument("--force", action="store_true",
                        help="start over, replacing a model already trained in RUN (the old one is "
                             "kept until the new one has written its first checkpoint)")


def _preset(parser):
    def summary(name):
        (h, w), model = pipeline.PRESETS[name]["input_hw"], pipeline.PRESETS[name]["model"]
        stride = 2 ** model["num_downsamplings"]
        return (f"{name}: {h}x{w} input, stride {stride}, d={model['code_dim']}, "
                f"K={model['num_codes']}, {h // stride}x{w // stride} grid")

    choices = "; ".join(summary(name) for name in sorted(pipeline.PRESETS))
    parser.add_argument("--preset", choices=sorted(pipeline.PRESETS), default=None,
                        help=f"named model sizes; the images must have the preset's size; explicit "
                             f"size flags win: {choices}")


def build_parser():
    """The argparse parser of `minivq` with one sub-parser per pipeline step."""
    parser = argparse.ArgumentParser(
        prog="minivq", description="VQ-VAE and PixelCNN prior in NumPy + autograd. A run "
        "directory RUN collects every step's files: RUN/vqvae, RUN/codes, RUN/prior, "
        "RUN/figures, RUN/samples.",
        epilog="Run `minivq COMMAND --help` for the options of a command. On a machine shared "
               "with other jobs, OPENBLAS_NUM_THREADS=1 is often several times faster.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = commands.add_parser("train-vqvae", help="train a VQ-VAE on images",
                            description="Train a VQ-VAE into RUN/vqvae (RUN/flat_vqvae with --kind "
                            "flat): config.json, checkpoint.npz, best.npz (lowest test MSE), "
                            "history.json, and RUN/figures/<dir>_curves.png.")
    _common(p, "--out", DEFAULT_RUN, "run directory to create or continue")
    p.add_argument("--data", default=None,
                   help=f"images: {', '.join(SPECS)} (default: mnist-embedded, the digits "
                        f"shipped with minivq; with --resume, the run's)")
    p.add_argument("--download", action="store_true",
                   help="download mnist / fashion-mnist / cifar10 if not cached (the only network access)")
    _training(p, pipeline.VQVAE_TRAINING, "images")
    d, new = VQVAE_DEFAULTS, pipeline.VQVAE_MODEL
    model = p.add_argument_group("model (default: minivq's reference VQ-VAE; with --resume, the run's)")
    _preset(model)
    model.add_argument("--kind", choices=("grid", "flat"), default=None,
                       help="'grid': a code per cell of an h x w grid (the paper's); 'flat': one "
                            "code per image (default: grid)")
    model.add_argument("--num-codes", type=positive_int, help=f"codebook size K (default: {d['num_codes']})")
    model.add_argument("--code-dim", type=positive_int, help=f"code vector size d (default: {d['code_dim']})")
    model.add_argument("--hidden", type=positive_int,
                       help=f"channels of the encoder/decoder trunk (default: {d['hidden']})")
    model.add_argument("--res-hidden", type=positive_int,
                       help=f"channels inside a residual block (default: {d['res_hidden']})")
    model.add_argument("--num-res-blocks", type=non_negative_int,
                       help=f"residual blocks in encoder and decoder (default: {d['num_res_blocks']})")
    model.add_argument("--num-downsamplings", type=non_negative_int,
                       help=f"stride-2 convolutions: the code grid is the image size / 2^n "
                            f"(default: {d['num_downsamplings']}, 28x28 -> 7x7)")
    quantizer = p.add_argument_group("quantizer")
    quantizer.add_argument("--beta", type=non_negative_float,
                           help=f"commitment loss weight (default: {d['beta']})")
    quantizer.add_argument("--recon-weight", type=positive_float,
                           help=f"weight s of the reconstruction term: loss = s * MSE + VQ terms; under "
                                f"Adam close to dividing --beta by s (default: {d['recon_weight']:g})")
    quantizer.add_argument("--codebook-update", choices=("grad", "ema"),
                           help=f"'grad': codebook loss + Adam (paper Eq. 3); 'ema': moving averages "
                                f"(paper App. A.1) (default: {new['codebook_update']})")
    quantizer.add_argument("--ema-decay", type=unit_interval,
                           help=f"EMA decay gamma (default: {d['ema_decay']})")
    quantizer.add_argument("--restart-after", type=non_negative_int,
                           help=f"re-seed a code unused for this many batches; 0 = never "
                                f"(default: {new['restart_after']})")
    quantizer.add_argument("--paper", action="store_true",
                           help="the paper's plain quantizer: --codebook-update grad --restart-after 0 "
                                "(flags given explicitly still win)")
    quantizer.add_argument("--codebook-init", choices=("uniform", "random", "kmeans++", "kmeans"),
                           help="'uniform' +-1/K, or from the encoder outputs of the first batch "
                                "(default: uniform)")
    p.set_defaults(handler=_train_vqvae)

    p = commands.add_parser("encode", help="encode the images into code grids",
                            description="Encode the train and test images of the run's data with "
                            "its best VQ-VAE into RUN/codes/{train,test}.npz (indices, code vectors, "
                            "labels); draws RUN/figures/codebook_usage.png and code_grid.png.")
    _common(p, "--run", DEFAULT_RUN, "run directory with a trained VQ-VAE")
    p.add_argument("--batch-size", type=positive_int, default=500,
                   help="images encoded at once (default: 500)")
    p.add_argument("--augment", type=non_negative_int, default=0,
                   help="also encode this many copies of every training image, each shifted by "
                        "up to --max-shift pixels, into RUN/codes/train_shifted.npz for "
                        "train-prior --augment (default: 0, none)")
    p.add_argument("--max-shift", type=positive_int, default=2,
                   help="largest shift in pixels of the --augment copies (default: 2)")
    p.set_defaults(handler=_encode)

    p = commands.add_parser("train-prior", help="train a PixelCNN prior on the codes",
                            description="Train a PixelCNN prior over RUN/codes into RUN/prior; the "
                            "checkpoint with the lowest held-out bits per code is kept as best.npz. "
                            "Draws RUN/figures/prior_curves.png.")
    _common(p, "--run", DEFAULT_RUN, "run directory with encoded codes")
    _training(p, pipeline.PRIOR_TRAINING, "code grids")
    p.add_argument("--dropout", type=fraction,
                   help="dropout on the prior's features while training (default: 0; with "
                        "--resume, the run's own)")
    p.add_argument("--ema-decay", type=fraction,
                   help="keep a running average of the weights with this decay (e.g. 0.995) and "
                        "evaluate, keep and sample it (default: 0, none)")
    p.add_argument("--schedule", choices=pipeline.SCHEDULES,
                   help="learning rate: 'constant', or 'cosine' (linear warm-up over --warmup "
                        "steps, then cosine decay to 0 at --steps) (default: constant)")
    p.add_argument("--warmup", type=non_negative_int,
                   help="warm-up steps of --schedule cosine (default: 0)")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="also train on the shifted copies written by `encode --augment N`")
    prior = p.add_argument_group("prior (default: the reference PixelCNN; with --resume, the run's)")
    prior.add_argument("--input-mode", choices=("embedding", "codes"),
                       help="'embedding': learned vectors per code index; 'codes': the VQ-VAE's "
                            "code vectors (default: embedding)")
    prior.add_argument("--gated", action=argparse.BooleanOptionalAction, default=None,
                       help="gated PixelCNN (vertical + horizontal stacks, no blind spot)")
    prior.add_argument("--conditional", action=argparse.BooleanOptionalAction, default=None,
                       help="condition on the class labels (implies --gated)")
    prior.add_argument("--channels", type=positive_int, help="feature channels (default: 64)")
    prior.add_argument("--num-blocks", type=non_negative_int,
                       help="masked layers after the first (default: 6)")
    prior.add_argument("--first-kernel", type=positive_int,
                       help="odd kernel size of the first (mask A) layer (default: 7)")
    prior.add_argument("--kernel", type=positive_int,
                       help="odd kernel size of the later layers (default: 3)")
    p.set_defaults(handler=_train_prior)

    p = commands.add_parser("sample", help="sample new images from the prior",
                            description="Draw code grids from the run's best prior and decode them: "
                            "RUN/samples/NAME.png (images) and NAME.npy (code indices (n, h, w)).")
    _common(p, "--run", DEFAULT_RUN, "run directory with a trained prior")
    p.add_argument("-n", "--n", type=positive_int, default=64, help="number of samples (default: 64)")
    p.add_argument("--temperature", type=positive_float, default=1.0,
                   help="divide the logits by this; < 1 is more conservative (default: 1)")
    p.add_argument("--top-k", type=positive_int, default=None,
                   help="sample among the k most likely codes only (default: all)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--labels", type=non_negative_int, nargs="+", default=None,
                   help="class labels for a conditional prior: one for all samples, or n "
                        "(default: every class in turn)")
    p.add_argument("--name", default=None,
                   help="file name stem (default: from the options, e.g. seed0_T1)")
    p.add_argument("--compare", action="store_true",
                   help="also draw RUN/figures/sample_comparison.png against the baselines")
    p.add_argument("--force", action="store_true",
                   help="replace samples of the same name (default: refuse to overwrite them)")
    p.set_defaults(handler=_sample)

    p = commands.add_parser("reconstruct", help="draw test images and their reconstructions",
                            description="Draw the first n test images above their reconstructions "
                            "by the run's best VQ-VAE: RUN/figures/reconstructions.png.")
    _common(p, "--run", DEFAULT_RUN, "run directory with a trained VQ-VAE")
    p.add_argument("-n", "--n", type=positive_int, default=16, help="number of images (default: 16)")
    p.add_argument("--flat", action="store_true",
                   help="use the flat VQ-VAE (RUN/flat_vqvae; figure flat_reconstructions.png)")
    p.set_defaults(handler=_reconstruct)

    p = commands.add_parser("demo", help="the whole pipeline on MNIST or --data (~5 min)",
                            description="The whole pipeline on the embedded "
                            "MNIST digits (or on --data): trains the grid VQ-VAE and a small flat one, encodes, "
                            "trains the PixelCNN prior, samples, and writes every figure to "
                            "RUN/figures. About 10 minutes on 2 CPU cores with the defaults.")
    _common(p, "--out", "runs/demo", "output run directory; an earlier demo there is replaced "
                                     "unless --resume")
    p.add_argument("--quick", action="store_true",
                   help="tiny networks and a few steps: checks the pipeline in seconds")
    p.add_argument("--data", default="mnist-embedded",
                   help=f"images: {', '.join(SPECS)} (default: mnist-embedded)")
    p.add_argument("--download", action="store_true",
                   help="download mnist / fashion-mnist / cifar10 if not cached (the only network access)")
    _preset(p)
    p.add_argument("--resume", action="store_true", help="continue an interrupted demo in RUN")
    defaults = {name: parameter.default for name, parameter in inspect.signature(demo).parameters.items()}
    for flag, what in (("--vqvae-steps", "VQ-VAE training steps"),
                       ("--flat-steps", "flat VQ-VAE training steps"),
                       ("--prior-steps", "prior training steps"),
                       ("--batch-size", "VQ-VAE batch size"),
                       ("--prior-batch-size", "prior batch size"),
                       ("--eval-every", "VQ-VAE evaluation interval"),
                       ("--prior-eval-every", "prior evaluation interval"),
                       ("--n-samples", "samples to draw")):
        default = defaults[flag[2:].replace("-", "_")]                 # demo()'s own default
        p.add_argument(flag, type=positive_int, default=default, help=f"{what} (default: {default})")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--conditional", action="store_true",
                   help="a class-conditional gated prior; its samples are drawn class by class")
    p.set_defaults(handler=_demo)
    return parser


OS_ERROR_FIXES = {
    errno.EACCES: "permission denied: change the file's permissions or choose another --out/--run",
    errno.EPERM: "operation not permitted: change the file's permissions or choose another --out/--run",
    errno.ENOTDIR: "a part of this path is a file, not a folder: choose another path",
    errno.EISDIR: "this is a folder where a file was expected: remove or rename it",
    errno.ENOSPC: "the disk is full: free some space, then continue (training: --resume); no file "
                  "is left half-written",
    errno.EROFS: "the file system is read-only: choose another --out/--run",
    errno.ENOENT: "no such file or folder: check the path",
}


def os_error_message(error):
    """One line for an OSError: the file, what went wrong, and the fix."""
    if isinstance(error, ConnectionError) or error.errno not in OS_ERROR_FIXES:
        return " ".join(str(error).split())                      # its own message, on one line
    where = error.filename if error.filename is not None else "a file"
    return f"{where}: {OS_ERROR_FIXES[error.errno]} ({error.strerror})"


def main(argv=None):
    """Run the command line `argv` (default sys.argv[1:]); returns 0, or raises SystemExit.

    Library errors and OSErrors (permissions, full disk, ...) exit 2 with one line
    `minivq: error: ...` on stderr (a diverged training run exits 1), Ctrl-C exits 130
    saying what is on disk; --debug re-raises instead.
    """
    import matplotlib
    matplotlib.use("Agg")                 # figures only go to files, never to a window
    args = build_parser().parse_args(argv)
    try:
        apply_threads(args.threads)       # once for the process; training bars say what it chose
        args.handler(args)
    except KeyboardInterrupt as interrupt:
        if args.debug:
            raise
        message = str(interrupt) or "interrupted; files are written whole or not at all"
        print(f"\nminivq: {message}", file=sys.stderr)
        raise SystemExit(130) from None
    except OSError as error:
        if args.debug:
            raise
        print(f"minivq: error: {os_error_message(error)}", file=sys.stderr)
        raise SystemExit(2) from None
    except (ValueError, FileNotFoundError, CheckpointError, TrainingDivergedError) as error:
        if args.debug:
            raise
        print(f"minivq: error: {error}", file=sys.stderr)
        raise SystemExit(1 if isinstance(error, TrainingDivergedError) else 2) from None
    return 0
