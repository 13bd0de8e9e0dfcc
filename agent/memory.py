"""Typed, serialisable conversation memory, and its two renderings into chat messages.

Memory is data: the system and task prompts, then one :class:`Round` per trial holding what was said while
proposing it (the model's answers, reasks, ``read_history`` returns). The evaluation result that closes a
round is not stored here: it lives in the trial itself and is rendered from the :class:`TrialRecord`, so a
resumed study rebuilds exactly the same conversation from its storage.

Three renderings, the first two as in the paper:

- ``chat``: the whole multi-turn conversation (system, task, answer, result, answer, result, ...). A settled
  round is sent without its rejected answers and their reasks (the trial's record keeps them, and reports
  show them): later prompts carry what was decided, not what was corrected, and stay within the context.
  ``skip`` leaves out the words of the oldest rounds (their results stay) when the whole no longer fits.
- ``compressed``: one user message rebuilt each round listing every past configuration with its result (as
  the reference CIFAR code does), followed only by the current round's exchanges.
- ``ledger``: the task, then one short line per finished trial, appended as trials finish, then the current
  round's exchanges. Nothing before the newest line ever changes, so a server that caches the previous
  prompt (llama.cpp's ``cache_prompt``) processes only the new lines and the round's own text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

from agent.messages import AnswerPart, ChatMessage, Part, ReaskPart
from agent.records import TrialRecord

__all__ = ["HistoryMode", "Memory", "Round", "settled"]

HistoryMode = Literal["chat", "compressed", "ledger"]


class Round(BaseModel):
    """What was said while proposing one trial."""

    model_config = ConfigDict(frozen=True)

    trial: int
    parts: tuple[Part, ...]


# The renderers need two prompt texts they cannot know: how a finished trial is reported to the model,
# and the header of the compressed history. The loop passes them in, rendered from prompts/.
FeedbackRenderer = Callable[[TrialRecord], str]
HistoryRenderer = Callable[[Sequence[TrialRecord]], str]
LineRenderer = Callable[[TrialRecord], str]


class Memory(BaseModel):
    """The conversation of one study."""

    system: str
    task: str
    #: The instruction that opens the study ("call evaluate_x with the first configuration").
    start: str = ""
    rounds: list[Round] = []

    def messages(
        self,
        mode: HistoryMode,
        records: Mapping[int, TrialRecord],
        current: Sequence[Part],
        *,
        feedback: FeedbackRenderer,
        history: HistoryRenderer,
        line: LineRenderer | None = None,
        skip: int = 0,
    ) -> list[ChatMessage]:
        """Render the prompt for the next model call. Builds a new list; never mutates the memory. ``skip``: in
        ``chat``, the number of oldest rounds whose words are left out (their results stay)."""
        if mode == "chat":
            return self._chat(records, current, feedback, skip)
        if mode == "ledger":
            assert line is not None, "the ledger rendering needs a line renderer"
            return self._ledger(records, current, line)
        return self._compressed(records, current, history)

    def _chat(
        self, records: Mapping[int, TrialRecord], current: Sequence[Part], feedback: FeedbackRenderer, skip: int
    ) -> list[ChatMessage]:
        out = [ChatMessage(role="system", content=self.system), ChatMessage(role="user", content=self._opening())]
        rounds = {r.trial: r for r in sorted(self.rounds, key=lambda r: r.trial)[skip:]}
        # In trial order: a round's words then its result; trials proposed by no conversation (adopted after
        # a crash, or made by another worker) appear as results only.
        for number in sorted(set(rounds) | {n for n, r in records.items() if r.finished}):
            if number in rounds:
                out.extend(_part_message(p) for p in settled(rounds[number].parts))
            record = records.get(number)
            if record is not None and record.finished:
                out.append(ChatMessage(role="user", content=feedback(record)))
        out.extend(_part_message(p) for p in current)
        return _merge_consecutive(out)

    def _compressed(
        self, records: Mapping[int, TrialRecord], current: Sequence[Part], history: HistoryRenderer
    ) -> list[ChatMessage]:
        finished = [r for _, r in sorted(records.items()) if r.finished]
        user = self._opening() if not finished else f"{self.task}\n\n{history(finished)}"
        out = [ChatMessage(role="system", content=self.system), ChatMessage(role="user", content=user)]
        out.extend(_part_message(p) for p in current)
        return _merge_consecutive(out)

    def _ledger(
        self, records: Mapping[int, TrialRecord], current: Sequence[Part], line: LineRenderer
    ) -> list[ChatMessage]:
        lines = [line(r) for _, r in sorted(records.items()) if r.finished]
        user = "\n".join([self._opening(), *lines]) if lines else self._opening()
        out = [ChatMessage(role="system", content=self.system), ChatMessage(role="user", content=user)]
        out.extend(_part_message(p) for p in current)
        return _merge_consecutive(out)

    def _opening(self) -> str:
        return f"{self.task}\n\n{self.start}" if self.start else self.task


def settled(parts: Sequence[Part]) -> list[Part]:
    """A round's parts without its rejected answers: each answer followed by a reask, and the reask."""
    kept: list[Part] = []
    for i, part in enumerate(parts):
        rejected = isinstance(part, AnswerPart) and i + 1 < len(parts) and isinstance(parts[i + 1], ReaskPart)
        if not rejected and not isinstance(part, ReaskPart):
            kept.append(part)
    return kept


def _part_message(part: Part) -> ChatMessage:
    if isinstance(part, AnswerPart):
        return ChatMessage(role="assistant", content=part.content)
    return ChatMessage(role="user", content=part.content)


def _merge_consecutive(messages: list[ChatMessage]) -> list[ChatMessage]:
    """Join consecutive messages of one role: chat templates expect user and assistant to alternate."""
    merged: list[ChatMessage] = []
    for m in messages:
        if merged and merged[-1].role == m.role and m.role != "system":
            merged[-1] = ChatMessage(role=m.role, content=f"{merged[-1].content}\n\n{m.content}")
        else:
            merged.append(m)
    return merged
