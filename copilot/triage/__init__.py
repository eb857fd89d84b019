"""Triage: label each inbound message with kind, sentiment, priority, crisis, private channel and language.

Out of the box the heads are fitted on a shipped seed set; a team's own labelled history replaces them
(``copilot triage train FILE``), saved under ``<data_dir>/triage/`` and loaded automatically.

The package keeps no re-exports: importing ``copilot.triage.screen`` would otherwise run the triager and
the model first (an import cycle). Import from the module that defines a name:
``cases`` (labelled sets), ``language``, ``screen`` and ``crisis`` (the crisis cascade), ``model`` (the heads),
``triager`` (``build_triager``, ``Triager``).
"""
