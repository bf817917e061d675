"""Predictor registry, fitting, the leaderboard protocol and frozen artefacts (issue 4)."""
