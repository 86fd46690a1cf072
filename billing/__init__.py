"""mockmock billing."""
