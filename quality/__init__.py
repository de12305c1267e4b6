"""Data quality: DQDL parser (dqdl), rule checks (rules), evaluation (evaluate), Glue entry script (job)."""
