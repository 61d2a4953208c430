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

    def vectorize(split: TextSplit):
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_df=0.9, sublinear_tf=True)
        return vectorizer, vectorizer.fit_transform(split.texts)

    def classifier(x, split: TextSplit, c: float) -> LogisticRegression:
        weights = split.confidence if confidence_weights else None
        return LogisticRegression(C=c, max_iter=2000).fit(x, split.labels, sample_weight=weights)

    vectorizer, x_fit = vectorize(fit)
    x_val = vectorizer.transform(validation.texts)
    models = {c: classifier(x_fit, fit, c) for c in C_GRID}
    scores = {c: float(np.mean(model.predict(x_val) == validation.labels)) for c, model in models.items()}
    c = max(C_GRID, key=lambda candidate: scores[candidate])  # the first of equals: the strongest regularisation
    model = models[c]
    if final_fit:
        both = fit + validation
        vectorizer, x_both = vectorize(both)
        model = classifier(x_both, both, c)
    predictions = model.predict(vectorizer.transform(test.texts))
    setup = {
        "features": "TF-IDF word uni+bigrams, min_df 2, max_df 0.9, sublinear tf",
        "classifier": f"LogisticRegression(C={c}), C from {list(C_GRID)} on validation",
        "validation_accuracy": scores[c],
        "features_count": len(vectorizer.vocabulary_),
        "learned_from": "training + validation" if final_fit else "training",
    }
    if confidence_weights:
        setup["sample_weights"] = "annotator confidence, as the networks"
    return predictions, setup
