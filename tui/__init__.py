"""mockmock tui."""
