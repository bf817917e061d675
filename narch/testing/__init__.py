"""Conformance suites a plugin's tests subclass, shipped in the package as optuna ships ``optuna.testing``.

``PredictorTestCase`` (``narch.testing.predictors``) and ``StrategyTestCase`` (``narch.testing.strategies``) each
hold the tests every registered family or strategy must pass; a subclass supplies the registered name through a
``predictor_name`` / ``strategy_name`` fixture. These modules import pytest, which is only a test extra
(``pip install neural-architect[test]``): import them from tests, never from library code.
"""

from narch.testing.corpus import build_tiny_corpus, tiny_corpus_rows
from narch.testing.predictors import PredictorTestCase
from narch.testing.strategies import StrategyTestCase
from narch.testing.toy import ToyScorer, toy_setup

__all__ = ["PredictorTestCase", "StrategyTestCase", "ToyScorer", "build_tiny_corpus", "tiny_corpus_rows", "toy_setup"]
