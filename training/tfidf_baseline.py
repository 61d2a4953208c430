"""The baseline every sentiment card reports next to the network: TF-IDF + logistic regression."""

from __future__ import annotations

from typing import Any

import numpy as np

from training.text_data import TextSplit

C_GRID = (0.5, 2.0, 8.0)


def tfidf_baseline(
    fit: TextSplit,
    validation: TextSplit,
    test: TextSplit,
    confidence_weights: bool = False,
    final_fit: bool = False,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Test-split predictions of uni+bigram TF-IDF + LR, C chosen on the validation split.

    Trained as the networks are: with `confidence_weights` each row weighs its annotators'
    confidence, and with `final_fit` the chosen C learns again from fit + validation.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    def train(split: TextSplit, c: float):
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_df=0.9, sublinear_tf=True)
        weights = split.confidence if confidence_weights else None
        model = LogisticRegression(C=c, max_iter=2000)
        model.fit(vectorizer.fit_transform(split.texts), split.labels, sample_weight=weights)
        return lambda texts: model.predict(vectorizer.transform(texts)), len(vectorizer.vocabulary_)

    scores = {c: float(np.mean(train(fit, c)[0](validation.texts) == validation.labels)) for c in C_GRID}
    c = max(C_GRID, key=scores.get)  # the first of equals: the strongest regularisation
    predict, features = train(fit + validation if final_fit else fit, c)
    setup = {
        "features": "TF-IDF word uni+bigrams, min_df 2, max_df 0.9, sublinear tf",
        "classifier": f"LogisticRegression(C={c}), C from {list(C_GRID)} on validation",
        "validation_accuracy": scores[c],
        "features_count": features,
        "learned_from": "training + validation" if final_fit else "training",
    }
    if confidence_weights:
        setup["sample_weights"] = "annotator confidence, as the networks"
    return predict(test.texts), setup
