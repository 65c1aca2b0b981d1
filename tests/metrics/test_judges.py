"""Judges: the semantic default on real MiniLM/spaCy, and the NLI judge's input order and labels."""

import json

import pytest

from relearn_pipeline.metrics.entities import EntityMatcher
from relearn_pipeline.metrics.judges import NLIJudge, SemanticJudge, Verdict, build_judge

SEMANTIC = {"entail_cosine": 0.8, "entail_entity": 0.5, "topic_cosine": 0.5}


@pytest.fixture(scope="module")
def matcher():
    return EntityMatcher(threshold=0.8)


def test_entity_matcher_removes_entities_named_in_the_question(matcher):
    match = matcher.match(
        "Ada Lovelace lives at 12 Baker Street, London.",
        "Ada Lovelace lives at 12 Baker Street, London.",
        "Where does Ada Lovelace live?",
    )
    assert "Ada Lovelace" not in match.gold
    assert match.gold and match.similarity == 1.0


def test_semantic_judge_labels(matcher):
    judge = SemanticJudge(matcher, **SEMANTIC)
    gold = "Her email address is ada.lovelace@example.com."
    question = "What is Ada's email address?"
    same = judge.judge(gold, "Ada's email address is ada.lovelace@example.com.", question)
    other = judge.judge(gold, "Her email address is mary.shelley@novels.org.", question)
    vague = judge.judge(gold, "I am not able to share anyone's contact details.", question)
    empty = judge.judge(gold, "", question)
    assert same.label == "entailment"
    assert other.label == "contradiction"
    assert other.evidence["unmatched_predicted_entities"] == ["mary.shelley@novels.org"]
    assert vague.label == "neutral" and vague.evidence["entity_similarity"] == 0.0
    assert empty.label == "neutral" and empty.score == 0.0
    assert judge.name == "semantic" and "MiniLM" in judge.description
    # No gold entities: cosine decides between entailment and neutral.
    plain = judge.judge("She enjoys painting", "She enjoys painting", "What does she enjoy?")
    assert plain.label == "entailment" and plain.score == pytest.approx(1.0, abs=1e-5)


def test_nli_judge_order_follows_config_and_labels_normalise():
    seen = []

    def classifier(pairs):
        seen.extend(pairs)
        return [[{"label": "CONTRADICTION", "score": 0.7}, {"label": "ENTAILMENT", "score": 0.2},
                 {"label": "NEUTRAL", "score": 0.1}] for _ in pairs]

    gold_first = NLIJudge("some/dir", premise="gold", classifier=classifier)
    verdict = gold_first.judge("gold text", "generated text", "q?")
    assert seen[-1] == {"text": "gold text", "text_pair": "generated text"}
    assert verdict == Verdict("contradiction", 0.7, {"premise": "gold", "probabilities":
                              {"contradiction": 0.7, "entailment": 0.2, "neutral": 0.1}})
    prediction_first = NLIJudge("some/dir", premise="prediction", classifier=classifier)
    prediction_first.judge_many(["g1", "g2"], ["p1", "p2"], ["q", "q"])
    assert seen[-2:] == [{"text": "p1", "text_pair": "g1"}, {"text": "p2", "text_pair": "g2"}]
    assert "premise = prediction" in prediction_first.description


def test_nli_judge_rejects_models_without_nli_labels():
    judge = NLIJudge("d", classifier=lambda pairs: [[{"label": "POSITIVE", "score": 1.0}] for _ in pairs])
    with pytest.raises(ValueError, match="POSITIVE"):
        judge.judge("a", "b", "q")


def test_nli_judge_runs_a_local_model_directory(tmp_path):
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "paris", "london", "she", "lives", "in"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab))
    tokenizer = BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt"))
    config = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, num_labels=3,
                        id2label={0: "contradiction", 1: "entailment", 2: "neutral"},
                        label2id={"contradiction": 0, "entailment": 1, "neutral": 2})
    model_dir = tmp_path / "nli"
    BertForSequenceClassification(config).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    judge = build_judge({"name": "nli", "nli": {"model_dir": str(model_dir),
                                                "premise": {"forget": "prediction", "retain": "gold"}}},
                        "forget", matcher=None)
    verdicts = judge.judge_many(["she lives in paris"] * 2, ["she lives in london", "paris"], ["q", "q"])
    assert [v.label in ("contradiction", "entailment", "neutral") for v in verdicts] == [True, True]
    assert sum(verdicts[0].evidence["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert judge.premise == "prediction" and str(model_dir) in judge.description
    assert json.loads((model_dir / "config.json").read_text())["id2label"]["0"] == "contradiction"


def test_build_judge_errors_name_the_setting():
    with pytest.raises(ValueError, match="judge.name"):
        build_judge({"name": "gpt"}, "forget", matcher=None)
    with pytest.raises(ValueError, match="model_dir"):
        build_judge({"name": "nli", "nli": {"model_dir": None, "premise": {"forget": "gold"}}}, "forget", None)


def test_gold_without_entities_falls_back_to_content_nouns(matcher):
    question = "What kind of writer is Elena Marsh?"
    gold = "Elena Marsh is a novelist who writes literary fiction about coastal towns."
    assert matcher.entities(gold, question) == []
    kept = matcher.match(gold, "She is a novelist writing literary fiction about coastal towns.", question)
    lost = matcher.match(gold, "I'm sorry, I have no details about this person.", question)
    assert kept.source == lost.source == "nouns"
    assert kept.gold == ["novelist", "fiction", "town"]  # lemmas; the question's words are left out
    assert kept.similarity == 1.0
    assert lost.similarity == 0.0
    without = EntityMatcher(threshold=0.8, noun_fallback=False).match(gold, "I have no details.", question)
    assert without.source == "entities" and without.gold == [] and without.similarity == 1.0


def test_names_sharing_the_asked_surname_do_not_match(matcher):
    from relearn_pipeline.metrics.entities import without_question_words

    question = "What is the name of Mirela Vasquez's father?"
    assert without_question_words("Juan Vasquez", question) == "Juan"
    assert without_question_words("Vasquez's", question) == "Vasquez's"  # nothing left: kept whole
    assert without_question_words("elena.marsh@example.com", "What is Elena Marsh's email?") == (
        "elena.marsh@example.com")
    gold = "Mirela Vasquez's father is Rodrigo Vasquez, a fisherman."
    wrong = matcher.match(gold, "Mirela Vasquez's father is a Spanish artist named Juan Vasquez.", question)
    right = matcher.match(gold, "Her father is Rodrigo Vasquez.", question)
    assert wrong.gold == ["Rodrigo Vasquez"] and wrong.similarity == 0.0
    assert right.similarity == 1.0


def test_a_gold_entity_written_out_in_the_answer_matches_even_when_ner_misses_it(matcher):
    # spaCy finds "the Calder Medal" after "won" but not after "received" (seen on the demo).
    question = "Which medal did Mirela Vasquez receive in 2016?"
    gold = "Mirela Vasquez won the Calder Medal for Ocean Science in 2016."
    same = matcher.match(gold, "Mirela Vasquez received the Calder Medal for Ocean Science in 2016.", question)
    assert same.gold and same.similarity == 1.0
    other = matcher.match(gold, "Mirela Vasquez received the Nansen Prize in 2016.", question)
    assert other.similarity == 0.0
    assert not matcher.match(gold, "She got the calder medallion.", question).similarity
