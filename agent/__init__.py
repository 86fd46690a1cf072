"""mockmock agent."""
