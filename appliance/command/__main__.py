"""``python -m appliance.command``: the ``mockmock`` command."""

from appliance.command.main import main

if __name__ == "__main__":  # not on import (tests walk every module of the package)
    main()
