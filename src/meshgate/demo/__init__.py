"""The demo mesh: config in `config/demo/`, data generated deterministically on first use."""

from meshgate.demo.generate import demo_config_dir, ensure_demo_data, prepare_demo

__all__ = ["demo_config_dir", "ensure_demo_data", "prepare_demo"]
