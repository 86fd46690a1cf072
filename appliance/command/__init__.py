"""The ``mockmock`` command line: ``main`` (up, serve, billing, ...), ``run``
(tests as code against a running appliance) and ``template``."""
