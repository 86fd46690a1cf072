"""entitlements domain."""
