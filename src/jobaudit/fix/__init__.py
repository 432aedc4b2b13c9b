"""Automatic fixes: ``jobaudit fix`` and ``jobaudit check --fix``.

Rules stay ast-only: a finding carries a data-only :class:`model.Fix` (what
to change, with the values the rule resolved), and this package turns it into
libcst edits, so comments and formatting survive.  libcst is imported by
:mod:`jobaudit.fix.apply` only, which the CLI loads when a fix is asked for,
so ``check`` does not pay for it.
"""
