"""The command line: parse, call the API, print. Nothing else lives here."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .config import PRESETS, build_config, flat_fields, kind_of
from .errors import UserError
from .extras import install_hint, require

PROG = "mnist-logreg"
# Files an image folder could not give, named one per line up to this many; the rest counted.
SKIPPED_LISTED = 5


def _version() -> str:
    from . import __version__

    return __version__


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the problem, exit code 2."""

    def error(self, message: str):  # noqa: D401 - argparse's signature
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        sys.exit(2)


def add_config_flags(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    """One flag per config field, generated from the dataclasses (default None = preset's)."""
    for name, (_, f) in flat_fields().items():
        if name in skip:
            continue
        flag = "--" + name.replace("_", "-")
        kind = kind_of(name)
        help_text = f.metadata.get("help", "")
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            # --data names what it reads; --data-dir, its first name, still works.
            flags = ("--data", flag) if name == "data_dir" else (flag,)
            parser.add_argument(*flags, dest=name, type=kind, default=None, choices=f.metadata.get("choices"),
                                metavar=f.metadata.get("metavar"), help=help_text)


def config_from_args(args: argparse.Namespace):
    overrides = {name: getattr(args, name) for name in flat_fields() if name != "preset" and hasattr(args, name)}
    return build_config(args.preset if args.preset is not None else "default", **overrides)


def _print_summary(metrics: dict, run_dir: Path | None) -> None:
    print(f"test accuracy {metrics['test_accuracy'] * 100:.2f}%  test loss {metrics['test_loss']:.4f}  "
          f"train {metrics['train_seconds']:.2f} s ({metrics['samples_per_second']:,.0f} samples/s, "
          f"{metrics['epochs']} epochs, {metrics['device']})")
    if "data" in metrics:
        print(f"data: {metrics['data']}")
    skipped = metrics.get("skipped", [])
    for line in skipped[:SKIPPED_LISTED]:
        sys.stderr.write(f"{PROG}: skipped {line}\n")
    if len(skipped) > SKIPPED_LISTED:
        sys.stderr.write(f"{PROG}: skipped {len(skipped) - SKIPPED_LISTED} more files (metrics.json lists them all)\n")
    selection = metrics.get("selection")
    if selection is not None:
        scores = ", ".join(f"{name} {acc * 100:.2f}%" for name, acc in selection["val_accuracy"].items())
        print(f"preprocessing chosen on validation: {selection['chosen']} ({scores})")
    if run_dir is not None:
        print(f"run saved to {run_dir}")


def check_kernel_choice() -> None:
    """A bad ``$MNIST_LOGREG_KERNEL`` refused before PyTorch loads, as every other bad input
    of the commands that train (the kernel module checks it again as it loads)."""
    from .training.kernel_choice import choose

    choose()


def cmd_train(args: argparse.Namespace) -> int:
    from .atomic import check_folder_writable
    from .runs import default_run_dir

    config = config_from_args(args)
    out = Path(args.out) if args.out else default_run_dir()
    check_folder_writable(out, "--out")  # before PyTorch loads and the training runs, not after
    check_kernel_choice()
    if args.tensorboard:
        require("train --tensorboard", "tensorboard", "tensorboard")

    from .api import train_run
    from .training.train import threads_for, torch_threads

    on_epoch = None
    if args.tensorboard:
        from .tensorboard import TensorBoardLogger

        logger = TensorBoardLogger(out)
        on_epoch = logger.log_epoch
    with torch_threads(threads_for(config)):
        checkpoint, _, metrics = train_run(config, out, on_epoch=on_epoch)
    if args.tensorboard:
        logger.close(checkpoint)
    _print_summary(metrics, out)
    if args.report:
        from .evaluate import evaluate_run

        _print_report(evaluate_run(out, config.data.data_dir, report=True))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluate import evaluate_run  # NumPy only: no PyTorch to import

    result = evaluate_run(args.run, args.data_dir, report=not args.no_report)
    if args.json or args.no_report:
        print(json.dumps({k: v for k, v in result.items() if k != "report"}, indent=2, sort_keys=True))
    else:
        _print_report(result)
    return 0


def _print_report(result: dict) -> None:
    from .report import terminal_table

    full = result["report"]
    print(terminal_table(full, list(range(len(full["per_class"]["support"])))))
    print(f"report written to {result['report_dir']}/report.html")
    if not result["report"]["figures"]:
        sys.stderr.write(f"{PROG}: note: the report has no figures: matplotlib is not installed "
                         f"({install_hint('report')})\n")


def cmd_compare(args: argparse.Namespace) -> int:
    from .compare import compare_runs

    text = compare_runs(args.runs, args.out)
    print(text)
    if args.out:
        print(f"table saved to {args.out}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    if args.robustness:
        return _bench_robustness(args)
    if args.run or args.per_class is not None:
        raise UserError("--run and --per-class belong to bench --robustness")
    from .atomic import atomic_write_json, check_writable

    args.out = args.out or "bench.json"
    check_writable(args.out, size=16384)  # before minutes of benchmarks, not after (the results: ~4 KB)
    check_kernel_choice()
    require("bench", "bench", "torchvision", "sklearn", "psutil")
    from .bench import format_table, run_bench

    result = run_bench(quick=args.quick, device=args.device, repeats=args.repeats, data_dir=args.data_dir)
    print(format_table(result))
    atomic_write_json(args.out, result)
    print(f"results saved to {args.out}")
    return 0


def _bench_robustness(args: argparse.Namespace) -> int:
    from .atomic import atomic_write_bytes, atomic_write_json, check_writable
    from .extras import available
    from .robustness import benchmark, format_robustness, plot_robustness
    from .system import cores

    out = Path(args.out or "robustness.json")
    chart = out.with_suffix(".png")
    check_writable(out, size=16384)
    if args.run is not None and not Path(args.run).is_dir():
        raise UserError(f"{args.run}: no such run folder")
    result = benchmark(args.run, per_class=args.per_class or 100, workers=cores(), data_dir=args.data_dir,
                       progress=print)
    print(format_robustness(result))
    atomic_write_json(out, result)
    print(f"results saved to {out}")
    if available("matplotlib"):
        import io

        buf = io.BytesIO()
        plot_robustness(result, buf)
        atomic_write_bytes(chart, buf.getvalue())
        print(f"chart saved to {chart}")
    else:
        print(f"no chart: {install_hint('report')}")
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from .atomic import check_folder_writable

    check_folder_writable(args.out, "--out")  # before Optuna, PyTorch and the data load
    check_kernel_choice()
    require("tune", "tune", "optuna", "matplotlib")
    from .tune import format_summary, tune

    summary = tune(trials=args.trials, timeout=args.timeout, study_name=args.study_name, storage=args.storage,
                   out=args.out, seed=args.seed, n_jobs=args.n_jobs, space_file=args.space, data_dir=args.data_dir,
                   device=args.device, final=not args.no_final, val_size=args.val_size)
    print(format_summary(summary))
    print(f"results in {args.out} (best.json, trials.csv, plots)")
    return 0


def _run_or_shipped(args: argparse.Namespace) -> str:
    """``--run``, or the model shipped in the package, said in one line on stderr."""
    if args.run is not None:
        return args.run
    from .reading.modelfile import shipped_run

    run = shipped_run()
    try:
        accuracy = f"{json.loads((run / 'metrics.json').read_text())['test_accuracy']:.2%} on MNIST's test set"
    except (OSError, ValueError, KeyError, TypeError):
        accuracy = "trained on MNIST"
    sys.stderr.write(f"{PROG}: no --run given: using the model shipped with {PROG} (the default recipe, "
                     f"{accuracy}; docs/model-card.md)\n")
    return str(run)


def cmd_predict(args: argparse.Namespace) -> int:
    from .reading.lite import load_run  # NumPy only: no PyTorch to import for a few photos
    from .reading.predict import predict_files
    from .system import keep_freed_memory

    if args.top < 1:
        raise UserError(f"--top must be >= 1, got {args.top}")
    csvs = [p for p in args.images if str(p).lower().endswith(".csv")]
    if csvs:
        return _predict_csv(args, csvs)
    if args.out:
        raise UserError("--out writes a Kaggle submission: give it one CSV of digits (test.csv), not images")
    checkpoint = load_run(_run_or_shipped(args))
    keep_freed_memory()  # a folder of photos: each read in the memory the last one freed
    results = predict_files(checkpoint, args.images, top_k=args.top, save_preprocessed=args.save_preprocessed)
    if not results:
        raise UserError("no image files found in " + ", ".join(args.images))
    failed = 0
    for r in results:
        if r.error:
            failed += 1
            sys.stderr.write(f"{PROG}: error: {r.error}\n")
        elif args.json:
            print(json.dumps(r.as_dict()))
        elif r.reason:
            print(f"{r.file}\t-\tno digit: {r.reason}")
        elif r.digits is not None:
            # A mark that is no digit ("?", a point) shows why, and is not counted as a digit.
            each = "  ".join(f"{d.label}:{d.probability * 100:.1f}%" if d.probability is not None
                             else f"{d.label}:{d.reason}" for d in r.digits)
            count = sum(d.probability is not None for d in r.digits)
            print(f"{r.file}\t{r.number}\t{count} digits\t{each}")
        else:
            top = "  ".join(f"{c}:{p * 100:.1f}%" for c, p in r.top)
            print(f"{r.file}\t{r.label}\t{r.probability * 100:.1f}%\t{top}")
    return 2 if failed else 0


def _predict_csv(args: argparse.Namespace, csvs: list[str]) -> int:
    """Kaggle's round trip: test.csv's rows are 28x28 digits already, so they skip the photo
    path and go straight to the run's preprocessing; the answer is the competition's
    ``ImageId,Label`` file (``--out``), or the same on stdout."""

    from .atomic import atomic_write_bytes, check_writable
    from .data.formats import read_kaggle_csv, submission_csv
    from .reading.lite import load_run

    if len(args.images) != 1:
        raise UserError(f"a CSV of digits ({csvs[0]}) is read alone: give it without other files")
    if args.save_preprocessed or args.json:
        raise UserError("--save-preprocessed and --json are for image files; a CSV's answer is ImageId,Label")
    if args.out:
        check_writable(args.out)
    model = load_run(_run_or_shipped(args))
    images, _ = read_kaggle_csv(Path(csvs[0]), labelled=False)
    labels = [model.classes[i] for i in model.logits(images).argmax(axis=1)]  # the engine works in chunks
    data = submission_csv(labels)
    if args.out:
        atomic_write_bytes(args.out, data)
        print(f"{len(labels):,} predictions written to {args.out} (ImageId,Label)")
    else:
        sys.stdout.write(data.decode())
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    if args.format == "onnx":
        require("export --format onnx", "export", "onnx")
    from .atomic import check_writable
    from .runs import EXPORT_FILES

    run = _run_or_shipped(args)
    # Beside the run, or here for the shipped model (never into the installed package).
    name = EXPORT_FILES[args.format]
    out = args.out or (str(Path(run) / name) if args.run else name)
    check_writable(out)  # before PyTorch loads and the export runs (seconds for ONNX), not after

    from .export import export
    from .reading.modelfile import run_class_names
    from .training.checkpoint import load_run

    checkpoint = load_run(run)
    names = run_class_names(run, len(checkpoint.classes)) if args.format == "web" else None
    print(f"exported to {export(checkpoint, args.format, out, names)}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        raise UserError(f"--port must be between 1 and 65535, got {args.port}")
    require("serve", "serve", "fastapi", "uvicorn", "python_multipart", "threadpoolctl")
    from .serve import serve

    serve(_run_or_shipped(args), host=args.host, port=args.port, workers=args.workers, collect=args.collect)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    import platform

    import torch

    from . import __version__
    from .training import kernels

    print(f"mnist-logreg {__version__}, Python {platform.python_version()}, torch {torch.__version__}, "
          f"{platform.machine()}, {torch.get_num_threads()} threads")
    print(f"kernel: {kernels.active()} ({kernels.WHY})")
    print(f"kernel paths this CPU runs: {', '.join(kernels.RUNNABLE) or 'none (the C kernel was not built)'}; "
          f"choose one with {kernels.ENV}=auto|{'|'.join(kernels.PATHS)}|off")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=PROG, description="Handwritten digit recognition with one linear layer.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    parser.add_argument("--version", action="version", version=f"{PROG} {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    p = sub.add_parser("train", help="train a model and score it on the test set")
    p.add_argument("--out", metavar="DIR", help="run folder (default runs/<timestamp>/)")
    p.add_argument("--preset", metavar="NAME", help=f"recipe: {', '.join(PRESETS)} (default: default)")
    p.add_argument("--report", action="store_true", help="write the evaluation report when training ends")
    p.add_argument("--tensorboard", action="store_true", help="write TensorBoard event files into the run folder")
    add_config_flags(p, skip=("preset",))
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="reload a run, score it on the test set, write DIR/report/")
    p.add_argument("--run", required=True, metavar="DIR", help="run folder written by train")
    p.add_argument("--data-dir", metavar="DIR", help="dataset folder (default: the run's dataset)")
    p.add_argument("--json", action="store_true", help="print the test metrics as JSON instead of a table")
    p.add_argument("--no-report", action="store_true", help="only print the metrics (JSON), write nothing")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("compare", help="configs and metrics of several runs side by side")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders")
    p.add_argument("--out", metavar="FILE", help="also write the table here (.md or .csv)")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("predict", help="recognise digits in your own image files")
    p.add_argument("--run", metavar="DIR", help="run folder written by train (default: the model shipped "
                   "with mnist-logreg, docs/model-card.md)")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files or folders of images")
    p.add_argument("--top", type=int, default=3, help="how many best classes to show (default 3)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--save-preprocessed", metavar="DIR", help="write the 28x28 images the model saw here")
    p.add_argument("--out", metavar="FILE", help="with a CSV of digits (Kaggle's test.csv): write the "
                   "submission (ImageId,Label) here instead of to stdout")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("serve", help="a web page to draw a digit on, and a JSON API")
    p.add_argument("--run", metavar="DIR", help="run folder written by train (default: the model shipped "
                   "with mnist-logreg, docs/model-card.md)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="server processes (default 1); more for machines with more cores")
    p.add_argument("--collect", metavar="DIR", help="save the digits people correct on the page here, a "
                   "sub-folder per label (train --add DIR learns from them)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("export", help="export a run to ONNX, TorchScript or a web page (preprocessing included)")
    p.add_argument("--run", metavar="DIR", help="run folder written by train (default: the model shipped "
                   "with mnist-logreg, docs/model-card.md)")
    p.add_argument("--format", required=True, choices=("onnx", "torchscript", "web"),
                   help="file format; web: one self-contained HTML page that runs the model in the browser")
    p.add_argument("--out", metavar="FILE", help="output file (default: in the run folder)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("tune", help="hyperparameter search (Optuna), on validation accuracy")
    p.add_argument("--trials", type=int, default=30, help="trials to finish in the study, all workers together")
    p.add_argument("--timeout", type=float, help="stop starting trials after this many seconds")
    p.add_argument("--study-name", default="mnist-logreg", help="study name (default mnist-logreg)")
    p.add_argument("--storage", metavar="URL", help="SQLAlchemy URL shared by workers, e.g. postgresql://... "
                                                    "(default: a journal file in --out)")
    p.add_argument("--out", default="runs/tune", metavar="DIR", help="results folder (default runs/tune)")
    p.add_argument("--seed", type=int, default=0, help="sampler and training seed")
    p.add_argument("--n-jobs", type=int, default=1, help="parallel trials in this process")
    p.add_argument("--space", metavar="FILE", help="TOML file overriding the search space")
    p.add_argument("--data-dir", metavar="DIR", help="MNIST folder (default: the bundled copy)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--val-size", type=int, default=None, help="training images held out to score trials "
                                                               "(default 1/12 of them: 5,000 of MNIST's 60,000)")
    p.add_argument("--no-final", action="store_true", help="skip retraining the best configuration")
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser("bench", help="time our trainer against the tutorial loop and scikit-learn")
    p.add_argument("--quick", action="store_true", help="one epoch each, under a minute (CI smoke test)")
    p.add_argument("--device", default="cpu", help="auto, cpu or cuda (default cpu)")
    p.add_argument("--repeats", type=_count(MAX_REPEATS), default=3, metavar="N",
                   help=f"repeats of our runs, 1 to {MAX_REPEATS} (median reported)")
    p.add_argument("--data-dir", metavar="DIR", help="MNIST folder (default: the bundled copy)")
    p.add_argument("--out", help="where to save the results (default bench.json, or robustness.json and "
                   "its chart robustness.png with --robustness)")
    p.add_argument("--robustness", action="store_true",
                   help="instead: accuracy of the whole reading path on MNIST test digits under MNIST-C's 15 "
                        "corruptions and the ways people hand us digits (about 3 minutes)")
    p.add_argument("--run", metavar="DIR", help="with --robustness: the run to measure (default: train the "
                   "default recipe first)")
    p.add_argument("--per-class", type=_count(MAX_PER_CLASS), metavar="N",
                   help=f"with --robustness: test digits of each class per row, 1 to {MAX_PER_CLASS} (default 100)")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("info", help="versions, and which path of the C kernel trains here and why")
    p.set_defaults(func=cmd_info)
    return parser


MAX_REPEATS = 100  # a repeat of the full benchmark takes minutes here
MAX_PER_CLASS = 892  # MNIST's test set holds 892 fives, its rarest class


def _count(limit: int):
    """An argparse type: an integer from 1 to ``limit``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not 1 <= value <= limit:
            raise argparse.ArgumentTypeError(f"must be from 1 to {limit}, got {value}")
        return value
    return parse


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except UserError as exc:
        sys.stderr.write(f"{PROG}: error: {exc}\n")
        return 2
    except OSError as exc:  # what the system refused and no layer below put into words
        where = f"{exc.filename}: " if exc.filename else ""
        sys.stderr.write(f"{PROG}: error: {where}{exc.strerror or exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
