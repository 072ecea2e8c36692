"""Runs `strata search` trials as Ray tasks; driven by the Swift search over stdin/stdout JSON lines."""
