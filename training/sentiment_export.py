"""After training: export the sentiment model, reload it through the artifact contract,
evaluate it and its comparisons on the test split, and write the card, the plots and the
verification sample (test rows with the reloaded model's outputs; training/verification_sample.py).

The figures in the card come from the reloaded SavedModel, not from the Keras object, so they
describe exactly what the service will load.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from contract import kinds
from contract.card import write_card
from contract.publish import staged_version
from contract.speed import machine_description, measure_throughput
from contract.tokens import TokenizerSpec
from training import common, faithfulness, monitoring
from training.calibration import (
    calibration_card,
    expected_calibration_error,
    fit_temperature,
    plot_reliability,
    with_temperature,
)
from training.glove import Coverage
from training.sentiment_model import make_served_classifier, make_text_model, predict_texts
from training.text_data import TextDataset, dataset_sha256
from training.text_preprocessing import TokenIds
from training.verification_sample import write_verification_sample

RELIABILITY_PNG = "reliability.png"


@dataclass(frozen=True)
class HeldOut:
    """Rows the exported networks did not learn from, to fit the temperature on: either their
    texts (predicted by the served model at export) or probabilities already predicted for them."""

    description: str  # for the card: which rows, and why the model never learned from them
    labels: np.ndarray
    texts: list[str] | None = None
    probabilities: np.ndarray | None = None


def export_and_evaluate(
    args: argparse.Namespace,
    data: TextDataset,
    token_ids: TokenIds,
    trained: dict[str, tuple[keras.Model, dict]],
    coverage: Coverage | None,
    glove_source: str,
    baseline_predictions: np.ndarray,
    baseline_setup: dict,
    command: str,
    n_fit: int,
    n_val: int,
    held_out: HeldOut | None,
) -> Path:
    """Export into the next version folder of `args.out`; returns that folder.

    With `held_out`, the exported graph ends in the temperature fitted on it, so every client
    gets calibrated probabilities; without, the model's own (--no-calibrate).
    """
    glove_model = trained["glove"][0]
    ngram_model = trained.get("ngram", (None, None))[0]
    text_model = make_text_model(token_ids, make_served_classifier(glove_model, ngram_model))
    temperature: float | None = None
    exported = text_model
    if held_out is not None:
        held_probabilities = (
            held_out.probabilities
            if held_out.probabilities is not None
            else predict_texts(text_model, held_out.texts or [])
        )
        temperature = fit_temperature(held_probabilities, held_out.labels)
        print(f"calibration: temperature {temperature:.4f} fitted on {len(held_out.labels)} held-out rows", flush=True)
        exported = with_temperature(text_model, temperature)
    with staged_version(args.out) as staged:
        staging = staged.path
        common.export_saved_model(
            exported, staging, tf.TensorSpec([None], tf.string, name="text"), lookups=[token_ids]
        )

        card = _card(args, data, token_ids, trained, coverage, glove_source, command, n_fit, n_val, temperature,
                     staged.version)
        write_card(staging, card)  # the contract needs a card before the folder loads
        artifact = staged.load()
        texts, truth = data.test.texts, data.test.labels
        probabilities = common.predict_in_batches(artifact, texts)
        in_process = predict_texts(exported, texts[:64])
        if not np.allclose(probabilities[:64], in_process, atol=1e-4):
            raise RuntimeError(f"{staging}: the reloaded SavedModel disagrees with the trained model")
        evaluation = card["evaluation"]
        evaluation.update(common.classification_figures(truth, probabilities.argmax(1), data.labels))
        uncalibrated = probabilities if temperature is None else predict_texts(text_model, texts)
        if held_out is None or temperature is None:
            card["calibration"] = {
                "method": "none (--no-calibrate): the probabilities are the networks' own",
                "test": {"ece": round(expected_calibration_error(probabilities, truth), 5)},
            }
        else:
            card["calibration"] = calibration_card(
                temperature,
                held_out.description,
                held_probabilities,
                held_out.labels,
                uncalibrated,
                probabilities,
                truth,
                RELIABILITY_PNG,
            )
            plot_reliability(uncalibrated, probabilities, truth, temperature, staging / RELIABILITY_PNG)
        card["monitoring"] = {
            "reference": monitoring.reference(
                probabilities, data.labels, data.test_split, text_lengths=[len(text) for text in texts]
            )
        }
        evaluation["texts_per_second"] = {
            f"batch_{n}": round(
                measure_throughput(artifact.predict, [texts[:n]], args.throughput_seconds),
                1,
            )
            for n in (1, 64)
        }
        evaluation["texts_per_second"]["texts"] = "the first test texts, in-process SavedModel calls"

        evaluation["comparison_same_split"] = _comparisons(
            data, token_ids, trained, baseline_predictions, baseline_setup
        )
        card["verification"] = write_verification_sample(
            staging,
            artifact,
            texts,
            truth,
            count=args.verification_count,
            split="test",
            split_description=f"test split ({data.test_split}), on which the evaluation figures were measured",
            held_out="the networks, their vocabulary and the baselines never learned from them, and no "
            "temperature was fitted on them.",
        )
        card["explanations"] = faithfulness.explanations_section(
            artifact, texts, split="test", split_description=f"test split ({data.test_split})"
        )
        write_card(staging, card)
        common.plot_history(args.run_dir / "glove" / "history.csv", staging / "training_curves.png")
        common.plot_confusion(evaluation["confusion_matrix"], data.labels, staging / "confusion_matrix.png")
        if data.test.ids and args.dataset in ("tweets", "csv"):
            (staging / "test_ids.txt").write_text("\n".join(data.test.ids) + "\n", encoding="utf-8")
    _summary(card)
    return staged.target


def _layers(args: argparse.Namespace, ngram_member: bool) -> str:
    """The exported graph in words."""
    glove = (
        ("Embedding(GloVe)" if args.embeddings == "glove" else "Embedding(random init)")
        + " > SpatialDropout1D > "
        + "Bidirectional(LSTM) > " * args.lstm_layers
        + "max+mean pooling > Dropout > Dense softmax"
    )
    if args.ensemble > 1:
        glove = f"mean of {args.ensemble} networks: {glove}"
    if not ngram_member:
        return f"TokenIds > {glove}"
    return (
        f"TokenIds > mean of the {'GloVe' if args.embeddings == 'glove' else 'BiLSTM'} network's probabilities "
        f"({glove}) and the n-gram member's "
        "(words and hashed word pairs > mean of their per-class weights > softmax)"
    )


def _summary(card: dict) -> None:
    evaluation = card["evaluation"]
    lines = [
        f"{card['name']}/{card['version']} on {evaluation['split']}:",
        f"  served model: accuracy {evaluation['accuracy']:.4f} macro-F1 {evaluation['macro_f1']:.4f}",
    ]
    for name, figures in evaluation["comparison_same_split"].items():
        lines.append(f"  {name}: accuracy {figures['accuracy']:.4f} macro-F1 {figures['macro_f1']:.4f}")
    calibration = card["calibration"]
    if "temperature" in calibration:
        test = calibration["test"]
        lines.append(
            f"  calibration: T {calibration['temperature']:.4f}, test ECE {test['before']['ece']:.4f} -> "
            f"{test['after']['ece']:.4f}, NLL {test['before']['nll']:.4f} -> {test['after']['nll']:.4f}"
        )
    lines.append(f"  texts/s: {evaluation['texts_per_second']}")
    print("\n".join(lines), flush=True)


def _card(
    args: argparse.Namespace,
    data: TextDataset,
    token_ids: TokenIds,
    trained: dict[str, tuple[keras.Model, dict]],
    coverage: Coverage | None,
    glove_source: str,
    command: str,
    n_fit: int,
    n_val: int,
    temperature: float | None,
    version: int,
) -> dict:
    """The card before evaluation: what was trained, on what, how."""
    glove_state = trained["glove"][1]
    ngram_model, ngram_state = trained.get("ngram", (None, None))
    card = {
        "name": args.out.name,
        "version": version,
        "task": kinds.TEXT.task,
        "labels": data.labels,
        "input": {
            "max_tokens": args.max_tokens,
            "keeps": f"the {args.keep} of longer texts",
            "vocabulary_size": len(token_ids.vocabulary()),
            "normalisation": "lower-case, HTML tags and entities removed, GloVe-style "
            "clitics, punctuation except ! ? dropped"
            + ("; URLs -> xxurl, RT -> xxrt, @user and #tag -> user, tag" if token_ids.social else "")
            + ("; camel-case hashtags split into words" if token_ids.split_hashtags else ""),
            # The words the graph sees, declared so that the service can explain answers word by word.
            "tokenizer": TokenizerSpec(social=token_ids.social, split_hashtags=token_ids.split_hashtags,
                                       keep=args.keep).model_dump(),
        },
        "evaluation": {"split": data.test_split},
        "dataset": {
            "name": data.name,
            "file": args.data.name,
            "sha256": dataset_sha256(args.data),
            "train": n_fit,
            "validation": n_val,
            "test": len(data.test),
            "skipped": data.skipped,
        },
        "training": {
            "command": command,
            "seconds": round(glove_state["seconds"] + (ngram_state or {}).get("seconds", 0.0), 1),
            "machine": machine_description(),
            "commands": glove_state["commands"],
            "seed": args.seed,
            "epochs": args.epochs,
            "frozen_epochs": args.frozen_epochs,
            "best_epoch": glove_state["best_epoch"],
            "best_val_accuracy": glove_state["best_val_accuracy"],
            "network": {
                "lstm_units": args.lstm_units,
                "lstm_layers": args.lstm_layers,
                "dropout": args.dropout,
                "embedding_dim": args.embedding_dim,
                "batch_size": args.batch_size,
                "learning_rate": args.learning_rate,
                "fine_tune_learning_rate": args.fine_tune_learning_rate,
                "layers": _layers(args, ngram_model is not None)
                + ("" if temperature is None else f" > temperature scaling (T = {temperature:.4f})"),
            },
        },
        "embeddings": {"source": glove_source, "dimension": args.embedding_dim}
        | (
            {}
            if coverage is None
            else {
                "vocabulary_found": coverage.found,
                "vocabulary_missed": coverage.missed,
                "coverage": round(coverage.fraction, 4),
            }
        ),
        "git_commit": common.git_commit(),
    }
    training = card["training"]
    if ngram_model is not None and ngram_state is not None:
        training["ngram_member"] = {
            "buckets": args.ngram_buckets,
            "epochs": args.ngram_epochs,
            "learning_rate": args.ngram_learning_rate,
            "best_epoch": ngram_state["best_epoch"],
            "seconds": round(ngram_state["seconds"], 1),
        }
    if args.confidence_weights:
        training["sample_weights"] = (
            "each training tweet weighs its sentiment_confidence (the annotators' agreement) "
            "in the loss; every test tweet counts the same"
        )
    if args.selected_by is not None:
        results = json.loads(args.selected_by.read_text(encoding="utf-8"))
        training["selected_by_cross_validation"] = {
            "command": results["command"],
            "folds": results["folds"],
            "mean_accuracy": {n: round(f["mean_accuracy"], 4) for n, f in results["accuracy"].items()},
            "std": {n: round(f["std"], 4) for n, f in results["accuracy"].items()},
        }
    if args.final_fit:
        training["final_fit"] = (
            f"the networks learned from training + validation ({n_fit} tweets) for exactly "
            f"{args.epochs} epochs, chosen beforehand on validation; the last epoch is kept, so "
            "there is no validation figure; the TF-IDF baseline chose C on the validation "
            "split, then learned from training + validation too"
        )
    if args.ensemble > 1:
        training["ensemble"] = {
            "members": args.ensemble,
            "seeds": [args.seed + i for i in range(args.ensemble)],
            "combination": "mean of the members' probabilities, in the exported graph",
            "best_epochs": glove_state["best_epoch"],
        }
        if not args.final_fit:
            training["ensemble"].update(
                members_best_val_accuracy=glove_state["members_best_val_accuracy"],
                best_val_accuracy="the ensemble's, each member at its own best epoch",
            )
    return card


def _comparisons(
    data: TextDataset,
    token_ids: TokenIds,
    trained: dict[str, tuple[keras.Model, dict]],
    baseline_predictions: np.ndarray,
    baseline_setup: dict,
) -> dict:
    """The served model's rivals on the same test split: random embeddings, TF-IDF, each member alone."""
    glove_model = trained["glove"][0]
    random_model, random_state = trained.get("random-init", (None, None))
    ngram_model = trained.get("ngram", (None, None))[0]
    texts, truth = data.test.texts, data.test.labels

    def figures(classifier) -> dict:
        predictions = predict_texts(make_text_model(token_ids, classifier), texts).argmax(1)
        return common.classification_figures(truth, predictions, data.labels)

    comparisons: dict = {}
    if random_model is not None and random_state is not None:
        comparisons["random_init_embeddings"] = {
            **figures(make_served_classifier(random_model, ngram_model, name="random_init")),
            "model": "one BiLSTM with random embeddings"
            + (", averaged with the same n-gram member" if ngram_model is not None else ""),
            "epochs": random_state["plan"]["epochs"],
            "best_epoch": random_state["best_epoch"],
            "seconds": round(random_state["seconds"], 1),
        }
    comparisons["tfidf_logistic_regression"] = {
        **common.classification_figures(truth, baseline_predictions, data.labels),
        **baseline_setup,
    }
    if ngram_model is not None:  # each half of the served mean on its own
        comparisons["glove_networks_alone"] = figures(glove_model)
        comparisons["ngram_member_alone"] = figures(ngram_model)
    return comparisons
