"""fedsim.deploy: running real nodes — the federation file, certificates, container compose files."""
