"""mockmock appliance: the on-premises server."""

__version__ = "0.1.0"
