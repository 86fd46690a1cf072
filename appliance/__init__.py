"""mockmock appliance."""
