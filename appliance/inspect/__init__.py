"""inspect: drill into a running group (devices, message tail) and an agent (its ranges)."""
