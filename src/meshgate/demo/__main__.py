"""`python -m meshgate.demo [DIR]`: generate the demo data in DIR (default: config/demo)."""

import sys
from pathlib import Path

from meshgate.demo.generate import DATA_DIR, demo_config_dir, ensure_demo_data

target = Path(sys.argv[1]) if len(sys.argv) > 1 else demo_config_dir()
ensure_demo_data(target)
print(target / DATA_DIR)
