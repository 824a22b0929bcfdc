"""Device-side evaluation sums: padding changes nothing, and per-part sums add up to the whole's metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score, log_loss

from nonspeech.evaluation.sums import EvalSums, evaluate, padded, summarize
from nonspeech.training.loop import class_weights

CLASSES = ["a", "b", "c"]
CPU = torch.device("cpu")


def fake_batches(n: int, batch_size: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor, list[str]]]:
    """n random 'clips' of 4 features with labels, batched (the last batch partial)."""
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(n, 4, generator=g), torch.randint(0, len(CLASSES), (n,), generator=g)
    return [(x[i:i + batch_size], y[i:i + batch_size], [f"clip{j}" for j in range(i, min(i + batch_size, n))])
            for i in range(0, n, batch_size)]


def model() -> torch.nn.Module:
    """A fixed linear classifier."""
    torch.manual_seed(0)
    return torch.nn.Linear(4, len(CLASSES))


def run(batches: list, batch_size: int) -> tuple[EvalSums, object]:
    """Evaluate the fixed model over padded batches on the CPU."""
    return evaluate(model(), padded(batches, batch_size), len(CLASSES), CPU, False, keep_predictions=True)


def test_padded_evaluation_matches_sklearn() -> None:
    batches = fake_batches(11, 4)
    sums, predictions = run(batches, 4)
    metrics = summarize(sums, CLASSES)
    y = torch.cat([b[1] for b in batches]).numpy()
    probs = torch.softmax(model()(torch.cat([b[0] for b in batches])), 1).detach().numpy()
    assert predictions.clip_ids == [f"clip{i}" for i in range(11)]
    np.testing.assert_array_equal(predictions.labels, y)
    np.testing.assert_allclose(predictions.probabilities, probs, rtol=1e-5)
    assert metrics["loss"] == pytest.approx(log_loss(y, probs, labels=[0, 1, 2]), rel=1e-5)
    sklearn_f1 = f1_score(y, probs.argmax(1), average="macro", labels=[0, 1, 2], zero_division=0)
    assert metrics["macro_f1"] == pytest.approx(sklearn_f1)
    assert np.asarray(metrics["confusion_matrix"]).sum() == 11


def test_sums_of_parts_give_the_metrics_of_the_whole() -> None:
    batches = fake_batches(13, 4)
    whole, _ = run(batches, 4)
    parts = [run(batches[:2], 4)[0], run(batches[2:], 4)[0]]  # as two ranks would see them
    summed = EvalSums(parts[0].loss + parts[1].loss, parts[0].confusion + parts[1].confusion)
    from_parts, from_whole = summarize(summed, CLASSES), summarize(whole, CLASSES)
    assert from_parts.pop("loss") == pytest.approx(from_whole.pop("loss"), rel=1e-6)
    assert from_parts == from_whole


def test_class_weights_are_inverse_frequency_and_reject_absent_classes() -> None:
    weights = class_weights(np.array([10, 20, 70]), CLASSES)
    torch.testing.assert_close(weights, torch.tensor([100 / 30, 100 / 60, 100 / 210]))
    with pytest.raises(ValueError, match=r"classes \['b'\] have no training clips"):
        class_weights(np.array([5, 0, 5]), CLASSES)
