"""mockmock agent/transports."""
