"""How a QA pair becomes model text: one chat format shared by training, generation and metrics.

The question is the user turn and the answer the assistant turn, so the memorized target, the
unlearning fine-tune and the evaluation all see exactly the same prompt for the same question.
"""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase

IGNORE_INDEX = -100


def question_prompt(tokenizer: PreTrainedTokenizerBase, question: str) -> str:
    """The text a model is given to answer ``question`` (chat template + assistant header)."""
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
    )


def chat_prompt(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]]) -> str:
    """The text for an arbitrary chat (system/user turns), ending with the assistant header."""
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def qa_token_ids(tokenizer: PreTrainedTokenizerBase, question: str, answer: str) -> tuple[list[int], list[int]]:
    """Token ids of the prompt for ``question`` and of ``answer`` + EOS, untruncated."""
    prompt_ids = tokenizer(question_prompt(tokenizer, question), add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return prompt_ids, answer_ids


def encode_qa(
    tokenizer: PreTrainedTokenizerBase, question: str, answer: str, max_length: int = 512
) -> dict[str, list[int]]:
    """Token ids of prompt + answer + EOS, with labels only on the answer and EOS tokens."""
    return truncate_qa(*qa_token_ids(tokenizer, question, answer), max_length=max_length)


def truncate_qa(prompt_ids: list[int], answer_ids: list[int], max_length: int) -> dict[str, list[int]]:
    """At most ``max_length`` tokens of prompt + answer, labels on the answer only.

    The prompt is truncated from the left if needed so the answer always keeps its tokens.
    """
    answer_ids = answer_ids[:max_length]
    room = max(max_length - len(answer_ids), 0)
    prompt_ids = prompt_ids[-room:] if room else []
    input_ids = prompt_ids + answer_ids
    labels = [IGNORE_INDEX] * len(prompt_ids) + answer_ids
    return {"input_ids": input_ids, "labels": labels, "attention_mask": [1] * len(input_ids)}
