"""Community content: discussion starters, promoter outreach, FAQ proposals, tone examples and the insights report.

Everything drafted here goes through the review queue like a support reply (``Draft(kind="starter" |
"outreach" | "faq_proposal")``); nothing is posted until a person approves it. The CLI
(``copilot community ...``, ``copilot report``) and the UI call the same plain functions:

Discussion starters (``starters``)
    ``draft_starters(pipeline, topic=None, n=5, fmt=None, channel="forum") -> StarterRun``
        ``.drafts`` (Drafts, not queued), ``.rejected`` (near-duplicates dropped), ``.requested``,
        ``.shortfall``. Formats: question, poll, challenge, event, ama. Topics: the request, the events
        calendar (``knowledge/events.yaml``), clusters of recent conversations, knowledge-base themes.
    ``generate_starters(pipeline, topic=None, n=5, fmt=None, channel="forum", by="copilot")``
        the same, queued: a list of ReviewItems (Drafts when ``by`` is None).

Promoters (``promoters``, ``registry``)
    ``scan_promoters(pipeline, by=...) -> ScanReport`` detects promoters in the queue's cases (or in
        ``messages=history_from_file(pipeline, path)``) into the registry.
    ``Registry(pipeline.queue)``: ``.list()``, ``.get(handle)`` (with history), ``.set_opt_out``,
        ``.set_consent``, ``.add_note``.
    ``draft_outreach(pipeline, handle, kind=None, by="copilot", force=False)`` -> ReviewItem (Draft if
        ``by`` is None); kinds thanks, beta, guest_post, ama, advocate. Raises UserError for anyone who
        opted out or declined, an unknown handle, an outreach already waiting, or one sent in the last 30 days.
    ``opt_out(pipeline, handle, by=..., reason=None) -> OptOutResult`` also withdraws queued outreach.

Knowledge gaps and FAQ proposals (``proposals``; applying in ``apply``)
    ``collect_gaps(pipeline)``, ``cluster_gaps(pipeline, questions)``: the gap log plus approved replies
        where a person added a fix.
    ``draft_proposals(pipeline, limit=5) -> ProposalRun`` (``.drafts``, ``.skipped``, ``.warnings``);
        ``generate_proposals(...)`` queues them. A proposal's text is the entry file itself.
    Approving one (``copilot.actions.Actions.approve``, from the CLI, the web app or the API) validates it,
        writes the entry under ``knowledge/<kind folder>/`` and re-indexes; ``apply.apply_proposals(queue,
        kb_dir, by=...)`` writes proposals approved but not yet applied, once each.

Tone examples (``examples``)
    ``ToneExamples(index, embedder, queue).examples_for(inbound, triage)``; ``pipeline.tone_examples`` is handed to the
        drafter, which puts one short approved reply of the same kind in its prompt.

Insights report (``report``)
    ``build_report(pipeline, since="7d", until=None) -> Report`` with ``.data`` (every figure),
        ``.markdown``, ``.html`` (self-contained, charts inline, figures tagged ``data-metric``) and
        ``.figures`` (PNG bytes by chart name); ``report.write(dir)``; ``default_out_dir(pipeline, report)``.

Demo history (``demo``)
    ``seed_demo(pipeline, cases=500, days=30)`` fills an empty queue through the real queue API.

Storage (``store``)
    ``CommunityStore.beside(pipeline.queue)`` owns the community tables (promoters, their history, applied
    proposals) in the queue's database; the queue's own items and cases are read through ``pipeline.queue``
    (``copilot.queue.reads``). No other community module runs SQL.
"""
