"""Projects, their API keys, and the platform admin tokens."""
