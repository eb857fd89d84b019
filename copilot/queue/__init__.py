"""The human approval queue: cases, review items, the audit trail, users and roles, and publishing.

Nothing the copilot writes reaches a customer or the community until a person approves it here.

The package keeps no re-exports (importing a submodule would otherwise run the store first: an import cycle).
Import from the module that defines a name: ``store`` (``open_queue``, ``ReviewQueue``,
``requires_individual_decision``), ``records`` (``ReviewItem``, ``Case``, ``AuditEvent``, ``User``,
``PublishReport``, the state machine), ``publish`` (publishers and ``build_publisher``). The queue's storage is
``db`` (engine, transactions), ``tables``, ``migrations``, ``rows``, ``reads`` and ``users``; only these run SQL.
"""
