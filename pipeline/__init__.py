"""`narch run`: the whole pipeline (corpus → leaderboard → freeze → search → hardware → verify → report)."""
