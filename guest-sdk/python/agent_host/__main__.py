"""``python -m agent_host build APP_DIR -o agent.wasm``: see :mod:`agent_host.build`."""

import sys

from .build import main

sys.exit(main(sys.argv[1:]))
