"""Fixtures for the whole suite; each lives in tests/fixtures/."""

pytest_plugins = [
    "tests.fixtures.mosquitto",
    "tests.fixtures.postgres",
    "tests.fixtures.appliance_db",
    "tests.fixtures.processes",
    "tests.fixtures.localstripe",
    "tests.fixtures.tls",
    "tests.fixtures.smtp",
]
