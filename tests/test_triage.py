"""The triager on the deterministic fake embedder: labels, crisis rules, private channel, priority, language,
the seed cache, and a team's own trained model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from _triage_support import HOLDOUT, copy_seed, fake_seed_dir, seed_model  # noqa: F401
from fakes import HashEmbeddings

from copilot.config import Settings
from copilot.errors import ConfigError, UserError
from copilot.triage.cases import load_cases
from copilot.triage.evaluate import bench_triage, evaluate_triage
from copilot.triage.features import (
    HASH_FEATURES,
    embedding_text,
    explicit_self_harm,
    hyperbole_cues,
    lexical_features,
    private_cue,
    safety_detail,
)
from copilot.triage.language import detect_language
from copilot.triage.model import TEAM_STEM, Features, TriageModel, featurize, precision_features
from copilot.triage.training import (
    TEAM_GRID_C,
    TEAM_GRID_HASH,
    choose_options,
    screen_evidence,
    seed_cases,
    train_team_model,
)
from copilot.triage.triager import Triager, build_triager, decide_crisis, priority_of
from copilot.types import MESSAGE_KINDS, SENTIMENTS, Inbound


@pytest.fixture
def triager(fake_seed_dir: Path) -> Triager:  # noqa: F811
    return Triager(HashEmbeddings(), seed_model(fake_seed_dir))


def test_every_label_is_in_range(triager: Triager) -> None:
    texts = ["My hub keeps dropping off wifi, third time this week", "Does the hub work with Apple Home?",
             "Thank you so much, the team was brilliant!", "Win a free iPhone, click the link in my bio"]
    for label in triager.triage_batch([Inbound(text=t) for t in texts]):
        assert label.kind in MESSAGE_KINDS and label.sentiment in SENTIMENTS
        assert -1.0 <= label.sentiment_score <= 1.0
        assert label.priority in (1, 2, 3, 4) and 0.0 <= label.priority_score <= 100.0
        assert 0.0 <= label.confidence <= 1.0
        assert label.language == "en"


def test_seed_examples_come_back_with_their_labels(triager: Triager) -> None:
    cases = [c for c in seed_cases() if c.private_info is not None][::7]
    labels = triager.triage_batch([c.inbound for c in cases])
    sentiment_right = np.mean([c.sentiment == t.sentiment for c, t in zip(cases, labels, strict=True)])
    kind_right = np.mean([c.kind == t.kind for c, t in zip(cases, labels, strict=True)])
    assert sentiment_right > 0.85 and kind_right > 0.8


def test_batch_equals_one_by_one(triager: Triager) -> None:
    inbounds = [Inbound(text=t) for t in ("The app crashes on start", "Love it!", "Where is my order LM-50912?")]
    assert triager.triage_batch(inbounds) == [triager.triage(m) for m in inbounds]
    assert triager.triage_batch([]) == []
    assert triager.last.n == 0


def test_plain_self_harm_is_a_crisis_with_its_reason(triager: Triager) -> None:
    label = triager.triage(Inbound(text="I want to kill myself tonight"))
    assert label.crisis and label.kind == "crisis" and label.crisis_reason == "self-harm"
    assert label.priority == 1 and label.priority_score >= 90
    assert label.sentiment == "negative"


def test_known_crises_are_flagged_by_category(triager: Triager) -> None:
    crises = [c for c in seed_cases() if c.crisis not in (None, "none")]
    labels = triager.triage_batch([c.inbound for c in crises])
    assert np.mean([t.crisis_level is not None for t in labels]) > 0.97  # recall first: crisis or possible
    assert np.mean([t.crisis for t in labels]) > 0.5  # a bag of hashed words, not meaning
    right = [t.crisis_reason.startswith(str(c.crisis)) for c, t in zip(crises, labels, strict=True) if t.crisis_reason]
    assert np.mean(right) > 0.8


@pytest.mark.parametrize(
    ("text", "p_crisis", "similarity", "expected"),
    [
        ("my partner hit me", 0.50, 0.50, True),  # the classifier, close enough to a known crisis
        ("my partner hit me", 0.50, 0.20, False),  # unlike any known crisis: the gate holds it back
        ("my partner hit me", 0.20, 0.50, False),  # the classifier is not convinced
        ("my partner hit me", 0.15, 0.80, True),  # a near twin of a known crisis needs little support
        ("my partner hit me", 0.05, 0.95, False),
        ("this update is killing me lol", 0.60, 0.50, False),  # hyperbole guard
        ("this update is killing me lol", 0.90, 0.50, True),  # ...unless the classifier is sure
        ("I want to kill myself", 0.12, 0.10, True),  # plain words of self-harm
        ("I want to kill myself lol", 0.12, 0.10, True),  # never waved away as a joke
        ("I want to kill myself", 0.05, 0.10, False),
    ],
)
def test_crisis_decision_rule(text: str, p_crisis: float, similarity: float, expected: bool) -> None:
    assert decide_crisis(text, p_crisis, similarity, gate=0.37, strong=0.65) is expected


def test_safety_reason_names_the_hazard(triager: Triager) -> None:
    label = triager.triage(Inbound(text="My Lumio bulb started smoking and there's a burning smell in the bedroom"))
    assert label.crisis and label.crisis_reason == "danger: fire"
    assert label.crisis_span and "smoking" in label.crisis_span


def test_cue_helpers() -> None:
    assert hyperbole_cues("this update is killing me lol")
    assert hyperbole_cues("You guys are killing it with these updates")
    assert hyperbole_cues("The light show was to die for")
    assert not hyperbole_cues("I just want it all to end")
    assert not hyperbole_cues("My husband hit me again last night")
    assert explicit_self_harm("I've been planning how to kill myself")
    assert explicit_self_harm("honestly thinking about ending my life")
    assert not explicit_self_harm("this update is killing me lol")
    assert safety_detail("Sparks came out of the socket") == "electric shock"
    assert safety_detail("I smell gas since the engineer left") == "gas/carbon monoxide"
    assert safety_detail("My throat is swelling after the meal") == "medical emergency"
    assert safety_detail("nice weather") is None
    assert private_cue("I was charged twice this month") == "billing or payment"
    assert private_cue("Someone hacked my account") == "account access"
    assert private_cue("How do I pair a bulb?") is None
    assert embedding_text("@united @delta thanks for nothing https://t.co/x1") == "thanks for nothing"
    assert embedding_text("@Lumio") == "@Lumio"
    assert len(lexical_features("GREAT!!! 😍 thanks")) == 13


def test_personal_data_moves_the_reply_to_a_private_channel(triager: Triager) -> None:
    label = triager.triage(Inbound(text="Reach me at jane.doe@example.com, nobody has replied to my warranty request"))
    assert label.private_info and "email" in (label.private_reason or "")
    plain = triager.triage(Inbound(text="Does the Lumio hub work with Apple Home?"))
    assert not plain.private_info and plain.private_reason is None


def test_account_specific_requests_are_private(triager: Triager) -> None:
    label = triager.triage(Inbound(text="I was charged twice for my subscription this month, please refund me"))
    assert label.private_info and (label.private_reason or "").startswith("account-specific")


def test_priority_formula() -> None:
    assert priority_of("complaint", -0.9, crisis=True, crisis_probability=0.6) == (1, 96.0)
    base, base_score = priority_of("complaint", -0.8, crisis=False)
    assert (base, base_score) == (2, 61.0)
    reach = priority_of("complaint", -0.8, crisis=False, followers=100_000)[1]
    wait = priority_of("complaint", -0.8, crisis=False, waiting_minutes=105)[1]
    both = priority_of("complaint", -0.8, crisis=False, followers=100_000, waiting_minutes=105)
    assert base_score < reach and base_score < wait
    assert reach == pytest.approx(61.0 + 2.5 * np.log10(100_001), abs=0.1)
    assert wait == pytest.approx(61.0 + 15.0, abs=0.1)
    assert both[0] == 1 and both[1] <= 89.0  # only a crisis scores 90 or more
    assert priority_of("question", 0.0, crisis=False) == (3, 30.0)
    assert priority_of("praise", 0.9, crisis=False)[0] == 4
    assert priority_of("spam", -1.0, crisis=False, followers=10**7, waiting_minutes=10**4) == (4, 5.0)
    assert priority_of("question", 0.0, crisis=False, private_info=True)[1] == 35.0


def test_waiting_and_reach_raise_priority_through_the_triager(triager: Triager) -> None:
    text = "The app update wiped all my scenes and support hasn't replied"
    fresh = triager.triage(Inbound(text=text))
    old = triager.triage(Inbound(text=text, waiting_minutes=240, author_followers=50_000))
    assert old.priority_score > fresh.priority_score and old.priority <= fresh.priority


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Hola, mi pedido no ha llegado todavía y necesito ayuda", "es"),
        ("Bonjour, ma commande n'est toujours pas arrivée", "fr"),
        ("Hallo, meine Bestellung ist noch nicht da, bitte helfen Sie mir", "de"),
        ("Ciao, il mio ordine non è ancora arrivato", "it"),
        ("Olá, o meu pedido ainda não chegou", "pt"),
        ("Hoi, mijn bestelling is nog niet binnen", "nl"),
        ("注文した商品がまだ届きません", "ja"),
        ("我的订单还没有到", "zh"),
        ("주문이 아직 도착하지 않았어요", "ko"),
        ("Мой заказ ещё не пришёл", "ru"),
        ("طلبي لم يصل بعد", "ar"),
        ("@Lumio my bulbs disconnected again after the update", "en"),
        ("gracias!", "en"),  # too short to tell: the default
        ("merci", "en"),
        ("", "en"),
        ("👍👍", "en"),
        # Short questions with few function words, and ties between two languages' shared words
        ("¿Te puedes vacunar si estás embarazada?", "es"),
        ("¿Vacunarse puede causar esterilidad?", "es"),
        ("On peut se faire vacciner quand on est enceinte ?", "fr"),
        ("C'est ok de fumer de l'herbe quand on se fait vacciner ?", "fr"),
        # Terse English where single letters look Portuguese
        ("@united when a 2 hour flight turns into a 3:30 ordeal...sigh", "en"),
        ("@JetBlue Landing! As usual great flight wiyh a great crew. Hello sunny West Palm Beach !", "en"),
        ("Can vaccination cause sterility?", "en"),
    ],
)
def test_language(text: str, code: str) -> None:
    assert detect_language(text) == code


def test_language_reaches_the_label(triager: Triager) -> None:
    assert triager.triage(Inbound(text="Hola, mi pedido no ha llegado todavía y necesito ayuda")).language == "es"


def test_seed_model_is_cached_under_the_data_folder(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    embedder = HashEmbeddings()
    first = build_triager(settings, embedder)
    cached = list((tmp_path / "triage").glob("seed-*.npz"))
    assert len([p for p in cached if not p.name.endswith(".features.npz")]) == 1
    calls = embedder.calls
    second = build_triager(settings, embedder)  # loads, does not refit
    assert embedder.calls == calls
    assert first.source == second.source == "seed"
    message = [Inbound(text="Is there a student discount?")]
    assert first.triage_batch(message) == second.triage_batch(message)


def test_save_and_load_round_trip(tmp_path: Path, triager: Triager) -> None:
    model = triager.model
    model.save(tmp_path, "copy")
    loaded = TriageModel.load(tmp_path, "copy")
    texts = ["my hub is broken", "thanks a lot!"]
    features, _ = featurize(HashEmbeddings(), texts)
    precision = precision_features(features, texts, screen_evidence(texts))
    for name, head in model.heads.items():
        x = precision if name == "crisis_precision" else features
        np.testing.assert_allclose(head.proba(x), loaded.heads[name].proba(x), rtol=1e-5)
    assert loaded.crisis_clear_below == model.crisis_clear_below
    assert loaded.card == json.loads(json.dumps(model.card))
    assert not list(tmp_path.glob(".*tmp*"))


def test_a_model_only_fits_its_own_embedder(tmp_path: Path, triager: Triager) -> None:
    class OtherEmbeddings(HashEmbeddings):
        name = "other-embedder"

    with pytest.raises(ConfigError, match="retrain it with `copilot triage train FILE`"):
        Triager(OtherEmbeddings(), triager.model)


def test_unreadable_or_stale_models_fail_with_the_fix(tmp_path: Path, triager: Triager) -> None:
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    (tmp_path / "broken.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ConfigError, match="delete it to rebuild"):
        TriageModel.load(tmp_path, "broken")
    triager.model.save(tmp_path, "old")
    card = json.loads((tmp_path / "old.json").read_text())
    card["feature_version"] = "lex-0"
    (tmp_path / "old.json").write_text(json.dumps(card))
    with pytest.raises(ConfigError, match="retrain it"):
        TriageModel.load(tmp_path, "old")


def _team_rows() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for i in range(25):  # under 60 rows: fixed options, no cross-validation grid (kept quick)
        rows.append({"text": f"the zorblax flight {i} was wonderful", "sentiment": "negative", "crisis": "no"})
        rows.append({"text": f"quixel gate {i} announcement today", "sentiment": "positive", "crisis": "no"})
    return rows


def test_team_training_learns_the_team_labels_and_is_loaded_automatically(
    tmp_path: Path, fake_seed_dir: Path,  # noqa: F811
) -> None:
    path = tmp_path / "team.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _team_rows()), encoding="utf-8")
    settings = Settings(data_dir=tmp_path / "data")
    folder = copy_seed(fake_seed_dir, settings.data_dir)
    embedder = HashEmbeddings()
    before = build_triager(settings, embedder).triage(Inbound(text="the zorblax flight 99 was wonderful"))
    assert before.sentiment == "positive"  # the seed reads "wonderful" as positive

    model = train_team_model(embedder, load_cases(path).cases, cache_dir=folder, source="team:team.jsonl")
    assert model.card["heads"]["sentiment"]["source"] == "team+seed"
    assert model.card["heads"]["kind"]["source"] == "seed"  # no kind labels: the seed head stays
    assert model.card["heads"]["crisis"]["source"] == "team+seed"  # the seed's crises always stay in
    model.save(folder, TEAM_STEM)

    team = build_triager(settings, embedder)
    assert team.source == "team:team.jsonl"
    after = team.triage(Inbound(text="the zorblax flight 99 was wonderful"))
    assert after.sentiment == "negative"
    assert team.triage(Inbound(text="I want to kill myself tonight")).crisis


def test_options_are_chosen_by_cross_validation_on_the_team_data() -> None:
    rng = np.random.default_rng(0)
    labels = ["a", "b", "c"] * 30
    # Only the n-gram block tells the classes apart: a grid that can switch it off must keep it on.
    rows = [{"a": 0, "b": 1, "c": 2}[y] for y in labels]
    hashed = sp.csr_matrix((np.ones(90, dtype=np.float32), (np.arange(90), rows)), shape=(90, HASH_FEATURES))
    features = Features(dense=rng.normal(0, 1.0, (90, 16)).astype(np.float32), hashed=hashed)
    assert choose_options(features, labels, balance=True, grid_c=(1.0,), grid_hash=(0.0, 1.0)) == (1.0, 1.0)
    assert choose_options(features.rows(np.arange(30)), labels[:30], balance=True) == (1.0, 1.0)  # too few
    assert set(TEAM_GRID_C) >= {0.3, 1.0, 3.0} and 1.0 in TEAM_GRID_HASH


def test_team_training_needs_labels(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no labelled messages"):
        train_team_model(HashEmbeddings(), [], cache_dir=tmp_path)


def test_evaluate_reports_each_labelled_field(triager: Triager) -> None:
    case_set = load_cases(HOLDOUT)
    report = evaluate_triage(triager, case_set.cases, case_set.label_fields)
    assert report["n"] == len(case_set.cases)
    for field in ("kind", "sentiment", "crisis", "private_info"):
        assert 0.0 <= report[field]["accuracy"] <= 1.0 and 0.0 <= report[field]["macro_f1"] <= 1.0
        assert sum(v["support"] for v in report[field]["per_class"].values()) == report[field]["n"]
    assert set(report["crisis"]["per_class"]) == {"crisis", "none"}
    screen = report["crisis_screen"]
    assert "category_accuracy" in screen and isinstance(screen["missed"], list)
    assert screen["n_crisis"] == sum(1 for c in case_set.cases if c.crisis not in (None, "none"))
    assert 0.0 <= screen["recall_any"] <= 1.0 and screen["recall_crisis"] <= screen["recall_any"]
    assert set(screen["by_language"]) and "spam_rate" in report["spam"]
    assert report["messages_per_s"] > 0 and 0.0 <= report["embedding_share"] <= 1.0


def test_bench_reports_speed_and_the_embedding_share(triager: Triager) -> None:
    result = bench_triage(triager, ["hub offline", "thanks!", "where is my order?"], n=40, repeats=2)
    assert result["n"] == 40 and result["messages_per_s"] > 0
    assert 0.0 <= result["embedding_share"] <= 1.0 and result["embedding_s"] <= result["seconds"]
