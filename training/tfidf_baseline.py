"""The baseline every sentiment card reports next to the network: TF-IDF + logistic regression."""

from __future__ import annotations

from typing import Any

import numpy as np

from training.text_data import TextSplit

C_GRID = (0.5, 2.0, 8.0)


def tfidf_baseline(
    fit: TextSplit, validation: TextSplit, test: TextSplit, weights: np.ndarray | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """Test-split predictions of uni+bigram TF-IDF + LR, C chosen on the validation split;
    `weights` (one per `fit` row) weight the loss as they do the networks'."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_df=0.9, sublinear_tf=True)
    x_fit = vectorizer.fit_transform(fit.texts)
    x_val, x_test = vectorizer.transform(validation.texts), vectorizer.transform(test.texts)
    best: tuple[float, float, Any] = (-1.0, 0.0, None)
    for c in C_GRID:
        model = LogisticRegression(C=c, max_iter=2000).fit(x_fit, fit.labels, sample_weight=weights)
        score = float(np.mean(model.predict(x_val) == validation.labels))
        if score > best[0]:
            best = (score, c, model)
    val_accuracy, c, model = best
    setup = {
        "features": "TF-IDF word uni+bigrams, min_df 2, max_df 0.9, sublinear tf",
        "classifier": f"LogisticRegression(C={c}), C from {list(C_GRID)} on validation",
        "validation_accuracy": val_accuracy,
        "features_count": len(vectorizer.vocabulary_),
    }
    if weights is not None:
        setup["sample_weights"] = "the networks' (annotator confidence)"
    return model.predict(x_test), setup
