"""Board provisioning from the appliance: the agent wheelhouse and ``install.sh``."""
