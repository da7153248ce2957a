"""Evaluation: ViCLIP zero-shot retrieval and classification (`internvid eval`), generation metrics (`internvid eval-gen`)."""

from __future__ import annotations

from internvid.eval.generation import METRICS, evaluate_generation
from internvid.eval.metrics import classification_metrics, retrieval_metrics
from internvid.eval.model import load_model
from internvid.eval.prompts import OFFICIAL_TEMPLATES, TEMPLATE_SETS
from internvid.eval.sets import FORMATS, EvalSet, load_eval_set, read_rows
from internvid.eval.zero_shot import evaluate

__all__ = [
    "FORMATS",
    "METRICS",
    "OFFICIAL_TEMPLATES",
    "TEMPLATE_SETS",
    "EvalSet",
    "classification_metrics",
    "evaluate",
    "evaluate_generation",
    "load_eval_set",
    "load_model",
    "read_rows",
    "retrieval_metrics",
]
