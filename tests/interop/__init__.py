"""Interop harness: the independent iso15118 (PyPI) peer in its own venv, reached through
josev_bridge.py; see peer.py and conftest.py."""
