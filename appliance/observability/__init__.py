"""observability: Prometheus text at /metrics and the live WebSocket feed."""
