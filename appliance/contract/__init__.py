"""The API's request and response shapes as msgspec Structs, one module per domain.

Dependency-free on purpose (msgspec only): the handlers encode them, the TUI and
the tests decode into them, so a field renamed on one side breaks the other at
once instead of turning into a silent default. Nothing here imports Litestar,
peewee or the agent.
"""
