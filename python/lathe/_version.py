"""The SDK's version: the one place it is written (pyproject.toml reads it).

It follows the Lathe server's version (CMakeLists.txt `project(lathe VERSION …)`);
python/tests/test_packaging.py checks that the two agree.
"""
__version__ = "0.1.0"
