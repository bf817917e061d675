"""The A2C controller, baselines and the reward engine over a frozen predictor (issue 5)."""
