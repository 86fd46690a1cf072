"""Process exit codes of the ``mockmock`` CLI (scripts and CI rely on them)."""

OK = 0
RUN_FAILED = 1  # the run happened but did not meet its bar (no traffic, errors)
USAGE = 2  # bad input: scenario, options, port in use
UNAVAILABLE = 3  # the appliance could not be reached or refused the request
