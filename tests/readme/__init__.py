"""The README harness: every code block of the READMEs is run or checked by
tests/test_readme.py, so an example a reader copies cannot be broken unnoticed.

``blocks`` finds the code blocks and their markers, ``pyclaims`` checks the claims
Python examples make in comments, ``shell`` runs shell examples statement by statement,
``world`` is what the examples may assume exists (files, server state, names).
"""
